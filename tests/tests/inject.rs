//! The `</head>` injection layer and the strip transform: split anywhere, read back by a real
//! HTML parser, through tower services and a real axum server.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::Body as AxumBody;
use axum::response::Html;
use axum::routing::get;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use http::response::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use proptest::prelude::*;
use sentry_core::protocol::{Context as SentryContext, EnvelopeItem};
use sentry_core::test::TestTransport;
use sentry_core::{Client, ClientOptions, Hub};
use sentry_meta::tower::{
    InjectTraceMetaLayer, SentryMetaLayer, TraceMetaBody, TraceMetaSource, strip_trace_meta,
};
use sentry_meta::{DynamicSamplingContext, SentryMeta, SerializedDsc, TraceMeta};
use sentry_meta_tests::inject_oracle::{check_injection, check_strip, insertion_point};
use sentry_meta_tests::sentry::transactions;
use sentry_meta_tests::{
    assert_head_is_exactly, browser_trace_meta, expected_elements, head_trace_meta_elements,
    meta_elements, trace_meta_elements,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};

// ---------------------------------------------------------------------------------------------
// Bodies and how they are read.

/// A body that yields the given chunks, then optionally trailers or an error, with an exact
/// size hint.
#[derive(Debug, Default)]
struct Chunks {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    error: Option<&'static str>,
}

impl Chunks {
    fn new<C: AsRef<[u8]>>(chunks: impl IntoIterator<Item = C>) -> Self {
        Self {
            chunks: chunks
                .into_iter()
                .map(|c| Bytes::copy_from_slice(c.as_ref()))
                .collect(),
            ..Self::default()
        }
    }

    fn whole(page: impl AsRef<[u8]>) -> Self {
        Self::new([page])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if let Some(error) = self.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.trailers.is_none() && self.error.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let len: usize = self.chunks.iter().map(Bytes::len).sum();
        if self.error.is_some() {
            let mut hint = SizeHint::new();
            hint.set_lower(len as u64);
            return hint;
        }
        SizeHint::with_exact(len as u64)
    }
}

/// Everything `body` yields, read without a runtime (the test bodies are always ready), after
/// checking at every step that its size hint and `is_end_stream` tell the truth.
fn drain<B>(body: B) -> (Vec<u8>, Option<HeaderMap>)
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut trailers = None;
    // (bytes written before, hint, end of stream) at each step.
    let mut steps = Vec::new();
    loop {
        steps.push((out.len(), body.size_hint(), body.is_end_stream()));
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => out.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Poll::Ready(Some(Err(error))) => panic!("body error {error:?}"),
            Poll::Ready(None) => break,
            Poll::Pending => panic!("test bodies are always ready"),
        }
    }
    for (written, hint, end) in steps {
        let remaining = (out.len() - written) as u64;
        assert!(hint.lower() <= remaining, "{hint:?} for {remaining}");
        if let Some(upper) = hint.upper() {
            assert!(remaining <= upper, "{hint:?} for {remaining}");
        }
        if end {
            assert_eq!(remaining, 0, "end of stream with {remaining} bytes to come");
        }
    }
    (out, trailers)
}

/// Every way to cut `input` that the tests try: whole, in two at every offset, in three at
/// every pair of offsets (short inputs only), and in single bytes.
fn cuts(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut cuts = vec![vec![input], input.chunks(1).collect()];
    for a in 0..=input.len() {
        cuts.push(vec![&input[..a], &input[a..]]);
        if input.len() <= 200 {
            for b in a..=input.len() {
                cuts.push(vec![&input[..a], &input[a..b], &input[b..]]);
            }
        }
    }
    cuts
}

/// Checks that `transform` turns `input`, however it is cut, into `expected`.
fn check_every_cut(
    input: &[u8],
    expected: &[u8],
    transform: impl Fn(Chunks) -> TraceMetaBody<Chunks>,
) {
    for cut in cuts(input) {
        let (out, _) = drain(transform(Chunks::new(&cut)));
        assert!(
            out == expected,
            "cut {:?}:\n got {:?}\nwant {:?}",
            cut.iter().map(|c| c.len()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The tags.

/// Tags whose baggage has bytes that HTML escaping changes (`'` stays in percent-encoding).
fn meta() -> TraceMeta {
    let dsc = DynamicSamplingContext::from_baggage([&b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,sentry-release=it's%20%3Cv1%3E%26"[..]]);
    TraceMeta::new(
        "771a43a4192642f0b136d5159a501700"
            .parse()
            .expect("trace id"),
        "b7ad6b7169203331".parse().expect("span id"),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
}

fn inject_with(meta: &TraceMeta) -> impl Fn(Chunks) -> TraceMetaBody<Chunks> + '_ {
    move |body| TraceMetaBody::inject(body, meta)
}

/// Checks the injection into `before` + `after` (the tags go between) at every cut, and that
/// the page parses to exactly the tags, once.
fn check_injected(before: &[u8], after: &[u8]) {
    for meta in [meta(), meta().traceparent(true)] {
        let tags = meta.to_html();
        let input = [before, after].concat();
        let expected = [before, tags.as_bytes(), after].concat();
        check_every_cut(&input, &expected, inject_with(&meta));
        assert_eq!(
            meta_elements(&String::from_utf8_lossy(&expected)),
            expected_elements(&meta)
        );
    }
}

fn check_untouched(page: &[u8]) {
    check_every_cut(page, page, inject_with(&meta()));
}

// ---------------------------------------------------------------------------------------------
// Injection, split anywhere.

#[test]
fn injects_before_head_end_at_every_cut() {
    check_injected(
        b"<!doctype html><html><head><title>Home</title>",
        b"</head><body><p>x</p></body></html>",
    );
    check_injected(
        b"<HTML><HEAD><TITLE>Home</TITLE>",
        b"</HEAD><BODY></BODY></HTML>",
    );
    check_injected(b"<head>", b"</Head >");
    check_injected(b"", b"</head>");
}

#[test]
fn decoys_in_comments_scripts_and_attributes_are_text() {
    check_injected(
        concat!(
            "<html><head><!-- </head> <meta name=\"sentry-trace\" content=\"x\"> -->",
            "<script>if (a </head> b) { document.write('</head>') }</script>",
            "<style>/* </head> */</style><title></head></title>",
            "<link rel=\"x\" href=\"</head>\" title='</head>' data-x=</head>/>",
            "</header></heads>",
        )
        .as_bytes(),
        b"</head><body></body></html>",
    );
}

#[test]
fn bytes_that_are_not_utf8_pass_through() {
    check_injected(
        b"<html><head>\xff\xfe\x00<title>\xc3\x28</title>",
        b"</head><body>\x80\x81\xff</body>",
    );
}

#[test]
fn leaves_pages_without_a_head_end_alone() {
    check_untouched(b"<!doctype html><html><head><title>t</title><body>no end tag</body></head>");
    check_untouched(b"<p>a fragment</p>");
    check_untouched(b"<head></hea");
    check_untouched(b"");
    // A head longer than the 64 KiB the layer looks at.
    let long = [
        &b"<head><title>"[..],
        &vec![b'x'; 64 * 1024],
        b"</title></head>",
    ]
    .concat();
    let (out, _) = drain(TraceMetaBody::inject(Chunks::whole(&long), &meta()));
    assert_eq!(out, long);
}

#[test]
fn never_a_second_copy() {
    let tags = meta().traceparent(true).to_html();
    // Our own output, hand-written tags in any attribute order, quotes or case.
    check_untouched(format!("<html><head>{tags}<title>t</title></head><body></body>").as_bytes());
    check_untouched(b"<head><META content=\"a-b\" NAME='sentry-trace'></head>");
    check_untouched(b"<head><meta name=sentry-trace content=x></head>");

    // Two layers: the second one sees the first one's tags.
    let page = b"<html><head><title>t</title></head><body></body></html>";
    let once = TraceMetaBody::inject(Chunks::whole(page), &meta());
    let twice = TraceMetaBody::inject(once, &meta().traceparent(true));
    let (out, _) = drain(twice);
    let out = String::from_utf8(out).expect("utf-8");
    assert_eq!(meta_elements(&out), expected_elements(&meta()));
}

#[test]
fn injected_head_parses_to_exactly_the_tags() {
    for meta in [meta(), meta().traceparent(true)] {
        let (out, _) = drain(TraceMetaBody::inject(Chunks::whole("<head></head>"), &meta));
        let out = String::from_utf8(out).expect("utf-8");
        let head = out
            .strip_prefix("<head>")
            .and_then(|rest| rest.strip_suffix("</head>"))
            .expect("the same head");
        let expected = expected_elements(&meta);
        let expected: Vec<(&str, &str)> = expected
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_str()))
            .collect();
        assert_head_is_exactly(head, &expected);
    }
}

#[test]
fn trailers_and_errors_pass_through() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("1"));
    let body = Chunks {
        trailers: Some(trailers.clone()),
        ..Chunks::new(["<head></he", "ad>"])
    };
    let (out, got) = drain(TraceMetaBody::inject(body, &meta()));
    assert!(out.starts_with(format!("<head>{}</he", meta().to_html()).as_bytes()));
    assert_eq!(got, Some(trailers));

    // Trailers while `</he` is held back: the held bytes come first.
    let body = Chunks {
        trailers: Some(HeaderMap::new()),
        ..Chunks::new(["<head></he"])
    };
    assert_eq!(drain(TraceMetaBody::inject(body, &meta())).0, b"<head></he");

    let body = Chunks {
        error: Some("reset"),
        ..Chunks::new(["<head>", "<title>"])
    };
    let mut body = pin!(TraceMetaBody::inject(body, &meta()));
    let mut cx = Context::from_waker(Waker::noop());
    let mut seen = Vec::new();
    let error = loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                seen.extend_from_slice(&frame.into_data().unwrap_or_default())
            }
            Poll::Ready(Some(Err(error))) => break error,
            other => panic!("expected an error, got {other:?}"),
        }
    };
    assert_eq!((seen.as_slice(), error), (&b"<head><title>"[..], "reset"));
}

#[test]
fn size_hint_is_exact_once_the_head_is_read() {
    let tags = meta().to_html();
    let mut body = pin!(TraceMetaBody::inject(
        Chunks::new(["<head></head>", "<body>"]),
        &meta()
    ));
    let hint = body.size_hint();
    assert_eq!(
        (hint.lower(), hint.upper()),
        (19, Some(19 + tags.len() as u64))
    );
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(Some(Ok(first))) = body.as_mut().poll_frame(&mut cx) else {
        panic!("a first frame");
    };
    assert_eq!(first.into_data().ok().as_deref(), Some(&b"<head>"[..]));
    assert_eq!(
        body.size_hint().exact(),
        Some((tags.len() + "</head><body>".len()) as u64)
    );
    assert!(!body.is_end_stream());
    let (rest, _) = drain(body);
    assert_eq!(rest, format!("{tags}</head><body>").as_bytes());
}

// ---------------------------------------------------------------------------------------------
// Stripping.

#[test]
fn strips_rendered_tags_at_every_cut() {
    let strip = |body| TraceMetaBody::strip(body);
    for meta in [
        meta(),
        meta().traceparent(true),
        TraceMeta::new(
            "771a43a4192642f0b136d5159a501700"
                .parse()
                .expect("trace id"),
            "b7ad6b7169203331".parse().expect("span id"),
            None,
            None,
        ),
    ] {
        let tags = meta.to_html();
        let page = format!(
            "<!doctype html><html><head>\n  <meta charset=\"utf-8\">\n  {tags}\n  <title>t</title>\n</head><body>{tags}</body></html>"
        );
        // Every trace tag goes, in the head and in the body.
        let expected = "<!doctype html><html><head>\n  <meta charset=\"utf-8\">\n  \n  <title>t</title>\n</head><body></body></html>";
        check_every_cut(page.as_bytes(), expected.as_bytes(), strip);
        assert_eq!(meta_elements(expected).len(), 1);
    }
}

#[test]
fn strip_leaves_everything_else() {
    let strip = |body| TraceMetaBody::strip(body);
    let tags = meta().to_html();
    for page in [
        "<html><head><title>t</title></head><body></body></html>".to_owned(),
        "<head><meta name=\"Sentry-Trace\" content=\"not read by the SDK\"></head>".to_owned(),
        format!("<head><!-- {tags} --><script>'{tags}'</script></head>"),
        format!("<head><template>{tags}</template></head>"),
        "<head>\u{0}\u{7f}<meta name=\"baggage \" content=\"sentry-a=b\"/></head>".to_owned(),
    ] {
        check_every_cut(page.as_bytes(), page.as_bytes(), strip);
    }
    let binary = b"<head>\xff\xfe<meta name=\"sentry-trace\xff\" content=\"\xff\"/></head>";
    check_every_cut(binary, binary, strip);
}

#[test]
fn strips_a_head_longer_than_the_injector_looks() {
    // A page that shared caches may keep must not keep its tags, however late in a long head
    // the template wrote them.
    let tags = meta().to_html();
    let style = format!("<style>{}</style>", "a{}".repeat(30_000));
    let expected = format!("<html><head>{style}\n<title>t</title></head><body></body></html>");
    let page = expected.replace("\n<title>", &format!("\n{tags}<title>"));
    let (out, _) = drain(TraceMetaBody::strip(Chunks::whole(page.as_bytes())));
    assert_eq!(String::from_utf8(out).expect("utf-8"), expected);
}

#[test]
fn strip_trace_meta_wraps_html_responses_only() {
    let tags = meta().to_html();
    let page = format!("<html><head>{tags}</head></html>");
    let response = |content_type: &'static str| {
        Response::builder()
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, page.len())
            .body(Chunks::whole(&page))
            .expect("a response")
    };

    let stripped = strip_trace_meta(response("text/html; charset=utf-8"));
    assert!(!stripped.headers().contains_key(CONTENT_LENGTH));
    assert_eq!(drain(stripped.into_body()).0, b"<html><head></head></html>");

    let json = strip_trace_meta(response("application/json"));
    assert_eq!(json.headers()[CONTENT_LENGTH], page.len().to_string());
    assert_eq!(drain(json.into_body()).0, page.as_bytes());

    let mut gzip = response("text/html");
    gzip.headers_mut()
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    let gzip = strip_trace_meta(gzip);
    assert!(gzip.headers().contains_key(CONTENT_LENGTH));
    assert_eq!(drain(gzip.into_body()).0, page.as_bytes());
}

#[test]
fn stripped_pages_lose_accept_ranges() {
    // A range request would get a range of the page with its tags, at other offsets.
    let tags = meta().to_html();
    let page = format!("<html><head>{tags}</head></html>");
    let response = |content_type: &'static str| {
        Response::builder()
            .header(CONTENT_TYPE, content_type)
            .header("accept-ranges", "bytes")
            .body(Chunks::whole(&page))
            .expect("a response")
    };
    let stripped = strip_trace_meta(response("text/html"));
    assert!(!stripped.headers().contains_key("accept-ranges"));
    // A response the stripper leaves alone keeps it.
    let json = strip_trace_meta(response("application/json"));
    assert_eq!(json.headers()["accept-ranges"], "bytes");
}

// ---------------------------------------------------------------------------------------------
// As a browser reads the page: each case checked at every cut, and against html5ever's reading
// of the page and of the result (`sentry_meta_tests::inject_oracle`).

/// Where the tags go in a page written for a test.
const HERE: &str = "@TAGS@";

/// The tags the tests of this section inject (all three).
fn all_tags() -> TraceMeta {
    meta().traceparent(true)
}

/// The injector's output for `page`, the same at every cut, checked against html5ever.
fn inject_checked(page: &[u8]) -> Vec<u8> {
    let meta = all_tags();
    let (out, _) = drain(TraceMetaBody::inject(Chunks::whole(page), &meta));
    check_every_cut(page, &out, inject_with(&meta));
    check_injection(page, &out, &meta);
    out
}

/// The stripper's output for `page`, the same at every cut, checked against html5ever.
fn strip_checked(page: &[u8]) -> Vec<u8> {
    let (out, _) = drain(TraceMetaBody::strip(Chunks::whole(page)));
    check_every_cut(page, &out, TraceMetaBody::strip);
    check_strip(page, &out);
    out
}

/// Checks that the tags go where `HERE` is in `marked`, and nowhere else.
fn check_tags_go_here(marked: &str) {
    let page = marked.replace(HERE, "");
    let expected = marked.replace(HERE, &all_tags().to_html());
    let out = inject_checked(page.as_bytes());
    assert!(
        out == expected.as_bytes(),
        "{marked:?}: got {:?}",
        String::from_utf8_lossy(&out)
    );
}

fn check_left_alone(page: &[u8]) {
    let out = inject_checked(page);
    assert!(
        out == page,
        "{:?}: got {:?}",
        String::from_utf8_lossy(page),
        String::from_utf8_lossy(&out)
    );
}

/// `text` as UTF-16LE bytes.
fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn pages_with_utf16_or_utf32_byte_order_marks_are_left_alone() {
    // Bytes that spell a head and its end tag, and a trace tag, in ASCII: as ASCII text (no
    // mark), the injector and the stripper change them.
    let spelled = |ascii: &[u8]| {
        let mut bytes = ascii.to_vec();
        // Whole UTF-32 code units.
        bytes.resize(bytes.len().next_multiple_of(4), b' ');
        bytes
    };
    let head_end = spelled(b"<head><title>t</title></head><body></body>");
    let trace_tag = spelled(b"<head><meta name=\"baggage\" content=\"x\"></head>");
    assert_ne!(inject_checked(&head_end), head_end);
    assert_ne!(strip_checked(&trace_tag), trace_tag);
    // After a UTF-16 mark a browser reads them as other characters (`<h` is U+683C): no head
    // end, no meta element. The page is left as it is.
    let units = trace_tag
        .chunks(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let as_utf16le: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    assert!(meta_elements(&as_utf16le).is_empty());
    assert!(!as_utf16le.contains("</head>"));
    for bom in [
        &b"\xFF\xFE"[..],
        b"\xFE\xFF",
        b"\xFF\xFE\0\0",
        b"\0\0\xFE\xFF",
    ] {
        let page = [bom, &head_end].concat();
        assert_eq!(inject_checked(&page), page, "{bom:?}");
        let page = [bom, &trace_tag].concat();
        assert_eq!(strip_checked(&page), page, "{bom:?}");
    }
    // A page really written in UTF-16, with the tags the stripper would take out as ASCII.
    let tags = all_tags().to_html();
    let page = utf16le(&format!(
        "\u{feff}<html><head>{tags}</head><body></body></html>"
    ));
    assert_eq!(inject_checked(&page), page);
    assert_eq!(strip_checked(&page), page);
}

#[test]
fn utf8_is_read_as_ascii_text() {
    // UTF-8's byte-order mark.
    check_tags_go_here("\u{feff}<!doctype html><html><head><title>t</title>@TAGS@</head></html>");
    // A `<meta charset>` never makes a page UTF-16: a browser reads such a declaration as UTF-8
    // (HTML §13.2.3.2, "prescan": "If charset is UTF-16BE/LE, then set charset to UTF-8"), and
    // it knows no UTF-32.
    check_tags_go_here("<html><head><meta charset=\"utf-16\">@TAGS@</head></html>");
    check_tags_go_here(
        "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-32\">\
         @TAGS@</head></html>",
    );
}

#[test]
fn pages_that_declare_an_encoding_without_ascii_are_left_alone() {
    // ISO-2022-JP: between `ESC $ B` and `ESC ( B`, bytes that spell `</head>>` are four kanji.
    let jis = "\x1b$B</head>>\x1b(B";
    for declaration in [
        "<meta charset=\"ISO-2022-JP\">",
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-2022-jp\">",
        "<meta content='text/html;charset=\"csISO2022JP\"' http-equiv=content-type>",
        // Replacement: the whole page reads as one U+FFFD.
        "<meta charset=iso-2022-kr>",
        "<meta charset=hz-gb-2312>",
    ] {
        check_left_alone(
            format!("<html><head>{declaration}<title>t</title>{jis}</head></html>").as_bytes(),
        );
        check_left_alone(format!("<html><head>{declaration}</head></html>").as_bytes());
    }
    // ASCII-compatible, or not a declaration the browser reads.
    for declaration in [
        "<meta charset=shift_jis>",
        "<meta charset=euc-jp>",
        "<meta content=\"text/html; charset=iso-2022-jp\">",
        "<template><meta charset=iso-2022-jp></template>",
        "<!--<meta charset=iso-2022-jp>-->",
    ] {
        check_tags_go_here(&format!("<html><head>{declaration}@TAGS@</head></html>"));
    }
}

#[test]
fn trace_tags_are_what_the_browser_sdk_reads() {
    // `document.querySelector('meta[name="sentry-trace"]')` finds none of these (html5ever
    // agrees): the page gets the tags.
    for marked in [
        "<head><meta name=\"Sentry-Trace\" content=\"x\">@TAGS@</head>",
        "<head><META NAME=\"SENTRY-TRACE\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\" sentry-trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry-trace \" content=\"x\">@TAGS@</head>",
        // `&hyphen;` and `&dash;` are U+2010, not `-`.
        "<head><meta name=\"sentry&hyphen;trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry&dash;trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry&#8208;trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry&#x2d0;trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry&amp;trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"sentry&#0;trace\" content=\"x\">@TAGS@</head>",
        // A browser keeps the first `name` and drops the others.
        "<head><meta name=\"description\" name=\"sentry-trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name name=\"sentry-trace\" content=\"x\">@TAGS@</head>",
        "<head><meta name=\"baggage/\" NAME=baggage>@TAGS@</head>",
        // Not a `<meta>` start tag, or not in the document.
        "<head><link name=\"sentry-trace\">@TAGS@</head>",
        "<head><meta property=\"sentry-trace\">@TAGS@</head>",
        "<head></meta name=\"sentry-trace\">@TAGS@</head>",
        "<head><template><meta name=\"sentry-trace\" content=\"x\"></template>@TAGS@</head>",
        "<head><noscript><meta name=\"sentry-trace\" content=\"x\"></noscript>@TAGS@</head>",
    ] {
        let page = marked.replace(HERE, "");
        assert_eq!(browser_trace_meta(&page), [], "{page:?}");
        check_tags_go_here(marked);
    }
    // It finds the page's own in these: no second copy, no mix of the page's and ours.
    for page in [
        "<head><meta name=\"sentry-trace\" content=\"x\"></head>",
        "<head><META NAME='sentry-trace' CONTENT=x></head>",
        "<head><meta NaMe=sentry-trace content=x></head>",
        "<head><meta name=\"sentry&#45;trace\" content=\"x\"></head>",
        "<head><meta name=\"sentry&#x2D;trace\" content=\"x\"></head>",
        "<head><meta name=\"sentry&#0045trace\" content=\"x\"></head>",
        "<head><meta name=\"&#115;entry-trac&#x65;\" content=\"x\"></head>",
        "<head><meta name=sentry-trace name=description content=x></head>",
        "<head><meta name=\"baggage\" content=\"sentry-trace_id=x\"></head>",
        "<head><meta name=\"traceparent\" content=\"00-x\"></head>",
        "<head><template></template><meta name=\"sentry-trace\" content=\"x\"></head>",
        "<head><script><!--</script><meta name=\"sentry-trace\" content=\"x\"></head>",
    ] {
        assert_ne!(browser_trace_meta(page), [], "{page:?}");
        check_left_alone(page.as_bytes());
    }
}

#[test]
fn a_traceparent_tag_is_a_copy_only_of_tags_that_hold_one() {
    // A page that carries a W3C `traceparent` (for OpenTelemetry in the browser) gets the Sentry
    // tags, which the Sentry SDK reads; it keeps the only `traceparent`.
    let page = "<head><meta name=\"traceparent\" content=\"00-x\"></head>";
    let tags = meta().to_html();
    check_every_cut(
        page.as_bytes(),
        page.replace("</head>", &format!("{tags}</head>"))
            .as_bytes(),
        inject_with(&meta()),
    );
    let (out, _) = drain(TraceMetaBody::inject(Chunks::whole(page), &meta()));
    check_injection(page.as_bytes(), &out, &meta());
    // With a `traceparent` of ours, it would have two: it is left alone.
    check_left_alone(page.as_bytes());

    // Stripping the injected page gives the stripped page: the line break after the page's tag
    // is not one within a block of ours (the `inject` fuzz target found it taken out).
    let page = "<head><meta name=\"traceparent\" content=\"00-x\">\n</head>";
    let (injected, _) = drain(TraceMetaBody::inject(Chunks::whole(page), &meta()));
    assert_eq!(strip_checked(&injected), b"<head>\n</head>");
    assert_eq!(strip_checked(page.as_bytes()), b"<head>\n</head>");
}

#[test]
fn head_end_tags_inside_scripts_and_templates_are_text() {
    // `<!--<script>` in a script double-escapes it: `</script>` only undoes that, and the
    // script goes on to the `</script>` after `-->`.
    let page = "<head><script><!--<script></script></head>--></script></head><body></body>";
    check_tags_go_here(
        "<head><script><!--<script></script></head>--></script>@TAGS@</head><body></body>",
    );
    let out = String::from_utf8(inject_checked(page.as_bytes())).expect("utf-8");
    let document = scraper::Html::parse_document(&out);
    let script = scraper::Selector::parse("script").expect("selector");
    let text: Vec<String> = document
        .select(&script)
        .map(|s| s.text().collect())
        .collect();
    assert_eq!(text, ["<!--<script></script></head>-->"]);

    for marked in [
        "<head><script><!-- <script> --></head></script>@TAGS@</head>",
        "<head><script><!--<script></script>--></head></script>@TAGS@</head>",
        "<head><script><!--</script>@TAGS@</head>",
        "<head><script><!--<script</script>@TAGS@</head>",
        "<head><template></head></template>@TAGS@</head>",
        "<head><template><template></template></head></template>@TAGS@</head>",
        "<head><template><p></head></template>@TAGS@</head>",
        "<head></template>@TAGS@</head>",
    ] {
        check_tags_go_here(marked);
    }
    for page in [
        "<head><script><!--<script></script></head>-->",
        "<head><script><!--<script></script></head>--></head>",
        "<head><script><!--<script></head></script></head>",
        "<head><template></head>",
        "<head><template><body></head>",
        "<head><plaintext></head>",
    ] {
        check_left_alone(page.as_bytes());
    }
    // Every element whose content is text, as a browser with scripting enabled reads it.
    for element in [
        "title", "textarea", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "script",
    ] {
        check_tags_go_here(&format!(
            "<head><{element}></head><meta name=sentry-trace></{element}>@TAGS@</head>"
        ));
    }
}

#[test]
fn strips_the_trace_tags_the_browser_sdk_reads() {
    let page = concat!(
        "<!doctype html><html><head>\n",
        "<meta name=\"sentry-trace\" content=\"hand-written\">\n",
        "<META content='x' NAME=baggage >\n",
        "<meta name=\"sentry&#45;trace\" content=\"y\">",
        "<meta name=\"Sentry-Trace\" content=\"kept\">",
        "<meta name=\"sentry&hyphen;trace\" content=\"kept\">",
        "<meta name=\"description\" name=\"sentry-trace\" content=\"kept\">",
        "<template><meta name=\"baggage\" content=\"kept\"></template>",
        "<title>t</title></head>\n",
        "<meta name=\"traceparent\" content=\"z\">\n",
        "<body><meta name=\"sentry-trace\" content=\"in the body\"></body></html>",
    );
    let expected = concat!(
        "<!doctype html><html><head>\n",
        // The line break between two tags of a block goes with them; one before a new
        // `sentry-trace` does not.
        "\n",
        "<meta name=\"Sentry-Trace\" content=\"kept\">",
        "<meta name=\"sentry&hyphen;trace\" content=\"kept\">",
        "<meta name=\"description\" name=\"sentry-trace\" content=\"kept\">",
        "<template><meta name=\"baggage\" content=\"kept\"></template>",
        "<title>t</title></head>\n",
        "\n",
        "<body></body></html>",
    );
    assert_eq!(strip_checked(page.as_bytes()), expected.as_bytes());
    let pair = |n: &str, c: &str| (n.to_owned(), c.to_owned());
    assert_eq!(
        head_trace_meta_elements(page),
        [
            pair("sentry-trace", "hand-written"),
            pair("baggage", "x"),
            pair("sentry-trace", "y"),
            pair("traceparent", "z"),
        ]
    );
    assert_eq!(trace_meta_elements(page).len(), 5);
    assert_eq!(trace_meta_elements(expected), []);
}

#[test]
fn strips_trace_tags_between_head_and_body() {
    for meta in [meta(), all_tags()] {
        let tags = meta.to_html();
        let page =
            format!("<html><head><title>t</title></head>\n{tags}\n<body>{tags}</body></html>");
        // The tree builder moves the tags after `</head>` into the head ("after head").
        assert_eq!(head_trace_meta_elements(&page), expected_elements(&meta));
        let expected = "<html><head><title>t</title></head>\n\n<body></body></html>";
        assert_eq!(strip_checked(page.as_bytes()), expected.as_bytes());
        assert_eq!(meta_elements(expected), []);
    }
}

#[test]
fn stripping_an_injected_page_gives_it_back() {
    for page in [
        "<html><head><title>t</title></head><body></body></html>",
        "<head><script><!--<script></script></head>--></script></head>",
        "<head><template></head></template></head>\n<meta name=baggage>",
    ] {
        let injected = inject_checked(page.as_bytes());
        assert_ne!(injected, page.as_bytes());
        assert_eq!(strip_checked(&injected), strip_checked(page.as_bytes()));
    }
}

/// Pieces of generated pages: what a browser reads as text or leaves out of the document, and
/// trace tags that the browser SDK reads or not; `</head>` tags go between them. The first
/// ones, which make the states that are hardest to get right, come up more often.
const PIECES: &[&str] = &[
    "<script>",
    "<script><!--",
    "<!--<script>",
    "</script>",
    "<!--",
    "-->",
    "<template>",
    "</template>",
    "<title>",
    "</title>",
    // The others.
    "<script",
    ">",
    "<meta name=\"sentry-trace\" content=\"x\">",
    "<meta name=\"sentry&#45;trace\" content=y>",
    "<meta name=baggage content=b>",
    "<meta name=Sentry-Trace content=x>",
    "<meta name=\"sentry&hyphen;trace\">",
    "<meta name=x name=baggage>",
    "<meta content=\"c\" NAME=traceparent>",
    "<meta charset=utf-16>",
    "<meta charset=iso-2022-jp>",
    "<head>",
    "</HEAD >",
    "<!-",
    "--!>",
    "<style>",
    "</style>",
    "<textarea>",
    "</textarea>",
    "<noscript>",
    "</noscript>",
    "<body>",
    "<svg>",
    "\n",
    " ",
    "x",
    "<",
    "&",
    "\"",
    "'",
    "=",
    "/",
    "<a title=\"",
    "<a b=",
    "\u{feff}",
];

fn piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => prop::sample::select(&PIECES[..10]),
        1 => prop::sample::select(PIECES),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Pages made of [`PIECES`] with `</head>` tags between them, after a byte-order mark or
    /// not, cut anywhere: the injector and the stripper agree with html5ever's reading of them.
    #[test]
    fn generated_pages_are_read_as_a_browser_reads_them(
        mut pieces in prop::collection::vec(piece(), 0..16),
        head_ends in prop::collection::vec(any::<prop::sample::Index>(), 1..3),
        bom in prop::sample::select(vec![&b""[..], b"\xFF\xFE", b"\xFE\xFF", b"\xEF\xBB\xBF"]),
        lengths in prop::collection::vec(1..48usize, 0..6),
    ) {
        for at in head_ends {
            let at = at.index(pieces.len() + 1);
            pieces.insert(at, "</head>");
        }
        let page = [bom, pieces.concat().as_bytes()].concat();
        let mut chunks = Vec::new();
        let mut rest = page.as_slice();
        for len in lengths {
            let (chunk, tail) = rest.split_at(len.min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks.push(rest);
        let meta = all_tags();
        let (whole, _) = drain(TraceMetaBody::inject(Chunks::whole(&page), &meta));
        let (cut, _) = drain(TraceMetaBody::inject(Chunks::new(&chunks), &meta));
        prop_assert_eq!(&cut, &whole);
        check_injection(&page, &whole, &meta);
        let (stripped, _) = drain(TraceMetaBody::strip(Chunks::whole(&page)));
        let (cut, _) = drain(TraceMetaBody::strip(Chunks::new(&chunks)));
        prop_assert_eq!(&cut, &stripped);
        check_strip(&page, &stripped);
        // Stripping the injected page takes out the tags again (unless they follow a `<`
        // that is text: they are in the body then, and stay).
        if let Some(at) = insertion_point(&page, &whole, meta.to_html().as_bytes())
            && !page[..at].ends_with(b"<")
        {
            let (again, _) = drain(TraceMetaBody::strip(Chunks::whole(&whole)));
            prop_assert_eq!(again, stripped);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The layer, in a tower stack.

const PAGE: &str = "<!doctype html><html><head><title>t</title></head><body>x</body></html>";

fn fixed_source() -> impl TraceMetaSource + Clone + Send + Sync + 'static {
    |_: &Parts| meta()
}

/// The response `layer` makes of `response` to a `method` request: its head and its body.
async fn through(
    layer: InjectTraceMetaLayer<impl TraceMetaSource + Clone + Send + Sync + 'static>,
    method: Method,
    response: Response<Chunks>,
) -> (Parts, Vec<u8>) {
    let response = Arc::new(std::sync::Mutex::new(Some(response)));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |_: Request<()>| {
            let response = response.lock().expect("not poisoned").take();
            async move { Ok::<_, Infallible>(response.expect("one request")) }
        }));
    let request = Request::builder()
        .method(method)
        .body(())
        .expect("a request");
    let (parts, body) = service
        .oneshot(request)
        .await
        .expect("infallible")
        .into_parts();
    (parts, drain(body).0)
}

fn html(status: StatusCode, headers: &[(&str, &str)], page: &str) -> Response<Chunks> {
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_LENGTH, page.len());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Chunks::whole(page)).expect("a response")
}

fn injected_page() -> String {
    PAGE.replace("</head>", &format!("{}</head>", meta().to_html()))
}

#[tokio::test]
async fn content_types() {
    let layer = || InjectTraceMetaLayer::new().with_source(fixed_source());
    for content_type in [
        "text/html; charset=utf-8",
        "text/html",
        "TEXT/HTML ;charset=UTF-8",
        "application/xhtml+xml",
    ] {
        let response = html(StatusCode::OK, &[("content-type", content_type)], PAGE);
        let (parts, body) = through(layer(), Method::GET, response).await;
        assert_eq!(String::from_utf8(body).expect("utf-8"), injected_page());
        assert!(
            !parts.headers.contains_key(CONTENT_LENGTH),
            "{content_type}"
        );
    }
    for content_type in ["application/json", "text/plain", "text/htmlx", ""] {
        let headers: &[(&str, &str)] = if content_type.is_empty() {
            &[]
        } else {
            &[("content-type", content_type)]
        };
        let response = html(StatusCode::OK, headers, PAGE);
        let (parts, body) = through(layer(), Method::GET, response).await;
        assert_eq!(body, PAGE.as_bytes(), "{content_type}");
        assert_eq!(parts.headers[CONTENT_LENGTH], PAGE.len().to_string());
    }
}

#[tokio::test]
async fn responses_left_untouched() {
    let layer = || InjectTraceMetaLayer::new().with_source(fixed_source());
    let html_type = ("content-type", "text/html");
    for (method, status, headers) in [
        (
            Method::GET,
            StatusCode::OK,
            vec![html_type, ("content-encoding", "gzip")],
        ),
        (
            Method::GET,
            StatusCode::OK,
            vec![html_type, ("content-encoding", "identity, br")],
        ),
        (
            Method::GET,
            StatusCode::OK,
            vec![html_type, ("cache-control", "public, max-age=60")],
        ),
        (
            Method::GET,
            StatusCode::OK,
            vec![html_type, ("cache-control", "s-maxage=60")],
        ),
        (
            Method::GET,
            StatusCode::PARTIAL_CONTENT,
            vec![html_type, ("content-range", "bytes 0-9/99")],
        ),
        (Method::GET, StatusCode::NOT_MODIFIED, vec![html_type]),
        (Method::GET, StatusCode::NO_CONTENT, vec![html_type]),
        (
            Method::GET,
            StatusCode::OK,
            vec![("content-type", "text/html; charset=utf-16")],
        ),
    ] {
        let response = html(status, &headers, PAGE);
        let (parts, body) = through(layer(), method.clone(), response).await;
        assert_eq!(body, PAGE.as_bytes(), "{method} {status} {headers:?}");
        assert_eq!(parts.headers[CONTENT_LENGTH], PAGE.len().to_string());
    }

    // Injected where asked for, or where the cache only keeps it privately.
    for (layer, cache_control) in [
        (layer().allow_cacheable(true), "public, max-age=60"),
        (layer(), "private, max-age=60"),
        (layer(), "no-store"),
    ] {
        let response = html(
            StatusCode::OK,
            &[html_type, ("cache-control", cache_control)],
            PAGE,
        );
        let (parts, body) = through(layer, Method::GET, response).await;
        assert_eq!(String::from_utf8(body).expect("utf-8"), injected_page());
        assert_eq!(parts.headers[CACHE_CONTROL], cache_control);
    }

    // Error pages get the tags too.
    let response = html(StatusCode::NOT_FOUND, &[html_type], PAGE);
    let (_, body) = through(layer(), Method::GET, response).await;
    assert_eq!(String::from_utf8(body).expect("utf-8"), injected_page());
}

#[tokio::test]
async fn no_tags_no_change() {
    // Without a Sentry client, the default source has no tags: the response is untouched.
    let response = html(StatusCode::OK, &[("content-type", "text/html")], PAGE);
    let (parts, body) = through(InjectTraceMetaLayer::new(), Method::GET, response).await;
    assert_eq!(body, PAGE.as_bytes());
    assert_eq!(parts.headers[CONTENT_LENGTH], PAGE.len().to_string());

    let none = InjectTraceMetaLayer::new().with_source(|_: &Parts| SentryMeta::none());
    let response = html(StatusCode::OK, &[("content-type", "text/html")], PAGE);
    let (parts, body) = through(none, Method::GET, response).await;
    assert_eq!(body, PAGE.as_bytes());
    assert!(parts.headers.contains_key(CONTENT_LENGTH));
}

#[tokio::test]
async fn source_sees_the_response() {
    // A handler's own value, passed in the response's extensions.
    let from_extensions = InjectTraceMetaLayer::new()
        .with_source(|response: &Parts| response.extensions.get::<TraceMeta>().cloned());
    let mut response = html(StatusCode::OK, &[("content-type", "text/html")], PAGE);
    response.extensions_mut().insert(meta());
    let (_, body) = through(from_extensions, Method::GET, response).await;
    assert_eq!(String::from_utf8(body).expect("utf-8"), injected_page());
}

#[tokio::test]
async fn two_layers_inject_once() {
    let service = ServiceBuilder::new()
        .layer(InjectTraceMetaLayer::new().with_source(fixed_source()))
        .layer(InjectTraceMetaLayer::new().with_source(|_: &Parts| meta().traceparent(true)))
        .service(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(html(StatusCode::OK, &[("content-type", "text/html")], PAGE))
        }));
    let response = service.oneshot(Request::new(())).await.expect("infallible");
    let page = String::from_utf8(drain(response.into_body()).0).expect("utf-8");
    assert_eq!(
        meta_elements(&page),
        expected_elements(&meta().traceparent(true))
    );
}

#[tokio::test]
async fn declared_charsets_that_are_not_ascii_text() {
    let layer = || InjectTraceMetaLayer::new().with_source(fixed_source());
    let tagged = injected_page();
    for content_type in [
        "text/html; charset=utf-16",
        "text/html;charset=UTF-16LE",
        "text/html; charset=\"utf-16be\"",
        "text/html; charset=unicode",
        "text/html; Charset = UCS-2",
        "text/html; charset=utf-32",
        "text/html; charset=iso-2022-jp",
        "text/html; charset=ISO-2022-KR",
        "text/html; q=\"a\"; charset=utf-16",
        // Quoted values are read as browsers read them: unescaped, a `;` in quotes kept, a
        // quote left open running to the end, white space before the quote skipped.
        "text/html; charset=\"utf\\-16\"",
        "text/html; charset=\"\\u\\t\\f\\-\\1\\6\"; x=y",
        "text/html; q=\"a;b\\\";c\"; charset=utf-16",
        "text/html; q=\"a;b\"; charset=\"utf-16",
        "text/html; charset= \t\"utf-16\"",
        // Where browsers differ, any `charset` counts, its label ending at `,` or white space.
        "text/html; charset= ; charset=utf-16",
        "text/html; charset=utf-8; charset=utf-16",
        "text/html; charset =utf-8; charset=utf-16",
        "text/html; charset=utf-16, text/html",
        "text/html; charset=utf-16 x",
    ] {
        let headers = [("content-type", content_type), ("etag", "\"v1\"")];
        let (parts, body) =
            through(layer(), Method::GET, html(StatusCode::OK, &headers, PAGE)).await;
        assert_eq!(body, PAGE.as_bytes(), "{content_type}");
        assert_eq!(parts.headers[CONTENT_LENGTH], PAGE.len().to_string());
        assert_eq!(parts.headers[ETAG], "\"v1\"");
        let stripped = strip_trace_meta(html(StatusCode::OK, &headers, &tagged));
        assert!(stripped.headers().contains_key(CONTENT_LENGTH));
        assert_eq!(drain(stripped.into_body()).0, tagged.as_bytes());
    }
    for content_type in [
        "text/html; charset=utf-8",
        "text/html; charset=windows-1252",
        "text/html; charset=shift_jis",
        "text/html; charset=utf-16x",
        "text/html; profile=utf-16",
        "text/html; charset=",
        "text/html; q=\"a;charset=utf-16\"; charset=utf-8",
        "text/html; charset=\"utf-16\\\"",
        "text/html; charset=\"utf\\\\-16\"",
    ] {
        let headers = [("content-type", content_type)];
        let (_, body) = through(layer(), Method::GET, html(StatusCode::OK, &headers, PAGE)).await;
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            injected_page(),
            "{content_type}"
        );
    }
}

#[tokio::test]
async fn head_requests_get_the_headers_of_get() {
    let layer = || InjectTraceMetaLayer::new().with_source(fixed_source());
    let headers = [("content-type", "text/html"), ("etag", "\"v1\"")];
    let (get, _) = through(layer(), Method::GET, html(StatusCode::OK, &headers, PAGE)).await;
    let (head, _) = through(layer(), Method::HEAD, html(StatusCode::OK, &headers, PAGE)).await;
    assert_eq!(head.headers, get.headers);
    assert!(!head.headers.contains_key(CONTENT_LENGTH));
    assert!(!head.headers.contains_key(ETAG));

    // A handler that answers HEAD itself, with the length of its page and no body.
    let empty = Response::builder()
        .header(CONTENT_TYPE, "text/html")
        .header(CONTENT_LENGTH, PAGE.len())
        .body(Chunks::default())
        .expect("a response");
    let (head, body) = through(layer(), Method::HEAD, empty).await;
    assert!(!head.headers.contains_key(CONTENT_LENGTH));
    assert_eq!(body, b"");

    // An empty page gets no tags, and keeps its length: the same for HEAD, whether its
    // response has the empty body of GET's or only its `Content-Length`.
    for length in [true, false] {
        let empty = || {
            let response = Response::builder().header(CONTENT_TYPE, "text/html");
            let response = if length {
                response.header(CONTENT_LENGTH, 0)
            } else {
                response
            };
            response.body(Chunks::whole("")).expect("a response")
        };
        let (get, _) = through(layer(), Method::GET, empty()).await;
        let (head, _) = through(layer(), Method::HEAD, empty()).await;
        assert_eq!(head.headers, get.headers, "Content-Length: {length}");
    }

    // What GET leaves alone, HEAD does too.
    for headers in [
        vec![("content-type", "text/plain")],
        vec![
            ("content-type", "text/html"),
            ("cache-control", "public, max-age=60"),
        ],
        vec![("content-type", "text/html; charset=utf-16")],
        vec![("content-type", "text/html"), ("content-encoding", "gzip")],
    ] {
        let (head, _) = through(layer(), Method::HEAD, html(StatusCode::OK, &headers, PAGE)).await;
        assert_eq!(
            head.headers[CONTENT_LENGTH],
            PAGE.len().to_string(),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn the_cache_guard_gives_head_the_headers_of_get() {
    // A publicly cacheable page: SentryMetaLayer strips GET's (its length and ranges change),
    // and gives HEAD the same headers, from a handler that answers HEAD itself too.
    let mut answers = Vec::new();
    for (method, body) in [(Method::GET, PAGE), (Method::HEAD, ""), (Method::GET, "")] {
        let service = ServiceBuilder::new()
            .layer(SentryMetaLayer::new())
            .service(service_fn(move |_: Request<()>| async move {
                let response = Response::builder()
                    .header(CONTENT_TYPE, "text/html")
                    .header(CACHE_CONTROL, "public, max-age=60")
                    .header(CONTENT_LENGTH, PAGE.len())
                    .header("accept-ranges", "bytes")
                    .body(Chunks::whole(body));
                Ok::<_, Infallible>(response.expect("a response"))
            }));
        let request = Request::builder()
            .method(method)
            .body(())
            .expect("a request");
        let response = service.oneshot(request).await.expect("infallible");
        answers.push(response.headers().clone());
    }
    let [get, head, empty_get] = &answers[..] else {
        unreachable!()
    };
    assert!(!get.contains_key(CONTENT_LENGTH), "{get:?}");
    assert!(!get.contains_key("accept-ranges"), "{get:?}");
    assert_eq!(head, get);
    // A GET answered with an empty body has nothing to strip: its headers stay.
    assert_eq!(empty_get[CONTENT_LENGTH], PAGE.len().to_string());
}

// ---------------------------------------------------------------------------------------------
// A real server.

struct Served {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Served {
    fn start(app: Router, on_thread_start: impl Fn() + Send + Sync + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(on_thread_start)
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            runtime,
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// Status, headers and body of `method path`; checks that a `Content-Length`, if any,
    /// is the body's length.
    fn fetch(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = format!("http://{}{path}", self.addr);
        let request = self.http.request(method.clone(), url);
        self.runtime.block_on(async move {
            let response = request.send().await.expect("a response");
            let (status, headers) = (response.status().as_u16(), response.headers().clone());
            let body = response.bytes().await.expect("a body").to_vec();
            if let Some(length) = headers.get(CONTENT_LENGTH)
                && method != reqwest::Method::HEAD
            {
                assert_eq!(
                    length.to_str().ok(),
                    Some(body.len().to_string().as_str()),
                    "{path}"
                );
            }
            (status, headers, body)
        })
    }

    fn get(&self, path: &str) -> String {
        let (status, _, body) = self.fetch(reqwest::Method::GET, path);
        assert_eq!(status, 200, "{path}");
        String::from_utf8(body).expect("utf-8")
    }
}

/// A page streamed in pieces, `</head>` split across them.
fn streamed_page() -> AxumBody {
    let pieces = [
        "<!doctype html><html><head><title>t</title></he",
        "ad",
        "><body>",
        "x</body></html>",
    ];
    AxumBody::from_stream(futures_util::stream::iter(
        pieces.map(|p| Ok::<_, Infallible>(Bytes::from_static(p.as_bytes()))),
    ))
}

fn pages() -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/stream",
            get(|| async {
                (
                    [(CONTENT_TYPE, "text/html; charset=utf-8")],
                    streamed_page(),
                )
            }),
        )
        .route(
            "/json",
            get(|| async { ([(CONTENT_TYPE, "application/json")], PAGE) }),
        )
        .route(
            "/cached",
            get(|| async { ([(CACHE_CONTROL, "public, max-age=600")], Html(PAGE)) }),
        )
        .route(
            "/tagged",
            get(|| async {
                Html(PAGE.replace("</head>", &format!("{}</head>", meta().to_html())))
            }),
        )
}

#[test]
fn real_server_with_an_explicit_source() {
    let app = pages().layer(InjectTraceMetaLayer::new().with_source(fixed_source()));
    let server = Served::start(app, || {});

    let expected = expected_elements(&meta());
    for path in ["/", "/stream", "/tagged"] {
        let page = server.get(path);
        assert_eq!(meta_elements(&page), expected, "{path}: {page}");
        assert!(
            page.ends_with("</head><body>x</body></html>"),
            "{path}: {page}"
        );
    }
    assert_eq!(server.get("/stream"), injected_page());
    assert_eq!(server.get("/"), injected_page());

    // Untouched, with their lengths.
    assert_eq!(server.get("/cached"), PAGE);
    let (_, headers, body) = server.fetch(reqwest::Method::GET, "/json");
    assert_eq!(headers[CONTENT_LENGTH], body.len().to_string());
    assert!(meta_elements(&String::from_utf8_lossy(&body)).is_empty());
    // HEAD gets the headers of GET: no length for a page that gets tags (not that of the page
    // without them), the length of one that does not.
    let (status, headers, body) = server.fetch(reqwest::Method::HEAD, "/");
    assert_eq!((status, body.len()), (200, 0));
    assert!(!headers.contains_key(CONTENT_LENGTH), "{headers:?}");
    let (_, get_headers, _) = server.fetch(reqwest::Method::GET, "/");
    assert!(!get_headers.contains_key(CONTENT_LENGTH), "{get_headers:?}");
    for path in ["/json", "/cached"] {
        let (status, headers, body) = server.fetch(reqwest::Method::HEAD, path);
        assert_eq!((status, body.len()), (200, 0));
        assert_eq!(headers[CONTENT_LENGTH], PAGE.len().to_string(), "{path}");
    }
}

#[test]
fn real_server_with_sentry_names_the_sent_transaction() {
    let _ = Hub::main();
    let transport = TestTransport::new();
    let client = Arc::new(Client::from(
        ClientOptions::new()
            .dsn("https://4f1c2d3e4b5a69788796a5b4c3d2e1f0@o42.ingest.sentry.io/7")
            .traces_sample_rate(1.0)
            .transport(transport.clone()),
    ));
    let app = pages().layer(
        ServiceBuilder::new()
            .layer(sentry_tower::NewSentryLayer::<Request<AxumBody>>::new_from_top())
            .layer(sentry_tower::SentryHttpLayer::new().enable_transaction())
            .layer(InjectTraceMetaLayer::new()),
    );
    let server = Served::start(app, move || {
        Hub::current().bind_client(Some(client.clone()));
    });

    let pages: Vec<String> = ["/", "/stream"]
        .iter()
        .map(|path| server.get(path))
        .collect();
    let sent: Vec<(String, String)> = transport
        .fetch_and_clear_envelopes()
        .iter()
        .flat_map(|envelope| envelope.items())
        .filter_map(|item| match item {
            EnvelopeItem::Transaction(tx) => match tx.contexts.get("trace") {
                Some(SentryContext::Trace(trace)) => {
                    Some((trace.trace_id.to_string(), trace.span_id.to_string()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (page, (trace_id, span_id)) in pages.iter().zip(&sent) {
        let metas = meta_elements(page);
        assert_eq!(metas.len(), 2, "{page}");
        assert_eq!(
            metas[0],
            ("sentry-trace".to_owned(), format!("{trace_id}-{span_id}-1"))
        );
        let dsc = DynamicSamplingContext::from_baggage([metas[1].1.as_bytes()]);
        assert_eq!(
            dsc.trace_id().map(|t| t.to_string()).as_ref(),
            Some(trace_id)
        );
    }
    assert_ne!(sent[0].0, sent[1].0, "each request its own trace");
}

/// The page `GET /` through `app` answers, with a Sentry client on this thread's Hub that
/// sends to `transport`, or the panic message.
fn get_page(app: Router, transport: Arc<TestTransport>) -> Result<String, String> {
    let client = Arc::new(Client::from(
        ClientOptions::new()
            .dsn("https://4f1c2d3e4b5a69788796a5b4c3d2e1f0@o42.ingest.sentry.io/7")
            .traces_sample_rate(1.0)
            .transport(transport),
    ));
    let hub = Arc::new(Hub::new_from_top(Hub::current()));
    hub.bind_client(Some(client));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let request = Request::get("/")
        .body(AxumBody::empty())
        .expect("a request");
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Hub::run(hub, || {
            runtime.block_on(async {
                let response = app.oneshot(request).await.expect("infallible");
                axum::body::to_bytes(response.into_body(), usize::MAX).await
            })
        })
    }));
    match answered {
        Ok(body) => Ok(String::from_utf8(body.expect("a body").to_vec()).expect("utf-8")),
        Err(panic) => Err(match panic.downcast::<String>() {
            Ok(message) => *message,
            Err(panic) => panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }),
    }
}

/// The panic message of `GET /` through `app`, or `None` if it answered.
fn setup_panic(app: Router) -> Option<String> {
    get_page(app, TestTransport::new()).err()
}

/// Runs the inner service's future on a task of its own, as `tower::buffer` does: outside the
/// request's Hub and trace root.
#[derive(Clone)]
struct Spawned<S>(S);

impl<S, R> tower::Service<R> for Spawned<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let task = tokio::spawn(self.0.call(request));
        Box::pin(async move { task.await.expect("the task ran") })
    }
}

#[test]
fn the_injector_takes_the_root_from_the_request() {
    // A layer between moves the page's future to another task: the injector finds the root in
    // the request's extensions, and the page names the request's transaction.
    let transport = TestTransport::new();
    let app = pages().layer(
        ServiceBuilder::new()
            .layer(sentry_tower::NewSentryLayer::<Request<AxumBody>>::new_from_top())
            .layer(SentryMetaLayer::new())
            .layer(tower::layer::layer_fn(Spawned))
            .layer(InjectTraceMetaLayer::new()),
    );
    let page = get_page(app, transport.clone()).expect("an answer");
    let sent: Vec<_> = transactions(transport.fetch_and_clear_envelopes())
        .iter()
        .filter_map(|tx| match tx.contexts.get("trace") {
            Some(SentryContext::Trace(trace)) => {
                Some(format!("{}-{}-1", trace.trace_id, trace.span_id))
            }
            _ => None,
        })
        .collect();
    let metas = meta_elements(&page);
    assert_eq!(metas.len(), 2, "{page}");
    assert_eq!(sent, [metas[0].1.clone()], "{page}");
}

#[test]
fn an_injector_outside_the_request_root_is_a_setup_problem() {
    // Outside SentryMetaLayer the request's transaction has finished and its root is gone: the
    // tags would name a trace that no server span belongs to.
    let hub = || sentry_tower::NewSentryLayer::<Request<AxumBody>>::new_from_top();
    let wrong = [
        (
            "outside SentryMetaLayer",
            pages().layer(
                ServiceBuilder::new()
                    .layer(hub())
                    .layer(InjectTraceMetaLayer::new())
                    .layer(SentryMetaLayer::new()),
            ),
        ),
        (
            "outside NewSentryLayer",
            pages().layer(
                ServiceBuilder::new()
                    .layer(InjectTraceMetaLayer::new())
                    .layer(hub())
                    .layer(SentryMetaLayer::new()),
            ),
        ),
        (
            "without SentryMetaLayer or a transaction",
            pages().layer(
                ServiceBuilder::new()
                    .layer(hub())
                    .layer(InjectTraceMetaLayer::new()),
            ),
        ),
    ];
    for (setup, app) in wrong {
        let panic = setup_panic(app).unwrap_or_else(|| panic!("{setup}: no panic"));
        assert!(
            panic.contains("InjectTraceMetaLayer found no request trace root")
                && panic.contains("NewSentryLayer, SentryMetaLayer, InjectTraceMetaLayer"),
            "{setup}: {panic}"
        );
    }
    let right = [
        pages().layer(
            ServiceBuilder::new()
                .layer(hub())
                .layer(SentryMetaLayer::new())
                .layer(InjectTraceMetaLayer::new()),
        ),
        // The sentry-only setup: the page names the SDK's transaction, still active.
        pages().layer(
            ServiceBuilder::new()
                .layer(hub())
                .layer(sentry_tower::SentryHttpLayer::new().enable_transaction())
                .layer(InjectTraceMetaLayer::new()),
        ),
    ];
    for app in right {
        let page = get_page(app, TestTransport::new()).expect("an answer");
        assert_eq!(meta_elements(&page).len(), 2, "{page}");
    }
}

#[tokio::test]
async fn injected_pages_lose_their_validators() {
    // The injected page differs on every request: a client revalidating with the unchanged
    // page's validators would get a 304 and reuse an old copy with an old trace.
    let layer = InjectTraceMetaLayer::new().with_source(fixed_source());
    let response = html(
        StatusCode::OK,
        &[
            ("content-type", "text/html"),
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 24 Nov 2026 10:00:00 GMT"),
            ("accept-ranges", "bytes"),
        ],
        PAGE,
    );
    let (parts, body) = through(layer, Method::GET, response).await;
    assert_eq!(String::from_utf8(body).expect("utf-8"), injected_page());
    assert!(!parts.headers.contains_key("etag"));
    assert!(!parts.headers.contains_key("last-modified"));
    // A range request would get a range of the page without its tags.
    assert!(!parts.headers.contains_key("accept-ranges"));

    // A page that gets no tags keeps them.
    let layer = InjectTraceMetaLayer::new().with_source(fixed_source());
    let response = html(
        StatusCode::OK,
        &[
            ("content-type", "text/plain"),
            ("etag", "\"v1\""),
            ("accept-ranges", "bytes"),
        ],
        PAGE,
    );
    let (parts, _) = through(layer, Method::GET, response).await;
    assert_eq!(parts.headers["etag"], "\"v1\"");
    assert_eq!(parts.headers["accept-ranges"], "bytes");
}
