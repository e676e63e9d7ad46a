//! An axum page rendered by askama, whose template writes the tags that continue the server's
//! Sentry trace in the browser.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example axum_askama --features axum,askama
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry client, no trace). `ADDR`
//! is the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use askama::Template;
use axum::http::{Request, StatusCode};
use axum::{Router, body::Body, response::Html, routing::get};
use sentry::integrations::tower::NewSentryLayer;
use sentry_meta::{DscTransport, tower::SentryMetaLayer};
use tower::ServiceBuilder;

/// In an app, the base layout in `templates/` that every page extends; no `|safe` needed.
#[derive(Template)]
#[template(
    ext = "html",
    source = "<!doctype html>
<html><head>{{ sentry_meta::askama::sentry_meta() }}<title>{{ title }}</title></head>
<body><h1>{{ title }}</h1></body></html>"
)]
struct Home<'a> {
    title: &'a str,
}

async fn home() -> Result<Html<String>, StatusCode> {
    let page = Home { title: "Home" }.render();
    page.map(Html)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
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
            // Inner: the request's trace root and its transaction "GET /", from one decision.
            .layer(SentryMetaLayer::new()),
    );
    tokio::runtime::Runtime::new()?.block_on(async {
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
