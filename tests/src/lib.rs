//! What the cross-crate tests share: the test-vector file that every layer's tests read,
//! checks of rendered HTML with a real HTML parser, and the warnings of servers under test.

use std::path::PathBuf;

pub mod inject_oracle;
pub mod logs;

use serde::Deserialize;

/// The shared test vectors, `tests/vectors/vectors.json`.
#[derive(Debug, Deserialize)]
pub struct Vectors {
    /// `sentry-trace` header values and how they parse.
    pub sentry_trace: Vec<SentryTraceVector>,
    /// `baggage` header values and the DSC they carry.
    pub baggage: Vec<BaggageVector>,
    /// Continued traces: the decision, `sample_rand` and `sample_rate` they go on with.
    pub continuation: Vec<ContinuationVector>,
}

/// An input repeated to make a large header without storing it.
#[derive(Debug, Clone, Deserialize)]
pub struct Repeat {
    /// The unit.
    pub unit: String,
    /// How many times.
    pub times: usize,
}

/// One `sentry-trace` vector.
#[derive(Debug, Deserialize)]
pub struct SentryTraceVector {
    /// What the case is about.
    pub name: String,
    /// The header value (ignored when `repeat` is set).
    #[serde(default)]
    pub input: String,
    /// A large header value: `unit` repeated `times`.
    #[serde(default)]
    pub repeat: Option<Repeat>,
    /// How it parses, or `None` when it must be rejected.
    pub expect: Option<ExpectedTrace>,
    /// The canonical re-serialization.
    pub canonical: Option<String>,
}

impl SentryTraceVector {
    /// The header value.
    pub fn input(&self) -> String {
        match &self.repeat {
            Some(r) => r.unit.repeat(r.times),
            None => self.input.clone(),
        }
    }
}

/// A parsed `sentry-trace`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct ExpectedTrace {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits, if present.
    pub span_id: Option<String>,
    /// The flag, if present.
    pub sampled: Option<bool>,
}

/// One `baggage` vector.
#[derive(Debug, Deserialize)]
pub struct BaggageVector {
    /// What the case is about.
    pub name: String,
    /// The header values, in order (ignored when `repeat` is set).
    #[serde(default)]
    pub headers: Vec<String>,
    /// A large single header value.
    #[serde(default)]
    pub repeat: Option<Repeat>,
    /// The DSC it carries (keys without `sentry-`), or `None` when it carries none.
    pub dsc: Option<serde_json::Map<String, serde_json::Value>>,
    /// The canonical baggage we write for that DSC.
    pub serialized: Option<String>,
    /// `"same"`, or why we differ from `@sentry/core` on purpose.
    #[serde(default)]
    pub peer: Option<String>,
}

impl BaggageVector {
    /// The header values.
    pub fn headers(&self) -> Vec<String> {
        match &self.repeat {
            Some(r) => vec![r.unit.repeat(r.times)],
            None => self.headers.clone(),
        }
    }

    /// The expected DSC as ordered `(key, value)` pairs (empty when `None`).
    pub fn expected_entries(&self) -> Vec<(String, String)> {
        let mut entries: Vec<(String, String)> = self
            .dsc
            .iter()
            .flatten()
            .map(|(k, v)| {
                let value = v.as_str().unwrap_or_else(|| {
                    panic!("vector {:?}: DSC value of {k:?} is not a string", self.name)
                });
                (k.clone(), value.to_owned())
            })
            .collect();
        entries.sort();
        entries
    }
}

/// One continued trace: a valid `sentry-trace` and its `baggage`, continued by a service
/// that samples at a fixed `sample_rate`.
#[derive(Debug, Deserialize)]
pub struct ContinuationVector {
    /// What the case is about.
    pub name: String,
    /// The `sentry-trace` value.
    pub sentry_trace: String,
    /// The `baggage` values, in order.
    pub baggage: Vec<String>,
    /// The service's `traces_sample_rate`.
    pub sample_rate: f64,
    /// What the trace is continued with.
    pub expect: ExpectedContinuation,
    /// `"same"`, or why we differ from `@sentry/core` on purpose.
    pub peer: String,
}

/// The decision and the `sample_rand` of a continued trace.
#[derive(Debug, Deserialize)]
pub struct ExpectedContinuation {
    /// The service's decision: the caller's flag, else `sample_rand` below `sample_rate`.
    pub sampled: bool,
    /// The `sample_rand` the trace goes on with.
    pub sample_rand: ExpectedSampleRand,
    /// The `sample_rate` its DSC states: the service's when it made the decision, else the
    /// caller's, if any.
    pub sample_rate: Option<f64>,
    /// That member's text in the DSC: the service's rate as JavaScript writes the number
    /// (`1e-7`), or the caller's text as it came.
    pub sample_rate_text: Option<String>,
}

/// The caller's `sample_rand`, kept, or one filled in.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ExpectedSampleRand {
    /// The caller's value, kept (as the number it states).
    Kept(f64),
    /// Filled in, in `[lo, hi)`.
    Filled {
        /// `[lo, hi)`.
        between: (f64, f64),
    },
}

/// The path of the vector file.
pub fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/vectors.json")
}

/// Loads the shared vectors.
pub fn vectors() -> Vectors {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The cache vectors, `tests/vectors/cache.json`: the response headers of an HTML page and
/// what shared caches may do with it.
#[derive(Debug, Deserialize)]
pub struct CacheVectors {
    /// The cases.
    pub cache: Vec<CacheVector>,
}

/// What shared caches may do with a response, as a cache vector expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedCacheability {
    /// Stored and served to others: no tags, no `Server-Timing`.
    Shared,
    /// Storable without a lifetime: `private` is added.
    Heuristic,
    /// Not stored by shared caches: left as it is.
    Private,
}

/// One cache vector.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheVector {
    /// What the case is about.
    pub name: String,
    /// The response's header lines, `(name, value)`, in order; a value's non-ASCII text is
    /// sent as its UTF-8 bytes.
    pub headers: Vec<(String, String)>,
    /// What shared caches may do with it.
    pub cacheability: ExpectedCacheability,
    /// For a heuristic case, the `Cache-Control` lines once `private` has been added.
    #[serde(default)]
    pub marked: Option<Vec<String>>,
}

impl CacheVector {
    /// The response's `Cache-Control` lines.
    pub fn cache_control(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The `Cache-Control` lines a layer that marks heuristic pages `private` sends.
    pub fn cache_control_marked(&self) -> Vec<String> {
        match (&self.marked, self.cacheability) {
            (Some(marked), ExpectedCacheability::Heuristic) => marked.clone(),
            (None, ExpectedCacheability::Heuristic) => {
                panic!(
                    "cache vector {:?}: a heuristic case needs `marked`",
                    self.name
                )
            }
            _ => self.cache_control(),
        }
    }
}

/// Loads the cache vectors.
pub fn cache_vectors() -> Vec<CacheVector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/cache.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors: CacheVectors =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    vectors.cache
}

/// Every `<meta>` element of a document as `(name, content)`, read by a real HTML parser
/// (html5ever, through `scraper`), in document order.
pub fn meta_elements(html: &str) -> Vec<(String, String)> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse("meta").expect("valid selector");
    document
        .select(&selector)
        .map(|meta| {
            let attr = |name| meta.value().attr(name).unwrap_or_default().to_owned();
            (attr("name"), attr("content"))
        })
        .collect()
}

/// The `name`s of trace tags: what the Sentry browser SDK reads (`sentry-trace`, `baggage`) and
/// the W3C `traceparent` that the renderer may write.
pub const TRACE_NAMES: [&str; 3] = ["sentry-trace", "baggage", "traceparent"];

/// Whether `element` is part of the document a browser queries: not in a `<template>`'s
/// contents (which `scraper` keeps under a fragment node of the template element).
fn in_document(element: &scraper::ElementRef<'_>) -> bool {
    !element.ancestors().any(|node| node.value().is_fragment())
}

/// The trace tags under `root`, an element of a parsed document: `(name, content)` of each
/// `<meta>` whose `name` is exactly one of [`TRACE_NAMES`], in document order, template contents
/// left out.
pub fn trace_tags_under(root: scraper::ElementRef<'_>) -> Vec<(String, String)> {
    let selector = scraper::Selector::parse("meta").expect("valid selector");
    root.select(&selector)
        .filter(in_document)
        .filter_map(|meta| {
            let name = meta.value().attr("name")?;
            let content = meta.value().attr("content").unwrap_or_default();
            TRACE_NAMES
                .contains(&name)
                .then(|| (name.to_owned(), content.to_owned()))
        })
        .collect()
}

/// The trace tags in the `<head>` element of a parsed document.
pub fn head_trace_tags(document: &scraper::Html) -> Vec<(String, String)> {
    let head = scraper::Selector::parse("head").expect("valid selector");
    document
        .select(&head)
        .next()
        .map(trace_tags_under)
        .unwrap_or_default()
}

/// What the browser SDK reads of `tags` (a document's trace tags, in document order): for each
/// of [`TRACE_NAMES`] in turn, the first tag of that name, as
/// `document.querySelector('meta[name="…"]')` finds it. A name no tag has is left out.
pub fn first_of_each_name(tags: &[(String, String)]) -> Vec<(String, String)> {
    TRACE_NAMES
        .iter()
        .filter_map(|name| tags.iter().find(|(n, _)| n == name).cloned())
        .collect()
}

/// Every trace tag of a document as a browser's parser builds it (html5ever, through
/// `scraper`, scripting enabled): see [`trace_tags_under`].
pub fn trace_meta_elements(html: &str) -> Vec<(String, String)> {
    trace_tags_under(scraper::Html::parse_document(html).root_element())
}

/// The trace tags in the `<head>` element of a document.
pub fn head_trace_meta_elements(html: &str) -> Vec<(String, String)> {
    head_trace_tags(&scraper::Html::parse_document(html))
}

/// What the browser SDK reads from a document: see [`first_of_each_name`].
pub fn browser_trace_meta(html: &str) -> Vec<(String, String)> {
    first_of_each_name(&trace_meta_elements(html))
}

/// The meta elements the tags of `meta` must parse to, `(name, content)`, with the header values
/// as `content`.
pub fn expected_elements(meta: &sentry_meta_core::TraceMeta) -> Vec<(String, String)> {
    let mut tags = vec![(
        "sentry-trace".to_owned(),
        meta.sentry_trace_header().to_owned(),
    )];
    if let Some(baggage) = meta.baggage_header() {
        tags.push(("baggage".to_owned(), baggage.into_owned()));
    }
    if meta.writes_traceparent()
        && let Some(traceparent) = meta.traceparent_header()
    {
        tags.push(("traceparent".to_owned(), traceparent));
    }
    tags
}

/// Checks that `head_html`, put inside a document's `<head>`, parses to exactly the meta
/// elements `expected` (name, content) and nothing else: no stray elements, text or comments.
pub fn assert_head_is_exactly(head_html: &str, expected: &[(&str, &str)]) {
    let document = format!(
        "<!DOCTYPE html><html><head>{head_html}</head><body><p id=after>x</p></body></html>"
    );
    let parsed = scraper::Html::parse_document(&document);
    let head = scraper::Selector::parse("head").expect("valid selector");
    let head = parsed.select(&head).next().expect("a head element");
    let children: Vec<String> = head
        .children()
        .map(|node| match node.value() {
            scraper::Node::Element(e) => e.name().to_owned(),
            scraper::Node::Text(t) if t.trim().is_empty() => "ws".to_owned(),
            other => format!("{other:?}"),
        })
        .filter(|kind| kind != "ws")
        .collect();
    assert!(
        children.iter().all(|c| c == "meta") && children.len() == expected.len(),
        "head children {children:?} for {head_html:?}"
    );
    let actual = meta_elements(&document);
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, c)| ((*n).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(actual, expected, "meta elements of {head_html:?}");
    let after = scraper::Selector::parse("body > p#after").expect("valid selector");
    assert_eq!(
        parsed.select(&after).count(),
        1,
        "body intact after {head_html:?}"
    );
}

/// A real Sentry client whose transport keeps what it is sent, for tests that compare pages
/// with the transactions the SDK really sends.
pub mod sentry {
    use std::sync::Arc;

    use sentry_core::protocol::{Context, Envelope, EnvelopeItem, Transaction};
    use sentry_core::test::TestTransport;
    use sentry_core::{Client, ClientOptions, Hub};

    /// The DSN of the test clients: organization 42 in its host.
    pub const DSN: &str = "https://4f1c2d3e4b5a69788796a5b4c3d2e1f0@o42.ingest.sentry.io/7";
    /// The DSN's public key.
    pub const PUBLIC_KEY: &str = "4f1c2d3e4b5a69788796a5b4c3d2e1f0";

    /// A runtime of two workers whose threads' Hubs are bound to `client` (the process Hub stays
    /// the test thread's), and a listener on a loopback port, for a server under test.
    pub fn server_runtime(
        client: Arc<Client>,
    ) -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
        let _ = Hub::main();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || Hub::current().bind_client(Some(client.clone())))
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        (runtime, listener)
    }

    /// Options with [`DSN`], a release and an environment (tracing off until a rate is set).
    pub fn options() -> ClientOptions {
        ClientOptions::new()
            .dsn(DSN)
            .release("web@1.2.3")
            .environment("test")
    }

    /// Runs `f` on a fresh Hub with a real client; returns its result and the transactions
    /// the client sent.
    pub fn with_client<R>(
        options: ClientOptions,
        f: impl FnOnce() -> R,
    ) -> (R, Vec<Transaction<'static>>) {
        let transport = TestTransport::new();
        let client = Arc::new(Client::from(options.transport(transport.clone())));
        let hub = Arc::new(Hub::new(Some(client), Arc::new(Default::default())));
        let result = Hub::run(hub, f);
        (result, transactions(transport.fetch_and_clear_envelopes()))
    }

    /// The transactions in `envelopes`.
    pub fn transactions(envelopes: Vec<Envelope>) -> Vec<Transaction<'static>> {
        envelopes
            .iter()
            .flat_map(Envelope::items)
            .filter_map(|item| match item {
                EnvelopeItem::Transaction(tx) => Some((**tx).clone()),
                _ => None,
            })
            .collect()
    }

    /// An envelope as it goes on the wire: the `trace` of its header (the Dynamic Sampling
    /// Context, as `(key, value)` pairs sorted by key; empty without one) and the
    /// envelope parsed back, with its items. Works for the raw envelopes that
    /// `sentry_meta::DscTransport` hands on, whose items the SDK does not show.
    pub fn on_the_wire(envelope: &Envelope) -> (Vec<(String, String)>, Envelope) {
        let mut bytes = Vec::new();
        envelope.to_writer(&mut bytes).expect("serializable");
        let at = bytes
            .iter()
            .position(|&b| b == b'\n')
            .expect("a header line");
        let header: serde_json::Value = serde_json::from_slice(&bytes[..at]).expect("JSON");
        let dsc = header
            .get("trace")
            .and_then(serde_json::Value::as_object)
            .map(|trace| {
                trace
                    .iter()
                    .map(|(key, value)| match value {
                        serde_json::Value::String(value) => (key.clone(), value.clone()),
                        other => (key.clone(), other.to_string()),
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut dsc = dsc;
        dsc.sort();
        (dsc, Envelope::from_slice(&bytes).expect("a valid envelope"))
    }

    /// A transaction's trace id and span id, as hex.
    pub fn trace_context(tx: &Transaction<'_>) -> (String, String) {
        match tx.contexts.get("trace") {
            Some(Context::Trace(tc)) => (tc.trace_id.to_string(), tc.span_id.to_string()),
            other => panic!("no trace context: {other:?}"),
        }
    }
}
