//! The continuation decision on an arbitrary `sentry-trace`, arbitrary `baggage` values and an
//! arbitrary policy.
//!
//! Input fields (see `fields`): a control field (byte 0: bit 0 `strict_trace_continuation`,
//! bit 1 a `sentry-trace` header came, bit 2 this service has an org id), the `sentry-trace`
//! value, this service's org id, then the `baggage` values.
//!
//! Oracles: the decision follows the rules of docs/design.md, computed here on their own; a continued
//! trace keeps the incoming trace and every incoming `sentry-*` entry, and its DSC has a valid
//! `sample_rand`: the incoming one when it was valid, else one derived from the trace id that
//! agrees with the incoming decision (`sampled` ⇒ `sample_rand < sample_rate`, not sampled ⇒
//! `sample_rand ≥ sample_rate`) whenever a six-decimal value can.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry_meta_core::{
    Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext, NewTraceReason, SampleRand,
    SentryTrace,
};
use sentry_meta_fuzz::{assert_canonical_baggage, fields};

fuzz_target!(|data: &[u8]| {
    let fields = fields(data);
    let control = fields.first().and_then(|c| c.first()).copied().unwrap_or(0);
    let sentry_trace = fields.get(1).copied().filter(|_| control & 2 != 0);
    let org_id = fields
        .get(2)
        .filter(|_| control & 4 != 0)
        .map(|org| String::from_utf8_lossy(org).into_owned());
    let strict = control & 1 != 0;
    let policy = match &org_id {
        Some(org) => ContinuationPolicy::new().org_id(org.as_str()),
        None => ContinuationPolicy::new(),
    }
    .strict_trace_continuation(strict);
    let baggage = fields.get(3..).unwrap_or_default();

    let decision = Continuation::decide(sentry_trace, baggage.iter().copied(), &policy);

    // The rules, on their own.
    let Some(raw) = sentry_trace else {
        assert_eq!(
            decision,
            Continuation::NewTrace(NewTraceReason::NoIncomingTrace)
        );
        return;
    };
    let incoming = match SentryTrace::parse_bytes(raw) {
        Ok(incoming) => incoming,
        Err(err) => {
            assert_eq!(
                decision,
                Continuation::NewTrace(NewTraceReason::Malformed(err))
            );
            return;
        }
    };
    let frozen = DynamicSamplingContext::from_baggage(baggage.iter().copied());
    let incoming_org = frozen.get(DscKey::OrgId).filter(|o| !o.is_empty());
    let own_org = org_id.as_deref().filter(|o| !o.is_empty());
    let expected_reason = match (incoming_org, own_org) {
        (Some(a), Some(b)) if a != b => Some(NewTraceReason::OrgMismatch {
            incoming: a.to_owned(),
            own: b.to_owned(),
        }),
        (Some(_), None) | (None, Some(_)) if strict => Some(NewTraceReason::StrictOrgMissing),
        _ => None,
    };
    let continued = match decision {
        Continuation::NewTrace(reason) => {
            assert_eq!(Some(reason), expected_reason);
            return;
        }
        Continuation::Continue(continued) => {
            assert_eq!(expected_reason, None);
            continued
        }
    };

    assert_eq!(continued.sentry_trace, incoming);
    let dsc = &continued.dsc;
    // Every incoming entry but `sample_rand` is kept as it came, in order.
    let without_rand = |dsc: &DynamicSamplingContext| -> Vec<(String, String)> {
        dsc.iter()
            .filter(|(k, _)| *k != DscKey::SampleRand.as_str())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(without_rand(dsc), without_rand(&frozen));

    assert!(
        dsc.sample_rand().is_some(),
        "a continued trace has a valid sample_rand"
    );
    let text = dsc.get(DscKey::SampleRand).unwrap_or_default();
    if frozen.sample_rand().is_some() {
        // A valid incoming value is frozen, even one that disagrees with the decision.
        assert_eq!(Some(text), frozen.get(DscKey::SampleRand));
    } else {
        // Back-filled: six decimals, derived from the trace id, read by the next service as a
        // number (`parseFloat`, `float()`).
        let decision = dsc.sample_rate().zip(incoming.sampled);
        let derived = SampleRand::from_trace_id(incoming.trace_id, decision);
        assert_eq!(text, derived.to_string(), "derived from the trace id");
        assert!(
            text.len() == 8
                && text.starts_with("0.")
                && text[2..].bytes().all(|b| b.is_ascii_digit()),
            "{text:?}"
        );
        let value: f64 = text.parse().expect("a number");
        assert!((0.0..1.0).contains(&value));
        if let Some((rate, sampled)) = decision {
            // Six decimals hold a value in [0, rate) when rate > 0, and one in [rate, 1) when
            // rate <= 0.999999; otherwise no value agrees and any is written.
            let representable = if sampled {
                rate > 0.0
            } else {
                rate <= 0.999_999
            };
            if representable {
                assert_eq!(
                    value < rate,
                    sampled,
                    "sample_rand {text} for rate {rate}, sampled {sampled}"
                );
            }
        }
        // What the DSC reads back is what it wrote.
        assert_eq!(
            dsc.sample_rand(),
            Some(derived),
            "SampleRand::parse({text:?}) is not the value written"
        );
    }

    assert_canonical_baggage(&dsc.to_baggage());
});
