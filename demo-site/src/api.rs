//! The API origin (a second port, as in the article): JSON endpoints backed by the SQLite
//! database. The pages call it with `fetch`; the browser SDK adds `sentry-trace` and `baggage`
//! (the API is in its `tracePropagationTargets`), CORS lets it, and the API's transaction
//! continues the browser's trace.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use sentry_meta::SentryMeta;
use serde_json::json;

use crate::db::{Database, sql};

/// The API's routes (put them behind the Sentry layers).
pub fn traced_routes() -> Router<Arc<Database>> {
    Router::new()
        .route("/api/pages", get(pages))
        .route("/api/pages/{slug}", get(page))
}

fn database_error(e: &rusqlite::Error) -> Response {
    tracing::error!("database: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "database error" })),
    )
        .into_response()
}

/// The trace headers as the API received them (what the browser's `fetch` carried).
fn received(headers: &HeaderMap) -> serde_json::Value {
    let sentry_trace = headers.get("sentry-trace").and_then(|v| v.to_str().ok());
    let baggage: Vec<&str> = headers
        .get_all("baggage")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    json!({
        "sentry-trace": sentry_trace,
        "baggage": (!baggage.is_empty()).then(|| baggage.join(",")),
    })
}

/// `GET /api/pages/{slug}`: the page, a recorded view and the view count (three queries, three
/// DB spans), and the trace headers the request came with.
async fn page(
    State(db): State<Arc<Database>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    meta: SentryMeta,
) -> Response {
    if slug.len() > 64 {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such page" })),
        )
            .into_response();
    }
    let page = match db.page(slug.clone()).await {
        Ok(Some(page)) => page,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": "no such page" })),
            )
                .into_response();
        }
        Err(e) => return database_error(&e),
    };
    let trace_id = meta
        .trace_meta()
        .map(|m| m.sentry_trace().trace_id.to_string());
    if let Err(e) = db
        .record_view(slug.clone(), trace_id.clone(), crate::sink::now())
        .await
    {
        return database_error(&e);
    }
    let views = match db.count_views(slug).await {
        Ok(views) => views,
        Err(e) => return database_error(&e),
    };
    Json(json!({
        "page": page,
        "views": views,
        "trace_id": trace_id,
        "received": received(&headers),
        "queries": [sql::PAGE, sql::RECORD_VIEW, sql::COUNT_VIEWS],
    }))
    .into_response()
}

/// `GET /api/pages`: every page.
async fn pages(State(db): State<Arc<Database>>, headers: HeaderMap) -> Response {
    match db.pages().await {
        Ok(pages) => {
            Json(json!({ "pages": pages, "received": received(&headers) })).into_response()
        }
        Err(e) => database_error(&e),
    }
}
