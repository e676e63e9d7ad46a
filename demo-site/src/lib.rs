//! The sentry-meta demo: one trace from the server-rendered page, through the browser, to the
//! API and its database.
//!
//! - The web origin (`--addr`, default `127.0.0.1:8080`) serves one page per template engine
//!   (`/askama`, `/minijinja`, `/maud`, `/tera`, `/handlebars`), each extending a layout whose
//!   `<head>` writes the tags with that engine's helper, and `/injected`, whose template writes
//!   none (`InjectTraceMetaLayer` adds them). Every page loads the browser SDK
//!   (`@sentry/browser`, bundled at first start by [`bundle::ensure_bundle`]) and, once loaded,
//!   calls the API with `fetch`. `?lifecycle=static` selects the SDK's `traceLifecycle:
//!   "static"` (a `transaction` item), anything else `"stream"` (span-v2 items).
//! - The actix-web origin (`--actix-addr`, default `127.0.0.1:8082`) serves `/actix`, the
//!   minijinja page behind actix-web's `SentryMetaMiddleware` inside `sentry-actix`
//!   ([`pages::actix`]); the web origin's `/actix` redirects there.
//! - `/otel` is the minijinja page of an app traced with OpenTelemetry ([`pages::otel`]): its
//!   span from an OpenTelemetry SDK tracer, sent to Sentry by `sentry-opentelemetry`'s
//!   `SentrySpanProcessor`, its tags from `OtelMeta`.
//! - The API origin (`--api-addr`, default `127.0.0.1:8081`) answers JSON from an embedded
//!   SQLite database; each query is a `db.sql.query` span of the API's transaction.
//! - Both SDKs report to `--dsn`; without one, to the embedded [`sink`] on the web origin,
//!   which draws every trace as a waterfall at `/traces`.
//!
//! Server transactions come from [`SentryMetaLayer`] inside `sentry-tower`'s `NewSentryLayer`,
//! on both origins, and the client's [`DscTransport`] gives their envelopes the DSC their pages
//! (or, on the API, the browser's baggage) carry. The sink, the index and the static files are outside those layers, so the SDK's own
//! envelopes never make transactions of their own.
//!
//! `cargo run -p sentry-meta-demo` builds for debugging: under a burst of page loads (hundreds a
//! second) its sink stores envelopes more slowly than they come, and the `sentry` crate's
//! transport drops what overflows its queue, without a word, so some traces lack their server
//! part. Load it with `--release`, as `scripts/load.sh` does.
//!
//! [`start`] runs all of it on ports of its choosing (`127.0.0.1:0` works), which is how the
//! end-to-end tests use it; `main.rs` is the command line around it.

pub mod api;
pub mod args;
pub mod bundle;
pub mod db;
pub mod pages;
pub mod sink;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sentry::Hub;
use sentry::integrations::tower::{NewSentryLayer, SentryHttpLayer};
use sentry_meta::opentelemetry::OtelMeta;
use sentry_meta::tower::SentryMetaLayer;
use sentry_meta::{DscTransport, SentryMeta, SpanId, TraceMeta, TraceRoot, TransactionSource};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The public key of the default DSN (the embedded sink accepts any key).
pub const SINK_PUBLIC_KEY: &str = "5e47c0de5e47c0de5e47c0de5e47c0de";
/// The release both SDKs report.
pub const RELEASE: &str = concat!("sentry-meta-demo@", env!("CARGO_PKG_VERSION"));
/// The environment both SDKs report.
pub const ENVIRONMENT: &str = "demo";

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct Config {
    /// The web origin: pages, static files and the trace sink.
    pub addr: SocketAddr,
    /// The API origin.
    pub api_addr: SocketAddr,
    /// The actix-web origin (`/actix`).
    pub actix_addr: SocketAddr,
    /// Where both SDKs send; `None`: the embedded sink of the web origin.
    pub dsn: Option<String>,
    /// Where the SQLite files live (`app.sqlite`, `sink.sqlite`).
    pub data_dir: PathBuf,
    /// Whether the web origin's pages carry the trace tags (`--tags`, on by default).
    pub tags: Tags,
    /// Whether the server's envelopes carry the DSC of their pages ([`DscTransport`],
    /// `--envelope-dsc`, on by default).
    pub envelope_dsc: bool,
}

/// What the web origin's pages carry in their `<head>` (`--tags on|off|constant`).
///
/// [`Off`](Tags::Off) and [`Constant`](Tags::Constant) are the controls of the page benchmark
/// (`bench/page/run.sh`): the pages are served without [`SentryMetaLayer`] (the Sentry
/// transaction layers stay), and `/injected` injects nothing. With `Off` every layout skips its
/// helper (the leptos page its component). With `Constant` the minijinja layout (the benchmarked
/// pages) writes its constant pair, and the other layouts write the tags of the Hub's active
/// span, without a per-request root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tags {
    /// The request's tags, written by the layout's helper behind [`SentryMetaLayer`].
    #[value(help = "the request's tags")]
    On,
    /// No tags: the minijinja layout's `sentry_meta()` is given `SentryMeta::none()`, the other
    /// layouts skip their helper.
    #[value(help = "no tags")]
    Off,
    /// The same bytes as [`On`](Tags::On) with none of its work: the minijinja layout writes
    /// one tag pair made at start (a fixed trace, the DSC this client and route would have), so
    /// the page is exactly as long. Against [`Off`](Tags::Off) it prices the bytes alone.
    #[value(help = "one tag pair made at start, as long as a request's")]
    Constant,
}

impl Config {
    /// Both origins on free loopback ports, data in `data_dir`, the embedded sink.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            addr: any,
            api_addr: any,
            actix_addr: any,
            dsn: None,
            data_dir: data_dir.into(),
            tags: Tags::On,
            envelope_dsc: true,
        }
    }
}

/// `target/sentry-meta-demo` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn default_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let demo_site = Path::new(env!("CARGO_MANIFEST_DIR"));
            demo_site.parent().unwrap_or(demo_site).join("target")
        });
    target.join("sentry-meta-demo")
}

/// Why the demo could not start.
#[derive(Debug)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// What the minijinja layout's helper writes instead of the request's tags: `None` for
/// [`Tags::On`] (it writes the request's own), else the same tags on every page
/// ([`Tags::Constant`]) or none at all.
fn minijinja_meta(tags: Tags) -> Option<SentryMeta> {
    match (tags, Hub::current().client()) {
        (Tags::On, _) => None,
        (Tags::Constant, Some(client)) => Some(constant_tags(&client)),
        (Tags::Off | Tags::Constant, _) => Some(SentryMeta::none()),
    }
}

/// The tags of [`Tags::Constant`]: a sampled trace of the minijinja page's route with the head
/// DSC that `client` gives it, made once through a request's root and serialized, so that they
/// are as long as a request's.
fn constant_tags(client: &Arc<sentry::Client>) -> SentryMeta {
    let mut root =
        TraceRoot::new_trace().with_transaction("GET /minijinja", TransactionSource::Route);
    root.set_server_span(client, SpanId::from_bytes(*b"constant"), Some(true));
    let meta = Arc::new(root).sync_scope(TraceMeta::current);
    let constant = meta.and_then(|meta| TraceMeta::from_dsc(meta.sentry_trace(), meta.dsc()?));
    SentryMeta::from(constant.expect("a root with a server span has tags"))
}

fn fail(what: impl std::fmt::Display) -> StartError {
    StartError(what.to_string())
}

/// The running demo. Dropping it stops the servers.
pub struct Demo {
    /// The web origin, `http://127.0.0.1:8080` (no trailing slash).
    pub web_url: String,
    /// The API origin, `http://127.0.0.1:8081`.
    pub api_url: String,
    /// The actix-web origin, `http://127.0.0.1:8082`.
    pub actix_url: String,
    /// The DSN both SDKs report to.
    pub dsn: String,
    /// Whether that DSN is the embedded sink's.
    pub uses_sink: bool,
    runtime: tokio::runtime::Runtime,
    actix: actix_web::dev::ServerHandle,
    sentry: sentry::ClientInitGuard,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("actix_url", &self.actix_url)
            .field("dsn", &self.dsn)
            .field("uses_sink", &self.uses_sink)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// Every URL the demo serves that a person would open, one per page.
    pub fn urls(&self) -> Vec<String> {
        let mut urls = vec![format!("{}/", self.web_url)];
        urls.extend(db::PAGES.iter().map(|(slug, _, _)| match *slug {
            "actix" => format!("{}/actix", self.actix_url),
            slug => format!("{}/{slug}", self.web_url),
        }));
        urls.push(format!("{}/traces", self.web_url));
        urls.push(format!("{}/api/pages", self.api_url));
        urls
    }

    /// Blocks until Ctrl-C, then sends what the Rust SDK still holds and stops.
    pub fn run_until_ctrl_c(self) {
        let _ = self.runtime.block_on(tokio::signal::ctrl_c());
        eprintln!("demo: stopping");
        self.stop();
    }

    /// Sends what the Rust SDK still holds (while the sink still runs) and stops the servers.
    pub fn stop(self) {
        if let Some(client) = Hub::main().client() {
            client.flush(Some(Duration::from_secs(2)));
        }
        drop(self.sentry);
        self.runtime.block_on(self.actix.stop(true));
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// `http://host:port` for a bound address, with a loopback host for an unspecified one.
fn origin(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            format!("http://{}:{}", Ipv4Addr::LOCALHOST, addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            format!("http://[{}]:{}", Ipv6Addr::LOCALHOST, addr.port())
        }
        IpAddr::V4(ip) => format!("http://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
    }
}

/// The default DSN: the embedded sink of the web origin, project 1.
pub fn sink_dsn(web_addr: SocketAddr) -> String {
    let origin = origin(web_addr);
    let host = origin.trim_start_matches("http://");
    format!("http://{SINK_PUBLIC_KEY}@{host}/1")
}

/// Listens on `addr`, given by the command line's `--{flag}`.
fn bind(addr: SocketAddr, flag: &str) -> Result<std::net::TcpListener, StartError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        fail(format!(
            "cannot listen on {addr}: {e}; choose another address with --{flag}"
        ))
    })?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

/// Tags the request's transaction with the service that served it (`web` or `api`), so the
/// sink can tell the two Rust services of one process apart.
async fn tag_service(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    Hub::current().configure_scope(|scope| {
        if let Some(span) = scope.get_span() {
            span.set_tag("service", service);
        }
    });
    next.run(request).await
}

/// The Sentry layers, in the documented order (outermost first), plus the service tag;
/// `sentry_layers!(service, without_tags)`: `sentry-tower`'s own transaction layer instead of
/// `SentryMetaLayer` (the page benchmark's controls).
macro_rules! sentry_layers {
    ($service:expr) => {
        ServiceBuilder::new()
            .layer(NewSentryLayer::<Request<Body>>::new_from_top())
            // The request's transaction and trace root, from one continuation decision. No
            // Server-Timing: the browser SDK falls back to it when a page has no tags, and the
            // end-to-end tests must see the tags themselves do the work.
            .layer(SentryMetaLayer::new())
            .layer(from_fn_with_state($service, tag_service))
    };
    ($service:expr, without_tags) => {
        ServiceBuilder::new()
            .layer(NewSentryLayer::<Request<Body>>::new_from_top())
            .layer(SentryHttpLayer::new().enable_transaction())
            .layer(from_fn_with_state($service, tag_service))
    };
}

/// CORS of the API: the origins of the pages (also spelled `localhost`) may call it with the
/// trace headers; the preflight is answered here, before any transaction starts.
fn api_cors(page_addrs: [SocketAddr; 2]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            sink::is_page_origin(&page_addrs, origin)
        }))
        .allow_methods([Method::GET])
        .allow_headers([
            HeaderName::from_static("sentry-trace"),
            HeaderName::from_static("baggage"),
            header::CONTENT_TYPE,
        ])
        .max_age(Duration::from_secs(600))
}

/// Starts the demo: builds the browser bundle if needed, opens (and seeds) the databases, starts
/// the Rust SDK and both servers. Returns once they accept connections.
///
/// It initializes the process's Sentry client, so start it once per process.
pub fn start(config: Config) -> Result<Demo, StartError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", config.data_dir.display())))?;
    let bundle_path = bundle::ensure_bundle().map_err(fail)?;
    let bundle = Bytes::from(
        std::fs::read(&bundle_path).map_err(|e| fail(format!("{}: {e}", bundle_path.display())))?,
    );
    let (database, store) = open_databases(&config.data_dir)?;
    let web_listener = bind(config.addr, "addr")?;
    let api_listener = bind(config.api_addr, "api-addr")?;
    let actix_listener = bind(config.actix_addr, "actix-addr")?;
    let web_addr = web_listener.local_addr().map_err(fail)?;
    let api_addr = api_listener.local_addr().map_err(fail)?;
    let actix_addr = actix_listener.local_addr().map_err(fail)?;
    let (web_url, api_url, actix_url) = (origin(web_addr), origin(api_addr), origin(actix_addr));
    let page_addrs = [web_addr, actix_addr];

    let uses_sink = config.dsn.is_none();
    let dsn = config.dsn.clone().unwrap_or_else(|| sink_dsn(web_addr));
    let (sentry, otel_meta) = init_sentry(&dsn, config.envelope_dsc)?;
    // Built after the client exists: its threads' Hubs inherit it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sentry-meta-demo")
        .enable_all()
        .build()
        .map_err(fail)?;
    let _entered = runtime.enter();
    // leptos spawns the async parts of its pages on its global executor (set once a process;
    // a second demo in the same process keeps the first's).
    let _ = any_spawner::Executor::init_tokio();

    let web = Arc::new(pages::Web {
        dsn: dsn.clone(),
        api: api_url.clone(),
        release: RELEASE.to_owned(),
        environment: ENVIRONMENT.to_owned(),
        engines: pages::Engines::load(minijinja_meta(config.tags)).map_err(fail)?,
        database: Arc::clone(&database),
        tags: config.tags != Tags::Off,
        otel: pages::otel::Otel::new(otel_meta),
    });

    let actix = pages::actix::start(Arc::clone(&web), actix_listener, web_url.clone())
        .map_err(|e| fail(format!("the actix-web server did not start: {e}")))?;
    let web_app =
        web_app(web, config.tags, bundle, &actix_url).merge(sink::router(store, &page_addrs));
    let api_app = api::traced_routes()
        .layer(sentry_layers!("api"))
        .with_state(database)
        .layer(api_cors(page_addrs));
    serve(web_listener, web_app, "web")?;
    serve(api_listener, api_app, "API")?;
    drop(_entered);

    Ok(Demo {
        web_url,
        api_url,
        actix_url,
        dsn,
        uses_sink,
        runtime,
        actix,
        sentry,
    })
}

/// Opens (and seeds) the API's database and the sink's store in `data_dir`.
fn open_databases(
    data_dir: &Path,
) -> Result<(Arc<db::Database>, Arc<sink::store::Store>), StartError> {
    let database = db::Database::open(&data_dir.join("app.sqlite"))
        .map_err(|e| fail(format!("app.sqlite: {e}")))?;
    let store = sink::store::Store::open(&data_dir.join("sink.sqlite"))
        .map_err(|e| fail(format!("sink.sqlite: {e}")))?;
    Ok((Arc::new(database), Arc::new(store)))
}

/// Starts the Rust SDK on `dsn` for the whole process, and returns its guard and the client's
/// facts as the OpenTelemetry page gives them.
fn init_sentry(
    dsn: &str,
    envelope_dsc: bool,
) -> Result<(sentry::ClientInitGuard, OtelMeta), StartError> {
    // Checked here: `ClientOptions::dsn` panics on an invalid one.
    dsn.parse::<sentry::types::Dsn>()
        .map_err(|e| fail(format!("invalid DSN `{dsn}`: {e}")))?;
    let mut options = sentry::ClientOptions::new()
        .dsn(dsn)
        .release(RELEASE)
        .environment(ENVIRONMENT)
        .traces_sample_rate(1.0);
    // What the OpenTelemetry page writes: this client's facts, given explicitly.
    let otel_meta = OtelMeta::from_dsn(dsn)
        .map_err(fail)?
        .release(RELEASE)
        .environment(ENVIRONMENT)
        .traces_sample_rate(1.0);
    if envelope_dsc {
        // The server's envelopes carry the DSC its pages write (the OpenTelemetry page's too).
        options = options.transport(DscTransport::new().opentelemetry(otel_meta.clone()));
    }
    let sentry = sentry::init(options);
    // `init` binds the client to this thread's Hub; the servers' threads start from the
    // process's main Hub, so bind it there too (this thread need not be `main`).
    Hub::main().bind_client(Hub::current().client());
    Ok((sentry, otel_meta))
}

/// The web origin's routes but the sink's: the traced pages behind the Sentry layers (with or
/// without tags), the OpenTelemetry page behind its own span, and the untraced index, redirect
/// and static files.
fn web_app(web: Arc<pages::Web>, tags: Tags, bundle: Bytes, actix_url: &str) -> Router {
    let traced_pages = if tags == Tags::On {
        pages::traced_routes(true).layer(sentry_layers!("web"))
    } else {
        pages::traced_routes(false).layer(sentry_layers!("web", without_tags))
    }
    .with_state(Arc::clone(&web));
    let script = move || {
        let bundle = bundle.clone();
        async move {
            let headers = [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ];
            (headers, bundle).into_response()
        }
    };
    Router::new()
        .route("/", get(pages::index))
        .route(
            "/actix",
            get(pages::redirect_to(format!("{actix_url}/actix"))),
        )
        // Traced with OpenTelemetry, not behind the Sentry layers.
        .route(
            "/otel",
            get(pages::otel::page).layer(from_fn_with_state(
                Arc::clone(&web),
                pages::otel::request_span,
            )),
        )
        .route("/static/demo.css", get(pages::stylesheet))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/static/demo.js", get(script))
        .with_state(web)
        .merge(traced_pages)
}

/// Serves `app` on `listener` from the runtime entered on this thread.
fn serve(listener: std::net::TcpListener, app: Router, what: &str) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(fail)?;
    let what = what.to_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("demo: the {what} server stopped: {e}");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_dsn_is_the_sink_of_the_web_origin() {
        assert_eq!(
            sink_dsn("127.0.0.1:8080".parse().expect("addr")),
            "http://5e47c0de5e47c0de5e47c0de5e47c0de@127.0.0.1:8080/1"
        );
        assert_eq!(
            sink_dsn("0.0.0.0:9000".parse().expect("addr")),
            "http://5e47c0de5e47c0de5e47c0de5e47c0de@127.0.0.1:9000/1"
        );
        assert_eq!(origin("[::]:80".parse().expect("addr")), "http://[::1]:80");
        assert!(
            sink_dsn("127.0.0.1:8080".parse().expect("addr"))
                .parse::<sentry::types::Dsn>()
                .is_ok()
        );
    }
}
