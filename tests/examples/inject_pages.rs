//! PROTOTYPE (to be deleted): instructions and time per page of the `</head>` injector, the
//! hand-written scanner against the `lol_html` prototype, on the demo's small page and on a
//! 30 KB page, streamed in 8 KiB chunks.
//!
//! `cargo run --release -p sentry-meta-tests --all-features --example inject_pages -- IMPL PAGE N`
//! with IMPL `ours`, `lol` (ended once decided) or `lol-full` (the whole page through the
//! rewriter), PAGE `small` or `large`, N pages; `time` as IMPL times all six.
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/lolhtml_proto/mod.rs"]
mod lolhtml_proto;

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame};
use sentry_meta::axum::TraceMetaBody;
use sentry_meta::{DynamicSamplingContext, SerializedDsc, TraceMeta};

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

const CHUNK: usize = 8 * 1024;

fn head(title: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · sentry-meta demo</title>
  <link rel="stylesheet" href="/static/demo.css">
  <script src="/static/demo.js" data-dsn="https://public@o1.ingest.sentry.io/2" data-api="/api" data-page="minijinja" data-release="demo@0.1.0" data-environment="production" defer></script>
</head>
"#
    )
}

fn small_page() -> String {
    let mut page = head("minijinja");
    page.push_str("<body>\n  <nav><a href=\"/\">sentry-meta demo</a>");
    for slug in [
        "askama",
        "minijinja",
        "maud",
        "tera",
        "handlebars",
        "inject",
    ] {
        page.push_str(&format!(" · <a href=\"/{slug}\">{slug}</a>"));
    }
    page.push_str(" · <a href=\"/traces\">traces</a></nav>\n  <main><h1>minijinja</h1>\n");
    for i in 0..6 {
        page.push_str(&format!(
            "    <p>Article {i}: the page continues the server's trace in the browser.</p>\n"
        ));
    }
    page.push_str("  </main>\n</body>\n</html>\n");
    page
}

fn large_page() -> String {
    let mut page = head("A long article");
    page.push_str("<body>\n  <nav><a href=\"/\">home</a> · <a href=\"/articles\">articles</a></nav>\n  <main><article>\n");
    let mut i = 0;
    while page.len() < 30 * 1024 {
        page.push_str(&format!(
            "    <h2 id=\"s{i}\">Section {i}</h2>\n    <p>Server-rendered pages carry <code>sentry-trace</code> and <code>baggage</code> so that the browser's pageload span continues the <a href=\"/traces/{i}\">server's trace</a>; every fetch then joins it.</p>\n    <ul><li>one &amp; two</li><li>x &lt; y</li><li><img src=\"/img/{i}.png\" alt=\"figure {i}\"></li></ul>\n"
        ));
        i += 1;
    }
    page.push_str("  </article></main>\n  <script>window.__DATA__ = {\"items\": [1, 2, 3]};</script>\n</body>\n</html>\n");
    page
}

fn meta() -> TraceMeta {
    let dsc = DynamicSamplingContext::from_baggage([&b"sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=1,sentry-sample_rand=0.123456,sentry-sampled=true,sentry-environment=production,sentry-release=demo%400.1.0,sentry-transaction=GET%20%2Fminijinja"[..]]);
    TraceMeta::new(
        "771a43a4192642f0b136d5159a501700".parse().unwrap(),
        "b7ad6b7169203331".parse().unwrap(),
        Some(true),
        Some(SerializedDsc::new(dsc)),
    )
}

fn ours(page: &Bytes, meta: &TraceMeta) -> usize {
    let chunks = (0..page.len())
        .step_by(CHUNK)
        .map(|at| page.slice(at..(at + CHUNK).min(page.len())))
        .collect();
    let mut body = pin!(TraceMetaBody::inject(Chunks(chunks), meta));
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::with_capacity(page.len() + 1024);
    while let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out.len()
}

fn lol(page: &Bytes, meta: &TraceMeta, early_stop: bool) -> usize {
    let chunks: Vec<&[u8]> = page.chunks(CHUNK).collect();
    lolhtml_proto::inject(&chunks, &meta.to_html(), early_stop).len()
}

fn run(which: &str, page: &Bytes, meta: &TraceMeta) -> usize {
    match which {
        "ours" => ours(black_box(page), meta),
        "lol" => lol(black_box(page), meta, true),
        "lol-full" => lol(black_box(page), meta, false),
        _ => panic!("IMPL: ours, lol, lol-full"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let meta = meta();
    let small = Bytes::from(small_page());
    let large = Bytes::from(large_page());
    // The three agree on both pages.
    for page in [&small, &large] {
        let expected = run("ours", page, &meta);
        assert!(expected > page.len());
        assert_eq!(run("lol", page, &meta), expected);
        assert_eq!(run("lol-full", page, &meta), expected);
    }
    if args.first().map(String::as_str) == Some("time") {
        println!(
            "small page {} bytes, large page {} bytes, {CHUNK}-byte chunks",
            small.len(),
            large.len()
        );
        for (name, page) in [("small", &small), ("large", &large)] {
            for which in ["ours", "lol", "lol-full"] {
                let n = if name == "small" { 20_000 } else { 2_000 };
                let mut per_page = Vec::new();
                for _ in 0..7 {
                    let start = Instant::now();
                    for _ in 0..n {
                        black_box(run(which, page, &meta));
                    }
                    per_page.push(start.elapsed().as_nanos() as f64 / f64::from(n));
                }
                per_page.sort_by(f64::total_cmp);
                println!(
                    "{name:5} {which:8} {:>9.0} ns/page (median of 7; min {:.0}, max {:.0})  {:.0} MB/s",
                    per_page[3],
                    per_page[0],
                    per_page[6],
                    page.len() as f64 / per_page[3] * 1e3
                );
            }
        }
        return;
    }
    let which = args.first().map_or("ours", String::as_str);
    let page = match args.get(1).map(String::as_str) {
        Some("large") => &large,
        _ => &small,
    };
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
    for _ in 0..n {
        black_box(run(which, page, &meta));
    }
}
