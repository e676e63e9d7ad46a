//! A leptos 0.8 app rendered on the server by `leptos_axum`, whose `<SentryMeta/>` writes the
//! tags that continue the server's Sentry trace in the browser (SSR only, no hydration).
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example leptos --features axum,leptos
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry client, no trace). `ADDR`
//! is the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use axum::http::Request;
use axum::{Router, body::Body, routing::get};
use leptos::prelude::*;
use leptos_meta::{MetaTags, provide_meta_context};
use sentry::integrations::tower::NewSentryLayer;
use sentry_meta::{DscTransport, leptos::SentryMeta, tower::SentryMetaLayer};
use tower::ServiceBuilder;

/// The document: `<MetaTags/>` is where `leptos_meta` writes the head's tags.
fn shell() -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head><MetaTags/><title>"Home"</title></head>
            <body><App/></body>
        </html>
    }
}

#[component]
fn App() -> impl IntoView {
    provide_meta_context();
    // Outside any `<Suspense/>`, so that the tags are known when the head is sent.
    view! { <SentryMeta/> <h1>"Home"</h1> }
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

    let app = Router::new()
        .route("/", get(leptos_axum::render_app_to_stream(shell)))
        .layer(
            ServiceBuilder::new()
                // Outer: a Sentry Hub for each request.
                .layer(NewSentryLayer::<Request<Body>>::new_from_top())
                // Inner: the request's trace root (which `<SentryMeta/>` reads) and its transaction.
                .layer(SentryMetaLayer::new()),
        );
    tokio::runtime::Runtime::new()?.block_on(async {
        // leptos spawns the async parts of its pages on its global executor.
        let _ = any_spawner::Executor::init_tokio();
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
