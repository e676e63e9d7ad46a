//! A plain hyper 1 server (no axum) whose tower service writes the tags that continue the
//! server's Sentry trace in the browser.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example tower_hyper --features tower
//! curl -s localhost:3000/   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry client, no trace). `ADDR`
//! is the address to listen on (default `127.0.0.1:3000`; port 0 picks a free one).

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use sentry::integrations::tower::NewSentryLayer;
use sentry_meta::{DscTransport, SentryMeta, tower::SentryMetaLayer};
use tower::{ServiceBuilder, service_fn};

async fn home(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let page = format!(
        "<!doctype html>\n<html><head>{}<title>Home</title></head><body>Hi</body></html>",
        SentryMeta::current()
    );
    let mut response = Response::new(Full::from(page));
    let html = hyper::header::HeaderValue::from_static("text/html; charset=utf-8");
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, html);
    Ok(response)
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

    tokio::runtime::Runtime::new()?.block_on(async {
        let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let service = ServiceBuilder::new()
                // Outer: a Sentry Hub for each request.
                .layer(NewSentryLayer::<Request<Incoming>>::new_from_top())
                // Inner: the trace root and its transaction "GET /" (named by the path).
                .layer(SentryMetaLayer::new())
                .service(service_fn(home));
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            tokio::spawn(connection);
        }
    })
}
