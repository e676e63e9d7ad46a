//! The embedded trace sink: a tiny stand-in for Sentry's ingest, mounted on the web origin.
//!
//! Both SDKs send their envelopes to it when no real DSN is given (the default DSN names the
//! web origin): `POST /api/<project>/envelope/`, gzip or not. It keeps every envelope and its
//! spans in SQLite and draws each trace as a waterfall across services:
//!
//! - `GET /traces`: recent traces (`?format=json` for JSON);
//! - `GET /traces/<trace_id>`: one trace (`/traces/<trace_id>.json` or `?format=json` for JSON).
//!
//! It receives arbitrary POSTs: bodies are bounded before and after decompression, and bad
//! input gets a 4xx, never a panic.

pub mod envelope;
pub mod store;
pub mod view;

use std::io::Read as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};

use self::store::Store;

/// The largest request body accepted (as sent, possibly compressed).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest envelope accepted after decompression.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// How many traces `/traces` lists.
const RECENT_TRACES: u32 = 50;

/// The sink's routes: the envelope endpoint and the trace pages.
pub fn router(store: Arc<Store>) -> Router {
    // The browser SDK posts from the page's origin (a CORS "simple request": text/plain, no
    // custom headers), which may differ from the DSN's host (localhost vs 127.0.0.1).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers(Any)
        .max_age(std::time::Duration::from_secs(3600));
    let ingest = Router::new()
        .route("/api/{project}/envelope/", post(receive_envelope))
        .route("/api/{project}/envelope", post(receive_envelope))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors);
    Router::new()
        .route("/traces", get(recent_traces))
        .route("/traces/", get(recent_traces))
        .route("/traces/{trace}", get(one_trace))
        .merge(ingest)
        .with_state(store)
}

/// Seconds since the UNIX epoch.
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn error(status: StatusCode, detail: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// The envelope's bytes after `Content-Encoding`, at most [`MAX_ENVELOPE_BYTES`].
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, (StatusCode, &'static str)> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let limit = u64::try_from(MAX_ENVELOPE_BYTES).unwrap_or(u64::MAX) + 1;
    let mut out = Vec::new();
    let read = match encoding.as_str() {
        "" | "identity" => {
            out.extend_from_slice(body);
            Ok(body.len())
        }
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        _ => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported content encoding",
            ));
        }
    };
    match read {
        Err(_) => Err((StatusCode::BAD_REQUEST, "the body does not decompress")),
        Ok(_) if out.len() > MAX_ENVELOPE_BYTES => {
            Err((StatusCode::PAYLOAD_TOO_LARGE, "the envelope is too large"))
        }
        Ok(_) => Ok(out),
    }
}

async fn receive_envelope(
    State(store): State<Arc<Store>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if project.is_empty() || project.len() > 20 || !project.bytes().all(|b| b.is_ascii_digit()) {
        return error(StatusCode::NOT_FOUND, "unknown project");
    }
    let envelope = match decode_body(&headers, &body) {
        Ok(envelope) => envelope,
        Err((status, detail)) => return error(status, detail),
    };
    let spans = match envelope::parse(&envelope) {
        Ok(spans) => spans,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let count = spans.len();
    let stored = tokio::task::spawn_blocking(move || store.insert(now(), &envelope, &spans)).await;
    match stored {
        Ok(Ok(())) => {
            tracing::debug!(spans = count, "sink: envelope stored");
            Json(serde_json::json!({})).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!("sink: could not store an envelope: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the envelope",
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not store the envelope",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct Format {
    format: Option<String>,
}

impl Format {
    fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }
}

async fn recent_traces(State(store): State<Arc<Store>>, Query(format): Query<Format>) -> Response {
    let read = tokio::task::spawn_blocking(move || {
        Ok::<_, rusqlite::Error>((store.recent_traces(RECENT_TRACES)?, store.envelope_count()?))
    })
    .await;
    match read {
        Ok(Ok((traces, _))) if format.json() => Json(view::traces_json(&traces)).into_response(),
        Ok(Ok((traces, envelopes))) => Html(view::traces_html(&traces, envelopes)).into_response(),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "could not read the traces"),
    }
}

async fn one_trace(
    State(store): State<Arc<Store>>,
    Path(trace): Path<String>,
    Query(format): Query<Format>,
) -> Response {
    let (trace_id, json) = match trace.strip_suffix(".json") {
        Some(id) => (id.to_owned(), true),
        None => (trace, format.json()),
    };
    if sentry_meta::TraceId::parse_hex(trace_id.as_bytes()).is_err() {
        return error(
            StatusCode::NOT_FOUND,
            "not a trace id (32 lowercase hex digits)",
        );
    }
    let id = trace_id.clone();
    match tokio::task::spawn_blocking(move || store.trace(&id)).await {
        Ok(Ok(spans)) if json => Json(view::trace_json(&trace_id, &spans)).into_response(),
        Ok(Ok(spans)) => Html(view::trace_html(&trace_id, &spans)).into_response(),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "could not read the trace"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    const TRACE: &str = "771a43a4192642f0b136d5159a501700";

    fn envelope() -> String {
        format!(
            "{{}}\n{{\"type\":\"span\"}}\n{{\"version\":2,\"items\":[{{\"trace_id\":\"{TRACE}\",\
             \"span_id\":\"d000000000000001\",\"name\":\"/\",\"start_timestamp\":1,\"end_timestamp\":2,\
             \"is_segment\":true,\"attributes\":{{\"sentry.op\":{{\"type\":\"string\",\"value\":\"pageload\"}}}}}}]}}\n"
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let response = app.clone().oneshot(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
            (
                parts.status,
                parts.headers,
                String::from_utf8_lossy(&body).into_owned(),
            )
        })
    }

    fn app() -> (Router, std::path::PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sink-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Arc::new(Store::open(&dir.join("sink.sqlite")).expect("store"));
        (router(store), dir)
    }

    fn post(body: impl Into<Body>, encoding: Option<&str>) -> Request<Body> {
        let mut request = Request::post("/api/1/envelope/?sentry_key=x")
            .header("origin", "http://localhost:8080")
            .header("content-type", "text/plain;charset=UTF-8");
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.body(body.into()).expect("request")
    }

    #[test]
    fn stores_plain_and_gzip_envelopes_and_shows_them() {
        let (app, dir) = app();
        let (status, headers, _) = send(&app, post(envelope(), None));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(&b"*"[..])
        );
        let (status, _, _) = send(&app, post(gzip(envelope().as_bytes()), Some("gzip")));
        assert_eq!(status, StatusCode::OK);

        let (status, _, json) = send(
            &app,
            Request::get(format!("/traces/{TRACE}.json"))
                .body(Body::empty())
                .expect("request"),
        );
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(
            json["spans"].as_array().map(Vec::len),
            Some(1),
            "a span sent twice is kept once"
        );
        assert_eq!(json["spans"][0]["op"], "pageload");

        let (_, _, list) = send(
            &app,
            Request::get("/traces")
                .body(Body::empty())
                .expect("request"),
        );
        assert!(list.contains(&format!("/traces/{TRACE}")));
        let (_, _, page) = send(
            &app,
            Request::get(format!("/traces/{TRACE}"))
                .body(Body::empty())
                .expect("request"),
        );
        assert!(page.contains("id=\"span-d000000000000001\""));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn answers_the_preflight() {
        let (app, dir) = app();
        let request = Request::options("/api/1/envelope/")
            .header("origin", "http://localhost:8080")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = send(&app, request);
        assert!(status.is_success());
        assert!(headers.contains_key("access-control-allow-methods"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_hostile_bodies() {
        let (app, dir) = app();
        // Too large as sent.
        let (status, _, _) = send(&app, post(vec![b'x'; MAX_BODY_BYTES + 1], None));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // A gzip bomb: small as sent, too large once decompressed.
        let bomb = gzip(&vec![b'\n'; MAX_ENVELOPE_BYTES + 10]);
        assert!(bomb.len() < MAX_BODY_BYTES);
        let (status, _, _) = send(&app, post(bomb, Some("gzip")));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        // Not gzip at all, an unknown encoding, not an envelope, a bad project.
        assert_eq!(
            send(&app, post("plain", Some("gzip"))).0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(&app, post(envelope(), Some("br"))).0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(send(&app, post("[1,2]\n", None)).0, StatusCode::BAD_REQUEST);
        let request = Request::post("/api/abc/envelope/")
            .body(Body::from(envelope()))
            .expect("request");
        assert_eq!(send(&app, request).0, StatusCode::NOT_FOUND);
        // Bad trace ids in the viewer.
        let request = Request::get("/traces/..%2F..%2Fetc")
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&app, request).0, StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(dir);
    }
}
