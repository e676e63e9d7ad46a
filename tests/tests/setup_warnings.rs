//! The warnings of three setups in which the server's envelopes disagree with its pages, each
//! logged once in the process:
//! - `SentryMetaLayer` with no `DscTransport` in use: at the first transaction it starts for a
//!   client that sends (one with a DSN), never when a `DscTransport` made the transport;
//! - `DscSpanProcessor` around `SentrySpanProcessor` with a Sentry client that samples again at a
//!   fixed rate below 1.0;
//! - `DscSpanProcessor` with no `DscTransport` given the pages' `OtelMeta` in use: at its first
//!   span with a client that sends.
//!
//! What they check is the process's state, so each case runs in a process of its own: this test
//! binary, run again for that case alone.

use std::convert::Infallible;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use http::{Request, Response};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use sentry_core::test::TestTransport;
use sentry_core::{Client, ClientOptions, Hub};
use sentry_meta::DscTransport;
use sentry_meta::opentelemetry::{DscSpanProcessor, OtelMeta};
use sentry_meta::tower::SentryMetaLayer;
use sentry_opentelemetry::SentrySpanProcessor;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tracing_subscriber::layer::SubscriberExt;

const DSN: &str = "https://4f1c2d3e4b5a69788796a5b4c3d2e1f0@o42.ingest.sentry.io/7";
/// Names the case a child process runs.
const CASE: &str = "SENTRY_META_TEST_CASE";
/// Comes before each warning the child reports on its stdout (the test harness may write on the
/// same line).
const WARNING: &str = "sentry_meta warned: ";

/// The `warn` messages of the `sentry_meta` target that `case` logged, run in a process of its
/// own.
fn warnings_of(case: &str) -> Vec<String> {
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "case", "--nocapture"])
        .env(CASE, case)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{case}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("ran {case}")), "{case}: {stdout}");
    stdout
        .lines()
        .filter_map(|line| Some(line.split_once(WARNING)?.1.to_owned()))
        .collect()
}

/// Asserts that `case` logged one warning, which gives `advice`.
fn assert_warns_once(case: &str, advice: &str) {
    let warnings = warnings_of(case);
    assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
    assert!(warnings[0].contains(advice), "{case}: {warnings:?}");
}

#[test]
fn warns_once_for_a_client_that_sends_without_dsc_transport() {
    assert_warns_once("without", ".transport(sentry_meta::DscTransport::new())");
}

#[test]
fn is_silent_with_dsc_transport() {
    assert_eq!(warnings_of("with"), Vec::<String>::new());
}

#[test]
fn warns_once_for_a_sentry_client_that_samples_opentelemetry_spans_again() {
    assert_warns_once("otel_half", "traces_sample_rate(1.0)");
    assert_eq!(warnings_of("otel_full"), Vec::<String>::new());
}

#[test]
fn warns_once_for_opentelemetry_spans_sent_without_the_pages_otel_meta() {
    for case in ["otel_without", "otel_without_meta"] {
        assert_warns_once(
            case,
            ".transport(sentry_meta::DscTransport::new().opentelemetry(meta.clone()))",
        );
    }
}

/// The case the parent process named, if any; nothing in the parent.
#[test]
fn case() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Warnings(warnings.clone()));
    tracing::subscriber::with_default(subscriber, || match case.as_str() {
        "without" => {
            // A client without a DSN sends nothing, and is not warned about.
            request(ClientOptions::new().transport(TestTransport::new()));
            let none = warnings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty();
            assert!(none, "a client without a DSN warned about");
            for _ in 0..2 {
                request(
                    ClientOptions::new()
                        .dsn(DSN)
                        .transport(TestTransport::new()),
                );
            }
        }
        "with" => {
            for _ in 0..2 {
                let transport = DscTransport::wrap(TestTransport::new());
                request(ClientOptions::new().dsn(DSN).transport(transport));
            }
        }
        "otel_half" => otel_spans(0.5, Sends::ThroughDscWithMeta),
        "otel_full" => otel_spans(1.0, Sends::ThroughDscWithMeta),
        "otel_without" => otel_spans(1.0, Sends::Plain),
        "otel_without_meta" => otel_spans(1.0, Sends::ThroughDsc),
        _ => panic!("no case {case}"),
    });
    for warning in warnings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        println!("{WARNING}{warning}");
    }
    println!("ran {case}");
}

/// One request through `SentryMetaLayer`, in a Hub of its own bound to a client made with
/// `options`.
fn request(options: ClientOptions) {
    let client = Arc::new(Client::from(options.traces_sample_rate(1.0)));
    let hub = Arc::new(Hub::new(Some(client), Arc::default()));
    let service = ServiceBuilder::new()
        .layer(SentryMetaLayer::new())
        .service(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(String::from("<p>hello</p>")))
        }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    Hub::run(hub, || {
        runtime
            .block_on(service.oneshot(Request::new(())))
            .expect("infallible");
    });
}

/// How the client of [`otel_spans`] sends.
enum Sends {
    Plain,
    ThroughDsc,
    ThroughDscWithMeta,
}

/// Two OpenTelemetry root spans, sent to Sentry by `SentrySpanProcessor` inside
/// `DscSpanProcessor`, with a Sentry client that samples at `rate` and sends as `sends` says.
fn otel_spans(rate: f32, sends: Sends) {
    let options = ClientOptions::new().dsn(DSN).traces_sample_rate(rate);
    let transport = DscTransport::wrap(TestTransport::new());
    let options = match sends {
        Sends::Plain => options.transport(TestTransport::new()),
        Sends::ThroughDsc => options.transport(transport),
        Sends::ThroughDscWithMeta => options.transport(transport.opentelemetry(OtelMeta::new())),
    };
    let client = Arc::new(Client::from(options));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(DscSpanProcessor::new(SentrySpanProcessor::new()))
        .build();
    let tracer = provider.tracer("web");
    Hub::run(Arc::new(Hub::new(Some(client), Arc::default())), || {
        for _ in 0..2 {
            tracer.start("GET /").end();
        }
    });
}

/// Collects the messages of the `warn` events of the `sentry_meta` target.
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() != tracing::Level::WARN || metadata.target() != "sentry_meta" {
            return;
        }
        let mut message = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    message = format!("{value:?}");
                }
            },
        );
        let mut warnings = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        warnings.push(message);
    }
}
