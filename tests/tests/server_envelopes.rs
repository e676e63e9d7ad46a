//! The server agrees with its page, as Sentry sees it: the demo runs with its real Sentry client
//! and the `sentry` crate's real HTTP transport (wrapped in `DscTransport`), reporting to a
//! recording ingest on loopback. For every engine's page and the injected one, fresh, continuing
//! a caller's trace, and with each `sentry-trace` the spec rejects but the `sentry` crate's own
//! parser would accept, the server transaction's envelope carries in its header exactly the DSC
//! the page wrote, and the page names that transaction's trace. Every page is also private to
//! shared caches, answers `HEAD`, and drops a `baggage` member that is not text alone.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use sentry_core::Envelope;
use sentry_core::protocol::{Context, EnvelopeItem};
use sentry_meta::{DynamicSamplingContext, SentryTrace};
use sentry_meta_demo::{Config, Demo};
use sentry_meta_tests::meta_elements;
use sentry_meta_tests::sentry::on_the_wire;

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";
/// How long a transaction may take to reach the ingest (a bound, not an expectation).
const WAIT: Duration = Duration::from_secs(20);

/// Every envelope body the ingest received.
type Received = Arc<Mutex<Vec<Bytes>>>;

struct Setup {
    demo: Demo,
    received: Received,
    runtime: tokio::runtime::Runtime,
}

/// The recording ingest and the demo reporting to it, once for the whole binary.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the ingest and the HTTP client");
        let received = Received::default();
        let ingest = Router::new()
            .route("/api/{project}/envelope/", post(record))
            .with_state(received.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        runtime.spawn(async move { axum::serve(listener, ingest).await });

        let data_dir =
            std::env::temp_dir().join(format!("sentry-meta-envelopes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let config = Config {
            dsn: Some(format!("http://5e47c0de5e47c0de5e47c0de5e47c0de@{addr}/1")),
            ..Config::ephemeral(&data_dir)
        };
        let demo = sentry_meta_demo::start(config)
            .unwrap_or_else(|e| panic!("the demo did not start: {e}"));
        Setup {
            demo,
            received,
            runtime,
        }
    })
}

async fn record(State(received): State<Received>, body: Bytes) -> &'static str {
    received.lock().expect("not poisoned").push(body);
    "{}"
}

/// A page as the browser SDK reads it: its `sentry-trace` and the DSC of its `baggage`; and
/// its `Cache-Control`.
struct Page {
    trace: SentryTrace,
    dsc: Vec<(String, String)>,
    cache_control: Vec<String>,
}

fn get(path: &str, headers: &[(&str, &str)]) -> Page {
    let headers: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|&(name, value)| (name, value.as_bytes()))
        .collect();
    get_bytes(path, &headers)
}

/// [`get`] with header values that need not be text.
fn get_bytes(path: &str, headers: &[(&str, &[u8])]) -> Page {
    let setup = setup();
    let url = format!("{}{path}", setup.demo.web_url);
    let (cache_control, body) = setup.runtime.block_on(async {
        let mut request = reqwest::Client::new().get(&url);
        for &(name, value) in headers {
            let value = reqwest::header::HeaderValue::from_bytes(value).expect("a header value");
            request = request.header(name, value);
        }
        let response = request.send().await.expect("a response");
        assert_eq!(response.status(), 200, "GET {url}");
        let cache_control = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        (cache_control, response.text().await.expect("a body"))
    });
    let metas = meta_elements(&body);
    let content = |name: &str| {
        let found: Vec<&String> = metas
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(found.len(), 1, "one {name} tag in {url}: {body}");
        found[0].clone()
    };
    let trace = content("sentry-trace")
        .parse()
        .expect("a valid sentry-trace");
    let baggage = content("baggage");
    let mut dsc: Vec<(String, String)> = DynamicSamplingContext::from_baggage([baggage.as_bytes()])
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    dsc.sort();
    Page {
        trace,
        dsc,
        cache_control,
    }
}

/// The DSC in the envelope of the web server's transaction that the page names (its own span,
/// or one of its child spans). Waits for it to arrive.
fn server_envelope_dsc(page: &Page) -> Vec<(String, String)> {
    let trace_id = page.trace.trace_id.to_string();
    let span_id = page.trace.span_id.expect("a span id").to_string();
    let started = Instant::now();
    loop {
        let bodies = setup().received.lock().expect("not poisoned").clone();
        for body in bodies {
            let raw = Envelope::from_bytes_raw(body.to_vec()).expect("raw");
            let (dsc, envelope) = on_the_wire(&raw);
            for item in envelope.items() {
                let EnvelopeItem::Transaction(tx) = item else {
                    continue;
                };
                let Some(Context::Trace(trace)) = tx.contexts.get("trace") else {
                    continue;
                };
                let names_it = trace.span_id.to_string() == span_id
                    || tx.spans.iter().any(|s| s.span_id.to_string() == span_id);
                if trace.trace_id.to_string() == trace_id && names_it {
                    assert_eq!(tx.tags.get("service").map(String::as_str), Some("web"));
                    return dsc;
                }
            }
        }
        assert!(
            started.elapsed() < WAIT,
            "no web transaction with span {span_id} of trace {trace_id} reached the ingest \
             within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Loads `path` with `headers` and checks that the server's envelope agrees with the page.
fn check(path: &str, headers: &[(&str, &str)]) -> Page {
    let page = get(path, headers);
    assert_eq!(
        server_envelope_dsc(&page),
        page.dsc,
        "{path} {headers:?}: the envelope's DSC is the page's, key by key"
    );
    page
}

/// The demo's pages: one per engine, the injected one, the actix-web one (through the web
/// origin's redirect) and the OpenTelemetry one.
const PAGES: [&str; 8] = [
    "/askama",
    "/minijinja",
    "/maud",
    "/tera",
    "/handlebars",
    "/injected",
    "/actix",
    "/otel",
];

fn value(page: &Page, key: &str) -> Option<String> {
    page.dsc
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

#[test]
fn fresh_pages_and_their_envelopes_share_the_head_dsc() {
    for path in PAGES {
        let page = check(path, &[]);
        assert_ne!(page.trace.trace_id.to_string(), TRACE);
        assert_eq!(
            value(&page, "public_key").as_deref(),
            Some("5e47c0de5e47c0de5e47c0de5e47c0de")
        );
        assert_eq!(value(&page, "sampled").as_deref(), Some("true"));
        assert!(value(&page, "sample_rand").is_some());
        assert_eq!(
            value(&page, "trace_id"),
            Some(page.trace.trace_id.to_string())
        );
    }
}

#[test]
fn continued_pages_and_their_envelopes_share_the_frozen_dsc() {
    let incoming = format!("{TRACE}-{SPAN}-1");
    let baggage = format!(
        "sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-sample_rate=0.5,\
         sentry-sampled=true,sentry-release=api%402,sentry-custom=a%20b,othervendor=x"
    );
    for path in PAGES {
        let page = check(path, &[("sentry-trace", &incoming), ("baggage", &baggage)]);
        assert_eq!(page.trace.trace_id.to_string(), TRACE);
        assert_eq!(value(&page, "public_key").as_deref(), Some("upstream"));
        assert_eq!(value(&page, "release").as_deref(), Some("api@2"));
        assert_eq!(value(&page, "custom").as_deref(), Some("a b"));
        assert_eq!(value(&page, "othervendor"), None);
    }
}

#[test]
fn tagged_pages_are_private_to_shared_caches() {
    for path in PAGES {
        assert_eq!(get(path, &[]).cache_control, ["private"], "{path}");
    }
}

#[test]
fn a_baggage_member_that_is_not_text_is_dropped_alone() {
    let incoming = format!("{TRACE}-{SPAN}-1");
    let baggage = b"sentry-public_key=upstream,sentry-environment=\xFF\xFE,sentry-release=r1";
    for path in PAGES {
        let page = get_bytes(
            path,
            &[("sentry-trace", incoming.as_bytes()), ("baggage", baggage)],
        );
        assert_eq!(server_envelope_dsc(&page), page.dsc, "{path}");
        assert_eq!(page.trace.trace_id.to_string(), TRACE, "{path}");
        assert_eq!(
            value(&page, "public_key").as_deref(),
            Some("upstream"),
            "{path}"
        );
        assert_eq!(value(&page, "release").as_deref(), Some("r1"), "{path}");
        assert_eq!(value(&page, "environment"), None, "{path}");
    }
}

#[test]
fn head_requests_are_answered() {
    let setup = setup();
    for path in PAGES {
        let url = format!("{}{path}", setup.demo.web_url);
        let response = setup.runtime.block_on(async {
            reqwest::Client::new()
                .head(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("HEAD {url}: {e}"))
        });
        assert_eq!(response.status(), 200, "HEAD {url}");
    }
}

#[test]
fn values_the_spec_rejects_start_a_new_trace_for_both() {
    let baggage = "sentry-release=theirs,sentry-public_key=upstream";
    let rejected = [
        format!("{}-{}-1", TRACE.to_uppercase(), SPAN.to_uppercase()),
        format!("{TRACE}-{SPAN}-2"),
        format!("{TRACE}-{SPAN}-1-x"),
        format!("{TRACE}-{SPAN}-1\"><script>"),
        format!("{TRACE}-{SPAN}-1,{TRACE}-{SPAN}-1"),
    ];
    for path in PAGES {
        for rejected in &rejected {
            let page = check(path, &[("sentry-trace", rejected), ("baggage", baggage)]);
            assert_ne!(page.trace.trace_id.to_string(), TRACE, "{path} {rejected}");
            assert_eq!(
                value(&page, "release").as_deref(),
                Some(sentry_meta_demo::RELEASE),
                "{path} {rejected}: this service's DSC, not the caller's"
            );
        }
        // Several headers, each valid alone.
        let valid = format!("{TRACE}-{SPAN}-1");
        let page = check(
            path,
            &[
                ("sentry-trace", "junk"),
                ("sentry-trace", &valid),
                ("baggage", baggage),
            ],
        );
        assert_ne!(page.trace.trace_id.to_string(), TRACE, "{path}");
        // Several headers, one of them not text (OpenTelemetry's `Extractor` reads text only).
        for other in [&b"\xff"[..], format!("{valid}\u{e9}").as_bytes()] {
            let page = get_bytes(
                path,
                &[
                    ("sentry-trace", valid.as_bytes()),
                    ("sentry-trace", other),
                    ("baggage", baggage.as_bytes()),
                ],
            );
            assert_eq!(server_envelope_dsc(&page), page.dsc, "{path} {other:?}");
            assert_ne!(page.trace.trace_id.to_string(), TRACE, "{path} {other:?}");
        }
    }
}
