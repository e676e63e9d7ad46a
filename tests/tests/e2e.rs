//! End to end, in a real browser: for every page of the demo (axum with each engine, leptos,
//! actix-web, OpenTelemetry) and both `traceLifecycle` modes of `@sentry/browser`, one trace goes
//! SSR → browser pageload → `fetch` → API → database.
//!
//! The demo runs in this process on free loopback ports, reporting to its embedded sink (a fresh
//! SQLite file). Each test loads one page in headless Chromium (`--dump-dom` runs the page's
//! scripts until idle and exits with the SDK's envelopes sent), reads the page's `sentry-trace`
//! tag and the API's answer from the DOM, then polls the sink's JSON until every part of the
//! trace has arrived (a bounded wait) and checks how the parts link up.
//!
//! Needs `/usr/bin/chromium` (`bash scripts/install-browser.sh`) and npm (the demo builds its
//! browser bundle with it on first use, through the same function as `cargo run`).

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use scraper::{Html, Selector};
use sentry_meta::DynamicSamplingContext;
use sentry_meta_demo::{Config, Demo};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the parts of a trace may take to reach the sink (a bound, not an expectation).
const TRACE_WAIT: Duration = Duration::from_secs(20);
/// How long one headless Chromium run may take before it is killed.
const BROWSER_WAIT: Duration = Duration::from_secs(90);

/// The demo, started once for all tests of this binary.
fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        if !Path::new(CHROMIUM).exists() {
            panic!(
                "{CHROMIUM} is missing: the end-to-end tests drive a real headless Chromium. \
                 Install it with `bash scripts/install-browser.sh` (or `apt-get install -y chromium`)."
            );
        }
        if let Err(e) = sentry_meta_demo::bundle::ensure_bundle() {
            panic!("the browser bundle could not be built: {e}");
        }
        let data_dir = std::env::temp_dir().join(format!("sentry-meta-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        sentry_meta_demo::start(Config::ephemeral(&data_dir))
            .unwrap_or_else(|e| panic!("the demo did not start: {e}"))
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the HTTP client")
    })
}

/// GET a URL of the demo: status and body.
fn get(url: &str) -> (u16, String) {
    runtime().block_on(async {
        let response = reqwest::get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (status, body)
    })
}

/// Loads `url` in a fresh headless Chromium and returns the DOM after its scripts ran.
fn dump_dom(url: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "sentry-meta-e2e-chromium-{}-{}",
        std::process::id(),
        url.bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {CHROMIUM}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < BROWSER_WAIT => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{CHROMIUM} did not finish loading {url} within {BROWSER_WAIT:?}");
            }
        }
    };
    let dom = reader.join().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "{CHROMIUM} failed on {url}: {status}");
    dom
}

/// What the page shows after its scripts ran.
struct LoadedPage {
    trace_id: String,
    /// The span id of the page's `sentry-trace` tag: the server span that rendered it.
    span_id: String,
    /// The DSC of the page's `baggage` tag.
    dsc: Dsc,
    /// The API's JSON answer to the page's `fetch`.
    api: Value,
}

fn read_page(dom: &str) -> LoadedPage {
    let html = Html::parse_document(dom);
    let select =
        |css: &str| Selector::parse(css).unwrap_or_else(|e| panic!("selector {css}: {e:?}"));
    let tags: Vec<_> = html
        .select(&select(r#"meta[name="sentry-trace"]"#))
        .collect();
    assert_eq!(
        tags.len(),
        1,
        "exactly one sentry-trace tag in the page:\n{dom}"
    );
    let content = tags[0].value().attr("content").unwrap_or_default();
    let parts: Vec<&str> = content.split('-').collect();
    assert!(
        parts.len() == 3 && parts[0].len() == 32 && parts[1].len() == 16 && parts[2] == "1",
        "sentry-trace tag `{content}` is TRACE-SPAN-1"
    );
    let baggage: Vec<_> = html.select(&select(r#"meta[name="baggage"]"#)).collect();
    assert_eq!(baggage.len(), 1, "one baggage tag:\n{dom}");
    let dsc = dsc_of_baggage(baggage[0].value().attr("content").unwrap_or_default());
    let body = html.select(&select("body")).next().expect("a body");
    assert_eq!(
        body.value().attr("data-api"),
        Some("ok"),
        "the page's fetch to the API succeeded (body[data-api]):\n{dom}"
    );
    let api_text: String = html
        .select(&select("#api-result"))
        .next()
        .map(|pre| pre.text().collect())
        .unwrap_or_default();
    let api: Value = serde_json::from_str(&api_text)
        .unwrap_or_else(|e| panic!("the API's answer is JSON ({e}):\n{api_text}"));
    let link = html
        .select(&select("#trace-link"))
        .next()
        .and_then(|a| a.value().attr("href"));
    assert_eq!(
        link,
        Some(format!("/traces/{}", parts[0]).as_str()),
        "the page links to its trace in the sink (set from the tag by the page's script)"
    );
    LoadedPage {
        trace_id: parts[0].to_owned(),
        span_id: parts[1].to_owned(),
        dsc,
        api,
    }
}

/// A Dynamic Sampling Context as `key → value` (keys without `sentry-`), its numbers in one
/// spelling: the browser SDK reads `sample_rand` and `sample_rate` as numbers and writes them
/// back as JavaScript does (`0.43394` for the page's `0.433940`), the same number to Sentry.
type Dsc = BTreeMap<String, String>;

fn dsc(entries: impl IntoIterator<Item = (String, String)>) -> Dsc {
    entries
        .into_iter()
        .map(|(key, value)| {
            let number = matches!(key.as_str(), "sample_rand" | "sample_rate")
                .then(|| value.parse::<f64>().ok())
                .flatten();
            (key, number.map_or(value, |number| number.to_string()))
        })
        .collect()
}

/// The DSC a `baggage` value carries.
fn dsc_of_baggage(baggage: &str) -> Dsc {
    dsc(DynamicSamplingContext::from_baggage([baggage.as_bytes()])
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned())))
}

/// The DSC of the envelope a span came in (its header's `trace`), as the sink stored it.
fn dsc_of_span(span: &Value) -> Dsc {
    dsc(span["dsc"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| match value {
            Value::String(value) => (key.clone(), value.clone()),
            other => (key.clone(), other.to_string()),
        }))
}

fn str_of<'a>(span: &'a Value, key: &str) -> &'a str {
    span.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The parts of one trace, as the sink stored them.
struct TraceParts {
    server: Value,
    pageload: Value,
    fetch: Value,
    api: Value,
    db: Vec<Value>,
    all: Vec<Value>,
}

/// Picks the parts out of the sink's spans; `None` while one has not arrived.
fn parts(spans: &[Value], fetch_span_id: &str) -> Option<TraceParts> {
    let find = |pred: &dyn Fn(&Value) -> bool| spans.iter().find(|s| pred(s)).cloned();
    // The web service's one transaction in the trace (its op is checked by `check`).
    let server = find(&|s| str_of(s, "service") == "web" && str_of(s, "item") == "transaction")?;
    let pageload = find(&|s| str_of(s, "service") == "browser" && str_of(s, "op") == "pageload")?;
    let fetch = find(&|s| str_of(s, "span_id") == fetch_span_id)?;
    let api = find(&|s| {
        str_of(s, "service") == "api"
            && str_of(s, "item") == "transaction"
            && str_of(s, "op") == "http.server"
    })?;
    let api_id = str_of(&api, "span_id").to_owned();
    let db: Vec<Value> = spans
        .iter()
        .filter(|s| str_of(s, "op") == "db.sql.query" && str_of(s, "segment_id") == api_id)
        .cloned()
        .collect();
    (db.len() >= 3).then(|| TraceParts {
        server,
        pageload,
        fetch,
        api,
        db,
        all: spans.to_vec(),
    })
}

fn check(page: &str, lifecycle: &str) {
    let demo = demo();
    // The actix-web page has an origin of its own (its other paths redirect to the web origin).
    let origin = if page == "actix" {
        &demo.actix_url
    } else {
        &demo.web_url
    };
    let url = format!("{origin}/{page}?lifecycle={lifecycle}");
    let loaded = read_page(&dump_dom(&url));
    let trace_id = loaded.trace_id.as_str();

    // The page's fetch carried the page's trace (the API echoes what it received).
    let received = &loaded.api["received"];
    let sentry_trace = received["sentry-trace"].as_str().unwrap_or_else(|| {
        panic!(
            "the API received no sentry-trace header from the page's fetch: {}",
            loaded.api
        )
    });
    let baggage = received["baggage"].as_str().unwrap_or_else(|| {
        panic!(
            "the API received no baggage header from the page's fetch: {}",
            loaded.api
        )
    });
    let (header_trace, rest) = sentry_trace.split_once('-').unwrap_or_default();
    assert_eq!(
        header_trace, trace_id,
        "fetch's sentry-trace `{sentry_trace}` is of the page's trace"
    );
    let fetch_span_id = rest.split('-').next().unwrap_or_default().to_owned();
    assert!(
        baggage
            .split(',')
            .any(|m| m == format!("sentry-trace_id={trace_id}")),
        "fetch's baggage `{baggage}` names the page's trace"
    );
    assert_eq!(
        loaded.api["trace_id"].as_str(),
        Some(trace_id),
        "the API's transaction continued it"
    );

    // Every part reaches the sink.
    let json_url = format!("{}/traces/{trace_id}.json", demo.web_url);
    let started = Instant::now();
    let parts = loop {
        let (status, body) = get(&json_url);
        assert_eq!(status, 200, "GET {json_url}: {body}");
        let trace: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{json_url} is JSON ({e})"));
        let spans = trace["spans"].as_array().cloned().unwrap_or_default();
        if let Some(parts) = parts(&spans, &fetch_span_id) {
            break parts;
        }
        assert!(
            started.elapsed() < TRACE_WAIT,
            "the trace of {url} did not arrive complete within {TRACE_WAIT:?} (server transaction, \
             browser pageload, fetch span {fetch_span_id}, API transaction, 3 DB spans):\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for span in &parts.all {
        assert_eq!(
            str_of(span, "trace_id"),
            trace_id,
            "every span is of one trace: {span}"
        );
    }

    // `SentrySpanProcessor` makes the OpenTelemetry span's name the transaction's op.
    let server_op = if page == "otel" {
        "GET /otel"
    } else {
        "http.server"
    };
    assert_eq!(str_of(&parts.server, "op"), server_op, "{}", parts.server);

    // The page's sentry-trace names the server span that rendered it: the transaction, or its
    // `template.render` child that was active while the template ran.
    let server_id = str_of(&parts.server, "span_id");
    let rendering = parts
        .all
        .iter()
        .find(|s| str_of(s, "span_id") == loaded.span_id)
        .unwrap_or_else(|| {
            panic!(
                "the page's span {} is one of the server's spans",
                loaded.span_id
            )
        });
    assert_eq!(str_of(rendering, "service"), "web");
    assert_eq!(
        str_of(rendering, "segment_id"),
        server_id,
        "the tag's span belongs to the server transaction"
    );
    if page == "injected" || page == "leptos" {
        // Injected when the response was ready, or streamed by leptos after the handler
        // returned: the tags name the server transaction itself.
        assert_eq!(loaded.span_id, server_id);
    } else {
        assert_eq!(str_of(rendering, "op"), "template.render");
        assert_eq!(str_of(rendering, "parent_span_id"), server_id);
    }

    // The browser's pageload continues it.
    assert_eq!(str_of(&parts.pageload, "trace_id"), trace_id);
    assert_eq!(
        str_of(&parts.pageload, "parent_span_id"),
        loaded.span_id,
        "pageload's parent is the tag's span"
    );
    let expected_item = if lifecycle == "static" {
        "transaction"
    } else {
        "span.v2"
    };
    assert_eq!(
        str_of(&parts.pageload, "item"),
        expected_item,
        "traceLifecycle {lifecycle}"
    );
    assert_eq!(parts.pageload["is_segment"], Value::Bool(true));
    // The sink keeps each envelope header's `trace` (the DSC the browser SDK sent) as `dsc`.
    assert_eq!(
        parts.pageload["dsc"]["trace_id"].as_str(),
        Some(trace_id),
        "the pageload's envelope header carried the page's trace: {}",
        parts.pageload
    );

    // Sentry's dynamic sampling sees one context for the whole trace: the server's transaction
    // envelope carries the DSC its page wrote, the browser's envelopes the one it read from the
    // page, and the API's transaction the one the browser's fetch propagated (frozen).
    assert_eq!(
        dsc_of_span(&parts.server),
        loaded.dsc,
        "the server transaction's envelope carries the page's DSC"
    );
    assert_eq!(
        dsc_of_span(&parts.pageload),
        loaded.dsc,
        "the browser's envelope carries the page's DSC"
    );
    assert_eq!(
        dsc_of_span(&parts.api),
        dsc_of_baggage(baggage),
        "the API transaction's envelope carries the DSC the browser propagated"
    );

    // Its fetch span is the parent of the API's transaction, whose DB spans are its children.
    let pageload_id = str_of(&parts.pageload, "span_id");
    assert_eq!(str_of(&parts.fetch, "op"), "http.client");
    assert_eq!(str_of(&parts.fetch, "service"), "browser");
    assert_eq!(
        str_of(&parts.fetch, "parent_span_id"),
        pageload_id,
        "fetch is a child of the pageload"
    );
    assert_eq!(
        str_of(&parts.fetch, "item"),
        if lifecycle == "static" {
            "transaction.span"
        } else {
            "span.v2"
        }
    );
    assert_eq!(
        str_of(&parts.api, "parent_span_id"),
        fetch_span_id,
        "the API continues the fetch span"
    );
    let api_id = str_of(&parts.api, "span_id");
    let queries: Vec<&str> = loaded.api["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        queries.len(),
        3,
        "the API ran three queries: {}",
        loaded.api
    );
    for sql in queries {
        let span = parts
            .db
            .iter()
            .find(|s| str_of(s, "name") == sql)
            .unwrap_or_else(|| panic!("a db.sql.query span described `{sql}`"));
        assert_eq!(
            str_of(span, "parent_span_id"),
            api_id,
            "DB span `{sql}` is a child of the API transaction"
        );
        assert_eq!(str_of(span, "service"), "api");
    }

    // The sink's pages show it: in the list, and drawn with every part.
    let (status, list) = get(&format!("{}/traces", demo.web_url));
    assert_eq!(status, 200);
    assert!(
        list.contains(&format!("href=\"/traces/{trace_id}\"")),
        "/traces lists {trace_id}"
    );
    let (status, waterfall) = get(&format!("{}/traces/{trace_id}", demo.web_url));
    assert_eq!(status, 200);
    let waterfall = Html::parse_document(&waterfall);
    for (what, span) in [
        ("server transaction", &parts.server),
        ("rendering span", rendering),
        ("browser pageload", &parts.pageload),
        ("browser fetch", &parts.fetch),
        ("API transaction", &parts.api),
    ]
    .into_iter()
    .chain(parts.db.iter().map(|db| ("DB span", db)))
    {
        let row = format!("#span-{}", str_of(span, "span_id"));
        let selector = Selector::parse(&row).unwrap_or_else(|e| panic!("selector {row}: {e:?}"));
        assert!(
            waterfall.select(&selector).next().is_some(),
            "/traces/{trace_id} draws the {what} ({row})"
        );
    }
    for service in ["web", "browser", "api"] {
        let selector = Selector::parse(&format!(".badge.svc-{service}")).expect("badge selector");
        assert!(
            waterfall.select(&selector).next().is_some(),
            "/traces/{trace_id} shows the {service} service"
        );
    }
}

macro_rules! e2e {
    ($($name:ident: $page:literal, $lifecycle:literal;)*) => {
        $(
            #[test]
            fn $name() {
                check($page, $lifecycle);
            }
        )*
    };
}

e2e! {
    askama_stream: "askama", "stream";
    askama_static: "askama", "static";
    minijinja_stream: "minijinja", "stream";
    minijinja_static: "minijinja", "static";
    maud_stream: "maud", "stream";
    maud_static: "maud", "static";
    tera_stream: "tera", "stream";
    tera_static: "tera", "static";
    handlebars_stream: "handlebars", "stream";
    handlebars_static: "handlebars", "static";
    injected_stream: "injected", "stream";
    injected_static: "injected", "static";
    catalog_stream: "catalog", "stream";
    leptos_stream: "leptos", "stream";
    leptos_static: "leptos", "static";
    actix_stream: "actix", "stream";
    actix_static: "actix", "static";
    otel_stream: "otel", "stream";
    otel_static: "otel", "static";
}
