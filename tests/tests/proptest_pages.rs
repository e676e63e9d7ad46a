//! Property tests of the promise of docs/design.md's "Bad input and faults": whatever `sentry-trace`
//! and `baggage` headers arrive (valid, near-valid, hostile bytes `"<>&'`, control bytes,
//! invalid UTF-8, bad `%` escapes, long values, many members, several `baggage` headers), every
//! engine's page and the `</head>` injector write a head that a real HTML parser (html5ever,
//! through `scraper`) reads as exactly the layout's own tag and the intended trace tags, whose
//! `content` is the header values; the rest of the page is intact, and the heads are
//! byte-identical across engines.
//!
//! Each case renders the page of all five engines (askama, minijinja, maud, tera, handlebars)
//! and the injector's page. Two tests of [`CASES`] cases each (so that the test harness runs
//! them on two cores at once) make 10,240 generated header pairs per run: 51,200 engine pages and
//! 10,240 injected pages. `PROPTEST_CASES=n` runs `n` cases per test instead.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use proptest::prelude::*;
use proptest::test_runner::Config;
use sentry_meta::tower::TraceMetaBody;
use sentry_meta::{
    Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext, MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS, SentryMeta, SentryTrace, SerializedDsc, SpanId, TraceId, TraceMeta,
};
use sentry_meta_tests::assert_head_is_exactly;

/// Cases per test, and two tests: 10,240 header pairs per run (about 30 s in a debug build on two
/// cores).
const CASES: u32 = 5120;

/// The span that renders the page.
const PAGE_SPAN: &str = "b7ad6b7169203331";
/// The trace a page starts when it does not continue the incoming one.
const NEW_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

// ---------------------------------------------------------------------------------------------
// The engines, with the layouts of `tests/templates/engines/` (shared with `engines.rs`), each
// given the tags explicitly.

#[path = "common/engines.rs"]
mod common;

use common::{HEADING, VIEWPORT, head};

/// The layout's page without the helper: what the injector is given.
const PAGE_WITHOUT_TAGS: &str = "<!DOCTYPE html>\n<html>\n<head>\n\
    <meta name=\"viewport\" content=\"width=device-width\">\n</head>\n<body>\n\
    <h1>Tom &amp; Jerry &lt;b&gt;&quot;quoted&quot;&lt;/b&gt;</h1>\n</body>\n</html>\n";

/// The head of a page rendered without tags.
const EMPTY_HEAD: &str = "\n<meta name=\"viewport\" content=\"width=device-width\">\n\n";

/// The engines, and each one's page without tags.
struct Engines {
    engines: common::Engines,
    without_tags: Vec<(&'static str, String)>,
}

impl Engines {
    fn new() -> Self {
        let engines = common::Engines::new();
        let without_tags = engines.render(Some(&SentryMeta::none()));
        for (engine, page) in &without_tags {
            assert_eq!(head(page), EMPTY_HEAD, "{engine}");
        }
        Self {
            engines,
            without_tags,
        }
    }

    fn render(&self, meta: &SentryMeta) -> Vec<(&'static str, String)> {
        self.engines.render(Some(meta))
    }
}

/// The page through the injector, cut into chunks of the given lengths (in turn; none: one
/// chunk).
fn inject(page: &str, meta: &TraceMeta, lengths: &[usize]) -> String {
    let mut chunks = Vec::new();
    let mut rest = page.as_bytes();
    let mut lengths = lengths.iter().cycle();
    while !rest.is_empty() {
        let len = lengths.next().copied().unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(len.clamp(1, rest.len()));
        chunks.push(Bytes::copy_from_slice(chunk));
        rest = tail;
    }
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|chunk| Ok::<_, std::convert::Infallible>(Frame::data(chunk))),
    ));
    let mut body = pin!(TraceMetaBody::inject(body, meta));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(None) => break,
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Pending => panic!("an in-memory body is never pending"),
        }
    }
    String::from_utf8(out).expect("the page and the tags are UTF-8")
}

// ---------------------------------------------------------------------------------------------
// The oracle.

/// Reads `page` with the HTML parser: its head holds exactly the elements `expected` (name,
/// content), in order, and only whitespace besides; there is no other meta element; the body
/// is the escaped heading.
fn check_page(engine: &str, page: &str, expected: &[(&str, &str)]) {
    let document = scraper::Html::parse_document(page);
    let select = |s: &str| scraper::Selector::parse(s).expect("valid selector");
    let head = document.select(&select("head")).next().expect("a head");
    let mut elements = Vec::new();
    for node in head.children() {
        match node.value() {
            scraper::Node::Element(e) => {
                assert_eq!(e.name(), "meta", "{engine}: {page}");
                let attr = |name| e.attr(name).unwrap_or_default();
                assert_eq!(e.attrs().count(), 2, "{engine}: {page}");
                elements.push((attr("name"), attr("content")));
            }
            scraper::Node::Text(t) => assert!(t.trim().is_empty(), "{engine}: text in {page}"),
            other => panic!("{engine}: {other:?} in the head of {page}"),
        }
    }
    assert_eq!(elements, expected, "{engine}: {page}");
    assert_eq!(
        document.select(&select("meta")).count(),
        expected.len(),
        "{engine}: a meta element outside the head of {page}"
    );
    let text: Vec<String> = document
        .select(&select("body > h1"))
        .map(|h| h.text().collect())
        .collect();
    assert_eq!(text, [HEADING], "{engine}: {page}");
    assert_eq!(document.select(&select("body *")).count(), 1, "{engine}");
}

/// The checks of one case: the trace the page must carry follows the continuation rules, its
/// header values are canonical and within the limits, and every page agrees.
fn check_case(engines: &Engines, headers: &Headers) {
    let baggage: Vec<&[u8]> = headers.baggage.iter().map(Vec::as_slice).collect();
    let decision = Continuation::decide(
        headers.sentry_trace.as_deref(),
        baggage.iter().copied(),
        &headers.policy,
    );
    let page_span: SpanId = PAGE_SPAN.parse().expect("span id");
    let meta = match decision {
        Continuation::Continue(incoming) => {
            // The caller's trace, its decision and its frozen sentry-* entries.
            let parsed = SentryTrace::parse_bytes(headers.sentry_trace.as_deref().unwrap_or(b""))
                .expect("a continued trace had a valid sentry-trace");
            assert_eq!(incoming.sentry_trace, parsed);
            let frozen = DynamicSamplingContext::from_baggage(baggage.iter().copied());
            for (key, value) in frozen.iter() {
                if key != DscKey::SampleRand.as_str() || frozen.sample_rand().is_some() {
                    assert!(incoming.dsc.iter().any(|entry| entry == (key, value)));
                }
            }
            TraceMeta::new(
                parsed.trace_id,
                page_span,
                parsed.sampled,
                Some(SerializedDsc::new(incoming.dsc)),
            )
        }
        Continuation::NewTrace(_) => {
            // A new trace: the incoming baggage plays no part.
            let trace_id: TraceId = NEW_TRACE.parse().expect("trace id");
            let mut dsc = DynamicSamplingContext::new();
            dsc.set_trace_id(trace_id);
            dsc.set(DscKey::PublicKey, "4f1c2d3e4b5a69788796a5b4c3d2e1f0");
            dsc.backfill_sample_rand(trace_id, None);
            TraceMeta::new(trace_id, page_span, None, Some(SerializedDsc::new(dsc)))
        }
    }
    .traceparent(headers.traceparent);

    // The header values, checked on their own.
    let sentry_trace = meta.sentry_trace_header();
    assert!(
        SentryTrace::parse_bytes(sentry_trace.as_bytes()).is_ok(),
        "{sentry_trace}"
    );
    let baggage_header = meta.baggage_header();
    if let Some(value) = &baggage_header {
        assert!(value.len() <= MAX_BAGGAGE_BYTES);
        assert!(value.split(',').count() <= MAX_BAGGAGE_MEMBERS);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%,=".contains(&b)),
            "not encodeURIComponent output: {value}"
        );
        // The value carries the DSC: read back, it is what was written.
        let again = DynamicSamplingContext::from_baggage([value.as_bytes()]);
        assert_eq!(again.to_baggage(), **value);
    }
    let traceparent = meta.traceparent_header().filter(|_| headers.traceparent);

    let mut expected = vec![VIEWPORT, ("sentry-trace", sentry_trace)];
    if let Some(value) = &baggage_header {
        expected.push(("baggage", value));
    }
    if let Some(value) = &traceparent {
        expected.push(("traceparent", value.as_str()));
    }

    let sentry = SentryMeta::from(meta.clone());
    let pages = engines.render(&sentry);
    let head_bytes = format!("\n<meta name=\"viewport\" content=\"width=device-width\">\n{meta}\n");
    assert_head_is_exactly(&head_bytes, &expected);
    for ((engine, page), (_, without)) in pages.iter().zip(&engines.without_tags) {
        assert_eq!(head(page), head_bytes, "{engine}: not the same head");
        // Byte for byte, the rest of the page is the engine's page without tags.
        assert_eq!(
            page.replacen(&head_bytes, EMPTY_HEAD, 1),
            *without,
            "{engine}: the page around the head changed"
        );
        check_page(engine, page, &expected);
    }

    let injected = inject(PAGE_WITHOUT_TAGS, &meta, &headers.chunks);
    assert_eq!(
        injected,
        PAGE_WITHOUT_TAGS.replace("</head>", &format!("{meta}</head>")),
        "injector: not the tags right before </head>"
    );
    check_page("injector", &injected, &expected);
}

// ---------------------------------------------------------------------------------------------
// The headers.

/// One request's trace headers, and how its page is rendered.
#[derive(Debug, Clone)]
struct Headers {
    sentry_trace: Option<Vec<u8>>,
    baggage: Vec<Vec<u8>>,
    policy: ContinuationPolicy,
    traceparent: bool,
    /// Chunk lengths of the injector's input.
    chunks: Vec<usize>,
}

/// Bytes that HTML, percent-encoding, header parsing or UTF-8 treat specially.
const HOSTILE: &[u8] = b"\"<>&'`=;,% \t\r\n\x00\x01\x1f\x7f\x80\xa0\xc3\xe2\xed\xf0\xfe\xff/\\!-";

fn hostile_bytes(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(HOSTILE), 1 => any::<u8>()],
        len,
    )
}

fn hex(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789abcdef".as_slice()), len)
        .prop_map(|digits| String::from_utf8(digits).expect("ascii"))
}

fn valid_sentry_trace() -> impl Strategy<Value = Vec<u8>> {
    (
        hex(32),
        hex(16),
        prop::sample::select(vec!["-1", "-0", "", "1", "0", "-"]),
        prop::sample::select(vec!["", " ", "\t", " \t"]),
        any::<bool>(),
    )
        .prop_map(|(trace, span, flag, ows, dash)| {
            let dash = if dash { "-" } else { "" };
            format!("{ows}{trace}{dash}{span}{flag}{ows}").into_bytes()
        })
}

fn sentry_trace() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        6 => valid_sentry_trace().prop_map(Some),
        // Near-valid: one byte changed, dropped or added; uppercase; a line break.
        2 => (valid_sentry_trace(), any::<prop::sample::Index>(), hostile_bytes(0..3), 0..4u8)
            .prop_map(|(mut value, at, bytes, how)| {
                let at = at.index(value.len());
                match how {
                    0 => {
                        value.splice(at..=at, bytes);
                    }
                    1 => value.make_ascii_uppercase(),
                    2 => value.insert(0, b'\n'),
                    _ => value.extend_from_slice(&bytes),
                }
                Some(value)
            }),
        1 => hostile_bytes(0..80).prop_map(Some),
        // Long: a valid value followed by up to 64 KiB.
        1 => (valid_sentry_trace(), 1..65536usize)
            .prop_map(|(mut value, len)| {
                value.resize(value.len() + len, b'0');
                Some(value)
            }),
        1 => Just(None),
    ]
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<String> = DscKey::ALL
        .iter()
        .map(|k| k.baggage_key().to_owned())
        .collect();
    prop_oneof![
        6 => prop::sample::select(known).prop_map(String::into_bytes),
        2 => "sentry-[a-z_]{1,10}".prop_map(String::into_bytes),
        1 => "[a-z]{1,8}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec![
            "sentry-%74race_id", "sentry%2Drelease", "Sentry-Release", "sentry-", "=",
            " sentry-release ", "sentry-release;p", "sentry-__proto__",
        ])
        .prop_map(|k| k.as_bytes().to_vec()),
        1 => hostile_bytes(1..12).prop_map(|k| [b"sentry-".to_vec(), k].concat()),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-zA-Z0-9._@/+ -]{1,24}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec![
            "0", "1", "0.25", "0.5", "0.999999", "1e-7", "-1", "2", "NaN", "inf", "true",
            "false", "0.123456", "0.9999999", " 0.5 ",
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        // Valid percent-encoding of any text.
        3 => any::<String>().prop_map(|s| {
            percent_encode(s.as_bytes()).into_bytes()
        }),
        3 => hostile_bytes(1..40),
        2 => prop::sample::select(vec![
            "%ZZ", "%", "%2", "100%", "%E0%A4%A", "%FF", "%ED%A0%80", "%C0%AF", "%c3%a9",
            "%22%3E%3Cscript%3E", "%0D%0A%00", "a%2Cb%3Dc%3Bd",
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        // Long: near and past the 8192-byte limit, with characters that escaping grows.
        2 => (prop::sample::select(vec![b'x', b'\'', b'"', b'&', b'<', b' ']), 1000..9000usize)
            .prop_map(|(byte, len)| vec![byte; len]),
    ]
}

/// `encodeURIComponent`, written here on its own.
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    (
        key(),
        value(),
        prop::sample::select(vec!["=", " = ", "\t=", "==", ""]),
        prop::sample::select(vec!["", "", ";prop", ";p=1;q", " "]),
    )
        .prop_map(|(key, value, eq, props)| {
            [
                key,
                eq.as_bytes().to_vec(),
                value,
                props.as_bytes().to_vec(),
            ]
            .concat()
        })
}

fn baggage_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(member(), 0..10),
        // Many members: more than the 64 a value may carry.
        1 => prop::collection::vec("sentry-[a-z]{1,6}=[a-z0-9]{1,4}".prop_map(String::into_bytes), 50..130),
        1 => prop::collection::vec(hostile_bytes(0..30), 1..4),
    ]
    .prop_flat_map(|members| {
        let n = members.len();
        (
            Just(members),
            prop::collection::vec(prop::sample::select(vec![",", ", ", " ,", ",,"]), n),
        )
    })
    .prop_map(|(members, seps)| {
        let mut out = Vec::new();
        for (member, sep) in members.into_iter().zip(seps) {
            if !out.is_empty() {
                out.extend_from_slice(sep.as_bytes());
            }
            out.extend_from_slice(&member);
        }
        out
    })
}

fn headers() -> impl Strategy<Value = Headers> {
    (
        sentry_trace(),
        prop::collection::vec(baggage_value(), 0..4),
        prop::option::weighted(0.5, prop::sample::select(vec!["42", "1", ""])),
        prop::bool::weighted(0.25),
        any::<bool>(),
        prop::collection::vec(1..200usize, 0..4),
    )
        .prop_map(
            |(sentry_trace, baggage, org, strict, traceparent, chunks)| Headers {
                sentry_trace,
                baggage,
                policy: match org {
                    Some(org) => ContinuationPolicy::new().org_id(org),
                    None => ContinuationPolicy::new(),
                }
                .strict_trace_continuation(strict),
                traceparent,
                chunks,
            },
        )
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        // A failing case is small once shrunk; do not spend minutes shrinking it.
        max_shrink_iters: 256,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hostile_headers_render_exactly_the_intended_tags(headers in headers()) {
        ENGINES.with(|engines| check_case(engines, &headers));
    }

    /// The same property over cases of its own: the harness runs both tests at once.
    #[test]
    fn more_hostile_headers_render_exactly_the_intended_tags(headers in headers()) {
        ENGINES.with(|engines| check_case(engines, &headers));
    }
}

thread_local! {
    static ENGINES: Engines = Engines::new();
}
