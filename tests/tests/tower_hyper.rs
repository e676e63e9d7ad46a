//! The tower layers in a plain `hyper` server, without axum: a `tower::service_fn` whose pages
//! are `http_body_util` bodies (one whole, one streamed in pieces), behind `sentry-tower`'s
//! `NewSentryLayer`, `SentryMetaLayer` and `InjectTraceMetaLayer`; pages fetched over HTTP and
//! parsed with `scraper`, their ids compared with the transactions the real Sentry client sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, header};
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sentry_core::Client;
use sentry_core::protocol::{Context, EnvelopeItem};
use sentry_core::test::TestTransport;
use sentry_meta::tower::{InjectTraceMetaLayer, SentryMetaLayer};
use sentry_meta::{DscTransport, DynamicSamplingContext, SentryMeta, SentryTrace};
use sentry_meta_tests::meta_elements;
use sentry_meta_tests::sentry::{PUBLIC_KEY, on_the_wire};
use sentry_tower::NewSentryLayer;
use tower::{ServiceBuilder, service_fn};

const TRACE: &str = "771a43a4192642f0b136d5159a501700";
const SPAN: &str = "b7ad6b7169203331";

type Page = Either<
    Full<Bytes>,
    StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

/// `/whole`: the page writes its tags itself, one body. `/streamed`: a page without tags, in
/// three pieces that split `</head>`, for the injection layer. Both are made when the service's
/// future is polled (see [`service`] for a page made in `call`).
async fn pages(request: Request<Incoming>) -> Result<Response<Page>, Infallible> {
    if request.uri().path() != "/streamed" {
        return Ok(whole_page());
    }
    let pieces = [
        "<!DOCTYPE html><html><head><title>t</title></he",
        "ad><body>",
        "<p>streamed</p></body></html>",
    ];
    let frames: Vec<_> = pieces
        .into_iter()
        .map(|piece| Ok(Frame::data(Bytes::from_static(piece.as_bytes()))))
        .collect();
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Either::Right(StreamBody::new(stream::iter(frames))))
        .expect("a response"))
}

/// The service: `/in-call` renders its page and captures an event in `call` and answers with
/// a ready future, as a service that does its work in `call` does; the other pages are
/// [`pages`].
fn service(request: Request<Incoming>) -> impl Future<Output = Result<Response<Page>, Infallible>> {
    let in_call = (request.uri().path() == "/in-call").then(|| {
        sentry_core::capture_message("in call", sentry_core::Level::Error);
        whole_page()
    });
    async move {
        match in_call {
            Some(page) => Ok(page),
            None => pages(request).await,
        }
    }
}

/// A page that writes its tags itself, in one body.
fn whole_page() -> Response<Page> {
    let meta = SentryMeta::current();
    let page = format!(
        "<!DOCTYPE html><html><head>{meta}<title>t</title></head><body>whole</body></html>"
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Either::Left(Full::new(Bytes::from(page))))
        .expect("a response")
}

struct Server {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    http: reqwest::Client,
    transport: Arc<TestTransport>,
}

impl Server {
    fn start() -> Self {
        let transport = TestTransport::new();
        let options = sentry_meta_tests::sentry::options().traces_sample_rate(1.0);
        let client = Arc::new(Client::from(
            options.transport(DscTransport::wrap(transport.clone())),
        ));
        let (runtime, listener) = sentry_meta_tests::sentry::server_runtime(client);
        let addr = listener.local_addr().expect("an address");
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = ServiceBuilder::new()
                    .layer(NewSentryLayer::<Request<Incoming>>::new_from_top())
                    .layer(SentryMetaLayer::new().server_timing(true))
                    .layer(InjectTraceMetaLayer::new())
                    .service(service_fn(service));
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                        .await;
                });
            }
        });
        Self {
            runtime,
            addr,
            http: reqwest::Client::new(),
            transport,
        }
    }

    /// The page at `path`: its `Server-Timing` and body.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (String, String) {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.runtime.block_on(async move {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 200);
            let timing = response
                .headers()
                .get("server-timing")
                .map_or(String::new(), |v| v.to_str().expect("ASCII").to_owned());
            (timing, response.text().await.expect("a body"))
        })
    }

    /// The one transaction sent since the last call: its trace id, span id, parent and DSC.
    fn transaction(&self) -> (String, String, Option<String>, Vec<(String, String)>) {
        self.sent().1
    }

    /// The trace ids of the error events sent since the last call, up to the first transaction
    /// sent, and that transaction (as [`transaction`](Self::transaction) gives it).
    #[allow(clippy::type_complexity)]
    fn sent(
        &self,
    ) -> (
        Vec<String>,
        (String, String, Option<String>, Vec<(String, String)>),
    ) {
        let mut events = Vec::new();
        // The transport sends from its own thread once the transaction has finished.
        for _ in 0..100 {
            let envelopes = self.transport.fetch_and_clear_envelopes();
            for envelope in &envelopes {
                let (dsc, envelope) = on_the_wire(envelope);
                for item in envelope.items() {
                    let trace =
                        |contexts: &sentry_core::protocol::Map<String, Context>| match contexts
                            .get("trace")
                        {
                            Some(Context::Trace(trace)) => trace.clone(),
                            _ => panic!("no trace context"),
                        };
                    match item {
                        EnvelopeItem::Event(event) => {
                            events.push(trace(&event.contexts).trace_id.to_string());
                        }
                        EnvelopeItem::Transaction(tx) => {
                            let trace = trace(&tx.contexts);
                            let tx = (
                                trace.trace_id.to_string(),
                                trace.span_id.to_string(),
                                trace.parent_span_id.map(|id| id.to_string()),
                                dsc,
                            );
                            return (events, tx);
                        }
                        _ => {}
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no transaction was sent");
    }
}

/// The page's `sentry-trace` and its baggage's DSC as `(key, value)` sorted by key, as
/// envelopes are compared with it.
fn tags(html: &str) -> (SentryTrace, Vec<(String, String)>) {
    let tags = meta_elements(html);
    let value = |name: &str| {
        let found: Vec<_> = tags.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(found.len(), 1, "one {name} tag in {html}");
        found[0].1.clone()
    };
    let trace: SentryTrace = value("sentry-trace").parse().expect("a valid sentry-trace");
    let baggage = value("baggage");
    let mut dsc: Vec<_> = DynamicSamplingContext::from_baggage([baggage.as_bytes()])
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    dsc.sort();
    (trace, dsc)
}

#[test]
fn a_fresh_page_names_the_server_transaction_and_its_head_dsc() {
    let server = Server::start();
    for path in ["/whole", "/streamed"] {
        let (timing, html) = server.get(path, &[]);
        let (trace, dsc) = tags(&html);
        let (trace_id, span_id, parent, sent_dsc) = server.transaction();
        assert_eq!(trace.trace_id.to_string(), trace_id, "{path}");
        assert_eq!(
            trace.span_id.map(|id| id.to_string()),
            Some(span_id),
            "{path}"
        );
        assert_eq!(trace.sampled, Some(true), "{path}");
        assert_eq!(parent, None, "{path}: a new trace");
        assert_eq!(dsc, sent_dsc, "{path}: the envelope carries the page's DSC");
        for (key, value) in [("public_key", PUBLIC_KEY), ("trace_id", trace_id.as_str())] {
            assert!(
                dsc.contains(&(key.to_owned(), value.to_owned())),
                "{path}: {key} in {dsc:?}"
            );
        }
        // Without a router the name is the raw path (`GET /whole`, source `url`), which the DSC
        // leaves out.
        assert!(
            dsc.iter().all(|(key, _)| key != "transaction"),
            "{path}: {dsc:?}"
        );
        assert!(
            timing.starts_with(&format!("sentry-trace;desc=\"{trace}\"")),
            "{timing}"
        );
    }
}

/// A service that renders its page in `call` (and answers with a ready future) renders it
/// inside the request's transaction, which the layer starts before it calls the service: the
/// page names the transaction's span and decision, with its DSC, and the event captured there
/// is in the request's trace, for a new trace and a continued one.
#[test]
fn a_page_rendered_in_call_names_the_server_transaction() {
    let server = Server::start();
    for incoming in [None, Some(format!("{TRACE}-{SPAN}-1"))] {
        let headers: Vec<_> = incoming
            .iter()
            .map(|v| ("sentry-trace", v.as_str()))
            .collect();
        let (timing, html) = server.get("/in-call", &headers);
        let (trace, dsc) = tags(&html);
        let (events, (trace_id, span_id, _, sent_dsc)) = server.sent();
        assert_eq!(trace.trace_id.to_string(), trace_id, "{incoming:?}");
        assert_eq!(
            trace.span_id.map(|id| id.to_string()),
            Some(span_id),
            "{incoming:?}"
        );
        assert_eq!(trace.sampled, Some(true), "{incoming:?}");
        assert_eq!(dsc, sent_dsc, "{incoming:?}");
        assert!(
            timing.starts_with(&format!("sentry-trace;desc=\"{trace}\"")),
            "{timing}"
        );
        assert_eq!(
            events,
            [trace_id],
            "{incoming:?}: the event captured in `call`"
        );
    }
}

#[test]
fn an_incoming_trace_is_continued_with_its_frozen_dsc() {
    let server = Server::start();
    let incoming_baggage =
        format!("sentry-trace_id={TRACE},sentry-public_key=caller,sentry-sample_rand=0.25,other=x");
    for path in ["/whole", "/streamed"] {
        let (_, html) = server.get(
            path,
            &[
                ("sentry-trace", &format!("{TRACE}-{SPAN}-1")),
                ("baggage", &incoming_baggage),
            ],
        );
        let (trace, dsc) = tags(&html);
        let (trace_id, span_id, parent, sent_dsc) = server.transaction();
        assert_eq!(trace_id, TRACE, "{path}");
        assert_eq!(parent.as_deref(), Some(SPAN), "{path}");
        assert_eq!(trace.trace_id.to_string(), TRACE, "{path}");
        assert_eq!(
            trace.span_id.map(|id| id.to_string()),
            Some(span_id),
            "{path}"
        );
        let frozen = [
            ("public_key", "caller"),
            ("sample_rand", "0.25"),
            ("trace_id", TRACE),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(dsc, frozen, "{path}: the caller's DSC, frozen");
        assert_eq!(sent_dsc, frozen, "{path}: and the server's envelope agrees");
    }
}

#[test]
fn the_streamed_page_gets_its_tags_before_head_end_only_once() {
    let server = Server::start();
    let (_, html) = server.get("/streamed", &[]);
    let document = scraper::Html::parse_document(&html);
    let in_head = sentry_meta_tests::head_trace_tags(&document);
    assert_eq!(
        in_head.len(),
        2,
        "sentry-trace and baggage in the head: {html}"
    );
    assert!(
        html.contains("<p>streamed</p></body></html>"),
        "the rest of the page is intact: {html}"
    );
    let _ = server.transaction();
}
