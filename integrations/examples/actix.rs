//! An actix-web page that continues the server's Sentry trace in the browser.
//!
//! ```sh
//! SENTRY_DSN=https://…@o0.ingest.sentry.io/0 cargo run -p sentry-meta --example actix --features actix-web
//! curl -s localhost:3000/users/7   # the page, with its sentry-trace and baggage tags
//! ```
//!
//! Without `SENTRY_DSN` the page is served without tags (no Sentry client, no trace).

use actix_web::{App, HttpResponse, HttpServer, web};
use sentry_meta::SentryMeta;
use sentry_meta::actix::SentryMetaMiddleware;

/// Any handler: the extractor hands it the request's tags for the `<head>`.
async fn user(meta: SentryMeta, id: web::Path<u32>) -> HttpResponse {
    let page = format!(
        "<!doctype html><html><head>{meta}<title>User {id}</title></head>\
         <body><h1>User {id}</h1></body></html>"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

fn main() -> std::io::Result<()> {
    // Before the runtime starts, so that its threads get the client.
    let options = sentry::ClientOptions::new()
        .traces_sample_rate(1.0)
        // The server's envelopes carry the same sampling context as its pages.
        .transport(sentry_meta::DscTransport::new());
    // Without a DSN, no client: no trace, and pages get no tags.
    let dsn = std::env::var("SENTRY_DSN").ok();
    let _sentry = dsn.map(|dsn| sentry::init((dsn, options)));
    actix_web::rt::System::new().block_on(async {
        HttpServer::new(|| {
            App::new()
                // Inner: the request's trace root and server transaction, from one decision.
                .wrap(SentryMetaMiddleware::new().server_timing(true))
                // Outer: a Hub for each request (without its own transaction).
                .wrap(sentry_actix::Sentry::new())
                .route("/users/{id}", web::get().to(user))
        })
        .bind("127.0.0.1:3000")?
        .run()
        .await
    })
}
