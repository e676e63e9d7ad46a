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
//! Read with serde derives over the borrowed body, not `sentry-types`' `Envelope`: that one
//! builds every item whole, refuses span-v2 items, and its `DynamicSamplingContext` drops the
//! keys it does not know. What is not read here is skipped unbuilt; the header's `trace` is kept
//! as the JSON text it came as. A span that is not an object or has bad ids is dropped, a field
//! of another type reads as absent, strings are bounded, and nesting, items and spans limited.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// At most this many spans are read from one envelope.
pub const MAX_SPANS_PER_ENVELOPE: usize = 2_000;
/// At most this many items in one envelope.
pub const MAX_ITEMS: usize = 100;
/// JSON nested deeper than this (arrays and objects) is refused.
pub const MAX_DEPTH: usize = 32;
/// Names, ops and other strings are cut to this many characters.
pub(crate) const MAX_TEXT: usize = 300;
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(skip)]
    pub item: ItemKind,
    /// Whether it is the root of its segment (a transaction, a pageload).
    pub is_segment: bool,
    /// `http.server`, `pageload`, `http.client`, `db.sql.query`, …
    pub op: Option<String>,
    /// The transaction name, or the span's description.
    pub name: String,
    /// Seconds since the UNIX epoch.
    #[serde(rename = "start_timestamp")]
    pub start: Option<f64>,
    /// Seconds since the UNIX epoch.
    #[serde(rename = "end_timestamp")]
    pub end: Option<f64>,
    /// `ok`, `error`, `internal_error`, …
    pub status: Option<String>,
    /// The span's data or attributes, as bounded JSON.
    #[serde(serialize_with = "raw_json")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The header line is not a JSON object.
    #[error("the envelope header is not a JSON object")]
    BadHeader,
    /// JSON nested deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More than [`MAX_ITEMS`] items.
    #[error("more than {MAX_ITEMS} items")]
    TooManyItems,
    /// More than [`MAX_SPANS_PER_ENVELOPE`] spans.
    #[error("more than {MAX_SPANS_PER_ENVELOPE} spans")]
    TooManySpans,
}

impl EnvelopeError {
    /// Whether the envelope was refused for its size (answered 413) rather than its form.
    pub fn is_too_large(self) -> bool {
        self != EnvelopeError::BadHeader
    }
}

/// Stored JSON text, written out as it is (as nothing if it does not parse).
pub(super) fn raw_json<S: Serializer>(json: &Option<String>, to: S) -> Result<S::Ok, S::Error> {
    let raw = json
        .as_deref()
        .and_then(|json| serde_json::from_str::<&RawValue>(json).ok());
    raw.serialize(to)
}

/// A string, bounded; any other JSON value reads as none.
#[derive(Debug, Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(deserializer)?;
        let text = serde_json::from_str::<&str>(raw.get()).map(str::to_owned);
        let text = text
            .or_else(|_| serde_json::from_str::<String>(raw.get()))
            .ok();
        Ok(Text(text.map(|s| s.chars().take(MAX_TEXT).collect())))
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
            let rfc3339 = &time::format_description::well_known::Rfc3339;
            let date = || time::OffsetDateTime::parse(text.trim(), rfc3339).ok();
            // i128 nanoseconds to f64 seconds: exact to well under a microsecond for today.
            #[allow(clippy::cast_precision_loss)]
            let seconds = date().map(|date| date.unix_timestamp_nanos() as f64 / 1e9);
            text.trim().parse().ok().or(seconds)
        });
        // 9999-12-31T23:59:59Z: later times are not dates a span ran at.
        Ok(Timestamp(
            seconds.filter(|s| (0.0..=253_402_300_799.0).contains(s)),
        ))
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Header<'a> {
    sdk: Sdk,
    #[serde(borrow)]
    trace: Option<&'a RawValue>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Sdk {
    name: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ItemHeader {
    #[serde(rename = "type")]
    kind: Text,
    length: Option<u64>,
}

/// A `transaction` item: its root span is `contexts.trace`.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Transaction<'a> {
    transaction: Text,
    start_timestamp: Timestamp,
    timestamp: Timestamp,
    sdk: Sdk,
    tags: Option<&'a RawValue>,
    #[serde(borrow)]
    contexts: Contexts<'a>,
    spans: Vec<&'a RawValue>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Contexts<'a> {
    #[serde(borrow)]
    trace: Option<Span<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Tags {
    service: Text,
}

/// A span of a transaction (its `contexts.trace` or one of its `spans`) or of a span-v2 item:
/// the two name their name, end and data differently.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Span<'a> {
    trace_id: Text,
    span_id: Text,
    parent_span_id: Text,
    op: Text,
    #[serde(alias = "description")]
    name: Text,
    start_timestamp: Timestamp,
    #[serde(alias = "end_timestamp")]
    timestamp: Timestamp,
    status: Text,
    is_segment: Option<bool>,
    /// A transaction span's data, or a span-v2 span's typed attributes:
    /// `{"sentry.op": {"type": "string", "value": "pageload"}, …}`.
    #[serde(alias = "attributes", borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SpanItems<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

/// The span-v2 attributes the sink reads.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Attributes {
    #[serde(rename = "sentry.op")]
    op: Attribute,
    #[serde(rename = "sentry.sdk.name")]
    sdk_name: Attribute,
    #[serde(rename = "sentry.segment.id")]
    segment_id: Attribute,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Attribute {
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
    let sdk = header.sdk.name.0.as_deref();
    let (mut spans, mut items) = (Vec::new(), 0);
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
                (payload, rest) = after_header.split_at(length);
                rest = rest.strip_prefix(b"\n").unwrap_or(rest);
            }
            None => (payload, rest) = split_line(after_header),
        }
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
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') if depth == max => return true,
            (false, b'[' | b'{') => depth += 1,
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

impl Span<'_> {
    /// The span's record, or none without a valid trace id (its own, else `trace_id`) and span
    /// id; `service` by default that of `sdk`.
    fn record(
        self,
        item: ItemKind,
        trace_id: Option<&str>,
        sdk: String,
        service: Option<String>,
        segment_id: Option<String>,
    ) -> Option<SpanRecord> {
        let trace_id = hex_id(self.trace_id, 32).or_else(|| trace_id.map(str::to_owned))?;
        let span_id = hex_id(self.span_id, 16)?;
        let is_segment = item == ItemKind::Transaction || self.is_segment == Some(true);
        Some(SpanRecord {
            trace_id,
            parent_span_id: hex_id(self.parent_span_id, 16),
            segment_id: segment_id.or_else(|| is_segment.then(|| span_id.clone())),
            span_id,
            service: service.unwrap_or_else(|| service_of_sdk(&sdk)),
            sdk,
            item,
            is_segment,
            op: self.op.0,
            name: self.name.0.unwrap_or_default(),
            start: self.start_timestamp.0,
            end: self.timestamp.0,
            status: self.status.0,
            attributes: self
                .data
                .map(RawValue::get)
                .filter(|json| {
                    json.starts_with('{')
                        && json[1..].trim_start() != "}"
                        && json.len() <= MAX_ATTRIBUTES_JSON
                })
                .map(str::to_owned),
        })
    }
}

fn read_transaction(
    event: Transaction<'_>,
    envelope_sdk: Option<&str>,
    spans: &mut Vec<SpanRecord>,
) -> Result<(), EnvelopeError> {
    if event.spans.len() >= MAX_SPANS_PER_ENVELOPE {
        return Err(EnvelopeError::TooManySpans);
    }
    let Some(mut trace) = event.contexts.trace else {
        return Ok(());
    };
    let sdk = event.sdk.name.0.or_else(|| envelope_sdk.map(str::to_owned));
    let sdk = sdk.unwrap_or_default();
    let tags = event
        .tags
        .and_then(|tags| serde_json::from_str::<Tags>(tags.get()).ok());
    let service = tags.and_then(|tags| tags.service.0);
    // The root span is named and timed by its event.
    (trace.name, trace.start_timestamp, trace.timestamp) =
        (event.transaction, event.start_timestamp, event.timestamp);
    let kind = ItemKind::Transaction;
    let Some(root) = trace.record(kind, None, sdk.clone(), service.clone(), None) else {
        return Ok(());
    };
    let (trace_id, root_id) = (root.trace_id.clone(), root.span_id.clone());
    spans.push(root);
    for child in &event.spans {
        let Ok(child) = serde_json::from_str::<Span<'_>>(child.get()) else {
            continue;
        };
        let segment = Some(root_id.clone());
        // A child without a trace id belongs to its transaction's trace.
        let kind = ItemKind::TransactionSpan;
        if let Some(mut child) =
            child.record(kind, Some(&trace_id), sdk.clone(), service.clone(), segment)
        {
            child.is_segment = false;
            push(spans, child)?;
        }
    }
    Ok(())
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
        let Ok(mut span) = serde_json::from_str::<Span<'_>>(span.get()) else {
            continue;
        };
        let attributes = span.data.and_then(|a| serde_json::from_str(a.get()).ok());
        let attributes: Attributes = attributes.unwrap_or_default();
        let sdk = attributes
            .sdk_name
            .value
            .0
            .or_else(|| envelope_sdk.map(str::to_owned));
        span.op = attributes.op.value;
        let segment = hex_id(attributes.segment_id.value, 16);
        if let Some(span) = span.record(
            ItemKind::SpanV2,
            None,
            sdk.unwrap_or_default(),
            None,
            segment,
        ) {
            push(spans, span)?;
        }
    }
    Ok(())
}

/// Adds a span, unless the envelope has as many as it may.
fn push(spans: &mut Vec<SpanRecord>, span: SpanRecord) -> Result<(), EnvelopeError> {
    if spans.len() >= MAX_SPANS_PER_ENVELOPE {
        return Err(EnvelopeError::TooManySpans);
    }
    spans.push(span);
    Ok(())
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
fn hex_id(value: Text, len: usize) -> Option<String> {
    let s = value.0?;
    let valid = match len {
        32 => sentry_meta::TraceId::parse_hex(s.as_bytes()).is_ok(),
        _ => sentry_meta::SpanId::parse_hex(s.as_bytes()).is_ok(),
    };
    valid.then_some(s)
}
