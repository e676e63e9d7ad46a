//! The web origin's pages: one per template engine, each extending a layout whose `<head>`
//! writes the tags with that engine's helper, and one whose template writes none (the
//! `</head>` injection layer adds them).

pub mod actix;
mod engines;
mod leptos;
pub mod otel;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sentry_meta::render_span;
use sentry_meta::tower::InjectTraceMetaLayer;
use serde::Serialize;

pub use engines::Engines;

use crate::db::{Database, PAGES};

/// What every page shows and passes to the browser SDK.
#[derive(Debug, Clone, Serialize)]
pub struct PageContext {
    /// The page's path without `/`.
    pub slug: &'static str,
    /// The `<title>`.
    pub title: String,
    /// What the layout writes in the `<head>`, shown on the page.
    pub helper: &'static str,
    /// The DSN of the browser SDK.
    pub dsn: String,
    /// The API's origin (`http://127.0.0.1:8081`).
    pub api: String,
    /// The release both SDKs report.
    pub release: String,
    /// The environment both SDKs report.
    pub environment: String,
    /// Every page, for the navigation.
    pub pages: Vec<PageLink>,
    /// Whether the layout writes the tags: false only for the page benchmark's control
    /// (`--tags off`; the minijinja layout is given `SentryMeta::none()` instead).
    pub tags: bool,
}

/// A link in the navigation.
#[derive(Debug, Clone, Serialize)]
pub struct PageLink {
    /// The page's path without `/`.
    pub slug: &'static str,
}

/// What the pages need.
#[derive(Debug)]
pub struct Web {
    /// The DSN of the browser SDK.
    pub dsn: String,
    /// The API's origin.
    pub api: String,
    /// The release both SDKs report.
    pub release: String,
    /// The environment both SDKs report.
    pub environment: String,
    /// The template engines, with their templates loaded.
    pub engines: Engines,
    /// The app's database (the catalog page reads its products).
    pub database: Arc<Database>,
    /// Whether the layouts write the tags (see [`PageContext::tags`]).
    pub tags: bool,
    /// The OpenTelemetry tracer and tags of `/otel`.
    pub otel: otel::Otel,
}

impl Web {
    fn context(&self, slug: &'static str) -> PageContext {
        let helper = PAGES
            .iter()
            .find(|(s, _, _)| *s == slug)
            .map_or("", |(_, _, helper)| *helper);
        PageContext {
            slug,
            title: slug.to_owned(),
            helper,
            dsn: self.dsn.clone(),
            api: self.api.clone(),
            release: self.release.clone(),
            environment: self.environment.clone(),
            pages: PAGES.iter().map(|(slug, _, _)| PageLink { slug }).collect(),
            tags: self.tags,
        }
    }
}

/// The pages that take part in traces (put them behind the Sentry layers); `tags`: whether
/// `/injected` gets its tags injected.
pub fn traced_routes(tags: bool) -> Router<Arc<Web>> {
    let injected = get(injected_page);
    Router::new()
        .route("/askama", get(askama_page))
        .route("/minijinja", get(minijinja_page))
        .route("/maud", get(maud_page))
        .route("/tera", get(tera_page))
        .route("/handlebars", get(handlebars_page))
        .route("/catalog", get(catalog_page))
        .route("/leptos", get(leptos::page))
        // Inside SentryMetaLayer (added to the router around these routes), so the request's
        // transaction and trace root are current when the page is ready.
        .route(
            "/injected",
            if tags {
                injected.layer(InjectTraceMetaLayer::new())
            } else {
                injected
            },
        )
}

fn html(result: Result<String, String>) -> Response {
    match result {
        Ok(page) => Html(page).into_response(),
        Err(e) => {
            tracing::error!("rendering failed: {e}");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "rendering failed",
            )
                .into_response()
        }
    }
}

async fn askama_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("askama");
    html(render_span("askama", || engines::askama(&page)))
}

async fn minijinja_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("minijinja");
    html(render_span("minijinja", || web.engines.minijinja(&page)))
}

async fn maud_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("maud");
    html(render_span("maud", || Ok(engines::maud(&page))))
}

async fn tera_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("tera");
    html(render_span("tera", || web.engines.tera(&page)))
}

async fn handlebars_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("handlebars");
    html(render_span("handlebars", || web.engines.handlebars(&page)))
}

/// A page of the size of a real one: the catalog's 220 products, read from SQLite (a
/// `db.sql.query` span) and rendered by minijinja in the same layout as `/minijinja`.
async fn catalog_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("catalog");
    match web.database.products().await {
        Ok(products) => html(render_span("catalog", || {
            web.engines.catalog(&page, &products)
        })),
        Err(e) => html(Err(format!("reading the products: {e}"))),
    }
}

/// A page that knows nothing of Sentry: [`InjectTraceMetaLayer`] puts the tags before its
/// `</head>` when the response passes through.
async fn injected_page(State(web): State<Arc<Web>>) -> Response {
    let page = web.context("injected");
    html(Ok(engines::injected(&page)))
}

/// The index: a link to every page in both lifecycle modes of the browser SDK.
pub async fn index(State(web): State<Arc<Web>>) -> Html<String> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "sentry-meta demo" } link rel="stylesheet" href="/static/demo.css"; }
            body { main {
                h1 { "sentry-meta demo" }
                p {
                    "Each page is rendered on the server inside a Sentry transaction; its "
                    code { "<head>" } " carries " code { "sentry-trace" } " and " code { "baggage" }
                    " tags, so the browser SDK's pageload continues the server's trace, and its "
                    code { "fetch" } " to the API (" code { (web.api) } ") carries the trace on to the \
                    API's transaction and its SQLite queries. Every part lands in one trace: see "
                    a href="/traces" { "/traces" } "."
                }
                table {
                    thead { tr {
                        th { "Page" } th { "Engine" } th { "In the layout's head" }
                        th { "Browser SDK traceLifecycle" }
                    } }
                    tbody { @for (slug, engine, helper) in PAGES { tr {
                        td { a href={ "/" (slug) } { "/" (slug) } }
                        td { (engine) }
                        td { code { (helper) } }
                        td {
                            a href={ "/" (slug) "?lifecycle=stream" } { "stream" } " · "
                            a href={ "/" (slug) "?lifecycle=static" } { "static" }
                        }
                    } } }
                }
                p { "Sentry DSN of both SDKs: " code { (web.dsn) } }
            } }
        }
    };
    Html(page.into_string())
}

/// A handler that redirects to `url`, with the request's query (`?lifecycle=static`).
pub fn redirect_to(
    url: String,
) -> impl Fn(axum::http::Uri) -> std::future::Ready<Response> + Clone + Send + 'static {
    move |uri| {
        let location = match uri.query() {
            Some(query) => format!("{url}?{query}"),
            None => url.clone(),
        };
        std::future::ready(axum::response::Redirect::temporary(&location).into_response())
    }
}

/// The stylesheet of the pages.
pub async fn stylesheet() -> Response {
    const CSS: &str = include_str!("../../static/demo.css");
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        CSS,
    )
        .into_response()
}
