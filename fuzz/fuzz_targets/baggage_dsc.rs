//! `baggage` parsing and serialization on arbitrary header values (the input's fields, see
//! `fields`): the DSC (`DynamicSamplingContext::from_baggage`) and plain `Baggage::parse_all`.
//!
//! Oracles, for both: the serialized value is within 8192 bytes and 64 members, made only of
//! `encodeURIComponent` output; parsing it again gives the same value (or, when a limit dropped
//! members, the same value without them, in order), and writing that again gives the same bytes.
//! The DSC holds exactly the `sentry-*` members that `Baggage` holds (when no limit dropped any),
//! and an org id too long to be written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry_meta_core::{
    Baggage, DscKey, DynamicSamplingContext, MAX_BAGGAGE_MEMBERS, SENTRY_PREFIX,
};
use sentry_meta_fuzz::{assert_canonical_baggage, fields, is_subsequence};

fuzz_target!(|data: &[u8]| {
    let values = fields(data);

    // The DSC.
    let dsc = DynamicSamplingContext::from_baggage(values.iter().copied());
    let header = dsc.to_baggage();
    let written = assert_canonical_baggage(&header);
    let again = DynamicSamplingContext::from_baggage([header.as_bytes()]);
    let entries: Vec<(&str, &str)> = dsc.iter().collect();
    let entries_again: Vec<(&str, &str)> = again.iter().collect();
    assert_eq!(entries_again.len(), written, "{header:?}");
    if written == entries.len() {
        assert_eq!(again, dsc, "round trip of {header:?}");
    } else {
        assert!(
            is_subsequence(&entries_again, &entries),
            "{entries_again:?} is not part of {entries:?}"
        );
    }
    assert_eq!(again.to_baggage(), header);

    // Plain baggage.
    let baggage = Baggage::parse_all(values.iter().copied());
    assert!(baggage.len() <= MAX_BAGGAGE_MEMBERS);
    let header = baggage.to_string();
    let written = assert_canonical_baggage(&header);
    let again = Baggage::parse(&header);
    let members: Vec<(&str, &str)> = baggage.iter().collect();
    let members_again: Vec<(&str, &str)> = again.iter().collect();
    assert_eq!(members_again.len(), written, "{header:?}");
    if written == members.len() {
        assert_eq!(again, baggage, "round trip of {header:?}");
    } else {
        assert!(is_subsequence(&members_again, &members));
    }
    assert_eq!(again.to_string(), header);

    // The same members, read two ways, when no limit dropped any.
    if baggage.len() < MAX_BAGGAGE_MEMBERS {
        let mut sentry: Vec<(&str, &str)> = baggage
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(SENTRY_PREFIX)?, v)))
            .filter(|(name, _)| !name.is_empty())
            .collect();
        // The DSC also holds an org id too long to be written (the continuation rule reads it),
        // where `Baggage` keeps an earlier one, or none: then neither counts.
        let org = DscKey::OrgId.as_str();
        let mut from_dsc = entries;
        if let Some(value) = dsc.get(DscKey::OrgId) {
            let mut alone = DynamicSamplingContext::new();
            alone.set(DscKey::OrgId, value);
            if alone.to_baggage().is_empty() {
                from_dsc.retain(|&(name, _)| name != org);
                sentry.retain(|&(name, _)| name != org);
            }
        }
        sentry.sort_unstable();
        from_dsc.sort_unstable();
        assert_eq!(from_dsc, sentry);
    }
});
