//! Reading Sentry envelopes: the spans of `transaction` items and of span-v2 (`span`) items.
//!
//! An envelope is newline-separated JSON: one header line, then for each item a header line and
//! a payload. A payload is `length` bytes when the item header has a `length`, else it runs to
//! the next `\n` (the browser SDK never writes `length`; the Rust SDK always does).
//!
//! ```text
//! {"sent_at":"…","sdk":{"name":"sentry.javascript.browser",…},"trace":{"trace_id":"…",…}}
//! {"type":"span","item_count":2,"content_type":"application/vnd.sentry.items.span.v2+json"}
//! {"version":2,"items":[{"trace_id":"…","span_id":"…","parent_span_id":"…","name":"/askama",
//!   "start_timestamp":1.7e9,"end_timestamp":1.7e9,"status":"ok","is_segment":true,
//!   "attributes":{"sentry.op":{"type":"string","value":"pageload"},…}},…]}
//! ```
//!
//! A `transaction` item is an event: its root span is `contexts.trace` (with the event's
//! `transaction` as its name and `start_timestamp`/`timestamp`), its children are `spans`.
//! Everything here is input from the network: unknown items are skipped, malformed spans are
//! dropped, every string is bounded, nothing panics.

use serde_json::{Map, Value};

/// At most this many spans are read from one envelope.
pub const MAX_SPANS_PER_ENVELOPE: usize = 2_000;
/// Names, ops and other strings are cut to this many characters.
const MAX_TEXT: usize = 300;
/// At most this many bytes of a span's attributes are kept (as JSON).
const MAX_ATTRIBUTES_JSON: usize = 4_096;

/// Which kind of envelope item a span came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// The root span of a `transaction` item (its `contexts.trace`).
    Transaction,
    /// A child span in a `transaction` item's `spans`.
    TransactionSpan,
    /// A span of a span-v2 (`span`) item.
    SpanV2,
}

impl ItemKind {
    /// The name stored and shown for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Transaction => "transaction",
            ItemKind::TransactionSpan => "transaction.span",
            ItemKind::SpanV2 => "span.v2",
        }
    }

    /// The kind stored as [`as_str`](Self::as_str) (an unknown name reads as a span-v2 span).
    pub fn from_stored(name: &str) -> Self {
        match name {
            "transaction" => ItemKind::Transaction,
            "transaction.span" => ItemKind::TransactionSpan,
            _ => ItemKind::SpanV2,
        }
    }
}

/// One span of a trace, as read from an envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, if any (16 lowercase hex digits).
    pub parent_span_id: Option<String>,
    /// The span id of the segment (transaction) the span belongs to.
    pub segment_id: Option<String>,
    /// Where it ran: `browser`, `web`, `api` (from the `service` tag), or the SDK's name.
    pub service: String,
    /// The SDK that sent it (`sentry.rust`, `sentry.javascript.browser`, …).
    pub sdk: String,
    /// The item it came from.
    pub item: ItemKind,
    /// Whether it is the root of its segment (a transaction, a pageload).
    pub is_segment: bool,
    /// `http.server`, `pageload`, `http.client`, `db.sql.query`, …
    pub op: Option<String>,
    /// The transaction name, or the span's description.
    pub name: String,
    /// Seconds since the UNIX epoch.
    pub start: Option<f64>,
    /// Seconds since the UNIX epoch.
    pub end: Option<f64>,
    /// `ok`, `error`, `internal_error`, …
    pub status: Option<String>,
    /// The span's data or attributes, as bounded JSON.
    pub attributes: Option<String>,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The header line is not a JSON object.
    BadHeader,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::BadHeader => f.write_str("the envelope header is not a JSON object"),
        }
    }
}

/// The spans of every `transaction` and `span` item of an envelope; other items are skipped.
pub fn parse(body: &[u8]) -> Result<Vec<SpanRecord>, EnvelopeError> {
    let (header_line, mut rest) = split_line(body);
    let header: Map<String, Value> = match serde_json::from_slice(header_line) {
        Ok(Value::Object(map)) => map,
        _ => return Err(EnvelopeError::BadHeader),
    };
    let envelope_sdk = header
        .get("sdk")
        .and_then(|sdk| sdk.get("name"))
        .and_then(Value::as_str)
        .map(bounded);

    let mut spans = Vec::new();
    while !rest.is_empty() && spans.len() < MAX_SPANS_PER_ENVELOPE {
        let (item_header_line, after_header) = split_line(rest);
        if item_header_line.iter().all(u8::is_ascii_whitespace) {
            rest = after_header;
            continue;
        }
        let Ok(Value::Object(item_header)) = serde_json::from_slice::<Value>(item_header_line)
        else {
            break; // Without a readable item header the item boundaries are unknown.
        };
        let payload;
        match item_header.get("length").and_then(Value::as_u64) {
            Some(length) => {
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                if length > after_header.len() {
                    break;
                }
                payload = &after_header[..length];
                rest = &after_header[length..];
                rest = rest.strip_prefix(b"\n").unwrap_or(rest);
            }
            None => (payload, rest) = split_line(after_header),
        }
        let Ok(payload) = serde_json::from_slice::<Value>(payload) else {
            continue;
        };
        match item_header.get("type").and_then(Value::as_str) {
            Some("transaction") => read_transaction(&payload, envelope_sdk.as_deref(), &mut spans),
            Some("span") => read_span_v2(&payload, envelope_sdk.as_deref(), &mut spans),
            _ => {}
        }
    }
    spans.truncate(MAX_SPANS_PER_ENVELOPE);
    Ok(spans)
}

fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn read_transaction(event: &Value, envelope_sdk: Option<&str>, spans: &mut Vec<SpanRecord>) {
    let Some(trace) = event.get("contexts").and_then(|c| c.get("trace")) else {
        return;
    };
    let sdk = event
        .get("sdk")
        .and_then(|sdk| sdk.get("name"))
        .and_then(Value::as_str)
        .map(bounded)
        .or_else(|| envelope_sdk.map(bounded))
        .unwrap_or_default();
    let service = event
        .get("tags")
        .and_then(|tags| tags.get("service"))
        .and_then(Value::as_str)
        .map(bounded)
        .unwrap_or_else(|| service_of_sdk(&sdk));
    let (Some(trace_id), Some(root_id)) = (
        hex_id(trace.get("trace_id"), 32),
        hex_id(trace.get("span_id"), 16),
    ) else {
        return;
    };
    spans.push(SpanRecord {
        trace_id: trace_id.clone(),
        span_id: root_id.clone(),
        parent_span_id: hex_id(trace.get("parent_span_id"), 16),
        segment_id: Some(root_id.clone()),
        service: service.clone(),
        sdk: sdk.clone(),
        item: ItemKind::Transaction,
        is_segment: true,
        op: text(trace.get("op")),
        name: text(event.get("transaction")).unwrap_or_default(),
        start: timestamp(event.get("start_timestamp")),
        end: timestamp(event.get("timestamp")),
        status: text(trace.get("status")),
        attributes: attributes_json(trace.get("data")),
    });
    let Some(children) = event.get("spans").and_then(Value::as_array) else {
        return;
    };
    for child in children {
        if spans.len() >= MAX_SPANS_PER_ENVELOPE {
            return;
        }
        let Some(span_id) = hex_id(child.get("span_id"), 16) else {
            continue;
        };
        spans.push(SpanRecord {
            // A child without a trace id belongs to its transaction's trace.
            trace_id: hex_id(child.get("trace_id"), 32).unwrap_or_else(|| trace_id.clone()),
            span_id,
            parent_span_id: hex_id(child.get("parent_span_id"), 16),
            segment_id: Some(root_id.clone()),
            service: service.clone(),
            sdk: sdk.clone(),
            item: ItemKind::TransactionSpan,
            is_segment: false,
            op: text(child.get("op")),
            name: text(child.get("description")).unwrap_or_default(),
            start: timestamp(child.get("start_timestamp")),
            end: timestamp(child.get("timestamp")),
            status: text(child.get("status")),
            attributes: attributes_json(child.get("data")),
        });
    }
}

fn read_span_v2(container: &Value, envelope_sdk: Option<&str>, spans: &mut Vec<SpanRecord>) {
    let Some(items) = container.get("items").and_then(Value::as_array) else {
        return;
    };
    for span in items {
        if spans.len() >= MAX_SPANS_PER_ENVELOPE {
            return;
        }
        let (Some(trace_id), Some(span_id)) = (
            hex_id(span.get("trace_id"), 32),
            hex_id(span.get("span_id"), 16),
        ) else {
            continue;
        };
        let attributes = span.get("attributes");
        // Attributes are typed: {"sentry.op": {"type": "string", "value": "pageload"}}.
        let attribute = |key: &str| {
            attributes
                .and_then(|a| a.get(key))
                .and_then(|a| a.get("value"))
        };
        let sdk = text(attribute("sentry.sdk.name"))
            .or_else(|| envelope_sdk.map(bounded))
            .unwrap_or_default();
        let is_segment = span
            .get("is_segment")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        spans.push(SpanRecord {
            trace_id,
            segment_id: hex_id(attribute("sentry.segment.id"), 16)
                .or_else(|| is_segment.then(|| span_id.clone())),
            span_id,
            parent_span_id: hex_id(span.get("parent_span_id"), 16),
            service: service_of_sdk(&sdk),
            sdk,
            item: ItemKind::SpanV2,
            is_segment,
            op: text(attribute("sentry.op")),
            name: text(span.get("name")).unwrap_or_default(),
            start: timestamp(span.get("start_timestamp")),
            end: timestamp(span.get("end_timestamp")),
            status: text(span.get("status")),
            attributes: attributes_json(attributes),
        });
    }
}

/// `browser` for the browser SDKs, else the SDK's name (a `service` tag wins over both).
fn service_of_sdk(sdk: &str) -> String {
    if sdk.starts_with("sentry.javascript.") && sdk.contains("browser") {
        "browser".to_owned()
    } else if sdk.is_empty() {
        "unknown".to_owned()
    } else {
        sdk.to_owned()
    }
}

/// A lowercase hex id of exactly `len` digits; anything else is no id.
fn hex_id(value: Option<&Value>, len: usize) -> Option<String> {
    let s = value?.as_str()?;
    let valid = match len {
        32 => sentry_meta::TraceId::parse_hex(s.as_bytes()).is_ok(),
        16 => sentry_meta::SpanId::parse_hex(s.as_bytes()).is_ok(),
        _ => false,
    };
    valid.then(|| s.to_owned())
}

fn text(value: Option<&Value>) -> Option<String> {
    value?.as_str().map(bounded)
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// Seconds since the epoch: a number (what the SDKs send for starts), a numeric string, or an
/// RFC 3339 date (the Rust SDK writes a transaction's and a span's end as one).
fn timestamp(value: Option<&Value>) -> Option<f64> {
    let seconds = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(seconds) => seconds,
            Err(_) => {
                let date = time::OffsetDateTime::parse(
                    s.trim(),
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                // i128 nanoseconds to f64 seconds: exact to well under a microsecond for today's dates.
                #[allow(clippy::cast_precision_loss)]
                let seconds = date.unix_timestamp_nanos() as f64 / 1e9;
                seconds
            }
        },
        _ => return None,
    };
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds)
}

fn attributes_json(value: Option<&Value>) -> Option<String> {
    let value = value?;
    if value.as_object().is_none_or(Map::is_empty) {
        return None;
    }
    let json = value.to_string();
    (json.len() <= MAX_ATTRIBUTES_JSON).then_some(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "771a43a4192642f0b136d5159a501700";

    #[test]
    fn reads_a_rust_transaction_with_length() {
        let payload = format!(
            r#"{{"type":"transaction","transaction":"GET /api/pages/{{page}}","start_timestamp":10.0,"timestamp":"1970-01-01T00:00:10.500Z","sdk":{{"name":"sentry.rust"}},"tags":{{"service":"api"}},"contexts":{{"trace":{{"trace_id":"{T}","span_id":"b7ad6b7169203331","parent_span_id":"a000000000000001","op":"http.server","status":"ok"}}}},"spans":[{{"span_id":"c000000000000001","trace_id":"{T}","parent_span_id":"b7ad6b7169203331","op":"db.sql.query","description":"SELECT 1","start_timestamp":10.1,"timestamp":10.2}}]}}"#
        );
        let body = format!(
            "{{\"event_id\":\"x\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
            payload.len()
        );
        let spans = parse(body.as_bytes()).expect("valid envelope");
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].service, "api");
        assert_eq!(spans[0].item, ItemKind::Transaction);
        assert_eq!(spans[0].parent_span_id.as_deref(), Some("a000000000000001"));
        assert_eq!((spans[0].start, spans[0].end), (Some(10.0), Some(10.5)));
        assert_eq!(spans[1].op.as_deref(), Some("db.sql.query"));
        assert_eq!(spans[1].name, "SELECT 1");
        assert_eq!(spans[1].segment_id.as_deref(), Some("b7ad6b7169203331"));
    }

    #[test]
    fn reads_span_v2_items_without_length() {
        let body = format!(
            "{{\"sdk\":{{\"name\":\"sentry.javascript.browser\"}}}}\n{{\"type\":\"span\",\"item_count\":1,\"content_type\":\"application/vnd.sentry.items.span.v2+json\"}}\n{{\"version\":2,\"items\":[{{\"trace_id\":\"{T}\",\"span_id\":\"d000000000000001\",\"parent_span_id\":\"b7ad6b7169203331\",\"name\":\"/askama\",\"start_timestamp\":1,\"end_timestamp\":2,\"status\":\"ok\",\"is_segment\":true,\"attributes\":{{\"sentry.op\":{{\"type\":\"string\",\"value\":\"pageload\"}}}}}}]}}"
        );
        let spans = parse(body.as_bytes()).expect("valid envelope");
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].service, "browser");
        assert_eq!(spans[0].op.as_deref(), Some("pageload"));
        assert_eq!(spans[0].segment_id.as_deref(), Some("d000000000000001"));
    }

    #[test]
    fn hostile_input_never_panics() {
        for body in [
            &b""[..],
            b"\n\n\n",
            b"not json",
            b"{}\n{\"type\":\"transaction\",\"length\":99999999999999999999}\n{}",
            b"{}\n{\"type\":\"transaction\",\"length\":18446744073709551615}\n{}",
            b"{}\n{\"type\":\"span\"}\n{\"items\":[1,null,{\"trace_id\":\"ZZ\"}]}",
            b"{}\n{\"type\":\"transaction\"}\n{\"contexts\":{\"trace\":{\"trace_id\":1}}}",
            b"{}\n\xff\xfe\n",
        ] {
            // An error, or no span: nothing with a bad id or from a bad item is stored.
            match parse(body) {
                Err(_) => {}
                Ok(spans) => assert!(spans.is_empty(), "{body:?} gave {spans:?}"),
            }
        }
        assert_eq!(parse(b"[]"), Err(EnvelopeError::BadHeader));
    }
}
