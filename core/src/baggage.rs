//! The W3C `baggage` header.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};

/// The most bytes a serialized `baggage` value may have ([W3C Baggage, Limits](https://www.w3.org/TR/baggage/#limits)).
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// The most list members a serialized `baggage` value may have ([W3C Baggage, Limits](https://www.w3.org/TR/baggage/#limits)).
pub const MAX_BAGGAGE_MEMBERS: usize = 64;

/// What `encodeURIComponent` leaves as it is: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Percent-encodes like JavaScript's `encodeURIComponent` (a space is `%20`, never `+`).
pub(crate) fn encode_component(s: &str) -> percent_encoding::PercentEncode<'_> {
    utf8_percent_encode(s, URI_COMPONENT)
}

/// Percent-decodes like JavaScript's `decodeURIComponent`: every `%` must start a two-digit hex
/// escape and the result must be UTF-8, else `None`. Other bytes (`+` included) stay as they are.
pub(crate) fn decode_component(raw: &[u8]) -> Option<Cow<'_, str>> {
    let mut i = 0;
    let mut escaped = false;
    while let Some(pos) = raw[i..].iter().position(|&b| b == b'%') {
        let at = i + pos;
        let hex = raw.get(at + 1..at + 3)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        escaped = true;
        i = at + 3;
    }
    if escaped {
        match Cow::from(percent_decode(raw)) {
            Cow::Owned(bytes) => String::from_utf8(bytes).ok().map(Cow::Owned),
            Cow::Borrowed(bytes) => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        }
    } else {
        std::str::from_utf8(raw).ok().map(Cow::Borrowed)
    }
}

/// One list member of a `baggage` value, as raw (still percent-encoded) bytes, with spaces and
/// tabs around key and value and any `;properties` removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMember<'a> {
    /// The key, still percent-encoded.
    pub key: &'a [u8],
    /// The value, still percent-encoded.
    pub value: &'a [u8],
}

impl<'a> RawMember<'a> {
    /// The decoded key and value, or `None` when either is empty or does not decode.
    ///
    /// As the Sentry SDKs do, each side is trimmed of whitespace (JavaScript's `trim()` set)
    /// before it is decoded.
    pub fn decode(&self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        Some((decode_side(self.key)?, decode_side(self.value)?))
    }
}

/// The length of `key=value` once written canonically.
pub(crate) fn canonical_len(key: &str, value: &str) -> usize {
    encoded_len(key) + 1 + encoded_len(value)
}

fn decode_side(raw: &[u8]) -> Option<Cow<'_, str>> {
    let trimmed = std::str::from_utf8(raw)
        .ok()?
        .trim_matches(is_js_whitespace);
    if trimmed.is_empty() {
        return None;
    }
    decode_component(trimmed.as_bytes())
}

/// The characters JavaScript's `String.prototype.trim` removes (ECMA-262 WhiteSpace and
/// LineTerminator); unlike `char::is_whitespace`, U+FEFF is one and U+0085 is not.
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// The length of `s` percent-encoded like `encodeURIComponent`.
fn encoded_len(s: &str) -> usize {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b);
    s.bytes().map(|b| if unreserved(b) { 1 } else { 3 }).sum()
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether a raw member is too long to ever be written within [`MAX_BAGGAGE_BYTES`], however it
/// decodes: percent-decoding shrinks a value to a third at most, so longer input is skipped
/// without being decoded.
pub(crate) fn raw_member_too_long(member: &RawMember<'_>) -> bool {
    member.key.len() + member.value.len() > 3 * (MAX_BAGGAGE_BYTES + 1)
}

/// Splits one `baggage` header value into its list members, lazily and without allocating.
///
/// Each member is `key=value` followed by optional `;properties`, which are dropped; members
/// with no `=`, an empty key or an empty value are skipped. The work is one pass over the input, so a hostile
/// header of any size costs time linear in its length and no memory.
///
/// ```
/// use sentry_meta_core::baggage::members;
/// let keys: Vec<&[u8]> = members(b"a=1, b = 2;prop=x,,junk, c=3").map(|m| m.key).collect();
/// assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
/// ```
pub fn members(value: &[u8]) -> impl Iterator<Item = RawMember<'_>> {
    value.split(|&b| b == b',').filter_map(|member| {
        let member = member
            .iter()
            .position(|&b| b == b';')
            .map_or(member, |end| &member[..end]);
        let eq = member.iter().position(|&b| b == b'=')?;
        let key = trim_ows(&member[..eq]);
        let value = trim_ows(&member[eq + 1..]);
        (!key.is_empty() && !value.is_empty()).then_some(RawMember { key, value })
    })
}

/// Serializes members into a `baggage` value within [`MAX_BAGGAGE_BYTES`] and
/// [`MAX_BAGGAGE_MEMBERS`]: a member that would overflow either limit is dropped whole, and later
/// (smaller) members may still fit. Callers push the most important members first.
#[derive(Debug, Default)]
pub(crate) struct BaggageWriter {
    out: String,
    members: usize,
}

impl BaggageWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends `prefix` + `key` = `value`, each percent-encoded; returns whether it fit.
    pub(crate) fn push(&mut self, prefix: &str, key: &str, value: &str) -> bool {
        use std::fmt::Write;
        if self.members == MAX_BAGGAGE_MEMBERS {
            return false;
        }
        let mark = self.out.len();
        if mark > 0 {
            self.out.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(
            self.out,
            "{}{}={}",
            encode_component(prefix),
            encode_component(key),
            encode_component(value)
        );
        if self.out.len() > MAX_BAGGAGE_BYTES {
            self.out.truncate(mark);
            return false;
        }
        self.members += 1;
        true
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A W3C [baggage](https://www.w3.org/TR/baggage/) header: an ordered set of decoded key/value
/// members shared by all vendors on a trace.
///
/// ```text
/// baggage    = list-member *( OWS "," OWS list-member )
/// list-member = key OWS "=" OWS value *( OWS ";" OWS property )
/// ```
///
/// Keys and values are percent-decoded when read and percent-encoded like `encodeURIComponent`
/// when written. Parsing never fails: members that do not decode are dropped, a later member with
/// the same key replaces the earlier value (as in the Sentry SDKs), and at most
/// [`MAX_BAGGAGE_MEMBERS`] distinct keys are kept, each no longer than [`MAX_BAGGAGE_BYTES`]
/// encoded, so memory stays bounded whatever arrives. Serializing keeps within both limits by
/// dropping, whole, the members that would overflow them.
///
/// Sentry's own entries (`sentry-*`) are better read with
/// [`DynamicSamplingContext::from_baggage`](crate::DynamicSamplingContext::from_baggage).
///
/// ```
/// use sentry_meta_core::Baggage;
///
/// let baggage = Baggage::parse("userId=alice, serverNode=DF%2028 ; ttl=60, bad=%ZZ");
/// assert_eq!(baggage.get("serverNode"), Some("DF 28"));
/// assert_eq!(baggage.get("bad"), None);
/// assert_eq!(baggage.to_string(), "userId=alice,serverNode=DF%2028");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baggage {
    members: Vec<(String, String)>,
}

impl Baggage {
    /// An empty baggage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one header value.
    pub fn parse(value: &str) -> Self {
        Self::parse_all([value.as_bytes()])
    }

    /// Parses every value of the header, in the order received (as if joined with `,`).
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut baggage = Self::new();
        for value in values {
            for member in members(value) {
                if raw_member_too_long(&member) {
                    continue;
                }
                let Some((key, value)) = member.decode() else {
                    continue;
                };
                if canonical_len(&key, &value) <= MAX_BAGGAGE_BYTES {
                    baggage.insert_bounded(key, value);
                }
            }
        }
        baggage
    }

    fn insert_bounded(&mut self, key: Cow<'_, str>, value: Cow<'_, str>) {
        if let Some(slot) = self.members.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value.into_owned();
        } else if self.members.len() < MAX_BAGGAGE_MEMBERS {
            self.members.push((key.into_owned(), value.into_owned()));
        }
    }

    /// The value of `key`, decoded.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`, keeping the key's position if it is already present.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.members.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.members.push((key, value)),
        }
    }

    /// The members in order, decoded.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl fmt::Display for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut writer = BaggageWriter::new();
        for (key, value) in self.iter() {
            writer.push("", key, value);
        }
        f.write_str(&writer.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        let all: String = (0x20u8..0x7f).map(char::from).collect();
        assert_eq!(
            encode_component(&all).to_string(),
            "%20!%22%23%24%25%26'()*%2B%2C-.%2F0123456789%3A%3B%3C%3D%3E%3F%40ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D~"
        );
        assert_eq!(encode_component("é😀").to_string(), "%C3%A9%F0%9F%98%80");
    }

    #[test]
    fn decodes_strictly() {
        assert_eq!(decode_component(b"a%20b+c").as_deref(), Some("a b+c"));
        assert_eq!(decode_component(b"%C3%A9").as_deref(), Some("é"));
        assert_eq!(decode_component(b"%ZZ"), None);
        assert_eq!(decode_component(b"%2"), None);
        assert_eq!(decode_component(b"%"), None);
        assert_eq!(decode_component(b"%FF"), None);
        assert_eq!(decode_component(b"%E0%A4%A"), None);
        assert_eq!(decode_component(b"%ED%A0%80"), None);
        assert_eq!(decode_component(b"\xff"), None);
    }

    #[test]
    fn writer_drops_members_that_overflow() {
        let mut writer = BaggageWriter::new();
        assert!(writer.push("", "a", "1"));
        assert!(!writer.push("", "big", &"x".repeat(MAX_BAGGAGE_BYTES)));
        assert!(writer.push("", "b", "2"));
        assert_eq!(writer.finish(), "a=1,b=2");

        let mut writer = BaggageWriter::new();
        for i in 0..100 {
            writer.push("k", &i.to_string(), "v");
        }
        assert_eq!(writer.finish().split(',').count(), MAX_BAGGAGE_MEMBERS);
    }

    #[test]
    fn parse_keeps_memory_bounded() {
        let header = "k=v,".repeat(1 << 18);
        let baggage = Baggage::parse(&header);
        assert_eq!(baggage.len(), 1);
        let header: String = (0..10_000).map(|i| format!("k{i}=v,")).collect();
        assert_eq!(Baggage::parse(&header).len(), MAX_BAGGAGE_MEMBERS);
    }
}
