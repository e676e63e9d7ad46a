//! A static page that knows nothing of Sentry, given the tags that continue the server's Sentry
//! trace in the browser by `InjectTraceMetaLayer`, right before its `</head>`.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example inject --features axum
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served as it is (no Sentry client, no trace). `ADDR` is
//! the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use axum::http::Request;
use axum::{Router, body::Body, response::Html, routing::get};
use sentry::integrations::tower::NewSentryLayer;
use sentry_meta::DscTransport;
use sentry_meta::tower::{InjectTraceMetaLayer, SentryMetaLayer};
use tower::ServiceBuilder;

/// A static file, another crate's template, a single-page app's `index.html`, …
const PAGE: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>Static</title></head>
<body><h1>A page that knows nothing of Sentry</h1></body></html>";

async fn home() -> Html<&'static str> {
    Html(PAGE)
}

fn main() -> std::io::Result<()> {
    // Before the runtime starts, so that its threads get the client.
    let options = sentry::ClientOptions::new()
        .traces_sample_rate(1.0)
        // The server's envelopes carry the same sampling context as its pages.
        .transport(DscTransport::new());
    // Without a DSN, no client: no trace, and pages get no tags.
    let dsn = std::env::var("SENTRY_DSN").ok();
    let _sentry = dsn.map(|dsn| sentry::init((dsn, options)));

    let app = Router::new().route("/", get(home)).layer(
        ServiceBuilder::new()
            // Outer: a Sentry Hub for each request.
            .layer(NewSentryLayer::<Request<Body>>::new_from_top())
            // The request's trace root and its transaction "GET /", from one decision.
            .layer(SentryMetaLayer::new())
            // Innermost: the transaction and the trace root are current when the page is ready.
            .layer(InjectTraceMetaLayer::new()),
    );
    tokio::runtime::Runtime::new()?.block_on(async {
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
