//! An axum page rendered by tera, whose base layout writes the tags that continue the server's
//! Sentry trace in the browser.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example axum_tera --features axum,tera
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry client, no trace). `ADDR`
//! is the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::{Router, body::Body, response::Html, routing::get};
use sentry::integrations::tower::NewSentryLayer;
use sentry_meta::{DscTransport, tower::SentryMetaLayer};
use tera::{Context, Tera};
use tower::ServiceBuilder;

/// The base layout every page extends: `sentry_meta()` in its `<head>`, no `| safe` needed.
const BASE: &str = "<!doctype html>\n<html><head>{{ sentry_meta() }}<title>Home</title></head>\
                    <body>{% block body %}{% endblock %}</body></html>";
const HOME: &str = r#"{% extends "base.html" %}{% block body %}<h1>Home</h1>{% endblock %}"#;

async fn home(State(tera): State<Arc<Tera>>) -> Result<Html<String>, StatusCode> {
    let page = tera.render("home.html", &Context::new());
    page.map(Html)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the runtime starts, so that its threads get the client.
    let options = sentry::ClientOptions::new()
        .traces_sample_rate(1.0)
        // The server's envelopes carry the same sampling context as its pages.
        .transport(DscTransport::new());
    // Without a DSN, no client: no trace, and pages get no tags.
    let dsn = std::env::var("SENTRY_DSN").ok();
    let _sentry = dsn.map(|dsn| sentry::init((dsn, options)));

    let mut tera = Tera::default(); // or Tera::new("templates/**/*.html")?
    sentry_meta::tera::register(&mut tera);
    tera.add_raw_templates([("base.html", BASE), ("home.html", HOME)])?;
    let layers = ServiceBuilder::new()
        // Outer: a Sentry Hub for each request.
        .layer(NewSentryLayer::<Request<Body>>::new_from_top())
        // Inner: the request's trace root and its transaction "GET /", from one decision.
        .layer(SentryMetaLayer::new());
    let app = Router::new()
        .route("/", get(home))
        .layer(layers)
        .with_state(Arc::new(tera));
    tokio::runtime::Runtime::new()?.block_on(async {
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
