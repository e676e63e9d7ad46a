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
//! It receives arbitrary POSTs and stays out of the pages' way. Envelopes are inflated, read
//! (then answered) and stored on a thread of their own at nice 19, never on the pages' async
//! workers. A body is received whole first, within [`BODY_TIMEOUT`] (408) and [`RECEIVING_BYTES`]
//! for all bodies being received (429), so that a client that sends slowly holds no place; then
//! at most [`INGEST_QUEUE`] are taken at once, others are answered 429. Over
//! [`MAX_BODY_BYTES`] as sent or [`MAX_ENVELOPE_BYTES`] inflated, too deeply nested or with too
//! many items or spans: 413. Browsers may post from the demo's web origin only (CORS; a plain
//! text POST from another `Origin`: 403). A read waits for one of [`MAX_READS`] places and stops
//! when its client hangs up or after [`READ_TIMEOUT`] (503); the list reads one summary row per
//! trace it shows.

pub mod envelope;
pub mod store;
pub mod view;

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use http_body_util::BodyExt as _;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tower_http::cors::{AllowOrigin, CorsLayer};

use self::envelope::Envelope;
use self::store::{Stop, Store};

/// The largest request body accepted (as sent, possibly compressed).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest envelope accepted after decompression.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// Envelopes taken at once, received whole: waiting for the ingest thread or being read.
pub const INGEST_QUEUE: usize = 8;
/// The bytes of the envelope bodies being received at once, counted as they arrive; a body
/// that would go over is answered 429.
pub const RECEIVING_BYTES: usize = 16 * 1024 * 1024;
/// A body not received whole within this is answered 408: a client that sends it slowly, or
/// never, holds no place and no memory for longer.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The addresses of the origins that serve pages: browsers may post from them only.
    page_addrs: Arc<[SocketAddr]>,
    /// The ingest thread's queue.
    ingest: mpsc::Sender<Job>,
    /// Places for envelopes ([`INGEST_QUEUE`]).
    queue: Arc<Semaphore>,
    /// Bytes for bodies being received ([`RECEIVING_BYTES`]).
    receiving: Arc<Semaphore>,
    /// Places for reads ([`MAX_READS`]).
    reads: Arc<Semaphore>,
}

/// The sink's routes, for pages served at `page_addrs` (the web origin's, the actix-web
/// origin's): the envelope endpoint and the trace pages. Starts the ingest thread, which ends
/// when the router is dropped.
pub fn router(store: Arc<Store>, page_addrs: &[SocketAddr]) -> Router {
    router_with_queue(store, page_addrs, INGEST_QUEUE)
}

/// [`router`] with room for `queue` envelopes at once.
pub fn router_with_queue(store: Arc<Store>, page_addrs: &[SocketAddr], queue: usize) -> Router {
    let page_addrs: Arc<[SocketAddr]> = page_addrs.into();
    // The browser SDK posts from the page's origin (a CORS "simple request": text/plain, no
    // custom headers), which may differ from the DSN's host (localhost vs 127.0.0.1).
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate({
            let page_addrs = Arc::clone(&page_addrs);
            move |origin: &HeaderValue, _| is_page_origin(&page_addrs, origin)
        }))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::CONTENT_ENCODING])
        .max_age(Duration::from_secs(3600));
    let sink = Sink {
        ingest: spawn_ingest(Arc::clone(&store)),
        store,
        page_addrs,
        queue: Arc::new(Semaphore::new(queue)),
        receiving: Arc::new(Semaphore::new(RECEIVING_BYTES)),
        reads: Arc::new(Semaphore::new(MAX_READS)),
    };
    let ingest = Router::new()
        .route("/api/{project}/envelope/", post(receive_envelope))
        .route("/api/{project}/envelope", post(receive_envelope))
        .layer(from_fn_with_state(sink.clone(), admit))
        .layer(cors);
    Router::new()
        .route("/traces", get(recent_traces))
        .route("/traces/", get(recent_traces))
        .route("/traces/{trace}", get(one_trace))
        .merge(ingest)
        .with_state(sink)
}

/// Whether `origin` (an `Origin` header) is the web origin at `web_addr`: `http://`, then
/// `localhost`, a loopback address or the address it is bound to, then its port.
pub fn is_web_origin(web_addr: SocketAddr, origin: &HeaderValue) -> bool {
    let Some(host_port) = origin.to_str().ok().and_then(|o| o.strip_prefix("http://")) else {
        return false;
    };
    let Some((host, port)) = host_port.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(web_addr.port()) {
        return false;
    }
    let (host, web_ip) = (
        host.trim_start_matches('[').trim_end_matches(']'),
        web_addr.ip(),
    );
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == web_ip || web_ip.is_unspecified())
}

/// Whether `origin` is one of the origins at `page_addrs` (see [`is_web_origin`]).
pub fn is_page_origin(page_addrs: &[SocketAddr], origin: &HeaderValue) -> bool {
    page_addrs.iter().any(|&addr| is_web_origin(addr, origin))
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

/// 429, with `Retry-After`.
fn busy() -> Response {
    let busy = error(
        StatusCode::TOO_MANY_REQUESTS,
        "the sink is busy: retry later",
    );
    ([(header::RETRY_AFTER, "1")], busy).into_response()
}

/// Before an envelope is read: 403 from another web origin; its body received whole (see
/// [`receive`]); then 429 without a place in the queue (held until it is answered, as the
/// body's bytes are).
async fn admit(State(sink): State<Sink>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !is_page_origin(&sink.page_addrs, origin)
    {
        return error(
            StatusCode::FORBIDDEN,
            "envelopes from other origins are refused",
        );
    }
    let (parts, body) = request.into_parts();
    let (body, _bytes) = match tokio::time::timeout(BODY_TIMEOUT, receive(&sink, body)).await {
        Ok(Ok(received)) => received,
        Ok(Err(response)) => return response,
        Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "the body took too long"),
    };
    let Ok(_place) = sink.queue.try_acquire() else {
        return busy();
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The whole body, at most [`MAX_BODY_BYTES`], with its share of [`RECEIVING_BYTES`], taken
/// chunk by chunk as it arrives: a client that sends nothing holds nothing.
async fn receive(sink: &Sink, mut body: Body) -> Result<(Bytes, OwnedSemaphorePermit), Response> {
    let receiving = || Arc::clone(&sink.receiving);
    // No bytes yet: fails only if the semaphore were closed, which it never is.
    let mut bytes = receiving().try_acquire_many_owned(0).map_err(|_| busy())?;
    let mut received = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(error(StatusCode::BAD_REQUEST, "the body could not be read"));
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if received.len() + data.len() > MAX_BODY_BYTES {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is too large",
            ));
        }
        let permit = u32::try_from(data.len())
            .ok()
            .and_then(|len| receiving().try_acquire_many_owned(len).ok());
        let Some(permit) = permit else {
            return Err(busy());
        };
        bytes.merge(permit);
        received.extend_from_slice(&data);
    }
    Ok((received.freeze(), bytes))
}

/// An envelope for the ingest thread, and where its answer goes: its spans, or why not.
struct Job {
    encoding: String,
    body: Bytes,
    answer: oneshot::Sender<Result<usize, (StatusCode, String)>>,
}

/// Starts the ingest thread: it takes jobs until every sender is gone. Each envelope is
/// answered once read, as Sentry's ingest answers once it has accepted one; the envelopes read
/// while the last ones were being stored are stored together, in one transaction.
fn spawn_ingest(store: Arc<Store>) -> mpsc::Sender<Job> {
    let (sender, jobs) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("sink-ingest".into())
        .spawn(move || {
            // The pages' threads come first (nice 19; SCHED_IDLE would starve it behind any
            // busy process of the machine, a build say, and the SDKs' envelopes with it).
            use thread_priority::{
                NormalThreadSchedulePolicy::Other, ThreadSchedulePolicy::Normal,
            };
            let (id, min) = (
                thread_priority::thread_native_id(),
                thread_priority::ThreadPriority::Min,
            );
            if let Err(e) = thread_priority::set_thread_priority_and_policy(id, min, Normal(Other))
            {
                tracing::debug!("sink: the ingest thread keeps its priority: {e:?}");
            }
            while let Ok(first) = jobs.recv() {
                let mut read = Vec::new();
                for job in std::iter::once(first).chain(jobs.try_iter().take(INGEST_QUEUE)) {
                    let envelope = read_envelope(&job.encoding, &job.body);
                    let _ = job.answer.send(
                        envelope
                            .as_ref()
                            .map(|e| e.spans.len())
                            .map_err(Clone::clone),
                    );
                    read.extend(envelope.ok());
                }
                if let Err(e) = store.insert(now(), &read) {
                    tracing::warn!("sink: could not store {} envelopes: {e}", read.len());
                }
            }
        });
    if let Err(e) = spawned {
        // Its receiver is gone with it: envelopes are answered 503.
        tracing::error!("sink: could not start the ingest thread: {e}");
    }
    sender
}

/// Inflates and reads one envelope.
fn read_envelope(encoding: &str, body: &[u8]) -> Result<Envelope, (StatusCode, String)> {
    let body = decode_body(encoding, body).map_err(|(status, e)| (status, e.to_owned()))?;
    envelope::parse(&body).map_err(|e| {
        let status = if e.is_too_large() {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        (status, e.to_string())
    })
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
            tracing::debug!(spans, "sink: envelope accepted");
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
/// [`READ_TIMEOUT`] or when this future is dropped. It also writes the page: a trace of many
/// spans makes one of megabytes, which is built there, never on the pages' workers, and by at
/// most [`MAX_READS`] at once.
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
    let (before, json) = (format.before, format.json());
    let read = bounded_read(&sink, move |store, stop| {
        let traces = store.recent_traces(before, TRACES_PER_PAGE, stop)?;
        let envelopes = store.envelope_count()?;
        // A full page may have older traces after it.
        let next = (traces.len() == TRACES_PER_PAGE as usize)
            .then(|| traces.last().map(|t| t.seq))
            .flatten();
        Ok(if json {
            Json(view::traces_json(&traces, next)).into_response()
        } else {
            Html(view::traces_html(&traces, envelopes, next).into_string()).into_response()
        })
    })
    .await;
    read.unwrap_or_else(|response| response)
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
    let read = bounded_read(&sink, move |store, stop| {
        let spans = store.trace(&trace_id, stop)?;
        Ok(if json {
            Json(view::TraceJson {
                trace_id: &trace_id,
                spans: &spans,
            })
            .into_response()
        } else {
            Html(view::trace_html(&trace_id, &spans).into_string()).into_response()
        })
    })
    .await;
    read.unwrap_or_else(|response| response)
}
