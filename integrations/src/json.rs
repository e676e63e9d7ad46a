//! A [`SentryMeta`] as JSON data, for the engines whose context is `serde_json` data (tera,
//! handlebars): `{"sentry_trace": "…", "baggage": "…", "traceparent": true}`.
//!
//! Going through data means reading it back: the header values are parsed again with the same
//! rules as incoming headers, so a hand-written or tampered value can never put anything but
//! valid, escaped tags in the page.

use std::fmt;

use serde_json::{Map, Value};

use crate::{DynamicSamplingContext, SentryMeta, SentryTrace, TraceMeta};

const SENTRY_TRACE: &str = "sentry_trace";
const BAGGAGE: &str = "baggage";
const TRACEPARENT: &str = "traceparent";

/// `meta` as a JSON object; no tags is `{}`.
pub(crate) fn to_value(meta: &SentryMeta) -> Value {
    let mut object = Map::new();
    if let Some(meta) = meta.trace_meta() {
        object.insert(SENTRY_TRACE.into(), meta.sentry_trace_header().into());
        if let Some(baggage) = meta.baggage_header() {
            object.insert(BAGGAGE.into(), baggage.into_owned().into());
        }
        if meta.writes_traceparent() {
            object.insert(TRACEPARENT.into(), true.into());
        }
    }
    Value::Object(object)
}

/// Reads back what [`to_value`] wrote: `Ok(None)` for `null` (no value passed: the helper falls
/// back to the current request), no tags for an object without `sentry_trace`.
pub(crate) fn from_value(value: &Value) -> Result<Option<SentryMeta>, InvalidTraceData> {
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        other => return Err(InvalidTraceData::NotAnObject(type_name(other))),
    };
    // A member's string, `None` when it is missing or `null`.
    let string = |key| match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_bytes())),
        Some(other) => Err(InvalidTraceData::NotAString(key, type_name(other))),
    };
    let Some(sentry_trace) = string(SENTRY_TRACE)? else {
        return Ok(Some(SentryMeta::none()));
    };
    let sentry_trace =
        SentryTrace::parse_bytes(sentry_trace).map_err(|_| InvalidTraceData::SentryTrace)?;
    let dsc = DynamicSamplingContext::from_baggage(string(BAGGAGE)?);
    let traceparent = matches!(object.get(TRACEPARENT), Some(Value::Bool(true)));
    let meta = TraceMeta::from_dsc(sentry_trace, dsc).ok_or(InvalidTraceData::SentryTrace)?;
    Ok(Some(meta.traceparent(traceparent).into()))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a value passed to a helper is not trace data.
#[derive(Debug)]
pub(crate) enum InvalidTraceData {
    NotAnObject(&'static str),
    NotAString(&'static str, &'static str),
    SentryTrace,
}

impl fmt::Display for InvalidTraceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject(found) => write!(
                f,
                "expected trace data made by `sentry_meta::{{tera,handlebars}}::value`, found {found}"
            ),
            Self::NotAString(key, found) => write!(f, "`{key}` must be a string, found {found}"),
            Self::SentryTrace => f.write_str(
                "`sentry_trace` is not a valid sentry-trace value with a span id \
                 (`{32 hex}-{16 hex}[-0|-1]`)",
            ),
        }
    }
}

impl std::error::Error for InvalidTraceData {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SerializedDsc, SpanId, TraceId};

    fn meta(traceparent: bool) -> SentryMeta {
        let dsc = DynamicSamplingContext::from_baggage([
            &b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-release=a%22%3Cb,sentry-x=%20y"[..],
        ]);
        TraceMeta::new(
            TraceId::random(),
            SpanId::random(),
            Some(false),
            Some(SerializedDsc::new(dsc)),
        )
        .traceparent(traceparent)
        .into()
    }

    #[test]
    fn round_trips_to_the_same_bytes() {
        for original in [meta(false), meta(true), SentryMeta::none()] {
            let back = from_value(&to_value(&original))
                .expect("valid")
                .expect("a value");
            assert_eq!(back.to_string(), original.to_string());
        }
    }

    #[test]
    fn null_means_not_passed() {
        assert!(from_value(&Value::Null).expect("valid").is_none());
    }

    #[test]
    fn rejects_what_is_not_trace_data() {
        for bad in [
            serde_json::json!("<script>"),
            serde_json::json!({"sentry_trace": 1}),
            serde_json::json!({"sentry_trace": "771a43a4192642f0b136d5159a501700"}),
            serde_json::json!({"sentry_trace": "\"><script>"}),
            serde_json::json!({"sentry_trace": "771a43a4192642f0b136d5159a501700-b7ad6b7169203331", "baggage": []}),
        ] {
            assert!(from_value(&bad).is_err(), "{bad}");
        }
    }
}
