//! What the `</head>` injector and the stripper must do to a page, read the way a browser reads
//! it (html5ever, through `scraper`), independently of their scanner: shared by
//! `tests/tests/inject.rs` and the `inject` fuzz target.
//!
//! Where html5ever reads an end tag of the head is found with a probe: an element of a name of
//! its own, `<sentry-meta-probe>`, put at that byte becomes an element of the document exactly
//! when a tag begins there (not inside text, a comment, a script, another tag or a template's
//! contents).

use scraper::Html;
use sentry_meta_core::TraceMeta;

use crate::{expected_elements, first_of_each_name, head_trace_tags, trace_tags_under};

/// How far into a page the scanner looks, in bytes.
pub const HEAD_LIMIT: usize = 64 * 1024;

/// Pages up to this long hold no tag that the stripper passes for its length (one longer than
/// 48 KiB up to its `name`).
pub const SHORT_PAGE: usize = 48 * 1024;

/// At most this many candidate end tags of one page are probed (each probe parses the page).
const PROBES: usize = 8;

/// The probe's element name: one no page uses, and which cannot join another tag (a `<meta>`'s
/// attributes would join the tag that the probe falls into, if it falls into one).
const PROBE: &str = "sentry-meta-probe";

/// The tags the scanner stops at without reading on (`<body`, `<frameset`: the head is over;
/// `<plaintext`; `<svg`, `<math`: foreign content, read by the tree builder's rules).
const STOPS: [&[u8]; 5] = [b"<body", b"<frameset", b"<plaintext", b"<svg", b"<math"];

/// `bytes` parsed as a browser parses a page in UTF-8. Leading whitespace is left out: the
/// tree builder drops it ("initial" insertion mode), and the fuzz target's padding would cost
/// a parse of 63 KiB. (One byte of it stays before a U+FEFF, which would be read as a
/// byte-order mark at the start.)
fn parse(bytes: &[u8]) -> Html {
    let mut start = bytes
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' '))
        .unwrap_or(bytes.len());
    if bytes[start..].starts_with(b"\xEF\xBB\xBF") {
        start = start.saturating_sub(1);
    }
    Html::parse_document(&String::from_utf8_lossy(&bytes[start..]))
}

fn trace_tags(document: &Html) -> Vec<(String, String)> {
    trace_tags_under(document.root_element())
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    find_ignore_case(haystack, needle).is_some()
}

/// Whether `page` begins with a UTF-16 or UTF-32 byte-order mark: its bytes are not ASCII text.
pub fn has_non_ascii_bom(page: &[u8]) -> bool {
    [&b"\xFE\xFF"[..], b"\xFF\xFE", b"\0\0\xFE\xFF"]
        .iter()
        .any(|bom| page.starts_with(bom))
}

/// Whether the bytes at `at` are `</head` (any case) followed by whitespace, `/` or `>`.
pub fn head_end_at(page: &[u8], at: usize) -> bool {
    let rest = &page[at..];
    rest.len() > 6
        && rest[..6].eq_ignore_ascii_case(b"</head")
        && matches!(
            rest[6],
            b'\t' | b'\n' | b'\x0C' | b'\r' | b' ' | b'/' | b'>'
        )
}

/// Whether a `<meta>` of `head` (a page up to the end of its head, outside template contents)
/// declares an encoding whose ASCII-looking bytes may be other characters, as `encoding_rs`
/// reads its label: ISO-2022-JP or replacement. (A declared UTF-16 is read as UTF-8: the
/// declaration could be read as ASCII.) The declaration is the `charset` attribute, else the
/// `charset=` in the `content` of an `http-equiv="content-type"`.
pub fn declares_switching_encoding(head: &[u8]) -> bool {
    let document = parse(head);
    let selector = scraper::Selector::parse("meta").expect("valid selector");
    document
        .select(&selector)
        .filter(|meta| !meta.ancestors().any(|node| node.value().is_fragment()))
        .filter_map(|meta| {
            let meta = meta.value();
            meta.attr("charset").or_else(|| {
                meta.attr("http-equiv")
                    .filter(|value| value.eq_ignore_ascii_case("content-type"))?;
                let content = meta.attr("content")?;
                // The first `charset` followed by `=`.
                let lower = content.to_ascii_lowercase();
                let value = lower.match_indices("charset").find_map(|(at, _)| {
                    let rest = content[at + "charset".len()..].trim_start();
                    Some(rest.strip_prefix('=')?.trim_start())
                })?;
                match value.chars().next() {
                    Some(quote @ ('"' | '\'')) => {
                        let quoted = &value[1..];
                        quoted.find(quote).map(|end| &quoted[..end])
                    }
                    _ => value.split([' ', '\t', '\n', '\r', '\x0C', ';']).next(),
                }
            })
        })
        .filter_map(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .any(|encoding| {
            encoding == encoding_rs::ISO_2022_JP || encoding == encoding_rs::REPLACEMENT
        })
}

/// What html5ever reads at `at` in `page`.
struct Probe {
    /// A tag begins there, outside template contents: a `</head` there ends the head.
    tag_begins: bool,
    /// The trace tags before it.
    trace_tags: Vec<(String, String)>,
}

fn probe(page: &[u8], at: usize) -> Probe {
    let probed = [&page[..at], format!("<{PROBE}>").as_bytes()].concat();
    let document = parse(&probed);
    let selector = scraper::Selector::parse(PROBE).expect("valid selector");
    Probe {
        tag_begins: document
            .select(&selector)
            .any(|probe| !probe.ancestors().any(|node| node.value().is_fragment())),
        trace_tags: trace_tags(&document),
    }
}

/// The candidate end tags of the head in `page[..end]` that the scanner reaches.
fn candidates(page: &[u8], end: usize) -> impl Iterator<Item = usize> + '_ {
    (0..end.min(page.len())).filter(move |&at| at + 7 <= HEAD_LIMIT && head_end_at(page, at))
}

/// Where `out` is `page` with `tags` inserted once, if it is (the first such place).
pub fn insertion_point(page: &[u8], out: &[u8], tags: &[u8]) -> Option<usize> {
    if out.len() != page.len() + tags.len() {
        return None;
    }
    let prefix = page.iter().zip(out).take_while(|(a, b)| a == b).count();
    let suffix = page
        .iter()
        .rev()
        .zip(out.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    (page.len() - suffix..=prefix).find(|&at| out[at..at + tags.len()] == *tags)
}

/// Checks `out`, what the injector made of `page` with `meta`'s tags, against html5ever's
/// reading of both:
///
/// - a page that begins with a UTF-16 or UTF-32 byte-order mark is left alone;
/// - injected: the tags are inserted once, right before the first `</head` that html5ever reads
///   as an end tag of the head (outside template contents), within the scanner's limit, with no
///   copy and no such `<meta>` before it; in the result they are elements, and the ones the browser SDK reads;
/// - left alone, though html5ever reads an end tag of the head within the limit: a copy comes
///   before it, or a `<meta>` that declares ISO-2022-JP or replacement (unless the page has a
///   tag the scanner stops at).
///
/// A copy is a `sentry-trace` or `baggage` tag (the browser SDK reads them as a pair), or a
/// `traceparent` tag when `meta` writes one.
pub fn check_injection(page: &[u8], out: &[u8], meta: &TraceMeta) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let expected = expected_elements(meta);
    let is_copy = |(name, _): &(String, String)| {
        name != "traceparent" || expected.iter().any(|(ours, _)| ours == name)
    };
    if has_non_ascii_bom(page) {
        assert!(out == page, "a page that is not ASCII text was changed");
        return;
    }
    if out == page {
        let end = STOPS
            .iter()
            .filter_map(|stop| find_ignore_case(page, stop))
            .min()
            .unwrap_or(page.len());
        let first = candidates(page, end)
            .take(PROBES)
            .map(|at| (at, probe(page, at)))
            .find(|(_, probe)| probe.tag_begins);
        if let Some((at, probe)) = first {
            assert!(
                probe.trace_tags.iter().any(is_copy) || declares_switching_encoding(&page[..at]),
                "html5ever reads an end tag of the head at {at}, after no copy of the tags, but \
                 no tags were injected: {:?}",
                text(page)
            );
        }
        return;
    }
    let tags = meta.to_html();
    let at = insertion_point(page, out, tags.as_bytes())
        .filter(|&at| head_end_at(page, at))
        .unwrap_or_else(|| {
            panic!(
                "not one copy of the tags right before a </head>: {:?}",
                text(out)
            )
        });
    assert!(at + 7 <= HEAD_LIMIT, "tags at {at}, past the limit");
    if let Some(earlier) = candidates(page, at)
        .take(PROBES)
        .find(|&c| probe(page, c).tag_begins)
    {
        panic!(
            "tags at {at}, but html5ever reads an end tag of the head at {earlier}: {:?}",
            text(page)
        );
    }
    let here = probe(page, at);
    assert!(
        here.tag_begins,
        "tags at {at}, where html5ever reads no tag"
    );
    assert!(
        !declares_switching_encoding(&page[..at]),
        "tags at {at}, in a page that declares an encoding without ASCII: {:?}",
        text(page)
    );
    assert!(
        !here.trace_tags.iter().any(is_copy),
        "tags at {at} after the page's own {:?}: {:?}",
        here.trace_tags,
        text(page)
    );
    let (before, after) = (trace_tags(&parse(page)), trace_tags(&parse(out)));
    assert_eq!(
        after.len(),
        before.len() + expected.len(),
        "the tags are not all elements in {:?}",
        text(out)
    );
    let read = first_of_each_name(&after);
    for tag in &expected {
        assert!(
            read.contains(tag),
            "the SDK reads {read:?}, not {tag:?}, in {:?}",
            text(out)
        );
    }
}

/// Every element of a document but its trace tags: name and attributes, sorted.
fn other_elements(document: &Html) -> Vec<String> {
    let mut elements = Vec::new();
    for node in document.tree.root().descendants() {
        let Some(element) = node.value().as_element() else {
            continue;
        };
        let in_template = node.ancestors().any(|a| a.value().is_fragment());
        let name = element.attr("name").unwrap_or_default();
        if element.name() == "meta" && !in_template && crate::TRACE_NAMES.contains(&name) {
            continue;
        }
        let mut attrs: Vec<_> = element.attrs().collect();
        attrs.sort_unstable();
        elements.push(format!("{}{attrs:?}", element.name()));
    }
    // Sorted: where an element goes may change with what came before it (text in the head
    // opens the body; a U+FEFF that a stripped tag preceded becomes the page's byte-order mark),
    // which elements there are may not.
    elements.sort_unstable();
    elements
}

/// Checks `out`, what the stripper made of `page`, against html5ever's reading of both:
///
/// - a page that begins with a UTF-16 or UTF-32 byte-order mark is left alone;
/// - every element but trace tags is still there, with its attributes;
/// - no trace tag is left in the head (for a page of at most [`SHORT_PAGE`] bytes, and without
///   foreign content, `<svg` or `<math`, whose reading it does not follow).
pub fn check_strip(page: &[u8], out: &[u8]) {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if has_non_ascii_bom(page) {
        assert!(out == page, "a page that is not ASCII text was changed");
        return;
    }
    let (before, after) = (parse(page), parse(out));
    assert_eq!(
        other_elements(&after),
        other_elements(&before),
        "the stripper changed more than trace tags: {:?} became {:?}",
        text(page),
        text(out)
    );
    if page.len() <= SHORT_PAGE
        && !contains_ignore_case(page, b"<svg")
        && !contains_ignore_case(page, b"<math")
    {
        let left = head_trace_tags(&after);
        assert!(
            left.is_empty(),
            "trace tags {left:?} left in the head of {:?}",
            text(out)
        );
    }
}
