//! PROTOTYPE (to be deleted): the red-team cases and the html5ever oracle, run against the
//! hand-written scanner and the `lol_html` prototype side by side; prints a table.
#![allow(missing_docs, clippy::unwrap_used)]

mod lolhtml_proto;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use sentry_meta::axum::TraceMetaBody;
use sentry_meta::{DynamicSamplingContext, SerializedDsc, TraceMeta};
use sentry_meta_tests::inject_oracle::check_injection;

struct Chunks(std::collections::VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }
}

fn ours(chunks: &[&[u8]], meta: &TraceMeta) -> Vec<u8> {
    let body = Chunks(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect());
    let mut body = pin!(TraceMetaBody::inject(body, meta));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out
}

fn lol(chunks: &[&[u8]], meta: &TraceMeta) -> Vec<u8> {
    lolhtml_proto::inject(chunks, &meta.to_html(), true)
}

fn meta() -> TraceMeta {
    let dsc = DynamicSamplingContext::from_baggage([
        &b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc"[..],
    ]);
    TraceMeta::new(
        "771a43a4192642f0b136d5159a501700".parse().unwrap(),
        "b7ad6b7169203331".parse().unwrap(),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
    .with_traceparent(true)
}

fn cuts(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut cuts = vec![vec![input], input.chunks(1).collect()];
    for a in 0..=input.len() {
        cuts.push(vec![&input[..a], &input[a..]]);
    }
    cuts
}

/// Whether `inject` gives `expected` at every cut, and the oracle agrees.
fn passes(inject: fn(&[&[u8]], &TraceMeta) -> Vec<u8>, page: &[u8], expected: &[u8]) -> bool {
    let meta = meta();
    let every_cut = cuts(page).iter().all(|cut| inject(cut, &meta) == expected);
    let out = inject(&[page], &meta);
    let oracle = catch_unwind(AssertUnwindSafe(|| check_injection(page, &out, &meta))).is_ok();
    every_cut && oracle
}

const HERE: &str = "@TAGS@";

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn red_team_table() {
    std::panic::set_hook(Box::new(|_| {}));
    let tags = meta().to_html();
    let marked_pages: Vec<(&str, Vec<&str>)> = vec![
        (
            "plain",
            vec![
                "<!doctype html><html><head><title>t</title>@TAGS@</head><body></body></html>",
                "<html><HEAD>@TAGS@</HEAD ><body></body></html>",
                "<!doctype html><title>no head start tag</title>@TAGS@</head><body></body>",
            ],
        ),
        (
            "name not exact: inject",
            vec![
                "<head><meta name=\"Sentry-Trace\" content=\"x\">@TAGS@</head>",
                "<head><meta name=\" sentry-trace\" content=\"x\">@TAGS@</head>",
                "<head><meta name=\"sentry&hyphen;trace\" content=\"x\">@TAGS@</head>",
                "<head><meta name=\"sentry&#8208;trace\" content=\"x\">@TAGS@</head>",
                "<head><meta name=\"description\" name=\"sentry-trace\" content=\"x\">@TAGS@</head>",
                "<head><meta name name=\"sentry-trace\" content=\"x\">@TAGS@</head>",
                "<head><link name=\"sentry-trace\">@TAGS@</head>",
                "<head></meta name=\"sentry-trace\">@TAGS@</head>",
                "<head><template><meta name=\"sentry-trace\" content=\"x\"></template>@TAGS@</head>",
                "<head><noscript><meta name=\"sentry-trace\" content=\"x\"></noscript>@TAGS@</head>",
            ],
        ),
        (
            "escaped script / template: inject at the real one",
            vec![
                "<head><script><!--<script></script></head>--></script>@TAGS@</head><body></body>",
                "<head><script><!-- <script> --></head></script>@TAGS@</head>",
                "<head><script><!--</script>@TAGS@</head>",
                "<head><template></head></template>@TAGS@</head>",
                "<head><template><template></template></head></template>@TAGS@</head>",
                "<head><template><p></head></template>@TAGS@</head>",
                "<head></template>@TAGS@</head>",
                "<head><title></head><meta name=sentry-trace></title>@TAGS@</head>",
                "<head><noscript></head><meta name=sentry-trace></noscript>@TAGS@</head>",
                "<head><!-- </head> -->@TAGS@</head>",
                "<head><meta content=\"</head>\">@TAGS@</head>",
            ],
        ),
    ];
    let left_alone: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "name exact: left alone",
            [
                "<head><meta name=\"sentry-trace\" content=\"x\"></head>",
                "<head><META NAME='sentry-trace' CONTENT=x></head>",
                "<head><meta NaMe=sentry-trace content=x></head>",
                "<head><meta name=\"sentry&#45;trace\" content=\"x\"></head>",
                "<head><meta name=\"sentry&#x2D;trace\" content=\"x\"></head>",
                "<head><meta name=\"&#115;entry-trac&#x65;\" content=\"x\"></head>",
                "<head><meta name=sentry-trace name=description content=x></head>",
                "<head><meta name=\"baggage\" content=\"sentry-trace_id=x\"></head>",
                "<head><template></template><meta name=\"sentry-trace\" content=\"x\"></head>",
                "<head><script><!--</script><meta name=\"sentry-trace\" content=\"x\"></head>",
            ]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        ),
        (
            "escaped script / template: no head end",
            [
                "<head><script><!--<script></script></head>-->",
                "<head><script><!--<script></script></head>--></head>",
                "<head><script><!--<script></head></script></head>",
                "<head><template></head>",
                "<head><template><body></head>",
                "<head><plaintext></head>",
            ]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        ),
        ("not ASCII text (BOM)", {
            let spelled = b"<head><title>t</title></head><body></body>".to_vec();
            let mut v: Vec<Vec<u8>> = [
                &b"\xFF\xFE"[..],
                b"\xFE\xFF",
                b"\xFF\xFE\0\0",
                b"\0\0\xFE\xFF",
            ]
            .iter()
            .map(|bom| [*bom, &spelled[..]].concat())
            .collect();
            v.push(utf16le(&format!(
                "\u{feff}<html><head>{tags}</head><body></body></html>"
            )));
            v
        }),
        (
            "64 KiB look-ahead",
            vec![format!("<head>{}</head>", " ".repeat(64 * 1024)).into_bytes()],
        ),
    ];
    println!("\n| case group | pages | hand-written passes | lol_html passes |");
    println!("| --- | ---: | ---: | ---: |");
    for (group, pages) in &marked_pages {
        let (mut a, mut b) = (0, 0);
        for marked in pages {
            let page = marked.replace(HERE, "");
            let expected = marked.replace(HERE, &tags);
            let ok_ours = passes(ours, page.as_bytes(), expected.as_bytes());
            let ok_lol = passes(lol, page.as_bytes(), expected.as_bytes());
            if !ok_lol {
                println!(
                    "  lol_html fails: {marked:?} -> {:?}",
                    String::from_utf8_lossy(&lol(&[page.as_bytes()], &meta()))
                );
            }
            if !ok_ours {
                println!("  ours fails: {marked:?}");
            }
            a += usize::from(ok_ours);
            b += usize::from(ok_lol);
        }
        println!("| {group} | {} | {a} | {b} |", pages.len());
    }
    for (group, pages) in &left_alone {
        let (mut a, mut b) = (0, 0);
        for page in pages {
            let short = page.len() < 1000;
            let check = |inject: fn(&[&[u8]], &TraceMeta) -> Vec<u8>| {
                if short {
                    passes(inject, page, page)
                } else {
                    inject(&[page], &meta()) == *page
                        && inject(&page.chunks(8192).collect::<Vec<_>>(), &meta()) == *page
                }
            };
            let ok_ours = check(ours);
            let ok_lol = check(lol);
            if !ok_lol {
                println!(
                    "  lol_html fails: {:?} -> {:?}",
                    String::from_utf8_lossy(&page[..page.len().min(120)]),
                    String::from_utf8_lossy(&lol(&[page], &meta())[..120.min(page.len())])
                );
            }
            a += usize::from(ok_ours);
            b += usize::from(ok_lol);
        }
        println!("| {group} | {} | {a} | {b} |", pages.len());
    }
}

/// The most bytes held back (read, not yet written) while a page streams in small chunks.
#[test]
fn hold_back() {
    let tags = meta().to_html();
    let long = format!(
        "<head><meta content=\"{}\" name=\"x\"><title>t</title></head>",
        "a".repeat(40_000)
    );
    let script = format!("<head><script>{}</script></head>", "a < b; ".repeat(5_000));
    for (name, page) in [("a 40 KB tag", long), ("a 35 KB script", script)] {
        let chunks: Vec<&[u8]> = page.as_bytes().chunks(64).collect();
        let (_, held) = lolhtml_proto::inject_measured(&chunks, &tags, true);
        println!("{name}, 64-byte chunks: lol_html holds back at most {held} bytes");
    }
}

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

#[test]
fn generated_pages_against_html5ever() {
    std::panic::set_hook(Box::new(|_| {}));
    let meta = meta();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for prefix in ["", "<head>"] {
        let (mut fail_ours, mut fail_lol, mut cut_lol) = (0, 0, 0);
        let n = 2048;
        for _ in 0..n {
            let len = (next() % 16) as usize;
            let mut pieces: Vec<&str> = (0..len)
                .map(|_| {
                    if next() % 5 < 4 {
                        PIECES[(next() % 10) as usize]
                    } else {
                        PIECES[(next() % PIECES.len() as u64) as usize]
                    }
                })
                .collect();
            for _ in 0..1 + next() % 2 {
                let at = (next() as usize) % (pieces.len() + 1);
                pieces.insert(at, "</head>");
            }
            let page = [prefix, &pieces.concat()].concat().into_bytes();
            for (inject, fails) in [
                (ours as fn(&[&[u8]], &TraceMeta) -> Vec<u8>, &mut fail_ours),
                (lol, &mut fail_lol),
            ] {
                let out = inject(&[&page], &meta);
                if catch_unwind(AssertUnwindSafe(|| check_injection(&page, &out, &meta))).is_err() {
                    *fails += 1;
                }
            }
            let chunked: Vec<&[u8]> = page.chunks(3).collect();
            if lol(&chunked, &meta) != lol(&[&page], &meta) {
                cut_lol += 1;
            }
        }
        println!(
            "\ngenerated pages after {prefix:?}: {n}; html5ever disagrees with hand-written: {fail_ours}, with lol_html: {fail_lol}; lol_html chunked != whole: {cut_lol}"
        );
    }
}

fn ours_strip(chunks: &[&[u8]]) -> Vec<u8> {
    let body = Chunks(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect());
    let mut body = pin!(TraceMetaBody::strip(body));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    while let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out
}

#[test]
fn strip_table() {
    use sentry_meta_tests::inject_oracle::check_strip;
    std::panic::set_hook(Box::new(|_| {}));
    let tags = meta().to_html();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "rendered block in the head",
            format!("<html><head>\n{tags}\n<title>t</title></head><body></body></html>"),
            "<html><head>\n\n<title>t</title></head><body></body></html>".to_owned(),
        ),
        (
            "between </head> and <body>",
            format!("<html><head><title>t</title></head>\n{tags}\n<body>{tags}</body></html>"),
            format!("<html><head><title>t</title></head>\n\n<body>{tags}</body></html>"),
        ),
        (
            "character references",
            "<head><meta name=\"sentry&#45;trace\" content=\"y\"><title>t</title></head>"
                .to_owned(),
            "<head><title>t</title></head>".to_owned(),
        ),
        (
            "template contents kept",
            "<head><template><meta name=\"baggage\" content=\"kept\"></template></head>".to_owned(),
            "<head><template><meta name=\"baggage\" content=\"kept\"></template></head>".to_owned(),
        ),
        (
            "first name wins",
            "<head><meta name=\"description\" name=\"sentry-trace\"></head>".to_owned(),
            "<head><meta name=\"description\" name=\"sentry-trace\"></head>".to_owned(),
        ),
        (
            "escaped script",
            "<head><script><!--<script></script><meta name=baggage>--></script></head>".to_owned(),
            "<head><script><!--<script></script><meta name=baggage>--></script></head>".to_owned(),
        ),
    ];
    println!("\n| strip case | hand-written | lol_html |\n| --- | --- | --- |");
    for (name, page, expected) in &cases {
        let check = |strip: fn(&[&[u8]]) -> Vec<u8>| {
            let every_cut = cuts(page.as_bytes())
                .iter()
                .all(|cut| strip(cut) == expected.as_bytes());
            let out = strip(&[page.as_bytes()]);
            let oracle =
                catch_unwind(AssertUnwindSafe(|| check_strip(page.as_bytes(), &out))).is_ok();
            match (every_cut, oracle) {
                (true, true) => "pass".to_owned(),
                (false, true) => format!("output differs: {:?}", String::from_utf8_lossy(&out)),
                (_, false) => format!("html5ever disagrees: {:?}", String::from_utf8_lossy(&out)),
            }
        };
        println!(
            "| {name} | {} | {} |",
            check(ours_strip),
            check(lolhtml_proto::strip)
        );
    }
}
