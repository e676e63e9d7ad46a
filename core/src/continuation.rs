//! Whether an incoming request continues its caller's trace.

use std::fmt;

use crate::dsc::{DscKey, DynamicSamplingContext};
use crate::sentry_trace::{ParseSentryTraceError, SentryTrace};

/// What the receiving service knows about itself when deciding whether to continue a trace:
/// its organization id and whether continuation is strict. The default has neither (any
/// caller's trace is continued); [`ContinuationPolicy::from_client`] reads a Sentry client's.
///
/// ```
/// use sentry_meta_core::ContinuationPolicy;
///
/// let policy = ContinuationPolicy::new().org_id("42").strict_trace_continuation(true);
/// assert_eq!(policy.org(), Some("42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContinuationPolicy {
    /// This service's organization id: the `org_id` option, else the one in the DSN's host
    /// (`o123.ingest.sentry.io` → `123`).
    org_id: Option<String>,
    /// Continue only when both sides name the same organization (Sentry's
    /// `strict_trace_continuation` option).
    strict_trace_continuation: bool,
}

impl ContinuationPolicy {
    /// No organization id, not strict: the same as [`Default`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// This service's organization id (Sentry's `org_id` option, else the one in the DSN's host:
    /// `o123.ingest.sentry.io` → `123`). A caller naming another organization starts a new trace.
    /// An empty one is none, as the continuation rule reads it.
    #[must_use]
    pub fn org_id(mut self, org_id: impl Into<String>) -> Self {
        self.org_id = Some(org_id.into()).filter(|org| !org.is_empty());
        self
    }

    /// Whether to continue only when both sides name the same organization (Sentry's
    /// `strict_trace_continuation` option): with it, a caller without an org id starts a new
    /// trace when this service has one, and the other way round. Off by default.
    #[must_use]
    pub fn strict_trace_continuation(mut self, strict: bool) -> Self {
        self.strict_trace_continuation = strict;
        self
    }

    /// This service's organization id, if it has one (see [`org_id`](Self::org_id)).
    pub fn org(&self) -> Option<&str> {
        self.org_id.as_deref()
    }

    /// Why a caller whose baggage decodes to `incoming` may not be continued, whichever header
    /// names its trace: its organization id and this service's are both present and different,
    /// or, with strict continuation, only one of them is present. `None`: the organizations
    /// allow it.
    ///
    /// ```
    /// use sentry_meta_core::{ContinuationPolicy, DynamicSamplingContext};
    ///
    /// let policy = ContinuationPolicy::new().org_id("1");
    /// let caller = |baggage: &[u8]| DynamicSamplingContext::from_baggage([baggage]);
    /// assert!(policy.refusal(&caller(b"sentry-org_id=2")).is_some());
    /// assert!(policy.refusal(&caller(b"sentry-org_id=1")).is_none());
    /// assert!(policy.refusal(&caller(b"")).is_none());
    /// let strict = policy.strict_trace_continuation(true);
    /// assert!(strict.refusal(&caller(b"")).is_some());
    /// ```
    pub fn refusal(&self, incoming: &DynamicSamplingContext) -> Option<NewTraceReason> {
        // Neither is ever empty: the DSC's `set` and `org_id` both take an empty value for none.
        match (incoming.get(DscKey::OrgId), self.org()) {
            (Some(incoming), Some(own)) if incoming != own => Some(NewTraceReason::OrgMismatch {
                incoming: incoming.to_owned(),
                own: own.to_owned(),
            }),
            (Some(_), None) | (None, Some(_)) if self.strict_trace_continuation => {
                Some(NewTraceReason::StrictOrgMissing)
            }
            _ => None,
        }
    }
}

/// A trace continued from an incoming request: its `sentry-trace` and the frozen DSC of its
/// head, with `sample_rand` filled in when the caller did not send a valid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTrace {
    /// The caller's `sentry-trace`: the trace, the parent span and the decision.
    pub sentry_trace: SentryTrace,
    /// The caller's `sentry-*` baggage entries, frozen (possibly empty, never re-derived).
    pub dsc: DynamicSamplingContext,
}

impl IncomingTrace {
    /// Whether a service that samples at `rate` samples this trace: the caller's decision, or,
    /// when the caller left it open, the trace's `sample_rand` (with all its decimals) below
    /// `rate`, as Sentry's SDKs decide (`sampleSpan` of `@sentry/core`), so that the decision
    /// agrees with the frozen DSC. A `rate` outside `[0, 1]` (or NaN) is not a rate, and samples
    /// nothing, as `sampleSpan` drops the trace when its rate is invalid.
    ///
    /// ```
    /// use sentry_meta_core::{Continuation, ContinuationPolicy};
    ///
    /// let open = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331";
    /// let decide = |sentry_trace: &[u8], baggage: &[u8]| {
    ///     let policy = ContinuationPolicy::default();
    ///     match Continuation::decide(Some(sentry_trace), [baggage], &policy) {
    ///         Continuation::Continue(incoming) => incoming.sampled_at(0.5),
    ///         Continuation::NewTrace(reason) => panic!("{reason}"),
    ///     }
    /// };
    /// assert!(decide(open, b"sentry-sample_rand=0.25"));
    /// assert!(!decide(open, b"sentry-sample_rand=0.75"));
    /// // The caller's own decision stands.
    /// assert!(decide(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1", b"sentry-sample_rand=0.75"));
    /// ```
    pub fn sampled_at(&self, rate: f64) -> bool {
        self.sentry_trace.sampled.unwrap_or_else(|| {
            // Always there: filled in when the caller sent none.
            (0.0..=1.0).contains(&rate) && self.dsc.exact_sample_rand().unwrap_or(0.0) < rate
        })
    }

    /// Decides the trace as a service that samples at `rate` does ([`sampled_at`](Self::sampled_at))
    /// and returns the decision. When the caller left it open, the decision becomes the
    /// trace's, and `rate` the frozen DSC's `sample_rate`, as `@sentry/core` writes it: the rate
    /// that made the decision is this service's, and the DSC then agrees with the decision and
    /// its `sample_rand`; a `sentry-sampled` member the caller sent with its open decision
    /// (which decided nothing) is replaced by this decision. A caller's own decision is kept,
    /// with its DSC.
    ///
    /// ```
    /// use sentry_meta_core::{Continuation, ContinuationPolicy, DscKey};
    ///
    /// let Continuation::Continue(mut incoming) = Continuation::decide(
    ///     Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331"),
    ///     [&b"sentry-sample_rand=0.25,sentry-sample_rate=0.1"[..]],
    ///     &ContinuationPolicy::default(),
    /// ) else {
    ///     unreachable!()
    /// };
    /// assert!(incoming.decide_at(0.5));
    /// assert_eq!(incoming.sentry_trace.sampled, Some(true));
    /// assert_eq!(incoming.dsc.get(DscKey::SampleRate), Some("0.5"));
    /// ```
    pub fn decide_at(&mut self, rate: f64) -> bool {
        if let Some(sampled) = self.sentry_trace.sampled {
            return sampled;
        }
        let sampled = self.sampled_at(rate);
        self.sentry_trace.sampled = Some(sampled);
        self.dsc.set_sample_rate(rate);
        if self.dsc.get(DscKey::Sampled).is_some() {
            self.dsc.set_sampled(sampled);
        }
        sampled
    }
}

/// Why a request starts a new trace rather than continuing one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewTraceReason {
    /// No `sentry-trace` header came with the request.
    NoIncomingTrace,
    /// The `sentry-trace` header was malformed.
    Malformed(ParseSentryTraceError),
    /// The caller's `sentry-org_id` differs from this service's organization.
    OrgMismatch {
        /// The caller's organization.
        incoming: String,
        /// This service's organization.
        own: String,
    },
    /// Strict continuation is on and only one side names an organization.
    StrictOrgMissing,
}

impl fmt::Display for NewTraceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIncomingTrace => f.write_str("no incoming sentry-trace"),
            Self::Malformed(err) => write!(f, "{err}"),
            Self::OrgMismatch { incoming, own } => {
                // A caller's org id is as long as its header: the message shows its start.
                let mut end = incoming.len().min(64);
                while !incoming.is_char_boundary(end) {
                    end -= 1;
                }
                write!(f, "incoming sentry-org_id {:?}", &incoming[..end])?;
                if end < incoming.len() {
                    write!(f, " (cut; {} bytes in all)", incoming.len())?;
                }
                write!(f, " differs from this organization {own:?}")
            }
            Self::StrictOrgMissing => f.write_str(
                "strict trace continuation needs an org id on both sides, and one is missing",
            ),
        }
    }
}

/// The decision for one incoming request.
///
/// ```
/// use sentry_meta_core::{Continuation, ContinuationPolicy, DscKey};
///
/// let policy = ContinuationPolicy::new().org_id("1");
/// let continued = Continuation::decide(
///     Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
///     [&b"sentry-org_id=1,sentry-sample_rate=0.5,vendor=x"[..]],
///     &policy,
/// );
/// let Continuation::Continue(incoming) = continued else { panic!() };
/// assert_eq!(incoming.dsc.get(DscKey::SampleRate), Some("0.5"));
/// assert!(incoming.dsc.sample_rand().unwrap().as_f64() < 0.5);
///
/// let other_org = Continuation::decide(
///     Some(b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1"),
///     [&b"sentry-org_id=2"[..]],
///     &policy,
/// );
/// assert!(matches!(other_org, Continuation::NewTrace(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
// Decided once per request and taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Continuation {
    /// Continue the caller's trace.
    Continue(IncomingTrace),
    /// Start a new trace; incoming baggage is ignored.
    NewTrace(NewTraceReason),
}

impl Continuation {
    /// Applies Sentry's continuation rules to a request's one `sentry-trace` value and every
    /// value of its `baggage` header, in order.
    ///
    /// A caller that received several `sentry-trace` values must pass them as one malformed
    /// value (any bytes that are not a valid `sentry-trace`, e.g. `b"several sentry-trace
    /// headers"`), never pick one of them: this crate's layers do, so several values start a new
    /// trace (see "Several `sentry-trace` values" in `docs/design.md`).
    ///
    /// - A missing or malformed `sentry-trace` starts a new trace (logged at debug level).
    /// - Organization check: both ids present and different → new trace; exactly one present →
    ///   new trace only with `strict_trace_continuation`; otherwise continue.
    /// - A continued trace freezes the incoming `sentry-*` entries (an empty DSC when there are
    ///   none) and fills in `sample_rand` when missing or invalid.
    pub fn decide<'a>(
        sentry_trace: Option<&[u8]>,
        baggage: impl IntoIterator<Item = &'a [u8]>,
        policy: &ContinuationPolicy,
    ) -> Self {
        let Some(raw) = sentry_trace else {
            return Self::NewTrace(NewTraceReason::NoIncomingTrace);
        };
        let sentry_trace = match SentryTrace::parse_bytes(raw) {
            Ok(trace) => trace,
            Err(err) => {
                tracing::debug!(
                    target: "sentry_meta",
                    error = %err,
                    len = raw.len(),
                    "ignoring malformed sentry-trace header; starting a new trace"
                );
                return Self::NewTrace(NewTraceReason::Malformed(err));
            }
        };
        let mut dsc = DynamicSamplingContext::from_baggage(baggage);
        if let Some(reason) = policy.refusal(&dsc) {
            tracing::debug!(target: "sentry_meta", %reason, "starting a new trace");
            return Self::NewTrace(reason);
        }
        dsc.backfill_sample_rand(sentry_trace.trace_id, sentry_trace.sampled);
        Self::Continue(IncomingTrace { sentry_trace, dsc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ST: &[u8] = b"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1";

    fn policy(org: Option<&str>, strict: bool) -> ContinuationPolicy {
        let policy = ContinuationPolicy::new().strict_trace_continuation(strict);
        match org {
            Some(org) => policy.org_id(org),
            None => policy,
        }
    }

    fn continues(baggage: &str, policy: &ContinuationPolicy) -> bool {
        matches!(
            Continuation::decide(Some(ST), [baggage.as_bytes()], policy),
            Continuation::Continue(_)
        )
    }

    #[test]
    fn org_rules() {
        let with_org = "sentry-org_id=1";
        let other_org = "sentry-org_id=2";
        assert!(continues(with_org, &policy(Some("1"), false)));
        assert!(continues(with_org, &policy(Some("1"), true)));
        assert!(!continues(other_org, &policy(Some("1"), false)));
        assert!(!continues(other_org, &policy(Some("1"), true)));
        assert!(continues(with_org, &policy(None, false)));
        assert!(!continues(with_org, &policy(None, true)));
        assert!(continues("", &policy(Some("1"), false)));
        assert!(!continues("", &policy(Some("1"), true)));
        assert!(continues("", &policy(None, true)));
        // An empty org id is none.
        assert_eq!(policy(Some(""), true).org(), None);
        assert!(!continues(with_org, &policy(Some(""), true)));
    }

    #[test]
    fn an_org_id_too_long_to_be_written_still_counts() {
        // 8,202 and 10,000 digits, plain and percent-encoded: too long to be passed on.
        for org in ["43".to_owned() + &"3".repeat(8200), "%34%33".repeat(5000)] {
            let baggage = format!("sentry-release=1.0,sentry-org_id={org}");
            assert!(!continues(&baggage, &policy(Some("42"), false)), "{org:.8}");
            let Continuation::NewTrace(reason) =
                Continuation::decide(Some(ST), [baggage.as_bytes()], &policy(Some("42"), false))
            else {
                unreachable!()
            };
            let message = reason.to_string();
            assert!(message.len() < 200, "{message}");
            assert!(message.contains("bytes in all) differs"), "{message}");
            // Without an org of its own the service continues, and the frozen DSC leaves out
            // what it cannot write.
            let Continuation::Continue(incoming) =
                Continuation::decide(Some(ST), [baggage.as_bytes()], &policy(None, false))
            else {
                panic!("should continue");
            };
            let header = crate::SerializedDsc::new(incoming.dsc).header().to_owned();
            assert!(header.starts_with("sentry-sample_rand=0."), "{header:.80}");
            assert!(header.ends_with(",sentry-release=1.0"), "{header:.80}");
            assert!(!continues(&baggage, &policy(None, true)));
        }
    }

    #[test]
    fn freezes_empty_dsc_with_sample_rand() {
        let Continuation::Continue(incoming) =
            Continuation::decide(Some(ST), [], &policy(None, false))
        else {
            panic!("should continue");
        };
        let entries: Vec<_> = incoming.dsc.iter().map(|(k, _)| k).collect();
        assert_eq!(entries, ["sample_rand"]);
    }

    /// A caller that left the decision open, with this `baggage`.
    fn open(baggage: &str) -> IncomingTrace {
        let open = &ST[..ST.len() - 2];
        match Continuation::decide(Some(open), [baggage.as_bytes()], &policy(None, false)) {
            Continuation::Continue(incoming) => incoming,
            Continuation::NewTrace(reason) => panic!("{reason}"),
        }
    }

    #[test]
    fn a_rate_outside_zero_to_one_samples_nothing() {
        for rate in [1.5, f64::INFINITY, -0.5, f64::NAN] {
            let mut incoming = open("sentry-sample_rand=0.25,sentry-sample_rate=0.5");
            assert!(!incoming.sampled_at(rate), "{rate}");
            assert!(!incoming.decide_at(rate), "{rate}");
            // Not a rate: the caller's stays.
            assert_eq!(incoming.dsc.get(DscKey::SampleRate), Some("0.5"), "{rate}");
        }
    }

    #[test]
    fn a_callers_sampled_member_gives_way_to_the_decision_made_here() {
        for (baggage, rate, sampled) in [
            ("sentry-sampled=false,sentry-sample_rand=0.25", 1.0, true),
            ("sentry-sampled=true,sentry-sample_rand=0.25", 0.0, false),
            ("sentry-sample_rand=0.9,sentry-sampled=true", 0.5, false),
        ] {
            let mut incoming = open(baggage);
            assert_eq!(incoming.decide_at(rate), sampled, "{baggage}");
            assert_eq!(incoming.dsc.sampled(), Some(sampled), "{baggage}");
        }
        // Without one, none is added: the DSC is the caller's but for the rate.
        let mut incoming = open("sentry-sample_rand=0.25");
        assert!(incoming.decide_at(0.5));
        assert_eq!(incoming.dsc.get(DscKey::Sampled), None);
    }

    #[test]
    fn malformed_starts_new_trace() {
        let decision = Continuation::decide(Some(b"nope"), [], &policy(None, false));
        assert!(matches!(
            decision,
            Continuation::NewTrace(NewTraceReason::Malformed(_))
        ));
        let decision =
            Continuation::decide(None, [&b"sentry-trace_id=x"[..]], &policy(None, false));
        assert_eq!(
            decision,
            Continuation::NewTrace(NewTraceReason::NoIncomingTrace)
        );
    }
}
