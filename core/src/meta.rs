//! The one place that writes the tags: `<meta name="sentry-trace">`, `<meta name="baggage">`, and
//! the same values as response headers.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use crate::baggage::BaggageWriter;
use crate::dsc::{DynamicSamplingContext, SAMPLE_RAND_LEN, SampleRand};
use crate::ids::{SpanId, TraceId};
use crate::sentry_trace::SentryTrace;
use markup::SENTRY_TRACE_MAX_LEN;

/// A Dynamic Sampling Context serialized once, as a `baggage` header value and as the escaped
/// `content` of an HTML attribute, ready to be written any number of times without work.
///
/// Cloning is a reference-count increment: one is built per trace root (per request) and shared
/// by every render of that request.
///
/// ```
/// use sentry_meta_core::{DynamicSamplingContext, SerializedDsc};
///
/// let dsc = DynamicSamplingContext::from_baggage([&b"sentry-release=a%22b"[..]]);
/// let serialized = SerializedDsc::new(dsc);
/// assert_eq!(serialized.header(), "sentry-release=a%22b");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SerializedDsc {
    /// The header, followed by the header escaped for an HTML attribute when escaping
    /// changes it: one allocation per request.
    text: Arc<str>,
    header_len: usize,
}

/// The canonical `baggage` of a head DSC with its two per-trace values, the trace id (always
/// the first member) and the sample rand, left as placeholders of their fixed width.
#[derive(Debug)]
pub(crate) struct HeadTemplate {
    text: Box<str>,
    /// Where the `sentry-sample_rand` value starts: `0.` and six decimals.
    rand_at: usize,
}

/// `sentry-trace_id=`: the first member of every head DSC, and the length of its key.
const TRACE_ID_KEY: &str = "sentry-trace_id=";
const TRACE_ID_END: usize = TRACE_ID_KEY.len() + 32;

impl HeadTemplate {
    /// A template from a header written with placeholder values, the trace id first and the
    /// sample rand at `rand_at`; `None` when it is not of that shape, or holds a byte that HTML
    /// escapes (percent-encoding keeps `'`, say in a release `it's`): checked here once rather
    /// than on every request, and such a head DSC is written and escaped whole each time.
    pub(crate) fn new(text: String, rand_at: usize) -> Option<Self> {
        let shaped = text.starts_with(TRACE_ID_KEY)
            && rand_at >= TRACE_ID_END
            && text
                .get(rand_at..rand_at + SAMPLE_RAND_LEN)
                .is_some_and(|value| value.starts_with("0."));
        (shaped && !markup::needs_escape(text.as_bytes())).then(|| Self {
            text: text.into_boxed_str(),
            rand_at,
        })
    }

    /// Writes the head DSC of one trace into `out`: the template with its trace id and
    /// sample rand.
    fn write<W: fmt::Write + ?Sized>(
        &self,
        out: &mut W,
        trace_id: &str,
        sample_rand: SampleRand,
    ) -> fmt::Result {
        // The template's `0.` stays; its six decimals are replaced.
        let decimals_at = self.rand_at + 2;
        out.write_str(&self.text[..TRACE_ID_KEY.len()])?;
        out.write_str(trace_id)?;
        out.write_str(&self.text[TRACE_ID_KEY.len() + trace_id.len()..decimals_at])?;
        out.write_str(sample_rand.decimals(&mut itoa::Buffer::new()))?;
        out.write_str(&self.text[self.rand_at + SAMPLE_RAND_LEN..])
    }
}

/// The DSC a page writes in its `baggage` tag.
#[derive(Clone, Debug)]
pub(crate) enum PageDsc {
    /// Serialized once: a frozen DSC, or explicit values.
    Serialized(SerializedDsc),
    /// A head DSC: its client's template and the trace's sample rand, written straight into
    /// each page (the trace id is the page's own), never stored as a string.
    Head(Arc<HeadTemplate>, SampleRand),
}

impl PageDsc {
    /// The `baggage` header value in a page of the trace whose id is `trace_id` (its hex
    /// digits: a head DSC's own trace).
    fn header(&self, trace_id: &str) -> Cow<'_, str> {
        match self {
            Self::Serialized(dsc) => Cow::Borrowed(dsc.header()),
            Self::Head(template, sample_rand) => {
                let mut header = String::with_capacity(template.text.len());
                // Writing into a String cannot fail.
                let _ = template.write(&mut header, trace_id, *sample_rand);
                Cow::Owned(header)
            }
        }
    }

    /// The DSC serialized once, for trace `trace_id` (a head DSC's own trace).
    pub(crate) fn serialized(&self, trace_id: TraceId) -> SerializedDsc {
        if let Self::Serialized(dsc) = self {
            return dsc.clone();
        }
        // Hex digits are ASCII.
        let hex = trace_id.to_hex();
        let header = self.header(std::str::from_utf8(&hex).unwrap_or_default());
        // A head DSC's template holds nothing that HTML escapes.
        SerializedDsc {
            header_len: header.len(),
            text: Arc::from(header),
        }
    }
}

impl SerializedDsc {
    /// Serializes `dsc`.
    pub fn new(dsc: DynamicSamplingContext) -> Self {
        thread_local! {
            /// Where headers are written before their one allocation, reused across requests.
            static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
        }
        SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                return Self::from_canonical_header(&dsc.to_baggage());
            };
            let mut writer = BaggageWriter::reusing(std::mem::take(&mut *scratch));
            dsc.write_baggage(&mut writer);
            *scratch = writer.finish();
            Self::from_canonical_header(&scratch)
        })
    }

    /// A DSC written straight into its canonical `baggage` form.
    pub(crate) fn from_canonical_header(header: &str) -> Self {
        // Percent-encoding leaves nothing that HTML would read as markup; escaping it as well is
        // the defence in depth that keeps this true whatever the serializer becomes.
        let text = match markup::needs_escape(header.as_bytes())
            .then(|| html_escape::encode_quoted_attribute(header))
        {
            Some(Cow::Owned(escaped)) => Arc::from(format!("{header}{escaped}")),
            None | Some(Cow::Borrowed(_)) => Arc::from(header),
        };
        Self {
            text,
            header_len: header.len(),
        }
    }

    /// The DSC that was serialized, decoded from the header.
    pub fn dsc(&self) -> DynamicSamplingContext {
        DynamicSamplingContext::from_baggage([self.header().as_bytes()])
    }

    /// The `baggage` header value (empty when the DSC is).
    pub fn header(&self) -> &str {
        &self.text[..self.header_len]
    }

    /// The header escaped for an HTML attribute.
    fn html_attr(&self) -> &str {
        match &self.text[self.header_len..] {
            "" => self.header(),
            escaped => escaped,
        }
    }
}

impl fmt::Debug for SerializedDsc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SerializedDsc")
            .field(&self.header())
            .finish()
    }
}

/// What a page needs to continue a trace: the active span's `sentry-trace` and its root's
/// Dynamic Sampling Context, rendered as `<meta>` tags for the Sentry browser SDK.
///
/// The output has the shape of `getTraceMetaTags()` of `@sentry/core`:
///
/// ```text
/// <meta name="sentry-trace" content="TRACEID-SPANID-1"/>
/// <meta name="baggage" content="sentry-trace_id=…,sentry-public_key=…,…"/>
/// ```
///
/// `content` is HTML-escaped; a tag whose value is empty is left out. With
/// [`traceparent`](Self::traceparent()) a W3C
/// `<meta name="traceparent" content="00-TRACEID-SPANID-01"/>` follows.
///
/// ```
/// use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, TraceMeta};
///
/// let dsc = DynamicSamplingContext::from_baggage([
///     &b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc"[..],
/// ]);
/// let meta = TraceMeta::new(
///     "771a43a4192642f0b136d5159a501700".parse()?,
///     "b7ad6b7169203331".parse()?,
///     Some(true),
///     Some(SerializedDsc::new(dsc)),
/// );
/// assert_eq!(
///     meta.to_string(),
///     "<meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1\"/>\n\
///      <meta name=\"baggage\" content=\"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc\"/>"
/// );
///
/// // Into an existing buffer, without allocating:
/// let mut page = String::with_capacity(1024);
/// meta.render_into(&mut page);
/// # Ok::<(), sentry_meta_core::ParseIdError>(())
/// ```
#[derive(Clone)]
pub struct TraceMeta {
    sentry_trace: SentryTrace,
    sentry_trace_buf: TraceText,
    sentry_trace_len: u8,
    baggage: Option<PageDsc>,
    traceparent: bool,
}

/// The `sentry-trace` text, aligned to a word: `str::from_utf8` checks whole words from an aligned
/// start and byte by byte otherwise (see "Performance notes" in `docs/benchmarks.md`).
#[derive(Clone)]
#[repr(align(8))]
struct TraceText([u8; SENTRY_TRACE_MAX_LEN]);

/// The fixed bytes and lengths of the rendered tags, and the bytes their values are escaped for,
/// for code that must recognize them in a page (the `</head>` injector and the tag stripper of
/// `sentry-meta`, through [`crate::__private`]); not public API.
pub(crate) mod markup {
    /// Opens the `sentry-trace` tag; its value follows.
    pub const SENTRY_TRACE_OPEN: &str = "<meta name=\"sentry-trace\" content=\"";
    /// Opens the `baggage` tag, on a line of its own; its value follows.
    pub const BAGGAGE_OPEN: &str = "\n<meta name=\"baggage\" content=\"";
    /// Opens the `traceparent` tag, on a line of its own; its value follows.
    pub const TRACEPARENT_OPEN: &str = "\n<meta name=\"traceparent\" content=\"";
    /// Closes a tag after its value.
    pub const CLOSE: &str = "\"/>";

    /// `TRACEID-SPANID`: 32 and 16 hex digits and a dash, the start of every `sentry-trace`
    /// value this crate writes.
    pub const TRACE_SPAN_LEN: usize = 32 + 1 + 16;
    /// The longest `sentry-trace` value: `TRACEID-SPANID-1`.
    pub const SENTRY_TRACE_MAX_LEN: usize = TRACE_SPAN_LEN + 2;
    /// A `traceparent` value: `00-TRACEID-SPANID-01`.
    pub const TRACEPARENT_LEN: usize = 3 + TRACE_SPAN_LEN + 3;

    /// The bytes that escaping for a quoted HTML attribute replaces
    /// (`html_escape::encode_quoted_attribute`).
    pub const ESCAPED: [u8; 5] = *b"&<>\"'";
    /// The longest replacement of one of [`ESCAPED`]: `'` is written `&#x27;`.
    pub const MAX_ESCAPE_LEN: usize = 6;
    /// The longest `content` of the `baggage` tag: a baggage of the most bytes, every byte
    /// escaped to the longest replacement.
    pub const BAGGAGE_CONTENT_MAX_LEN: usize = crate::baggage::MAX_BAGGAGE_BYTES * MAX_ESCAPE_LEN;

    /// Whether `bytes` hold a byte of [`ESCAPED`], that is, whether escaping would change them.
    pub fn needs_escape(bytes: &[u8]) -> bool {
        let [a, b, c, d, e] = ESCAPED;
        memchr::memchr3(a, b, c, bytes).is_some() || memchr::memchr2(d, e, bytes).is_some()
    }
}

use markup::{
    BAGGAGE_OPEN, CLOSE, SENTRY_TRACE_OPEN, TRACE_SPAN_LEN, TRACEPARENT_LEN, TRACEPARENT_OPEN,
};

/// [`CLOSE`] then [`BAGGAGE_OPEN`], written with one copy.
const CLOSE_THEN_BAGGAGE: &str = "\"/>\n<meta name=\"baggage\" content=\"";

impl TraceMeta {
    /// The tags for span `span_id` of trace `trace_id` with sampling decision `sampled`
    /// (`None`: deferred to the browser), and the root's serialized DSC.
    ///
    /// The DSC is written as given: that its `trace_id` and `sampled` agree with the span's is
    /// the caller's to keep (a frozen incoming DSC is passed on as the caller sent it, as
    /// `@sentry/core` does).
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        sampled: Option<bool>,
        baggage: Option<SerializedDsc>,
    ) -> Self {
        let baggage = baggage
            .filter(|b| !b.header().is_empty())
            .map(PageDsc::Serialized);
        Self::with_page_dsc(trace_id, span_id, sampled, baggage)
    }

    /// [`new`](Self::new) with the DSC in either form.
    pub(crate) fn with_page_dsc(
        trace_id: TraceId,
        span_id: SpanId,
        sampled: Option<bool>,
        baggage: Option<PageDsc>,
    ) -> Self {
        let sentry_trace = SentryTrace::new(trace_id, span_id, sampled);
        let mut sentry_trace_buf = TraceText([0; SENTRY_TRACE_MAX_LEN]);
        let len = sentry_trace.encode(&mut sentry_trace_buf.0);
        Self {
            sentry_trace,
            sentry_trace_buf,
            sentry_trace_len: len as u8,
            baggage,
            traceparent: false,
        }
    }

    /// The tags for `sentry_trace` and a DSC that is serialized here.
    ///
    /// Returns `None` when `sentry_trace` has no span id: a page must name its parent span.
    pub fn from_dsc(sentry_trace: SentryTrace, dsc: DynamicSamplingContext) -> Option<Self> {
        Some(Self::new(
            sentry_trace.trace_id,
            sentry_trace.span_id?,
            sentry_trace.sampled,
            Some(SerializedDsc::new(dsc)),
        ))
    }

    /// Also writes a W3C `traceparent` meta tag (off by default).
    #[must_use]
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.traceparent = enabled;
        self
    }

    /// Whether the W3C `traceparent` tag is written (see [`traceparent`](Self::traceparent())).
    pub fn writes_traceparent(&self) -> bool {
        self.traceparent
    }

    /// The `sentry-trace` this renders.
    pub fn sentry_trace(&self) -> SentryTrace {
        self.sentry_trace
    }

    /// The root's DSC, if there is one, decoded from the header.
    pub fn dsc(&self) -> Option<DynamicSamplingContext> {
        let header = self.baggage_header()?;
        Some(DynamicSamplingContext::from_baggage([header.as_bytes()]))
    }

    /// The `sentry-trace` header value.
    pub fn sentry_trace_header(&self) -> &str {
        // Built from hex digits, `-` and `0`/`1` only: always ASCII.
        std::str::from_utf8(&self.sentry_trace_buf.0[..usize::from(self.sentry_trace_len)])
            .unwrap_or_default()
    }

    /// The `baggage` header value, if the DSC is not empty.
    pub fn baggage_header(&self) -> Option<Cow<'_, str>> {
        let dsc = self.baggage.as_ref()?;
        Some(dsc.header(&self.sentry_trace_header()[..32]))
    }

    /// The length of the `baggage` tag's `content`.
    fn baggage_attr_len(&self) -> usize {
        match &self.baggage {
            Some(PageDsc::Serialized(dsc)) => dsc.html_attr().len(),
            Some(PageDsc::Head(template, _)) => template.text.len(),
            None => 0,
        }
    }

    /// The W3C `traceparent` header value.
    pub fn traceparent_header(&self) -> Option<String> {
        self.sentry_trace.to_traceparent()
    }

    /// The `Server-Timing` header value that carries the same trace to a browser SDK that can no
    /// longer read the `<head>`: `sentry-trace;desc="…", baggage;desc="…"`.
    ///
    /// ```
    /// # use sentry_meta_core::TraceMeta;
    /// let meta = TraceMeta::new(
    ///     "771a43a4192642f0b136d5159a501700".parse().unwrap(),
    ///     "b7ad6b7169203331".parse().unwrap(),
    ///     None,
    ///     None,
    /// );
    /// assert_eq!(
    ///     meta.server_timing_header(),
    ///     r#"sentry-trace;desc="771a43a4192642f0b136d5159a501700-b7ad6b7169203331""#
    /// );
    /// ```
    pub fn server_timing_header(&self) -> String {
        let mut out = String::with_capacity(64 + self.baggage_attr_len() + SENTRY_TRACE_MAX_LEN);
        out.push_str("sentry-trace;desc=");
        push_quoted_string(&mut out, self.sentry_trace_header());
        if let Some(baggage) = self.baggage_header() {
            out.push_str(", baggage;desc=");
            push_quoted_string(&mut out, &baggage);
        }
        out
    }

    /// Writes the tags into any [`fmt::Write`].
    pub fn write_html<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        let sentry_trace = self.sentry_trace_header();
        out.write_str(SENTRY_TRACE_OPEN)?;
        out.write_str(sentry_trace)?;
        if let Some(dsc) = &self.baggage {
            out.write_str(CLOSE_THEN_BAGGAGE)?;
            // Escaped for an HTML attribute; a head DSC needs no escaping: its template was
            // checked when it was made (`HeadTemplate::new`). `sentry_trace` starts with the
            // trace id.
            match dsc {
                PageDsc::Serialized(dsc) => out.write_str(dsc.html_attr())?,
                PageDsc::Head(template, rand) => template.write(out, &sentry_trace[..32], *rand)?,
            }
        }
        out.write_str(CLOSE)?;
        if self.writes_traceparent_tag() {
            out.write_str(TRACEPARENT_OPEN)?;
            out.write_str("00-")?;
            // `TRACEID-SPANID` is the start of the canonical `sentry-trace`.
            out.write_str(&sentry_trace[..TRACE_SPAN_LEN])?;
            out.write_str(if self.sentry_trace.sampled == Some(true) {
                "-01"
            } else {
                "-00"
            })?;
            out.write_str(CLOSE)?;
        }
        Ok(())
    }

    /// Appends the tags to `out`; allocates nothing when `out` has the capacity.
    pub fn render_into(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = self.write_html(out);
    }

    /// The exact length of the rendered tags, in bytes.
    pub fn html_len(&self) -> usize {
        let mut len = SENTRY_TRACE_OPEN.len() + usize::from(self.sentry_trace_len) + CLOSE.len();
        if self.baggage.is_some() {
            len += BAGGAGE_OPEN.len() + self.baggage_attr_len() + CLOSE.len();
        }
        if self.writes_traceparent_tag() {
            len += TRACEPARENT_OPEN.len() + TRACEPARENT_LEN + CLOSE.len();
        }
        len
    }

    /// Whether the `traceparent` tag is written: asked for, and valid for W3C.
    fn writes_traceparent_tag(&self) -> bool {
        self.traceparent && self.sentry_trace.w3c_valid()
    }

    /// The tags as a new string.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(self.html_len());
        self.render_into(&mut out);
        out
    }
}

impl PartialEq for TraceMeta {
    fn eq(&self, other: &Self) -> bool {
        // The DSC compares by its header, whichever form it is held in.
        self.sentry_trace == other.sentry_trace
            && self.traceparent == other.traceparent
            && self.baggage_header() == other.baggage_header()
    }
}

impl Eq for TraceMeta {}

impl fmt::Display for TraceMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_html(f)
    }
}

impl fmt::Debug for TraceMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceMeta")
            .field("sentry_trace", &self.sentry_trace_header())
            .field("baggage", &self.baggage_header())
            .field("traceparent", &self.traceparent)
            .finish()
    }
}

/// Appends `value` as an RFC 9110 quoted-string (`"` and `\` escaped; control bytes, which a
/// header cannot carry, dropped).
fn push_quoted_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(baggage: &str) -> TraceMeta {
        TraceMeta::new(
            "771a43a4192642f0b136d5159a501700".parse().unwrap(),
            "b7ad6b7169203331".parse().unwrap(),
            Some(false),
            Some(SerializedDsc::new(DynamicSamplingContext::from_baggage([
                baggage.as_bytes(),
            ]))),
        )
    }

    #[test]
    fn empty_dsc_omits_baggage_tag() {
        let html = meta("vendor=1").to_html();
        assert_eq!(
            html,
            "<meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-0\"/>"
        );
    }

    #[test]
    fn joined_markup_constant() {
        assert_eq!(CLOSE_THEN_BAGGAGE, [CLOSE, BAGGAGE_OPEN].concat());
    }

    #[test]
    fn escaped_set_is_what_html_escape_changes() {
        for byte in 0..=0x7f_u8 {
            let text = char::from(byte).to_string();
            let escaped = html_escape::encode_quoted_attribute(&text);
            assert_eq!(
                markup::ESCAPED.contains(&byte),
                escaped != text,
                "{byte:#x}"
            );
            assert_eq!(markup::needs_escape(&[byte]), escaped != text);
            assert!(escaped.len() <= markup::MAX_ESCAPE_LEN);
        }
        assert_eq!(
            html_escape::encode_quoted_attribute("'").len(),
            markup::MAX_ESCAPE_LEN
        );
    }

    #[test]
    fn traceparent_len() {
        let m = meta("").traceparent(true);
        let value = m.traceparent_header().unwrap();
        assert_eq!(value.len(), markup::TRACEPARENT_LEN);
        assert_eq!(m.sentry_trace_header().len(), SENTRY_TRACE_MAX_LEN);
    }

    #[test]
    fn html_len_is_exact() {
        for m in [meta("sentry-a=%3C%22%3E"), meta("").traceparent(true)] {
            assert_eq!(m.to_html().len(), m.html_len());
        }
    }

    #[test]
    fn no_traceparent_for_zero_ids() {
        let zero = TraceMeta::new(
            TraceId::from_bytes([0; 16]),
            "b7ad6b7169203331".parse().unwrap(),
            Some(true),
            None,
        )
        .traceparent(true);
        assert!(!zero.to_html().contains("traceparent"));
        assert_eq!(zero.html_len(), zero.to_html().len());
        assert_eq!(zero.traceparent_header(), None);
    }

    #[test]
    fn traceparent_tag() {
        let html = meta("").traceparent(true).to_html();
        assert!(html.ends_with(
            "\n<meta name=\"traceparent\" content=\"00-771a43a4192642f0b136d5159a501700-b7ad6b7169203331-00\"/>"
        ));
    }

    #[test]
    fn server_timing_quotes() {
        let mut out = String::new();
        push_quoted_string(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#""a\"b\\cd""#);
    }
}
