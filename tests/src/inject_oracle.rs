//! What the `</head>` injector and the stripper must do to a page, read the way a browser reads
//! it (html5ever, through `scraper`), independently of their scanner: shared by
//! `tests/tests/inject.rs` and the `inject` fuzz target.
//!
//! Where html5ever reads an end tag of the head is found with a probe: a `<meta>` put at that
//! byte becomes an element of the document exactly when a tag begins there (not inside text,
//! a comment, a script, an attribute or a template's contents).

use sentry_meta_core::TraceMeta;

use crate::{browser_trace_meta, expected_elements, head_trace_meta_elements, trace_meta_elements};

/// How far into a page the scanner looks, in bytes.
pub const HEAD_LIMIT: usize = 64 * 1024;

/// Pages up to this long are read whole by the stripper, whatever tags they hold (it gives up
/// on a tag longer than 48 KiB up to its `name`).
pub const SHORT_PAGE: usize = 48 * 1024;

/// At most this many candidate end tags of one page are probed (each probe parses the page).
const PROBES: usize = 8;

const PROBE: &str = "<meta name=\"sentry-meta-probe\">";

/// The tags the scanner stops at without reading on (`<body`, `<frameset`: the head is over;
/// `<plaintext`; `<svg`, `<math`: foreign content, read by the tree builder's rules).
const STOPS: [&[u8]; 5] = [b"<body", b"<frameset", b"<plaintext", b"<svg", b"<math"];

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// Whether html5ever reads the `</head` at `at` as the end tag of the head: a tag begins there,
/// outside template contents.
pub fn is_real_head_end(page: &[u8], at: usize) -> bool {
    let probed = format!("{}{PROBE}", lossy(&page[..at]));
    let document = scraper::Html::parse_document(&probed);
    let probe = scraper::Selector::parse("meta[name=\"sentry-meta-probe\"]").expect("selector");
    document
        .select(&probe)
        .any(|meta| !meta.ancestors().any(|node| node.value().is_fragment()))
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
///   trace tag before it; in the result they are elements, and the ones the browser SDK reads;
/// - left alone, though html5ever reads an end tag of the head within the limit: a trace tag
///   comes before it (unless the page has a tag the scanner stops at).
pub fn check_injection(page: &[u8], out: &[u8], meta: &TraceMeta) {
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
        let first_real = candidates(page, end)
            .take(PROBES)
            .find(|&at| is_real_head_end(page, at));
        if let Some(at) = first_real {
            assert!(
                !trace_meta_elements(&lossy(&page[..at])).is_empty(),
                "html5ever reads an end tag of the head at {at}, after no trace tag, but no tags \
                 were injected: {:?}",
                lossy(page)
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
                lossy(out)
            )
        });
    assert!(at + 7 <= HEAD_LIMIT, "tags at {at}, past the limit");
    if let Some(earlier) = candidates(page, at)
        .take(PROBES)
        .find(|&c| is_real_head_end(page, c))
    {
        panic!(
            "tags at {at}, but html5ever reads an end tag of the head at {earlier}: {:?}",
            lossy(page)
        );
    }
    let before = trace_meta_elements(&lossy(&page[..at]));
    assert!(
        before.is_empty(),
        "tags at {at} after the page's own {before:?}: {:?}",
        lossy(page)
    );
    let expected = expected_elements(meta);
    let (page, out) = (lossy(page), lossy(out));
    assert_eq!(
        trace_meta_elements(&out).len(),
        trace_meta_elements(&page).len() + expected.len(),
        "the tags are not all elements in {out:?}"
    );
    let read = browser_trace_meta(&out);
    for tag in &expected {
        assert!(
            read.contains(tag),
            "the SDK reads {read:?}, not {tag:?}, in {out:?}"
        );
    }
}

/// Every element of a document but its trace tags: name and attributes.
fn other_elements(html: &str) -> Vec<String> {
    let document = scraper::Html::parse_document(html);
    let trace_tags = trace_meta_elements(html);
    let mut trace_tags = trace_tags.iter().peekable();
    let mut elements = Vec::new();
    for node in document.tree.root().descendants() {
        let Some(element) = node.value().as_element() else {
            continue;
        };
        let in_template = node.ancestors().any(|a| a.value().is_fragment());
        let name = element.attr("name").unwrap_or_default();
        if element.name() == "meta" && !in_template && crate::TRACE_NAMES.contains(&name) {
            // One of `trace_tags`, in the same order.
            assert_eq!(trace_tags.next().map(|(n, _)| n.as_str()), Some(name));
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
/// - no trace tag is left in the head (for a page the stripper reads whole, [`SHORT_PAGE`], and
///   without foreign content, `<svg` or `<math`, whose reading it does not follow).
pub fn check_strip(page: &[u8], out: &[u8]) {
    if has_non_ascii_bom(page) {
        assert!(out == page, "a page that is not ASCII text was changed");
        return;
    }
    let (page_text, out_text) = (lossy(page), lossy(out));
    assert_eq!(
        other_elements(&out_text),
        other_elements(&page_text),
        "the stripper changed more than trace tags: {page_text:?} became {out_text:?}"
    );
    if page.len() <= SHORT_PAGE
        && !contains_ignore_case(page, b"<svg")
        && !contains_ignore_case(page, b"<math")
    {
        let left = head_trace_meta_elements(&out_text);
        assert!(
            left.is_empty(),
            "trace tags {left:?} left in the head of {out_text:?}"
        );
    }
}
