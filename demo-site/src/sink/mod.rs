//! The embedded trace sink: a tiny stand-in for Sentry's ingest, mounted on the web origin.
//!
//! Both SDKs send their envelopes to it when no real DSN is given (the default DSN names the
//! web origin): `POST /api/<project>/envelope/`, gzip or not. It keeps each envelope's header
//! `trace` and its spans in SQLite and draws each trace as a waterfall across services:
//!
//! - `GET /traces`: the traces, the most recently updated first, [`TRACES_PER_PAGE`] a page
//!   (`?before=<seq>` for older ones; `?format=json` for JSON);
//! - `GET /traces/<trace_id>`: one trace (`/traces/<trace_id>.json` or `?format=json` for JSON,
//!   each span with its envelope header's `trace` as `dsc`).
//!
//! It receives arbitrary POSTs and stays out of the pages' way:
//!
//! - envelopes are inflated, read and stored on a thread of their own, at the lowest CPU
//!   priority, never on the async workers that serve the pages; it takes at most
//!   [`INGEST_QUEUE`] envelopes at once (being received, waiting or being stored) and answers
//!   others 429 before reading them;
//! - a body over [`MAX_BODY_BYTES`] as sent or [`MAX_ENVELOPE_BYTES`] inflated, nested too deeply
//!   or with too many items or spans is answered 413 (see [`envelope`]);
//! - browsers may post from the demo's own web origin only: CORS allows no other, and a POST
//!   that needs no preflight (plain text) from another `Origin` is answered 403;
//! - a read takes one of [`MAX_READS`] places, and stops when its client hangs up or after
//!   [`READ_TIMEOUT`] (503); the list reads one summary row per trace it shows.

pub mod envelope;
pub mod store;
pub mod view;

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::{Semaphore, oneshot};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::store::{Stop, Store};

/// The largest request body accepted (as sent, possibly compressed).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest envelope accepted after decompression.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// Envelopes taken at once: being received, waiting for the ingest thread or being stored.
pub const INGEST_QUEUE: usize = 8;
/// Reads of the database at once; more wait for a place.
pub const MAX_READS: usize = 4;
/// A read (with its wait for a place) that takes longer is stopped and answered 503.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How many traces a page of `/traces` lists.
pub const TRACES_PER_PAGE: u32 = 50;

/// What the sink's handlers share.
#[derive(Clone)]
struct Sink {
    store: Arc<Store>,
    /// The web origin's address: browsers may post from it only.
    web_addr: SocketAddr,
    /// The ingest thread's queue.
    ingest: mpsc::Sender<Job>,
    /// Places for envelopes ([`INGEST_QUEUE`]).
    queue: Arc<Semaphore>,
    /// Places for reads ([`MAX_READS`]).
    reads: Arc<Semaphore>,
}

/// The sink's routes, for the web origin at `web_addr`: the envelope endpoint and the trace
/// pages. Starts the ingest thread, which ends when the router is dropped.
pub fn router(store: Arc<Store>, web_addr: SocketAddr) -> Router {
    router_with_queue(store, web_addr, INGEST_QUEUE)
}

fn router_with_queue(store: Arc<Store>, web_addr: SocketAddr, queue: usize) -> Router {
    // The browser SDK posts from the page's origin (a CORS "simple request": text/plain, no
    // custom headers), which may differ from the DSN's host (localhost vs 127.0.0.1).
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            crate::is_web_origin(web_addr, origin)
        }))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
        .max_age(Duration::from_secs(3600));
    let sink = Sink {
        ingest: spawn_ingest(Arc::clone(&store)),
        store,
        web_addr,
        queue: Arc::new(Semaphore::new(queue)),
        reads: Arc::new(Semaphore::new(MAX_READS)),
    };
    let ingest = Router::new()
        .route("/api/{project}/envelope/", post(receive_envelope))
        .route("/api/{project}/envelope", post(receive_envelope))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(sink.clone(), admit))
        .layer(cors);
    Router::new()
        .route("/traces", get(recent_traces))
        .route("/traces/", get(recent_traces))
        .route("/traces/{trace}", get(one_trace))
        .merge(ingest)
        .with_state(sink)
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

/// Before an envelope's body is read: 403 from another web origin, 429 without a place in the
/// queue (held until it is answered).
async fn admit(State(sink): State<Sink>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !crate::is_web_origin(sink.web_addr, origin)
    {
        return error(
            StatusCode::FORBIDDEN,
            "envelopes from other origins are refused",
        );
    }
    let Ok(_place) = sink.queue.try_acquire() else {
        let busy = error(
            StatusCode::TOO_MANY_REQUESTS,
            "the sink is busy: retry later",
        );
        return ([(header::RETRY_AFTER, "1")], busy).into_response();
    };
    next.run(request).await
}

/// An envelope for the ingest thread, and where its answer goes: the spans stored, or why not.
struct Job {
    encoding: String,
    body: Bytes,
    answer: oneshot::Sender<Result<usize, (StatusCode, String)>>,
}

/// Starts the ingest thread: it takes jobs until every sender is gone.
fn spawn_ingest(store: Arc<Store>) -> mpsc::Sender<Job> {
    let (sender, jobs) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("sink-ingest".into())
        .spawn(move || {
            // The pages' threads come first: this one runs when they leave the CPU idle.
            let idle = thread_priority::ThreadSchedulePolicy::Normal(
                thread_priority::NormalThreadSchedulePolicy::Idle,
            );
            let lowered = thread_priority::set_thread_priority_and_policy(
                thread_priority::thread_native_id(),
                thread_priority::ThreadPriority::Min,
                idle,
            );
            if let Err(e) = lowered {
                tracing::debug!("sink: the ingest thread keeps its priority: {e:?}");
            }
            for job in jobs {
                let _ = job.answer.send(ingest(&store, &job.encoding, &job.body));
            }
        });
    if let Err(e) = spawned {
        // Its receiver is gone with it: envelopes are answered 503.
        tracing::error!("sink: could not start the ingest thread: {e}");
    }
    sender
}

/// Inflates, reads and stores one envelope.
fn ingest(store: &Store, encoding: &str, body: &[u8]) -> Result<usize, (StatusCode, String)> {
    let body =
        decode_body(encoding, body).map_err(|(status, detail)| (status, detail.to_owned()))?;
    let envelope = envelope::parse(&body).map_err(|e| {
        let status = if e.is_too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        (status, e.to_string())
    })?;
    store.insert(now(), &envelope).map_err(|e| {
        tracing::warn!("sink: could not store an envelope: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "could not store the envelope".to_owned(),
        )
    })?;
    Ok(envelope.spans.len())
}

/// The envelope's bytes after `Content-Encoding`, at most [`MAX_ENVELOPE_BYTES`].
fn decode_body(encoding: &str, body: &[u8]) -> Result<Vec<u8>, (StatusCode, &'static str)> {
    let limit = u64::try_from(MAX_ENVELOPE_BYTES).unwrap_or(u64::MAX) + 1;
    let mut out = Vec::new();
    let read = match encoding {
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
    State(sink): State<Sink>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if project.is_empty() || project.len() > 20 || !project.bytes().all(|b| b.is_ascii_digit()) {
        return error(StatusCode::NOT_FOUND, "unknown project");
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let (answer, answered) = oneshot::channel();
    let job = Job {
        encoding,
        body,
        answer,
    };
    if sink.ingest.send(job).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the sink is not running");
    }
    match answered.await {
        Ok(Ok(spans)) => {
            tracing::debug!(spans, "sink: envelope stored");
            Json(serde_json::json!({})).into_response()
        }
        Ok(Err((status, detail))) => error(status, &detail),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the sink is not running"),
    }
}

/// Sets its [`Stop`] when dropped: when the read is done, timed out, or its client hung up
/// (axum then drops the handler's future).
struct StopOnDrop(Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `read` on the blocking pool once a place among [`MAX_READS`] is free, stopped after
/// [`READ_TIMEOUT`] or when this future is dropped.
async fn bounded_read<T: Send + 'static>(
    sink: &Sink,
    read: impl FnOnce(&Store, &Stop) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let stop = Stop::default();
    let _stop = StopOnDrop(Arc::clone(&stop));
    let store = Arc::clone(&sink.store);
    let work = async {
        let _place = sink.reads.acquire().await;
        tokio::task::spawn_blocking(move || read(&store, &stop)).await
    };
    match tokio::time::timeout(READ_TIMEOUT, work).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "could not read the traces",
        )),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "reading the traces took too long",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct Format {
    format: Option<String>,
    /// The list from the trace before this place on.
    before: Option<i64>,
}

impl Format {
    fn json(&self) -> bool {
        self.format.as_deref() == Some("json")
    }
}

async fn recent_traces(State(sink): State<Sink>, Query(format): Query<Format>) -> Response {
    let before = format.before;
    let read = bounded_read(&sink, move |store, stop| {
        let traces = store.recent_traces(before, TRACES_PER_PAGE, stop)?;
        Ok((traces, store.envelope_count()?))
    })
    .await;
    let (traces, envelopes) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    // A full page may have older traces after it.
    let next = (traces.len() == TRACES_PER_PAGE as usize)
        .then(|| traces.last().map(|t| t.seq))
        .flatten();
    if format.json() {
        Json(view::traces_json(&traces, next)).into_response()
    } else {
        Html(view::traces_html(&traces, envelopes, next).into_string()).into_response()
    }
}

async fn one_trace(
    State(sink): State<Sink>,
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
    match bounded_read(&sink, move |store, stop| store.trace(&id, stop)).await {
        Ok(spans) if json => Json(view::trace_json(&trace_id, &spans)).into_response(),
        Ok(spans) => Html(view::trace_html(&trace_id, &spans).into_string()).into_response(),
        Err(response) => response,
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
    const WEB: &str = "127.0.0.1:8080";

    fn envelope() -> String {
        format!(
            "{{\"trace\":{{\"trace_id\":\"{TRACE}\",\"zz\":[1]}}}}\n{{\"type\":\"span\"}}\n{{\"version\":2,\"items\":[{{\"trace_id\":\"{TRACE}\",\
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
        (router(store, WEB.parse().expect("addr")), dir)
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
            Some(&b"http://localhost:8080"[..])
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
        assert_eq!(
            json["spans"][0]["dsc"],
            serde_json::json!({ "trace_id": TRACE, "zz": [1] }),
            "the envelope header's trace, unknown keys too"
        );

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

    fn get(app: &Router, uri: &str) -> (StatusCode, HeaderMap, String) {
        send(app, Request::get(uri).body(Body::empty()).expect("request"))
    }

    #[test]
    fn only_the_web_origin_may_post() {
        let (app, dir) = app();
        let mut request = post(envelope(), None);
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_static("http://evil.example"));
        let (status, headers, _) = send(&app, request);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(!headers.contains_key("access-control-allow-origin"));
        let preflight = Request::options("/api/1/envelope/")
            .header("origin", "http://localhost:9999")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .expect("request");
        let (_, headers, _) = send(&app, preflight);
        assert!(!headers.contains_key("access-control-allow-origin"));
        // No Origin: another process (the Rust SDK).
        let request = Request::post("/api/1/envelope/")
            .body(Body::from(envelope()))
            .expect("request");
        assert_eq!(send(&app, request).0, StatusCode::OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn limits_answer_413_and_a_full_queue_429() {
        let (app, dir) = app();
        let deep = format!("{{}}\n{{\"type\":\"span\"}}\n{}\n", "[".repeat(100));
        assert_eq!(
            send(&app, post(deep, None)).0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // The issue's bomb: 4 MB of tiny values in a few KB.
        let mut bomb = b"{}\n{\"type\":\"span\"}\n{\"items\":[".to_vec();
        bomb.extend(b"0,".repeat(2_000_000));
        bomb.extend(b"0]}\n");
        let (status, _, _) = send(&app, post(gzip(&bomb), Some("gzip")));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let store = Arc::new(Store::open(&dir.join("sink.sqlite")).expect("store"));
        let full = router_with_queue(store, WEB.parse().expect("addr"), 0);
        let (status, headers, _) = send(&full, post(envelope(), None));
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key("retry-after"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn lists_traces_a_page_at_a_time() {
        let (app, dir) = app();
        for n in 0..TRACES_PER_PAGE + 1 {
            let body = envelope().replace(TRACE, &format!("{:032x}", n + 1));
            assert_eq!(send(&app, post(body, None)).0, StatusCode::OK);
        }
        let (_, _, json) = get(&app, "/traces?format=json");
        let json: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(json["traces"].as_array().map(Vec::len), Some(50));
        let next = json["next"].as_str().expect("a next page");
        let (_, _, older) = get(&app, next);
        let older: serde_json::Value = serde_json::from_str(&older).expect("json");
        assert_eq!(older["traces"][0]["trace_id"], format!("{:032x}", 1));
        assert_eq!(older["next"], serde_json::Value::Null);
        let (_, _, page) = get(&app, "/traces");
        assert!(page.contains("href=\"/traces?before="));
        let _ = std::fs::remove_dir_all(dir);
    }
}
