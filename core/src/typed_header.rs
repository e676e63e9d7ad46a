//! [`SentryTrace`] as a typed header of the [`headers`](https://docs.rs/headers) crate (feature
//! `headers`), so that `TypedHeader<SentryTrace>` works in axum and with `HeaderMapExt`.

use headers_core::{Error, Header, HeaderName, HeaderValue};

use crate::sentry_trace::{SENTRY_TRACE_MAX_LEN, SentryTrace};

static SENTRY_TRACE: HeaderName = HeaderName::from_static("sentry-trace");

/// The `sentry-trace` header, as specified by Sentry's
/// [trace propagation spec](https://develop.sentry.dev/sdk/telemetry/traces/trace-propagation/);
/// the grammar is on [`SentryTrace`].
///
/// Decoding rejects a malformed value, and several values as one malformed value (the rule of
/// "Several `sentry-trace` values" in `docs/design.md`, which the layers follow too), so a handler
/// never sees a value that the layers would not continue for its grammar. It reads nothing else:
/// a valid value the organization check refuses (a caller's `sentry-org_id` in `baggage`) still
/// decodes, and whether a request continues a trace is
/// [`Continuation::decide`](crate::Continuation::decide)'s to say.
/// Encoding writes the canonical form.
///
/// ```
/// use headers_core::{Header, HeaderValue};
/// use sentry_meta_core::SentryTrace;
///
/// let values = [HeaderValue::from_static("771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1")];
/// let trace = SentryTrace::decode(&mut values.iter())?;
/// assert_eq!(trace.sampled, Some(true));
///
/// let mut encoded = Vec::new();
/// trace.encode(&mut encoded);
/// assert_eq!(encoded, values);
///
/// let upper = [HeaderValue::from_static("771A43A4192642F0B136D5159A501700-B7AD6B7169203331-1")];
/// assert!(SentryTrace::decode(&mut upper.iter()).is_err());
/// # Ok::<(), headers_core::Error>(())
/// ```
impl Header for SentryTrace {
    fn name() -> &'static HeaderName {
        &SENTRY_TRACE
    }

    fn decode<'i, I>(values: &mut I) -> Result<Self, Error>
    where
        I: Iterator<Item = &'i HeaderValue>,
    {
        let value = values.next().ok_or_else(Error::invalid)?;
        if values.next().is_some() {
            return Err(Error::invalid());
        }
        SentryTrace::parse_bytes(value.as_bytes()).map_err(|_| Error::invalid())
    }

    fn encode<E: Extend<HeaderValue>>(&self, values: &mut E) {
        let mut buf = [0u8; SENTRY_TRACE_MAX_LEN];
        let len = SentryTrace::encode(self, &mut buf);
        // Hex digits, `-`, `0` and `1` only: always a valid header value.
        values.extend(HeaderValue::from_bytes(&buf[..len]).ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_value_only() {
        let values = [
            HeaderValue::from_static("771a43a4192642f0b136d5159a501700-b7ad6b7169203331"),
            HeaderValue::from_static("0123456789abcdef0123456789abcdef-0123456789abcdef-1"),
        ];
        let trace = SentryTrace::decode(&mut values[..1].iter()).expect("valid");
        assert_eq!(trace.to_string(), values[0].to_str().expect("ascii"));
        // Several values are one malformed value, valid or not each.
        assert!(SentryTrace::decode(&mut values.iter()).is_err());
        assert!(SentryTrace::decode(&mut [].iter()).is_err());
        let junk = [HeaderValue::from_static("junk")];
        assert!(SentryTrace::decode(&mut junk.iter()).is_err());
    }
}
