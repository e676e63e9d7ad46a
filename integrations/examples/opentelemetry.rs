//! An axum page of an app traced with OpenTelemetry (spans sent to Sentry by
//! `sentry-opentelemetry`), whose tags continue the server's trace in the browser.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example opentelemetry --features opentelemetry
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry project to name). `ADDR` is
//! the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use std::sync::Arc;

use axum::{Router, extract::State, http::HeaderMap, response::Html, routing::get};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use sentry_meta::DscTransport;
use sentry_meta::opentelemetry::{DscSpanProcessor, OtelMeta, RequestHeaders};

/// The tracer, and the project's facts (the DSN's public key and org id, the sampler's rate).
type Otel = Arc<(SdkTracer, Option<OtelMeta>)>;

async fn home(State(otel): State<Otel>, headers: HeaderMap) -> Html<String> {
    let (tracer, meta) = &*otel;
    let Some(meta) = meta else {
        return Html("<!doctype html>\n<html><head><title>Home</title></head></html>".into());
    };
    // The request's server span: the child of a caller's Sentry trace, if any. The propagator
    // reads every value of every header (several `sentry-trace` values start a new trace).
    let parent = meta.propagator().extract(&RequestHeaders::new(&headers));
    let cx = parent.with_span(tracer.start_with_context("GET /", &parent));
    let _current = cx.clone().attach();
    let head = meta.current();
    cx.span().end();
    Html(format!(
        "<!doctype html>\n<html><head>{head}<title>Home</title></head></html>"
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dsn = std::env::var("SENTRY_DSN").ok();
    let meta =
        (dsn.as_deref().map(OtelMeta::from_dsn).transpose()?).map(|m| m.traces_sample_rate(1.0));
    // Without a DSN, no client and no tags. The server's envelopes carry the pages' DSC.
    let _sentry = dsn.zip(meta.clone()).map(|(dsn, meta)| {
        let options = sentry::ClientOptions::new().traces_sample_rate(1.0);
        sentry::init((
            dsn,
            options.transport(DscTransport::new().opentelemetry(meta)),
        ))
    });
    // The tracer's spans go to Sentry as transactions, through the client just made, whose
    // envelopes carry the DSC their pages wrote.
    let processor = DscSpanProcessor::new(sentry_opentelemetry::SentrySpanProcessor::new());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let app = Router::new()
        .route("/", get(home))
        .with_state(Arc::new((provider.tracer("web"), meta)));
    tokio::runtime::Runtime::new()?.block_on(async {
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
