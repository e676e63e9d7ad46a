//! The `sentry-trace` header.

use std::fmt;
use std::str::FromStr;

use crate::ids::{SpanId, TraceId, encode_lower_hex};

/// The `sentry-trace` header: which trace a request belongs to, which span is its parent, and
/// whether that trace was sampled.
///
/// Specified by Sentry's [trace propagation spec](https://develop.sentry.dev/sdk/telemetry/traces/trace-propagation/).
///
/// ```text
/// sentry-trace = *OWS trace-id [ "-" ] [ span-id ] [ "-" ] [ sampled ] *OWS
/// trace-id     = 32 LOWERHEX
/// span-id      = 16 LOWERHEX
/// sampled      = "0" / "1"
/// OWS          = SP / HTAB
/// ```
///
/// This is the grammar every Sentry SDK accepts (the regular expression
/// `^[ \t]*([0-9a-f]{32})?-?([0-9a-f]{16})?-?([01])?[ \t]*$`), with the trace id required.
/// Anything else is rejected, and a rejected header starts a new trace.
///
/// Example values:
///
/// ```text
/// 771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1    sampled
/// 771a43a4192642f0b136d5159a501700-b7ad6b7169203331-0    not sampled
/// 771a43a4192642f0b136d5159a501700-b7ad6b7169203331      decision deferred
/// ```
///
/// ```
/// use sentry_meta_core::SentryTrace;
///
/// let trace: SentryTrace = " 771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1\t".parse()?;
/// assert_eq!(trace.trace_id.to_string(), "771a43a4192642f0b136d5159a501700");
/// assert_eq!(trace.sampled, Some(true));
/// assert_eq!(trace.to_string(), "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1");
///
/// assert!("771A43A4192642F0B136D5159A501700-B7AD6B7169203331-1".parse::<SentryTrace>().is_err());
/// # Ok::<(), sentry_meta_core::ParseSentryTraceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SentryTrace {
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The span that made the request: the parent of the spans the receiver starts. The grammar
    /// allows it to be absent; every value this crate writes has one.
    pub span_id: Option<SpanId>,
    /// The sampling decision of the trace, or `None` when it was deferred to the receiver.
    pub sampled: Option<bool>,
}

/// Why a `sentry-trace` value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseSentryTraceError {
    /// The value does not start with 32 lowercase hex digits (after optional spaces and tabs).
    MissingTraceId,
    /// Something follows the trace id that is not `-span_id`, `-0`/`-1`, or trailing whitespace.
    Malformed,
}

impl fmt::Display for ParseSentryTraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingTraceId => "sentry-trace has no trace id of 32 lowercase hex digits",
            Self::Malformed => "sentry-trace does not match TRACEID[-SPANID][-0|-1]",
        })
    }
}

impl std::error::Error for ParseSentryTraceError {}

pub(crate) use crate::meta::markup::SENTRY_TRACE_MAX_LEN;

impl SentryTrace {
    /// A `sentry-trace` for a span whose sampling decision is `sampled` (`None`: deferred).
    pub const fn new(trace_id: TraceId, span_id: SpanId, sampled: Option<bool>) -> Self {
        Self {
            trace_id,
            span_id: Some(span_id),
            sampled,
        }
    }

    /// Parses a header value given as bytes (as it arrives in an HTTP request).
    ///
    /// Work is linear in the length: the spaces and tabs around the value are skipped, and at
    /// most its first 51 bytes (the longest value the grammar allows) are read.
    pub fn parse_bytes(value: &[u8]) -> Result<Self, ParseSentryTraceError> {
        let s = crate::baggage::trim_ows(value);
        let trace_id = s
            .get(..32)
            .and_then(|hex| TraceId::parse_hex(hex).ok())
            .ok_or(ParseSentryTraceError::MissingTraceId)?;
        let mut rest = &s[32..];
        // The regular expression is greedy and unambiguous here: an optional dash, then a span
        // id if 16 hex digits follow, an optional dash, an optional flag, and the end.
        rest = rest.strip_prefix(b"-").unwrap_or(rest);
        let span_id = rest.get(..16).and_then(|hex| SpanId::parse_hex(hex).ok());
        if span_id.is_some() {
            rest = &rest[16..];
        }
        rest = rest.strip_prefix(b"-").unwrap_or(rest);
        let sampled = match rest {
            [] => None,
            [b'1'] => Some(true),
            [b'0'] => Some(false),
            _ => return Err(ParseSentryTraceError::Malformed),
        };
        Ok(Self {
            trace_id,
            span_id,
            sampled,
        })
    }

    /// Writes the canonical value into a stack buffer and returns its length.
    pub(crate) fn encode(&self, out: &mut [u8; SENTRY_TRACE_MAX_LEN]) -> usize {
        encode_lower_hex(&self.trace_id.to_bytes(), &mut out[..32]);
        let mut len = 32;
        if let Some(span_id) = self.span_id {
            out[len] = b'-';
            encode_lower_hex(&span_id.to_bytes(), &mut out[len + 1..len + 17]);
            len += 17;
        }
        if let Some(sampled) = self.sampled {
            out[len] = b'-';
            out[len + 1] = if sampled { b'1' } else { b'0' };
            len += 2;
        }
        len
    }

    /// The W3C `traceparent` form, `00-TRACEID-SPANID-0X`, when there is a span id. A deferred
    /// decision is written as not sampled (`00`), as W3C Trace Context has no "deferred".
    ///
    /// `None` as well for an all-zero trace or span id, which W3C Trace Context forbids (the
    /// `sentry-trace` grammar does not, so such ids can arrive and be continued).
    pub fn to_traceparent(&self) -> Option<String> {
        let span_id = self.span_id.filter(|_| self.w3c_valid())?;
        let flag = u8::from(self.sampled == Some(true));
        Some(format!("00-{}-{span_id}-0{flag}", self.trace_id))
    }

    /// Whether W3C Trace Context accepts the ids: a span id, and neither id all zeros.
    pub(crate) fn w3c_valid(&self) -> bool {
        self.trace_id.to_bytes() != [0; 16]
            && self.span_id.is_some_and(|span| span.to_bytes() != [0; 8])
    }
}

impl FromStr for SentryTrace {
    type Err = ParseSentryTraceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_bytes(s.as_bytes())
    }
}

impl fmt::Display for SentryTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; SENTRY_TRACE_MAX_LEN];
        let len = self.encode(&mut buf);
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "771a43a4192642f0b136d5159a501700";
    const S: &str = "b7ad6b7169203331";

    fn parse(s: &str) -> Option<(String, Option<String>, Option<bool>)> {
        s.parse::<SentryTrace>().ok().map(|t| {
            (
                t.trace_id.to_string(),
                t.span_id.map(|s| s.to_string()),
                t.sampled,
            )
        })
    }

    #[test]
    fn grammar_corner_cases() {
        let full = |sampled| Some((T.to_owned(), Some(S.to_owned()), sampled));
        assert_eq!(parse(&format!("{T}-{S}-1")), full(Some(true)));
        assert_eq!(parse(&format!("{T}-{S}-0")), full(Some(false)));
        assert_eq!(parse(&format!("{T}-{S}")), full(None));
        assert_eq!(parse(&format!("{T}{S}1")), full(Some(true)));
        assert_eq!(parse(&format!("{T}-{S}-")), full(None));
        assert_eq!(parse(&format!(" \t{T}-{S}-1 \t")), full(Some(true)));
        assert_eq!(parse(T), Some((T.to_owned(), None, None)));
        assert_eq!(
            parse(&format!("{T}-1")),
            Some((T.to_owned(), None, Some(true)))
        );
        assert_eq!(
            parse(&format!("{T}--0")),
            Some((T.to_owned(), None, Some(false)))
        );
        assert_eq!(
            parse(&format!("{T}0")),
            Some((T.to_owned(), None, Some(false)))
        );
        assert_eq!(parse(&format!("{T}-{S}-2")), None);
        assert_eq!(parse(&format!("{T}-{S}-1-")), None);
        assert_eq!(parse(&format!("{T}--{S}")), None);
        assert_eq!(parse(&format!("{S}-1")), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("-"), None);
        assert_eq!(parse(&format!("\n{T}-{S}-1")), None);
        assert_eq!(parse(&format!("{T}-{S}-1{}", "0".repeat(1 << 20))), None);
    }

    #[test]
    fn display_is_canonical() {
        for input in [format!("{T}{S}1"), format!(" {T}-{S}- "), format!("{T}-0")] {
            let parsed: SentryTrace = input.parse().unwrap();
            let again: SentryTrace = parsed.to_string().parse().unwrap();
            assert_eq!(parsed, again);
        }
    }

    #[test]
    fn traceparent() {
        let t: SentryTrace = format!("{T}-{S}-1").parse().unwrap();
        assert_eq!(t.to_traceparent().unwrap(), format!("00-{T}-{S}-01"));
        let t: SentryTrace = format!("{T}-{S}").parse().unwrap();
        assert_eq!(t.to_traceparent().unwrap(), format!("00-{T}-{S}-00"));
    }
}
