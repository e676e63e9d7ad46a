//! The request's server transaction, started by [`SentryMetaLayer`](super::SentryMetaLayer)
//! from the same continuation decision that its pages' tags come from.
//!
//! It gives what `sentry-tower`'s `SentryHttpLayer::enable_transaction()` gives: a transaction
//! named `"{METHOD} {route}"` with op `http.server`, the request's data (method, URL, headers;
//! sensitive headers and URL credentials left out unless `send_default_pii`) on the
//! transaction and on every event captured during the request, the response status as data and
//! span status, and a finish (as `aborted`) when the request is dropped before its response.
//! The transaction's span and decision are recorded in the request's [`TraceRoot`], where pages
//! read them.

use std::sync::Arc;

use http::{HeaderMap, Request, StatusCode, Uri, header, uri};
use sentry_core::protocol::{self, SpanStatus, Url};
use sentry_core::utils::{is_sensitive_header, scrub_pii_from_url};
use sentry_core::{Hub, TracesSamplingStrategy, Transaction, TransactionContext};
use sentry_meta_core::{SpanId, TraceRoot};

/// The `origin` of the transactions this crate starts.
const ORIGIN: &str = "auto.http.sentry_meta";

/// A running server transaction, the active span of the request's Hub until it is finished.
pub(crate) struct RequestTransaction {
    /// Taken when the transaction is finished.
    transaction: Option<Transaction>,
    hub: Arc<Hub>,
    root: Arc<TraceRoot>,
}

impl RequestTransaction {
    /// Starts the transaction of the request `root` belongs to, in `hub`: the caller's trace,
    /// parent span and decision when the root continued it, else the root's new trace. It is
    /// made the Hub's active span, and `request` goes onto it and onto the request's events.
    ///
    /// `None`, and nothing started, when the Hub already has an active span: a transaction that
    /// a layer outside started (`SentryHttpLayer::enable_transaction()`).
    pub(crate) fn start(
        hub: Arc<Hub>,
        root: Arc<TraceRoot>,
        request: protocol::Request,
    ) -> Option<Self> {
        // Read before the scope is locked for writing below.
        let client = hub.client()?;
        let transaction = hub.configure_scope(|scope| {
            if scope.get_span().is_some() {
                return None;
            }
            let span_id = SpanId::random();
            let context = context(&root, span_id);
            let caller_sampled = context.sampled();
            let transaction = hub.start_transaction(context);
            let sampled = decision(&hub, &transaction, caller_sampled);
            root.set_server_span(&client, span_id, sampled);
            transaction.set_origin(ORIGIN);
            transaction.set_request(request.clone());
            scope.set_span(Some(transaction.clone().into()));
            scope.add_event_processor(move |mut event| {
                event.request.get_or_insert_with(|| request.clone());
                Some(event)
            });
            Some(transaction)
        })?;
        Some(Self {
            transaction: Some(transaction),
            hub,
            root,
        })
    }

    /// Finishes the transaction with the response's status, or as an `unknown_error` when the
    /// service failed.
    pub(crate) fn finish(mut self, status: Option<StatusCode>) {
        let Some(transaction) = self.transaction.take() else {
            return;
        };
        if let Some(status) = status
            && !transaction
                .data()
                .iter()
                .any(|(key, _)| key == "http.response.status_code")
        {
            transaction.set_data("http.response.status_code", status.as_u16().into());
        }
        if transaction.get_status().is_none() {
            transaction.set_status(status.map_or(SpanStatus::UnknownError, span_status));
        }
        self.end(transaction);
    }

    /// Sends the transaction inside the request's Hub and trace root, where
    /// [`DscTransport`](crate::DscTransport) finds the DSC its pages wrote, and leaves the Hub
    /// with no active span.
    fn end(&self, transaction: Transaction) {
        Hub::run(self.hub.clone(), || {
            self.root.clone().sync_scope(|| transaction.finish());
        });
        self.hub.configure_scope(|scope| scope.set_span(None));
    }
}

impl Drop for RequestTransaction {
    /// A request dropped before its response (the client went away, a timeout) still sends its
    /// transaction, as `aborted`.
    fn drop(&mut self) {
        if let Some(transaction) = self.transaction.take() {
            if transaction.get_status().is_none() {
                transaction.set_status(SpanStatus::Aborted);
            }
            self.end(transaction);
        }
    }
}

/// The trace's sampling decision, as the SDK writes it into `sentry-trace`: the transaction's
/// own while tracing is enabled, else the caller's (or none: deferred).
fn decision(hub: &Hub, transaction: &Transaction, caller_sampled: Option<bool>) -> Option<bool> {
    let tracing = hub.client().is_some_and(|client| {
        !matches!(
            client.options().traces_sampling_strategy,
            TracesSamplingStrategy::Disabled
        )
    });
    // Exact while tracing is enabled: sampled exactly when the transaction will be sent.
    #[allow(deprecated)]
    let sampled = transaction.is_sampled();
    if tracing {
        Some(sampled)
    } else {
        caller_sampled
    }
}

/// The transaction's context, from the root's continuation decision, with `span_id` (drawn
/// here, so that the root records it without reading it back from the SDK).
fn context(root: &TraceRoot, span_id: SpanId) -> TransactionContext {
    let name = root.transaction().map_or("", |(name, _)| name);
    let incoming = root.incoming();
    let mut context = TransactionContext::new_with_details(
        name,
        "http.server",
        root.trace_id().into(),
        Some(span_id.into()),
        incoming
            .and_then(|incoming| incoming.span_id)
            .map(Into::into),
    );
    context.set_sampled(incoming.and_then(|incoming| incoming.sampled));
    context
}

/// What Sentry shows of the request: method, URL and headers, without credentials in the URL
/// and, unless `with_pii`, without the headers that may carry secrets (cookies, tokens).
pub(super) fn request_data<B>(request: &Request<B>, with_pii: bool) -> protocol::Request {
    protocol::Request {
        method: Some(request.method().to_string()),
        url: url(request.uri(), request.headers()).map(scrub_pii_from_url),
        headers: request
            .headers()
            .iter()
            .filter(|(name, value)| {
                !value.is_sensitive() && (with_pii || !is_sensitive_header(name.as_str()))
            })
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.to_string(), value)
            })
            .collect(),
        ..Default::default()
    }
}

/// The request's absolute URL: a server sees only the path, so the host comes from `Host`.
fn url(request_uri: &Uri, headers: &HeaderMap) -> Option<Url> {
    let mut parts = request_uri.clone().into_parts();
    parts.scheme.get_or_insert(uri::Scheme::HTTP);
    if parts.authority.is_none() {
        parts.authority = Some(headers.get(header::HOST)?.as_bytes().try_into().ok()?);
    }
    Url::parse(&Uri::from_parts(parts).ok()?.to_string()).ok()
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
