//! The embedded trace sink over HTTP: what it stores and shows, and how it answers hostile
//! clients.

use std::io::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use sentry_meta_demo::sink::store::Store;
use sentry_meta_demo::sink::{
    MAX_BODY_BYTES, MAX_ENVELOPE_BYTES, TRACES_PER_PAGE, router, router_with_queue,
};
use tower::ServiceExt as _;

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
    (router(store, &[WEB.parse().expect("addr")]), dir)
}

/// Waits until the sink in `dir` has stored `envelopes` envelopes (it answers once it has read
/// one, and stores it right after).
fn stored(dir: &std::path::Path, envelopes: i64) {
    let store = Store::open(&dir.join("sink.sqlite")).expect("store");
    let started = std::time::Instant::now();
    while store.envelope_count().expect("count") < envelopes {
        assert!(
            started.elapsed().as_secs() < 10,
            "{envelopes} envelopes stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
    stored(&dir, 2);

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
    let full = router_with_queue(store, &[WEB.parse().expect("addr")], 0);
    let (status, headers, _) = send(&full, post(envelope(), None));
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key("retry-after"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A few small envelopes cannot make a trace's page huge: the spans of a trace are kept up to
/// `MAX_SPANS_PER_TRACE`, and a span's URL is cut as its name is.
#[test]
fn a_trace_s_page_stays_small_whatever_its_spans() {
    use sentry_meta_demo::sink::store::MAX_SPANS_PER_TRACE;
    let (app, dir) = app();
    let url = "u".repeat(3_900);
    for envelope in 0..6 {
        let items: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "{{\"trace_id\":\"{TRACE}\",\"span_id\":\"{:016x}\",\"name\":\"x\",\
                     \"start_timestamp\":{i},\"end_timestamp\":1000,\"attributes\":{{\"url.full\":\
                     {{\"type\":\"string\",\"value\":\"{url}\"}}}}}}",
                    envelope * 1_000 + i + 1
                )
            })
            .collect();
        let body = format!(
            "{{\"trace\":{{\"trace_id\":\"{TRACE}\"}}}}\n{{\"type\":\"span\"}}\n{{\"version\":2,\"items\":[{}]}}\n",
            items.join(",")
        );
        let (status, _, detail) = send(&app, post(gzip(body.as_bytes()), Some("gzip")));
        assert_eq!(status, StatusCode::OK, "{detail}");
    }
    stored(&dir, 6);
    let (status, _, page) = get(&app, &format!("/traces/{TRACE}"));
    assert_eq!(status, StatusCode::OK);
    let rows = page.matches("class=\"row\"").count();
    assert_eq!(i64::try_from(rows).ok(), Some(MAX_SPANS_PER_TRACE));
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
    assert!(!page.contains(&url[..301]));
    let _ = std::fs::remove_dir_all(dir);
}

/// A body that sends one byte, then nothing more, as a slow client's.
struct Stalled(bool);

impl http_body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if std::mem::replace(&mut self.0, true) {
            return std::task::Poll::Pending;
        }
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data("{".into()))))
    }
}

#[test]
fn clients_that_stall_their_bodies_hold_no_place() {
    let (app, dir) = app();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let statuses = runtime.block_on(async {
        // Twice as many as the queue has places, each sending one byte of its body.
        let stalled: Vec<_> = (0..2 * sentry_meta_demo::sink::INGEST_QUEUE)
            .map(|_| tokio::spawn(app.clone().oneshot(post(Body::new(Stalled(false)), None))))
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let response = app.clone().oneshot(post(envelope(), None)).await;
        assert_eq!(response.expect("infallible").status(), StatusCode::OK);
        // Each is answered once its time is up.
        let answered = async {
            let mut statuses = Vec::new();
            for stalled in stalled {
                statuses.push(stalled.await.expect("joined").expect("infallible").status());
            }
            statuses
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), answered).await
    });
    let timed_out = vec![StatusCode::REQUEST_TIMEOUT; 2 * sentry_meta_demo::sink::INGEST_QUEUE];
    assert_eq!(statuses, Ok(timed_out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lists_traces_a_page_at_a_time() {
    let (app, dir) = app();
    for n in 0..TRACES_PER_PAGE + 1 {
        let body = envelope().replace(TRACE, &format!("{:032x}", n + 1));
        assert_eq!(send(&app, post(body, None)).0, StatusCode::OK);
    }
    stored(&dir, i64::from(TRACES_PER_PAGE) + 1);
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
