//! The actix-web origin (`--actix-addr`): `/actix`, the minijinja page served by actix-web
//! with [`SentryMetaMiddleware`] inside `sentry-actix`'s `Sentry`, as a user of actix-web would
//! set it up. Every other path is redirected to the web origin, so the page's relative links,
//! its stylesheet and its script (the browser bundle) are the web origin's.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use sentry_meta::actix::SentryMetaMiddleware;
use sentry_meta::render_span;

use super::Web;

/// Starts the actix-web server on `listener` in a thread of its own (actix-web runs its own
/// single-threaded runtimes); returns its handle once it accepts connections.
pub fn start(
    web: Arc<Web>,
    listener: TcpListener,
    web_url: String,
) -> std::io::Result<ServerHandle> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sentry-meta-demo-actix".to_owned())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::from(Arc::clone(&web)))
                        .app_data(web::Data::new(WebOrigin(web_url.clone())))
                        // The request's trace root and transaction, inside a Hub per request.
                        .wrap(SentryMetaMiddleware::new())
                        .wrap(sentry_actix::Sentry::new())
                        // `web::get()` takes no `HEAD` (axum's `get` does): without its own
                        // route, `HEAD /actix` would go back to the web origin, which sends it here.
                        .route("/actix", web::get().to(page))
                        .route("/actix", web::head().to(page))
                        .default_service(web::to(to_web_origin))
                })
                .workers(1)
                // The demo stops it (`Demo::stop`), waiting a second for open requests.
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = handle_tx.send(Ok(server.handle()));
                        if let Err(e) = server.await {
                            eprintln!("demo: the actix-web server stopped: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                    }
                }
            })
        })?;
    handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("the actix-web thread ended before it listened"))?
}

/// The web origin, `http://127.0.0.1:8080`.
struct WebOrigin(String);

/// `/actix`: the minijinja page, rendered in a `template.render` span of the server
/// transaction that `SentryMetaMiddleware` started.
async fn page(web: web::Data<Web>) -> HttpResponse {
    sentry::Hub::current().configure_scope(|scope| {
        if let Some(span) = scope.get_span() {
            span.set_tag("service", "web");
        }
    });
    let page = web.context("actix");
    match render_span("actix", || web.engines.minijinja(&page)) {
        Ok(page) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(page),
        Err(e) => {
            tracing::error!("rendering failed: {e}");
            HttpResponse::InternalServerError().body("rendering failed")
        }
    }
}

/// The request target's path and query (`/` for none, as in `*`).
fn path_and_query(request: &HttpRequest) -> &str {
    request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str())
}

/// Any other path: the web origin's.
async fn to_web_origin(request: HttpRequest, origin: web::Data<WebOrigin>) -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        // The path and query only: a request target in absolute form names another host.
        .insert_header((
            header::LOCATION,
            format!("{}{}", origin.0, path_and_query(&request)),
        ))
        .finish()
}
