//! Tags from explicit values, with no Sentry SDK at all: the core API decides from the
//! request's headers whether to continue the caller's trace, and renders the tags itself.
//!
//! ```sh
//! cargo run -p sentry-meta --example explicit
//! curl -s localhost:3000/   # a new trace, with this app's public key in its baggage
//! curl -s localhost:3000/ -H 'sentry-trace: 771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1' \
//!   -H 'baggage: sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc'
//! ```
//!
//! `ADDR` is the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use axum::http::{HeaderMap, HeaderValue};
use axum::{Router, response::Html, routing::get};
use sentry_meta::{Continuation, ContinuationPolicy, DscKey, DynamicSamplingContext};
use sentry_meta::{SerializedDsc, SpanId, TraceId, TraceMeta};

/// What this service knows of itself (in an app, from its DSN and options).
const PUBLIC_KEY: &str = "public";
const ORG_ID: &str = "42";

async fn home(headers: HeaderMap) -> Html<String> {
    // 1. Decide from the incoming headers (the one `sentry-trace` value, every `baggage`).
    let policy = ContinuationPolicy::new().org_id(ORG_ID);
    let mut sentry_traces = headers.get_all("sentry-trace").iter();
    let sentry_trace = match (sentry_traces.next(), sentry_traces.next()) {
        (None, _) => None,
        (Some(value), None) => Some(value.as_bytes()),
        // Several values are one malformed value, a new trace (docs/design.md, "Several
        // `sentry-trace` values"), as in this crate's layers.
        (Some(_), Some(_)) => Some(&b"several sentry-trace headers"[..]),
    };
    let baggage = headers.get_all("baggage").iter().map(HeaderValue::as_bytes);
    let (trace_id, sampled, dsc) = match Continuation::decide(sentry_trace, baggage, &policy) {
        // The caller's trace, its decision and its frozen DSC.
        Continuation::Continue(incoming) => (
            incoming.sentry_trace.trace_id,
            incoming.sentry_trace.sampled,
            incoming.dsc,
        ),
        // A new trace, whose head is this service: its DSC says what it decided.
        Continuation::NewTrace(_) => {
            let (trace_id, mut dsc) = (TraceId::random(), DynamicSamplingContext::new());
            dsc.set_trace_id(trace_id);
            dsc.set(DscKey::PublicKey, PUBLIC_KEY);
            dsc.set(DscKey::OrgId, ORG_ID);
            dsc.set_sample_rate(1.0);
            dsc.set_sampled(true);
            dsc.backfill_sample_rand(trace_id, Some(true));
            (trace_id, Some(true), dsc)
        }
    };
    // 2. The tags of the span that renders the page (here a new one), with the root's DSC.
    let baggage = Some(SerializedDsc::new(dsc));
    let meta = TraceMeta::new(trace_id, SpanId::random(), sampled, baggage);
    Html(format!(
        "<!doctype html>\n<html><head>{meta}<title>Home</title></head><body>Hi</body></html>"
    ))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let app = Router::new().route("/", get(home));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
