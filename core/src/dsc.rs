//! The Dynamic Sampling Context: Sentry's entries in `baggage`.

use std::fmt;

use crate::baggage::{
    BaggageWriter, MAX_BAGGAGE_MEMBERS, for_each_decoded_member, may_start_with, trim_js,
};
use crate::ids::TraceId;

/// The prefix of Sentry's entries in `baggage`.
pub const SENTRY_PREFIX: &str = "sentry-";

/// A key of the Dynamic Sampling Context that this crate knows.
///
/// [`DscKey::ALL`] is the canonical order in which the keys are written: the keys a receiver
/// needs to sample consistently come first, so that they are the last to be dropped when a
/// `baggage` value would overflow its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DscKey {
    /// `sentry-trace_id`: the trace id, 32 lowercase hex digits.
    TraceId,
    /// `sentry-public_key`: the public key of the DSN of the SDK that started the trace.
    PublicKey,
    /// `sentry-sample_rate`: the rate the head of the trace sampled with.
    SampleRate,
    /// `sentry-sample_rand`: the trace's random number in `[0, 1)`.
    SampleRand,
    /// `sentry-sampled`: `true` or `false`, the head's decision.
    Sampled,
    /// `sentry-environment`.
    Environment,
    /// `sentry-release`.
    Release,
    /// `sentry-transaction`: the head transaction's name, unless its source is a raw URL.
    Transaction,
    /// `sentry-org_id`: the organization that owns the trace.
    OrgId,
}

/// Every known key, in the canonical order: [`DscKey::ALL`], as an array whose length sizes the
/// DSC's slots of known keys.
const KNOWN_KEYS: [DscKey; 9] = [
    DscKey::TraceId,
    DscKey::PublicKey,
    DscKey::SampleRate,
    DscKey::SampleRand,
    DscKey::Sampled,
    DscKey::Environment,
    DscKey::Release,
    DscKey::Transaction,
    DscKey::OrgId,
];

impl DscKey {
    /// Every known key, in the canonical (serialization and priority) order. A slice: the enum
    /// is `#[non_exhaustive]`, and a later release may know more keys.
    pub const ALL: &'static [DscKey] = &KNOWN_KEYS;

    /// The key without the `sentry-` prefix, e.g. `trace_id`.
    pub const fn as_str(self) -> &'static str {
        self.baggage_key().split_at(SENTRY_PREFIX.len()).1
    }

    /// The key as written in `baggage`, e.g. `sentry-trace_id` (no character needs encoding).
    pub const fn baggage_key(self) -> &'static str {
        match self {
            Self::TraceId => "sentry-trace_id",
            Self::PublicKey => "sentry-public_key",
            Self::SampleRate => "sentry-sample_rate",
            Self::SampleRand => "sentry-sample_rand",
            Self::Sampled => "sentry-sampled",
            Self::Environment => "sentry-environment",
            Self::Release => "sentry-release",
            Self::Transaction => "sentry-transaction",
            Self::OrgId => "sentry-org_id",
        }
    }

    /// The key for a name without the `sentry-` prefix.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// Where a transaction's name came from; a raw URL is never propagated (it may hold ids or
/// personal data, and has too many distinct values to sample by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionSource {
    /// Set by the user.
    Custom,
    /// A raw URL path.
    Url,
    /// A parametrized route, e.g. `/users/{id}`.
    Route,
    /// A view or handler name.
    View,
    /// A named component.
    Component,
    /// A background task.
    Task,
}

/// A sampling random number in `[0, 1)` with six decimals, stored as millionths.
///
/// Derived from the trace id, so that every service and every page render of one trace get the
/// same value without sharing state; mapped into the interval that agrees with a known sampling
/// decision (`sample_rand < sample_rate` exactly when sampled).
///
/// ```
/// use sentry_meta_core::{SampleRand, TraceId};
/// let trace: TraceId = "771a43a4192642f0b136d5159a501700".parse().unwrap();
/// let free = SampleRand::from_trace_id(trace, None);
/// assert_eq!(free, SampleRand::from_trace_id(trace, None));
/// let sampled = SampleRand::from_trace_id(trace, Some((0.25, true)));
/// assert!(sampled.as_f64() < 0.25);
/// let dropped = SampleRand::from_trace_id(trace, Some((0.25, false)));
/// assert!(dropped.as_f64() >= 0.25);
/// assert_eq!(dropped.to_string().len(), "0.123456".len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SampleRand(u32);

const MILLION: u32 = 1_000_000;

/// The length of a sample rand's text, `0.` and six decimals.
pub(crate) const SAMPLE_RAND_LEN: usize = "0.123456".len();

impl SampleRand {
    /// The value for `trace_id`, consistent with `decision` = `(sample_rate, sampled)` when given:
    /// in `[0, rate)` when sampled, in `[rate, 1)` when not, in `[0, 1)` otherwise, and also when
    /// no value agrees with the decision (see [`agreeing`](Self::agreeing)).
    pub fn from_trace_id(trace_id: TraceId, decision: Option<(f64, bool)>) -> Self {
        decision
            .and_then(|(rate, sampled)| Self::agreeing(trace_id, rate, sampled))
            .unwrap_or_else(|| Self::within(trace_id, 0, MILLION))
    }

    /// The value for `trace_id` that agrees with the decision `sampled` at `rate`; `None` when no
    /// value of six decimals does (sampled at rate 0, dropped at rate 1 or above 0.999999): a
    /// decision the rate did not make, so a DSC that states it names no `sample_rate`.
    ///
    /// ```
    /// use sentry_meta_core::{SampleRand, TraceId};
    /// let trace: TraceId = "771a43a4192642f0b136d5159a501700".parse().unwrap();
    /// assert!(SampleRand::agreeing(trace, 0.25, true).unwrap().as_f64() < 0.25);
    /// assert_eq!(SampleRand::agreeing(trace, 1.0, false), None);
    /// ```
    pub fn agreeing(trace_id: TraceId, rate: f64, sampled: bool) -> Option<Self> {
        let cut = rate
            .is_finite()
            .then(|| Self::below(rate.clamp(0.0, 1.0)))?;
        Self::on_side(trace_id, cut, sampled)
    }

    /// The value for `trace_id` below `cut` millionths when `sampled`, else at or above it
    /// (see [`agreeing`](Self::agreeing); `cut` from [`below`](Self::below)).
    pub(crate) fn on_side(trace_id: TraceId, cut: u32, sampled: bool) -> Option<Self> {
        let (lo, hi) = if sampled { (0, cut) } else { (cut, MILLION) };
        (lo < hi).then(|| Self::within(trace_id, lo, hi))
    }

    /// The value for `trace_id` in `[lo, hi)` millionths (`lo < hi`).
    fn within(trace_id: TraceId, lo: u32, hi: u32) -> Self {
        // The trace id's last eight bytes.
        let seed = u128::from_be_bytes(trace_id.to_bytes()) as u64;
        Self(lo + (seed % u64::from(hi - lo)) as u32)
    }

    /// How many values are below `rate` (in `[0, 1]`): the first `v` whose six decimals, read
    /// as a number, are not below it. That is `ceil(rate * 1e6)` in exact arithmetic; in floating
    /// point the product can land on either side of a whole number (`0.000123 * 1e6` is just
    /// above 123), so the neighbours are compared as a receiver compares them.
    pub(crate) fn below(rate: f64) -> u32 {
        let estimate = (rate * f64::from(MILLION)).ceil() as u32;
        (estimate.saturating_sub(1)..MILLION)
            .find(|&v| Self(v).as_f64() >= rate)
            .unwrap_or(MILLION)
    }

    /// Parses a propagated value: a number in `[0, 1)`. Extra digits are truncated to six.
    ///
    /// The usual form, `0.dddddd…`, is read digit by digit: through a float, `0.000249` would be
    /// `248.99999…` millionths and read back one millionth low, on the wrong side of a rate.
    pub fn parse(s: &str) -> Option<Self> {
        // JavaScript's whitespace, as `parseFloat` skips it (not U+0085, say).
        let s = trim_js(s);
        let digits = s.strip_prefix("0.").or_else(|| s.strip_prefix('.'));
        if let Some(digits) = digits
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            // Seventeen digits and more can round to 1 as a float (`0.99999999999999999`), as the
            // SDKs and the decision here read the value: then it is not in `[0, 1)`.
            if digits.len() > 16 && s.parse::<f64>().is_ok_and(|v| v >= 1.0) {
                return None;
            }
            let millionths = digits
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(6)
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
            return Some(Self(millionths));
        }
        // Other spellings of a number (`0`, `1e-3`): through a float, nudged past the
        // representation error before truncating.
        let v: f64 = s.parse().ok()?;
        (0.0..1.0)
            .contains(&v)
            .then(|| Self(((v * f64::from(MILLION) + 1e-6) as u32).min(MILLION - 1)))
    }

    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(MILLION)
    }

    /// The six decimals that follow `0.`, written into `buf`.
    pub(crate) fn decimals(self, buf: &mut itoa::Buffer) -> &str {
        // A leading 1 keeps the zeros that start the decimals; it is cut off.
        &buf.format(MILLION + self.0)[1..]
    }

    /// Writes `0.dddddd` into `out`.
    fn write_to<W: fmt::Write + ?Sized>(self, out: &mut W) -> fmt::Result {
        out.write_str("0.")?;
        out.write_str(self.decimals(&mut itoa::Buffer::new()))
    }
}

impl fmt::Display for SampleRand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// The Dynamic Sampling Context (DSC): what the head of a trace decided and knew, carried to every
/// service in `baggage` as `sentry-*` entries, so that all of them sample the trace alike and
/// Sentry can attribute it.
///
/// Specified by Sentry's [DSC spec](https://develop.sentry.dev/sdk/telemetry/traces/dynamic-sampling-context/).
///
/// ```text
/// sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=49d0f7386ad645858ae85020e393bef3,
/// sentry-sample_rate=1,sentry-sample_rand=0.853212,sentry-sampled=true,sentry-environment=production,
/// sentry-release=web%401.2.3,sentry-transaction=GET%20%2Fusers%2F%7Bid%7D,sentry-org_id=1
/// ```
///
/// A DSC is either built by the head of a trace, or frozen from an incoming `baggage` and passed
/// on unchanged in meaning: values are kept as the strings that arrived (decoded), unknown
/// `sentry-*` keys are kept, other vendors' entries are not part of it.
///
/// Keys are written in the order of [`DscKey::ALL`], then unknown keys in the order they arrived,
/// each percent-encoded like `encodeURIComponent`, within [`MAX_BAGGAGE_BYTES`](crate::MAX_BAGGAGE_BYTES) and
/// [`MAX_BAGGAGE_MEMBERS`].
///
/// ```
/// use sentry_meta_core::{DscKey, DynamicSamplingContext};
///
/// let dsc = DynamicSamplingContext::from_baggage([
///     &b"other=1,sentry-trace_id=771a43a4192642f0b136d5159a501700"[..],
///     b"sentry-release=web%401.2.3, sentry-sampled=true",
/// ]);
/// assert_eq!(dsc.get(DscKey::Release), Some("web@1.2.3"));
/// assert_eq!(dsc.sampled(), Some(true));
/// assert_eq!(
///     dsc.to_baggage(),
///     "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sampled=true,sentry-release=web%401.2.3"
/// );
/// ```
#[derive(Clone, Default)]
pub struct DynamicSamplingContext {
    known: [Option<Box<str>>; KNOWN_KEYS.len()],
    /// Unknown keys (name without the prefix, value), in the order first received; a repeated
    /// key keeps its place and takes the later value.
    other: indexmap::IndexMap<Box<str>, Box<str>>,
}

impl DynamicSamplingContext {
    /// An empty DSC.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the `sentry-*` entries of every `baggage` header value, in the order received.
    ///
    /// Entries that do not decode are dropped; a later entry replaces an earlier one with the
    /// same key; other vendors' entries are ignored. One pass over the input, and memory bounded
    /// by the baggage limits whatever the input's size: values too long to ever be written again
    /// are dropped, and at most [`MAX_BAGGAGE_MEMBERS`] unknown keys are kept. The one exception
    /// is `sentry-org_id`, kept whatever its length (one value, at most the input's size): the
    /// continuation rule compares it, and an org id too long to be written is still not this
    /// organization's ([`ContinuationPolicy::refusal`](crate::ContinuationPolicy::refusal));
    /// writing the DSC drops it.
    pub fn from_baggage<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut dsc = Self::new();
        let wanted = |raw_key: &[u8]| may_start_with(raw_key, SENTRY_PREFIX);
        let whole = |key: &str| key.strip_prefix(SENTRY_PREFIX) == Some(DscKey::OrgId.as_str());
        for_each_decoded_member(values, wanted, whole, |key, value| {
            match key.strip_prefix(SENTRY_PREFIX) {
                None | Some("") => {}
                Some(name) => match DscKey::from_name(name) {
                    Some(known) => dsc.set(known, &value),
                    None => dsc.set_other(name, &value),
                },
            }
        });
        dsc
    }

    /// The value of a known key.
    pub fn get(&self, key: DscKey) -> Option<&str> {
        self.known[key as usize].as_deref()
    }

    /// Sets a known key; an empty value removes it (a `baggage` member with an empty value is
    /// none: parsers drop it, and it is never written).
    pub fn set(&mut self, key: DscKey, value: impl AsRef<str>) {
        let value = value.as_ref();
        self.known[key as usize] = (!value.is_empty()).then(|| value.into());
    }

    /// Removes a known key.
    pub fn remove(&mut self, key: DscKey) {
        self.known[key as usize] = None;
    }

    /// The value of an unknown `sentry-*` key (`name` without the prefix).
    pub fn get_other(&self, name: &str) -> Option<&str> {
        self.other.get(name).map(|v| &**v)
    }

    /// Sets an unknown key: a new key is kept only while there are fewer than
    /// [`MAX_BAGGAGE_MEMBERS`] (no more could be written), which bounds the memory whatever the
    /// input's size.
    fn set_other(&mut self, name: &str, value: &str) {
        if let Some(old) = self.other.get_mut(name) {
            *old = value.into();
        } else if self.other.len() < MAX_BAGGAGE_MEMBERS {
            self.other.insert(name.into(), value.into());
        }
    }

    /// Every entry, in the canonical order: `(name without prefix, decoded value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        DscKey::ALL
            .iter()
            .filter_map(|k| Some((k.as_str(), self.get(*k)?)))
            .chain(self.other.iter().map(|(k, v)| (&**k, &**v)))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.known.iter().all(Option::is_none) && self.other.is_empty()
    }

    /// `sentry-trace_id`, if it is a valid trace id.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.get(DscKey::TraceId)?.parse().ok()
    }

    /// `sentry-sample_rate`, if it is a number in `[0, 1]`.
    pub fn sample_rate(&self) -> Option<f64> {
        let rate: f64 = trim_js(self.get(DscKey::SampleRate)?).parse().ok()?;
        (0.0..=1.0).contains(&rate).then_some(rate)
    }

    /// `sentry-sampled`, if it is `true` or `false`.
    pub fn sampled(&self) -> Option<bool> {
        match self.get(DscKey::Sampled)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// `sentry-sample_rand`, if it is a number in `[0, 1)`.
    pub fn sample_rand(&self) -> Option<SampleRand> {
        SampleRand::parse(self.get(DscKey::SampleRand)?)
    }

    /// `sentry-sample_rand` with all its decimals, if it is a number in `[0, 1)`: what a
    /// decision compares with a rate, as Sentry's SDKs compare it (a seventh decimal can put a
    /// caller's value on the other side of a rate that has one too).
    pub(crate) fn exact_sample_rand(&self) -> Option<f64> {
        let text = self.get(DscKey::SampleRand)?;
        SampleRand::parse(text)?;
        trim_js(text).parse().ok()
    }

    /// Sets `sentry-trace_id`.
    pub fn set_trace_id(&mut self, trace_id: TraceId) {
        let hex = trace_id.to_hex();
        // Hex digits are ASCII.
        self.set(DscKey::TraceId, str::from_utf8(&hex).unwrap_or_default());
    }

    /// Sets `sentry-sample_rate`, written as `@sentry/core` writes it, JavaScript's text of the
    /// number: the shortest decimal that reads back as it (`1`, `0.25`), in exponent form below
    /// 0.000001 (`1e-7`). A rate outside `[0, 1]` is not a rate and is not written.
    pub fn set_sample_rate(&mut self, rate: f64) {
        match rate {
            // The common rates without float formatting.
            1.0 => self.set(DscKey::SampleRate, "1"),
            0.0 => self.set(DscKey::SampleRate, "0"),
            _ if (0.0..=1.0).contains(&rate) => self.set(DscKey::SampleRate, rate_text(rate)),
            _ => {}
        }
    }

    /// Sets `sentry-sampled`.
    pub fn set_sampled(&mut self, sampled: bool) {
        self.set(DscKey::Sampled, if sampled { "true" } else { "false" });
    }

    /// Sets `sentry-sample_rand`.
    pub fn set_sample_rand(&mut self, sample_rand: SampleRand) {
        // One allocation of its length, and not through the formatting machinery: continued
        // traces whose caller sent no sample rand take this path.
        let mut text = String::with_capacity(SAMPLE_RAND_LEN);
        // Writing into a String cannot fail.
        let _ = sample_rand.write_to(&mut text);
        self.known[DscKey::SampleRand as usize] = Some(text.into_boxed_str());
    }

    /// Sets `sentry-transaction`, unless the name is a raw URL (then it is removed).
    pub fn set_transaction(&mut self, name: &str, source: TransactionSource) {
        match source {
            TransactionSource::Url => self.remove(DscKey::Transaction),
            _ => self.set(DscKey::Transaction, name),
        }
    }

    /// Fills in `sentry-sample_rand` when it is missing or not a number in `[0, 1)`, from the
    /// trace id and consistent with the decision the incoming trace carries: in
    /// `[0, sample_rate)` when sampled, in `[sample_rate, 1)` when not, in `[0, 1)` when either
    /// is unknown.
    pub fn backfill_sample_rand(&mut self, trace_id: TraceId, sampled: Option<bool>) {
        if self.sample_rand().is_some() {
            return;
        }
        let decision = self.sample_rate().zip(sampled);
        self.set_sample_rand(SampleRand::from_trace_id(trace_id, decision));
    }

    /// Writes the DSC as a `baggage` value: `sentry-` keys in canonical order, percent-encoded,
    /// within [`MAX_BAGGAGE_BYTES`](crate::MAX_BAGGAGE_BYTES) and [`MAX_BAGGAGE_MEMBERS`] (entries that would overflow are
    /// dropped whole, the most important kept first).
    pub fn to_baggage(&self) -> String {
        let estimate: usize = self.iter().map(|(k, v)| k.len() + v.len() + 16).sum();
        let mut writer = BaggageWriter::with_capacity(estimate);
        self.write_baggage(&mut writer);
        writer.finish()
    }

    /// Writes the members of [`to_baggage`](Self::to_baggage) into `writer`.
    pub(crate) fn write_baggage(&self, writer: &mut BaggageWriter) {
        for &key in DscKey::ALL {
            if let Some(value) = self.get(key) {
                writer.push(key.baggage_key(), "", value);
            }
        }
        for (name, value) in &self.other {
            writer.push(SENTRY_PREFIX, name, value);
        }
    }
}

impl PartialEq for DynamicSamplingContext {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for DynamicSamplingContext {}

impl fmt::Debug for DynamicSamplingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A rate in `[0, 1]` as JavaScript's `String(rate)` writes it, which is how `@sentry/core`
/// writes `sentry-sample_rate`: the shortest decimal that reads back as the same number
/// (`0.25`), in exponent form below 0.000001 (`1e-7`, `5e-324`, where a decimal would spell
/// out hundreds of zeros). An `f32` is written as an `f32` prints (`0.1`).
pub(crate) fn rate_text<F: fmt::Display + fmt::LowerExp>(rate: F) -> String {
    let text = rate.to_string();
    // The shortest decimal of a rate below 0.000001 starts with six zeros after the point.
    if text.starts_with("0.000000") {
        format!("{rate:e}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> TraceId {
        "771a43a4192642f0b136d5159a501700".parse().unwrap()
    }

    #[test]
    fn sample_rand_respects_decision_at_edges() {
        for i in 0..200u8 {
            let mut bytes = trace().to_bytes();
            bytes[15] = i;
            bytes[9] = i.wrapping_mul(37);
            let id = TraceId::from_bytes(bytes);
            for rate in [0.000_000_1, 0.1, 0.333_333_7, 0.5, 0.999_999] {
                assert!(SampleRand::from_trace_id(id, Some((rate, true))).as_f64() < rate);
                assert!(SampleRand::from_trace_id(id, Some((rate, false))).as_f64() >= rate);
            }
            let any = SampleRand::from_trace_id(id, Some((1.0, false)));
            assert!(any.as_f64() < 1.0);
        }
    }

    /// At every rate of six decimals, and a rounding step either side of it, the values below
    /// the rate are exactly those whose text, read back, is below it: `0.000123 * 1e6` is just
    /// above 123, and a sampled trace must not get `0.000123` at that rate.
    #[test]
    fn the_values_below_a_rate_are_those_that_read_below_it() {
        for millionths in 0..=MILLION {
            let text = format!("{}.{:06}", millionths / MILLION, millionths % MILLION);
            let rate: f64 = text.parse().unwrap();
            for rate in [rate.next_down(), rate, rate.next_up()] {
                let rate = rate.clamp(0.0, 1.0);
                let cut = SampleRand::below(rate);
                assert!(cut == MILLION || SampleRand(cut).as_f64() >= rate, "{rate}");
                assert!(cut == 0 || SampleRand(cut - 1).as_f64() < rate, "{rate}");
            }
        }
        let id = TraceId::from_bytes([7; 16]);
        for rate in [0.000_123, 0.0079, 0.5006, 0.100_000_000_000_000_02] {
            let sampled = SampleRand::from_trace_id(id, Some((rate, true)));
            assert!(sampled.to_string().parse::<f64>().unwrap() < rate, "{rate}");
            let dropped = SampleRand::from_trace_id(id, Some((rate, false)));
            assert!(
                dropped.to_string().parse::<f64>().unwrap() >= rate,
                "{rate}"
            );
        }
    }

    #[test]
    fn sample_rand_parse_and_display() {
        assert_eq!(SampleRand::parse("0.5").unwrap().to_string(), "0.500000");
        assert_eq!(
            SampleRand::parse("0.9999999").unwrap().to_string(),
            "0.999999"
        );
        assert!(SampleRand::parse("1").is_none());
        assert!(SampleRand::parse("-0.1").is_none());
        assert!(SampleRand::parse("NaN").is_none());
        assert!(SampleRand::parse("abc").is_none());
        assert!(SampleRand::parse("0.1x").is_none());
        // As a float, 1: not below 1, however it is spelled.
        assert!(SampleRand::parse("0.99999999999999999999").is_none());
        assert!(SampleRand::parse("9.9999999999999999999e-1").is_none());
        assert_eq!(
            SampleRand::parse("0.9999999999999999").unwrap().to_string(),
            "0.999999"
        );
        assert_eq!(SampleRand::parse("1e-3").unwrap().to_string(), "0.001000");
        assert_eq!(SampleRand::parse("0").unwrap().to_string(), "0.000000");
        // Every six-decimal value reads back as itself.
        for millionths in 0..MILLION {
            let value = SampleRand(millionths);
            assert_eq!(SampleRand::parse(&value.to_string()), Some(value));
        }
    }

    #[test]
    fn an_empty_value_is_no_member() {
        let mut dsc = DynamicSamplingContext::from_baggage([&b"sentry-release=1"[..]]);
        dsc.set(DscKey::Release, "");
        dsc.set(DscKey::Environment, "");
        dsc.set_transaction("", TransactionSource::Route);
        assert_eq!(dsc, DynamicSamplingContext::new());
        dsc.set(DscKey::PublicKey, "abc");
        let mut writer = BaggageWriter::default();
        dsc.write_baggage(&mut writer);
        assert_eq!(writer.finish(), "sentry-public_key=abc");
    }

    #[test]
    fn transaction_source_rule() {
        let mut dsc = DynamicSamplingContext::new();
        dsc.set_transaction("/users/{id}", TransactionSource::Route);
        assert_eq!(dsc.get(DscKey::Transaction), Some("/users/{id}"));
        dsc.set_transaction("/users/42", TransactionSource::Url);
        assert_eq!(dsc.get(DscKey::Transaction), None);
    }

    #[test]
    fn backfill_keeps_valid_value() {
        let mut dsc = DynamicSamplingContext::from_baggage([&b"sentry-sample_rand=0.25"[..]]);
        dsc.backfill_sample_rand(trace(), Some(true));
        assert_eq!(dsc.get(DscKey::SampleRand), Some("0.25"));
        let mut dsc = DynamicSamplingContext::from_baggage([
            &b"sentry-sample_rand=7,sentry-sample_rate=0.5"[..],
        ]);
        dsc.backfill_sample_rand(trace(), Some(true));
        assert!(dsc.sample_rand().unwrap().as_f64() < 0.5);
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let value = "x".repeat(1000);
        let header: String = (0..1000)
            .map(|_| format!("sentry-release={value},sentry-k={value},"))
            .collect();
        let dsc = DynamicSamplingContext::from_baggage([header.as_bytes()]);
        assert_eq!(dsc.get(DscKey::Release), Some(value.as_str()));
        assert_eq!(dsc.get_other("k"), Some(value.as_str()));
        assert_eq!(dsc.iter().count(), 2);
    }

    #[test]
    fn equality_ignores_storage() {
        let mut a = DynamicSamplingContext::new();
        a.set(DscKey::Release, "old");
        a.set(DscKey::Release, "1");
        let mut b = DynamicSamplingContext::new();
        b.set(DscKey::Release, "1");
        assert_eq!(a, b);
        assert_eq!(format!("{b:?}"), r#"{"release": "1"}"#);
    }

    #[test]
    fn unknown_keys_found_by_name_among_many() {
        // Names sharing prefixes, then each replaced: every look-up finds its own value, in
        // the order first received.
        let names: Vec<String> = (0..MAX_BAGGAGE_MEMBERS)
            .map(|i| format!("{}{i}", "k".repeat(i % 19)))
            .collect();
        let header = |round: usize| {
            names
                .iter()
                .map(|name| format!("sentry-{name}=v{round}-{name}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let dsc = DynamicSamplingContext::from_baggage([
            header(0).as_bytes(),
            header(1).as_bytes(),
            &b"sentry-one_too_many=x"[..],
        ]);
        for name in &names {
            assert_eq!(dsc.get_other(name), Some(format!("v1-{name}").as_str()));
        }
        assert!(
            dsc.iter()
                .map(|(k, _)| k)
                .eq(names.iter().map(String::as_str))
        );
        assert_eq!(dsc.get_other("one_too_many"), None);
        assert_eq!(dsc.get_other("k"), None);
    }

    #[test]
    fn unknown_keys_bounded() {
        let header: String = (0..1000).map(|i| format!("sentry-k{i}=v,")).collect();
        let dsc = DynamicSamplingContext::from_baggage([header.as_bytes()]);
        assert_eq!(dsc.iter().count(), MAX_BAGGAGE_MEMBERS);
    }
}
