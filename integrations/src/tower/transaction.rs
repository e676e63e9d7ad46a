//! The request's server transaction, started by [`SentryMetaLayer`](super::SentryMetaLayer)
//! from the same continuation decision that its pages' tags come from.
//!
//! It gives what `sentry-tower`'s `SentryHttpLayer::enable_transaction()` gives: a transaction
//! named `"{METHOD} {route}"` with op `http.server`, the request's data (method, URL, headers;
//! sensitive headers left out unless `send_default_pii`, credentials in the URL always written
//! `[Filtered]`, as `sentry-tower` does) on the transaction and on every event of the
//! request's trace captured on its own Hub, the response status as data and span status, and a
//! finish (as `aborted`) when the request is dropped before its response.
//! The transaction's span and decision are recorded in the request's [`TraceRoot`], where pages
//! read them.

use std::cell::RefCell;
use std::sync::Arc;

use http::{HeaderMap, Request, StatusCode, Uri, header, uri};
use sentry_core::protocol::{self, SpanStatus, Url};
use sentry_core::utils::{is_sensitive_header, scrub_pii_from_url};
use sentry_core::{
    Client, Hub, TracesSamplingStrategy, Transaction, TransactionContext, TransactionOrSpan,
};
use sentry_meta_core::TraceRoot;

/// The `origin` of the transactions this crate starts: the one pages outside their request's
/// root recognize.
pub(crate) use sentry_meta_core::__private::SERVER_ORIGIN as ORIGIN;

/// A running server transaction, the active span of the request's Hub, and after it is
/// finished too (see [`finish`](Self::finish)).
pub(crate) struct RequestTransaction {
    /// Taken when the transaction is finished.
    transaction: Option<Transaction>,
    hub: Arc<Hub>,
    root: Arc<TraceRoot>,
    /// The Hub serves other requests too (a wrong setup, reported by the caller).
    shared_hub: bool,
}

impl RequestTransaction {
    /// Starts the transaction of the request `root` belongs to, in `hub`: the caller's trace,
    /// parent span and decision when the root continued it, else the root's new trace. It is
    /// made the Hub's active span, recorded in the root as its server span, and on a Hub of the
    /// request's own `request` goes onto the request's events, which name the root to
    /// [`DscTransport`](crate::DscTransport). Returns the root, now shared.
    ///
    /// `client` is the Hub's (enabled) client. No transaction, and nothing started, when the Hub
    /// already has an active span: a transaction that a layer outside started
    /// (`SentryHttpLayer::enable_transaction()`). On a `shared_hub`, that span is another
    /// request's, and is replaced.
    pub(crate) fn start(
        hub: Arc<Hub>,
        client: &Arc<Client>,
        root: TraceRoot,
        request: protocol::Request,
        shared_hub: bool,
    ) -> (Arc<TraceRoot>, Option<Self>) {
        crate::transport::check_in_use(client);
        // Shared once the server span is recorded in it, in the scope's closure.
        let mut unshared = Some(root);
        let started = hub.configure_scope(|scope| {
            if scope.get_span().is_some() && !shared_hub {
                return None;
            }
            let mut root = unshared.take()?;
            let context = context(&root);
            let caller_sampled = context.sampled();
            let transaction = hub.start_transaction(context);
            let sampled = decision(client, &transaction, caller_sampled);
            root.set_server_span(client, root.span_id(), sampled);
            let root = Arc::new(root);
            transaction.set_origin(ORIGIN);
            transaction.set_request(request.clone());
            scope.set_span(Some(transaction.clone().into()));
            // A processor on a shared Hub would be every request's, and stay with it.
            if !shared_hub {
                let (root, trace_id) = (root.clone(), protocol::TraceId::from(root.trace_id()));
                scope.add_event_processor(move |mut event| {
                    // The request's events only: a Hub taken for the request's own in a wrong
                    // setup (the first request of a thread: see `hub_is_shared`) outlives it.
                    if crate::transport::trace_of(&event.contexts) == Some(trace_id) {
                        event.request.get_or_insert_with(|| request.clone());
                        // For the DSC, when the event is sent outside the root's scope.
                        crate::transport::capturing(event.event_id, &root);
                    }
                    Some(event)
                });
            }
            Some((root, transaction))
        });
        let Some((root, transaction)) = started else {
            let root = unshared.expect("taken only by a transaction that starts");
            return (Arc::new(root), None);
        };
        let started = Self {
            transaction: Some(transaction),
            hub,
            root: root.clone(),
            shared_hub,
        };
        (root, Some(started))
    }

    /// Whether the Hub's active span is another transaction: one that a layer outside started
    /// since (`SentryHttpLayer` starts its own when first polled). A child span, or none, that
    /// the service inside made active is not.
    pub(crate) fn is_replaced(&self) -> bool {
        let active = self.hub.configure_scope(|scope| scope.get_span());
        matches!(active, Some(TransactionOrSpan::Transaction(active))
            if Some(&active) != self.transaction.as_ref())
    }

    /// Finishes the transaction with the response's status, or as an `unknown_error` when the
    /// service failed.
    ///
    /// The finished transaction stays the span of a Hub of the request's own, so that an error
    /// which a layer outside captures from the response joins the request's trace, under the
    /// server span, with its DSC, as it would inside that layer's own transaction
    /// (`sentry-actix` captures server errors after the middleware inside it has answered).
    /// That Hub goes with the request. A shared Hub's span is taken off.
    pub(crate) fn finish(mut self, status: Option<StatusCode>) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        if let Some(status) = status
            && !(transaction.data().iter()).any(|(key, _)| key == "http.response.status_code")
        {
            transaction.set_data("http.response.status_code", status.as_u16().into());
        }
        let status = status.map_or(SpanStatus::UnknownError, span_status);
        self.end(transaction, status);
        if self.shared_hub {
            self.hub.configure_scope(|scope| scope.set_span(None));
        }
    }

    /// Sends the transaction, with `status` unless it has one already, inside the request's Hub
    /// and trace root, where [`DscTransport`](crate::DscTransport) finds the DSC its pages wrote.
    fn end(&self, transaction: Transaction, status: SpanStatus) {
        if transaction.get_status().is_none() {
            transaction.set_status(status);
        }
        Hub::run(self.hub.clone(), || {
            self.root.clone().sync_scope(|| transaction.finish());
        });
    }
}

impl Drop for RequestTransaction {
    /// A request dropped before its response (the client went away, a timeout) still sends its
    /// transaction, as `aborted`.
    fn drop(&mut self) {
        if let Some(transaction) = self.transaction.take() {
            self.end(transaction, SpanStatus::Aborted);
            self.hub.configure_scope(|scope| scope.set_span(None));
        }
    }
}

/// The trace's sampling decision, as the SDK writes it into `sentry-trace`: the transaction's
/// own while tracing is enabled, else the caller's, `caller` (or none: deferred).
#[allow(deprecated)] // `Transaction::is_sampled`
fn decision(client: &Client, transaction: &Transaction, caller: Option<bool>) -> Option<bool> {
    let strategy = &client.options().traces_sampling_strategy;
    let tracing = !matches!(strategy, TracesSamplingStrategy::Disabled);
    // Exact while tracing is enabled: sampled exactly when the transaction will be sent.
    tracing.then(|| transaction.is_sampled()).or(caller)
}

/// The transaction's context, from the root's continuation decision, with the root's own span
/// id (so that the root records it without reading it back from the SDK).
fn context(root: &TraceRoot) -> TransactionContext {
    let name = root.transaction().map_or("", |(name, _)| name);
    let incoming = root.incoming();
    let mut context = TransactionContext::new_with_details(
        name,
        "http.server",
        root.trace_id().into(),
        Some(root.span_id().into()),
        incoming.and_then(|incoming| Some(incoming.span_id?.into())),
    );
    context.set_sampled(incoming.and_then(|incoming| incoming.sampled));
    context
}

/// What Sentry shows of the request: method, URL and headers (see [`sentry_request`]).
pub(super) fn request_data<B>(request: &Request<B>, with_pii: bool) -> protocol::Request {
    let headers = request.headers().iter();
    sentry_request(
        request.method().as_str(),
        url(request.uri(), request.headers()),
        headers.map(|(name, value)| (name.as_str(), value.as_bytes(), value.is_sensitive())),
        with_pii,
    )
}

/// The request's absolute URL: a server sees only the path, so the host comes from `Host`.
fn url(request_uri: &Uri, headers: &HeaderMap) -> Option<Url> {
    let authority = match request_uri.authority() {
        Some(authority) => authority.as_str(),
        None => headers.get(header::HOST)?.to_str().ok()?,
    };
    absolute_url(
        request_uri.scheme_str().unwrap_or("http"),
        authority,
        request_uri
            .path_and_query()
            .map_or("/", uri::PathAndQuery::as_str),
    )
}

/// What Sentry shows of a request, made the same way by the tower layer and the actix-web
/// middleware: its method, its URL without credentials and its headers (name, value, marked
/// sensitive), without the headers that may carry secrets (cookies, tokens) unless `with_pii`.
pub(crate) fn sentry_request<'a>(
    method: &str,
    url: Option<Url>,
    headers: impl Iterator<Item = (&'a str, &'a [u8], bool)>,
    with_pii: bool,
) -> protocol::Request {
    protocol::Request {
        method: Some(method.to_owned()),
        url: url.map(scrub_pii_from_url),
        headers: headers
            .filter(|&(name, _, sensitive)| !sensitive && (with_pii || !is_sensitive_header(name)))
            .map(|(name, value, _)| (name.to_owned(), String::from_utf8_lossy(value).into_owned()))
            .collect(),
        ..Default::default()
    }
}

/// `{scheme}://{authority}{path_and_query}` as a URL; `None` when `authority` is not one (a
/// `Host` header is the client's to write).
///
/// Parsing a whole URL takes about 6,000 instructions, most of them for its host (IDNA mapping,
/// IP addresses), and a server answers for few hosts: each thread keeps the URL of the last
/// scheme and authority it parsed (without a path or query: nothing of a request outlives it),
/// and a request with the same ones gets a copy with its own path and query set, which the URL
/// parser parses by the same rules (priced in `docs/benchmarks.md`, "Performance notes").
pub(crate) fn absolute_url(scheme: &str, authority: &str, path_and_query: &str) -> Option<Url> {
    thread_local! {
        /// The authority of a URL parsed whole, and that URL with path `/` and no query (its
        /// scheme is the one it was parsed from: only the lowercase `http` and `https` are kept).
        static LAST: RefCell<Option<(Box<str>, Url)>> = const { RefCell::new(None) };
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    // Only an origin-form path (which a request's URI holds without a fragment) of an HTTP URL
    // may replace another's: anything else (a client may send any scheme in an absolute-form
    // request) is parsed whole. Credentials are not kept past their request.
    let reusable = matches!(scheme, "http" | "https")
        && path.starts_with('/')
        && !path_and_query.contains('#')
        && !authority.contains('@');
    let cached = LAST.with_borrow(|last| match last {
        Some((parsed, base)) if reusable && base.scheme() == scheme && **parsed == *authority => {
            let mut url = base.clone();
            url.set_path(path);
            url.set_query(query);
            Some(url)
        }
        _ => None,
    });
    if cached.is_some() {
        return cached;
    }
    // Checked as an authority first: `host/path` would otherwise parse as a host and a path.
    uri::Authority::try_from(authority).ok()?;
    let url = Url::parse(&format!("{scheme}://{authority}{path_and_query}")).ok()?;
    if reusable {
        let mut base = url.clone();
        base.set_path("/");
        base.set_query(None);
        LAST.set(Some((authority.into(), base)));
    }
    Some(url)
}

/// The span status of a response status, as Sentry's SDKs map them.
fn span_status(status: StatusCode) -> SpanStatus {
    match status {
        StatusCode::UNAUTHORIZED => SpanStatus::Unauthenticated,
        StatusCode::FORBIDDEN => SpanStatus::PermissionDenied,
        StatusCode::NOT_FOUND => SpanStatus::NotFound,
        StatusCode::TOO_MANY_REQUESTS => SpanStatus::ResourceExhausted,
        StatusCode::CONFLICT => SpanStatus::AlreadyExists,
        status if status.is_client_error() => SpanStatus::InvalidArgument,
        StatusCode::NOT_IMPLEMENTED => SpanStatus::Unimplemented,
        StatusCode::SERVICE_UNAVAILABLE => SpanStatus::Unavailable,
        status if status.is_server_error() => SpanStatus::InternalError,
        status if status.is_success() => SpanStatus::Ok,
        _ => SpanStatus::UnknownError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_data_leaves_secrets_out() {
        let request = Request::get("/users/7?token=abc")
            .header("host", "example.com")
            .header("cookie", "session=secret")
            .header("user-agent", "test")
            .body(())
            .expect("request");
        let data = request_data(&request, false);
        assert_eq!(data.method.as_deref(), Some("GET"));
        assert_eq!(
            data.url.as_ref().map(Url::as_str),
            Some("http://example.com/users/7?token=abc")
        );
        assert!(data.headers.contains_key("user-agent"));
        assert!(!data.headers.contains_key("cookie"));
        assert!(request_data(&request, true).headers.contains_key("cookie"));
        let with_credentials = Request::get("http://user:pass@example.com/")
            .body(())
            .expect("request");
        let url = request_data(&with_credentials, false).url.expect("a URL");
        assert_ne!(url.password(), Some("pass"));
    }

    #[test]
    fn urls_from_the_last_one_parse_as_whole_ones_do() {
        let paths = [
            "/",
            "/users/7",
            "/a/./b/../c",
            "/a/%2e%2E/b",
            "//double//slash",
            "/%zz%41",
            "/caf%C3%A9",
            "/sp%20ace?q=1",
            "/q?a=b&c=%27'\"<>`{}",
            "/q?",
            "/q?#",
            "/a;b,c",
            "/x\\y",
            "/{id}?x=[1]",
            "*",
            "",
            "?only=query",
        ];
        let authorities = [
            "example.com",
            "EXAMPLE.com:8080",
            "127.0.0.1:3000",
            "[::1]:80",
            "user:pw@h",
            "xn--caf-dma.example",
            "h/x",
            "h?x",
            "",
            "bad host",
        ];
        for scheme in ["http", "https", "ws", "foo"] {
            for authority in authorities {
                for path in paths.iter().chain(paths.iter().rev()) {
                    let whole = format!("{scheme}://{authority}{path}");
                    let expected = uri::Authority::try_from(authority)
                        .ok()
                        .and_then(|_| Url::parse(&whole).ok());
                    assert_eq!(absolute_url(scheme, authority, path), expected, "{whole}");
                }
            }
        }
    }

    #[test]
    fn generated_request_paths_parse_as_whole_ones_do() {
        let pieces = [
            "/", ".", "..", "%2e", "%2E", "%", "a", "Z", "0", "?", "=", "&", "'", "[", "]", "{",
            "}", "|", "\\", "^", "`", ";", ":", "@", "!", "$", "(", "*", "+", ",", "~", "%41",
            "%C3%A9", "%00", "\"", "<", ">",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut paths = Vec::new();
        for _ in 0..4_000 {
            let mut text = String::from("/");
            for _ in 0..(state % 12) {
                // xorshift64: a fixed sequence, the same on every run.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            state = state.wrapping_add(1);
            // Only what a request's URI can hold reaches the layer.
            paths.extend(uri::PathAndQuery::try_from(text.as_str()));
        }
        assert!(paths.len() > 1_000);
        // One authority after the other: each path but the first is set on the last URL.
        for authority in ["example.com", "10.0.0.1:8080"] {
            for path in &paths {
                let whole = Url::parse(&format!("http://{authority}{path}")).ok();
                assert_eq!(
                    absolute_url("http", authority, path.as_str()),
                    whole,
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn statuses_map_as_sentry_does() {
        assert_eq!(span_status(StatusCode::OK), SpanStatus::Ok);
        assert_eq!(span_status(StatusCode::CONFLICT), SpanStatus::AlreadyExists);
        assert_eq!(
            span_status(StatusCode::BAD_REQUEST),
            SpanStatus::InvalidArgument
        );
        assert_eq!(
            span_status(StatusCode::BAD_GATEWAY),
            SpanStatus::InternalError
        );
        assert_eq!(
            span_status(StatusCode::SERVICE_UNAVAILABLE),
            SpanStatus::Unavailable
        );
    }
}
