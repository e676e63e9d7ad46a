//! Reading Sentry envelopes: the spans of `transaction` items and of span-v2 (`span`) items, and
//! the envelope header's `trace` (the Dynamic Sampling Context) as it arrived.
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
//!
//! Read with serde derives over the borrowed body rather than `sentry-types`' `Envelope`, which
//! builds every item whole (each map and string of an event), refuses span-v2 items, and whose
//! `DynamicSamplingContext` keeps only the keys it knows. Here what is not read is skipped
//! without being built, and the header's `trace` is kept as the JSON text it came as, every key
//! with it. Everything is input from the network: unknown items are skipped, a span that is not
//! an object or has bad ids is dropped, a field of an unexpected type reads as absent, every
//! string is bounded, and nesting, items and spans are limited ([`EnvelopeError`]).

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// At most this many spans are read from one envelope.
pub const MAX_SPANS_PER_ENVELOPE: usize = 2_000;
/// At most this many items in one envelope.
pub const MAX_ITEMS: usize = 100;
/// JSON nested deeper than this (arrays and objects) is refused.
pub const MAX_DEPTH: usize = 32;
/// Names, ops and other strings are cut to this many characters.
const MAX_TEXT: usize = 300;
/// At most this many bytes of a span's attributes are kept (as JSON).
const MAX_ATTRIBUTES_JSON: usize = 4_096;
/// A header `trace` longer than this is not kept (baggage, its source, is at most 8,192 bytes).
const MAX_DSC_JSON: usize = 16_384;
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

/// What an envelope holds for the sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// The header's `trace` (the Dynamic Sampling Context) as the JSON text it arrived as.
    pub dsc: Option<String>,
    /// The spans of its `transaction` and `span` items.
    pub spans: Vec<SpanRecord>,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The header line is not a JSON object.
    BadHeader,
    /// JSON nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_ITEMS`] items.
    TooManyItems,
    /// More than [`MAX_SPANS_PER_ENVELOPE`] spans.
    TooManySpans,
}

impl EnvelopeError {
    /// Whether the envelope was refused for its size (answered 413) rather than its form.
    pub fn is_too_large(self) -> bool {
        self != EnvelopeError::BadHeader
    }
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::BadHeader => f.write_str("the envelope header is not a JSON object"),
            EnvelopeError::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH} levels"),
            EnvelopeError::TooManyItems => write!(f, "more than {MAX_ITEMS} items"),
            EnvelopeError::TooManySpans => write!(f, "more than {MAX_SPANS_PER_ENVELOPE} spans"),
        }
    }
}

/// A string; any other JSON value reads as none.
#[derive(Debug, Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        Ok(Text(serde_json::from_str(raw.get()).ok()))
    }
}

/// Seconds since the epoch: a number (what the SDKs send for starts), a numeric string, or an
/// RFC 3339 date (the Rust SDK writes a transaction's and a span's end as one); anything else,
/// a negative time or one past the year 9999 reads as none.
#[derive(Debug, Default)]
struct Timestamp(Option<f64>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        let seconds = serde_json::from_str::<f64>(raw.get()).ok().or_else(|| {
            let text = serde_json::from_str::<String>(raw.get()).ok()?;
            let text = text.trim();
            text.parse().ok().or_else(|| {
                let date = time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                // i128 nanoseconds to f64 seconds: exact to well under a microsecond for today.
                #[allow(clippy::cast_precision_loss)]
                Some(date.unix_timestamp_nanos() as f64 / 1e9)
            })
        });
        Ok(Timestamp(
            seconds.filter(|s| (0.0..=MAX_TIMESTAMP).contains(s)),
        ))
    }
}

/// 9999-12-31T23:59:59Z: later times are not dates a span ran at.
const MAX_TIMESTAMP: f64 = 253_402_300_799.0;

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(default)]
    sdk: Option<Sdk>,
    #[serde(default, borrow)]
    trace: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Sdk {
    #[serde(default)]
    name: Text,
}

#[derive(Deserialize)]
struct ItemHeader {
    #[serde(rename = "type", default)]
    kind: Text,
    #[serde(default)]
    length: Option<u64>,
}

#[derive(Deserialize)]
struct Transaction<'a> {
    #[serde(default)]
    transaction: Text,
    #[serde(default)]
    start_timestamp: Timestamp,
    #[serde(default)]
    timestamp: Timestamp,
    #[serde(default)]
    sdk: Option<Sdk>,
    #[serde(default, borrow)]
    tags: Option<&'a RawValue>,
    #[serde(default, borrow)]
    contexts: Option<Contexts<'a>>,
    #[serde(default, borrow)]
    spans: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Contexts<'a> {
    #[serde(default, borrow)]
    trace: Option<Span<'a>>,
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    service: Text,
}

/// A span of a transaction (its `contexts.trace` or one of its `spans`) or of a span-v2 item.
#[derive(Deserialize)]
struct Span<'a> {
    #[serde(default)]
    trace_id: Text,
    #[serde(default)]
    span_id: Text,
    #[serde(default)]
    parent_span_id: Text,
    #[serde(default)]
    op: Text,
    /// A transaction span's name.
    #[serde(default)]
    description: Text,
    /// A span-v2 span's name.
    #[serde(default)]
    name: Text,
    #[serde(default)]
    start_timestamp: Timestamp,
    /// A transaction span's end.
    #[serde(default)]
    timestamp: Timestamp,
    /// A span-v2 span's end.
    #[serde(default)]
    end_timestamp: Timestamp,
    #[serde(default)]
    status: Text,
    #[serde(default)]
    is_segment: Option<bool>,
    /// A transaction span's data.
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    /// A span-v2 span's typed attributes: `{"sentry.op": {"type": "string", "value": "…"}}`.
    #[serde(default, borrow)]
    attributes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SpanItems<'a> {
    #[serde(default, borrow)]
    items: Vec<&'a RawValue>,
}

/// The span-v2 attributes the sink reads.
#[derive(Default, Deserialize)]
struct Attributes {
    #[serde(rename = "sentry.op", default)]
    op: Attribute,
    #[serde(rename = "sentry.sdk.name", default)]
    sdk_name: Attribute,
    #[serde(rename = "sentry.segment.id", default)]
    segment_id: Attribute,
}

#[derive(Default, Deserialize)]
struct Attribute {
    #[serde(default)]
    value: Text,
}

/// The envelope's header `trace` and the spans of its `transaction` and `span` items; other
/// items are skipped.
pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let (header_line, mut rest) = split_line(body);
    if !header_line.trim_ascii_start().starts_with(b"{") {
        return Err(EnvelopeError::BadHeader);
    }
    let header: Header<'_> = from_json(header_line)?.ok_or(EnvelopeError::BadHeader)?;
    let envelope_sdk = header.sdk.and_then(|sdk| sdk.name.0).map(|s| bounded(&s));
    let mut spans = Vec::new();
    let mut items = 0;
    while !rest.is_empty() {
        let (item_header_line, after_header) = split_line(rest);
        if item_header_line.iter().all(u8::is_ascii_whitespace) {
            rest = after_header;
            continue;
        }
        items += 1;
        if items > MAX_ITEMS {
            return Err(EnvelopeError::TooManyItems);
        }
        let Some(item) = from_json::<ItemHeader>(item_header_line)? else {
            break; // Without a readable item header the item boundaries are unknown.
        };
        let payload;
        match item.length {
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
        let sdk = envelope_sdk.as_deref();
        match item.kind.0.as_deref() {
            Some("transaction") => {
                if let Some(event) = from_json(payload)? {
                    read_transaction(event, sdk, &mut spans)?;
                }
            }
            Some("span") => {
                if let Some(SpanItems { items }) = from_json(payload)? {
                    read_spans_v2(&items, sdk, &mut spans)?;
                }
            }
            _ => {}
        }
    }
    let dsc = header.trace.map(RawValue::get);
    Ok(Envelope {
        dsc: dsc
            .filter(|dsc| dsc.len() <= MAX_DSC_JSON)
            .map(str::to_owned),
        spans,
    })
}

/// `json` read as a `T`: none when it is not one, an error when it nests too deeply.
fn from_json<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<Option<T>, EnvelopeError> {
    if nests_deeper_than(json, MAX_DEPTH) {
        return Err(EnvelopeError::TooDeep);
    }
    Ok(serde_json::from_slice(json).ok())
}

/// Whether the arrays and objects of JSON text nest deeper than `max` (strings skipped).
fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn read_transaction(
    event: Transaction<'_>,
    envelope_sdk: Option<&str>,
    spans: &mut Vec<SpanRecord>,
) -> Result<(), EnvelopeError> {
    let Some(trace) = event.contexts.and_then(|c| c.trace) else {
        return Ok(());
    };
    if event.spans.len() >= MAX_SPANS_PER_ENVELOPE {
        return Err(EnvelopeError::TooManySpans);
    }
    let sdk = event
        .sdk
        .and_then(|sdk| sdk.name.0)
        .map(|s| bounded(&s))
        .or_else(|| envelope_sdk.map(bounded))
        .unwrap_or_default();
    let service = event
        .tags
        .and_then(|tags| serde_json::from_str::<Tags>(tags.get()).ok())
        .and_then(|tags| tags.service.0)
        .map(|s| bounded(&s))
        .unwrap_or_else(|| service_of_sdk(&sdk));
    let (Some(trace_id), Some(root_id)) = (hex_id(&trace.trace_id, 32), hex_id(&trace.span_id, 16))
    else {
        return Ok(());
    };
    spans.push(SpanRecord {
        trace_id: trace_id.clone(),
        span_id: root_id.clone(),
        parent_span_id: hex_id(&trace.parent_span_id, 16),
        segment_id: Some(root_id.clone()),
        service: service.clone(),
        sdk: sdk.clone(),
        item: ItemKind::Transaction,
        is_segment: true,
        op: text(trace.op),
        name: text(event.transaction).unwrap_or_default(),
        start: event.start_timestamp.0,
        end: event.timestamp.0,
        status: text(trace.status),
        attributes: attributes_json(trace.data),
    });
    for child in &event.spans {
        let Ok(child) = serde_json::from_str::<Span<'_>>(child.get()) else {
            continue;
        };
        let Some(span_id) = hex_id(&child.span_id, 16) else {
            continue;
        };
        check_span_count(spans)?;
        spans.push(SpanRecord {
            // A child without a trace id belongs to its transaction's trace.
            trace_id: hex_id(&child.trace_id, 32).unwrap_or_else(|| trace_id.clone()),
            span_id,
            parent_span_id: hex_id(&child.parent_span_id, 16),
            segment_id: Some(root_id.clone()),
            service: service.clone(),
            sdk: sdk.clone(),
            item: ItemKind::TransactionSpan,
            is_segment: false,
            op: text(child.op),
            name: text(child.description).unwrap_or_default(),
            start: child.start_timestamp.0,
            end: child.timestamp.0,
            status: text(child.status),
            attributes: attributes_json(child.data),
        });
    }
    check_span_count(spans)
}

fn read_spans_v2(
    items: &[&RawValue],
    envelope_sdk: Option<&str>,
    spans: &mut Vec<SpanRecord>,
) -> Result<(), EnvelopeError> {
    if items.len() > MAX_SPANS_PER_ENVELOPE {
        return Err(EnvelopeError::TooManySpans);
    }
    for span in items {
        let Ok(span) = serde_json::from_str::<Span<'_>>(span.get()) else {
            continue;
        };
        let (Some(trace_id), Some(span_id)) =
            (hex_id(&span.trace_id, 32), hex_id(&span.span_id, 16))
        else {
            continue;
        };
        check_span_count(spans)?;
        let attributes: Attributes = span
            .attributes
            .and_then(|a| serde_json::from_str(a.get()).ok())
            .unwrap_or_default();
        let sdk = text(attributes.sdk_name.value)
            .or_else(|| envelope_sdk.map(bounded))
            .unwrap_or_default();
        let is_segment = span.is_segment.unwrap_or(false);
        spans.push(SpanRecord {
            trace_id,
            segment_id: hex_id(&attributes.segment_id.value, 16)
                .or_else(|| is_segment.then(|| span_id.clone())),
            span_id,
            parent_span_id: hex_id(&span.parent_span_id, 16),
            service: service_of_sdk(&sdk),
            sdk,
            item: ItemKind::SpanV2,
            is_segment,
            op: text(attributes.op.value),
            name: text(span.name).unwrap_or_default(),
            start: span.start_timestamp.0,
            end: span.end_timestamp.0,
            status: text(span.status),
            attributes: attributes_json(span.attributes),
        });
    }
    Ok(())
}

fn check_span_count(spans: &[SpanRecord]) -> Result<(), EnvelopeError> {
    if spans.len() >= MAX_SPANS_PER_ENVELOPE {
        Err(EnvelopeError::TooManySpans)
    } else {
        Ok(())
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
fn hex_id(value: &Text, len: usize) -> Option<String> {
    let s = value.0.as_deref()?;
    let valid = match len {
        32 => sentry_meta::TraceId::parse_hex(s.as_bytes()).is_ok(),
        16 => sentry_meta::SpanId::parse_hex(s.as_bytes()).is_ok(),
        _ => false,
    };
    valid.then(|| s.to_owned())
}

fn text(value: Text) -> Option<String> {
    value.0.as_deref().map(bounded)
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// A non-empty JSON object of at most [`MAX_ATTRIBUTES_JSON`] bytes, as it came.
fn attributes_json(value: Option<&RawValue>) -> Option<String> {
    let json = value?.get();
    let object = json.starts_with('{') && json[1..].trim_start() != "}";
    (object && json.len() <= MAX_ATTRIBUTES_JSON).then(|| json.to_owned())
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
        let spans = parse(body.as_bytes()).expect("valid envelope").spans;
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
        let spans = parse(body.as_bytes()).expect("valid envelope").spans;
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
                Ok(envelope) => assert!(envelope.spans.is_empty(), "{body:?} gave {envelope:?}"),
            }
        }
        assert_eq!(parse(b"[]"), Err(EnvelopeError::BadHeader));
    }
    #[test]
    fn keeps_the_header_trace_as_it_came() {
        let header = format!(
            r#"{{"event_id":"x","trace":{{"trace_id":"{T}","sample_rate":"0.5","sampled":"true","zz_unknown":{{"a":[1]}},"org_id":"42"}}}}"#
        );
        let envelope = parse(format!("{header}\n").as_bytes()).expect("valid envelope");
        assert_eq!(
            envelope.dsc.as_deref(),
            Some(&header[header.find("{\"trace_id").expect("trace")..header.len() - 1])
        );
        assert_eq!(parse(b"{}\n").map(|e| e.dsc), Ok(None));
    }

    #[test]
    fn limits_are_refused_as_too_large() {
        let deep = format!(
            "{{}}\n{{\"type\":\"span\"}}\n{}{}\n",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert_eq!(parse(deep.as_bytes()), Err(EnvelopeError::TooDeep));
        // Brackets inside strings do not nest.
        let quoted = format!("{{\"sdk\":{{\"name\":\"{}\\\"\"}}}}\n", "[".repeat(40));
        assert!(parse(quoted.as_bytes()).is_ok());
        let items = "{\"type\":\"x\"}\n{}\n".repeat(MAX_ITEMS + 1);
        assert_eq!(
            parse(format!("{{}}\n{items}").as_bytes()),
            Err(EnvelopeError::TooManyItems)
        );
        let zeros = vec!["0"; MAX_SPANS_PER_ENVELOPE + 1].join(",");
        let bomb = format!("{{}}\n{{\"type\":\"span\"}}\n{{\"items\":[{zeros}]}}\n");
        assert_eq!(parse(bomb.as_bytes()), Err(EnvelopeError::TooManySpans));
        assert!(
            EnvelopeError::TooManySpans.is_too_large() && !EnvelopeError::BadHeader.is_too_large()
        );
    }

    #[test]
    fn odd_values_read_as_absent() {
        let body = format!(
            "{{}}\n{{\"type\":\"span\"}}\n{{\"items\":[7,{{\"trace_id\":\"{T}\",\"span_id\":\"d000000000000001\",\"name\":[1],\"status\":5,\"start_timestamp\":1e300,\"end_timestamp\":\"2\",\"attributes\":{{}}}}]}}"
        );
        let spans = parse(body.as_bytes()).expect("valid envelope").spans;
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (spans[0].name.as_str(), spans[0].status.as_deref()),
            ("", None)
        );
        assert_eq!((spans[0].start, spans[0].end), (None, Some(2.0)));
        assert_eq!(
            (spans[0].service.as_str(), spans[0].attributes.as_deref()),
            ("unknown", None)
        );
    }
}
