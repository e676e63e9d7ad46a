//! The cache guard and `Server-Timing`: one decision over an HTML response's headers, which the
//! tower layer and the actix-web middleware both make.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, ETAG, HeaderName, HeaderValue, LAST_MODIFIED};
use http::{HeaderMap, StatusCode};
use sentry_meta_core::{TraceMeta, TraceRoot, TransactionSource};

use super::cache::{self, Cacheability, PageType};
use super::inject::{has_one_content_type, is_rewritable_page, is_unrewritable_page};

static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// How many routes the cache guard remembers having warned about; past that it stays quiet
/// rather than grow (unmatched paths are unbounded).
const MAX_WARNED_ROUTES: usize = 1024;

/// The guard's settings, as the builders of the tower layer and the actix-web middleware set
/// them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    pub(crate) allow_cacheable: bool,
    pub(crate) mark_private: bool,
    pub(crate) server_timing: bool,
    /// Inject the tags into pages that lack them: the actix-web middleware's option (the tower
    /// layer leaves that to `InjectTraceMetaLayer`).
    pub(crate) inject: bool,
}

/// A response as the guard sees it, besides its headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    /// The response to a HEAD request: judged by its headers, as its body may be empty.
    pub(crate) head: bool,
    /// Whether its body is known to be empty.
    pub(crate) empty: bool,
    /// Whether its body streams inside the request's root, where it may take the tags after
    /// the headers have left.
    pub(crate) streamed: bool,
}

impl Page {
    /// Whether the page's body can be rewritten ([`is_rewritable_page`]); read only where the
    /// guard strips or injects, as it costs more than the rest of the guard's reading.
    fn is_rewritable(self, headers: &HeaderMap) -> bool {
        is_rewritable_page(self.status, headers, self.head, self.empty)
    }
}

/// What becomes of a page's body.
#[derive(Debug)]
pub(crate) enum Rewrite {
    Keep,
    /// The tags a template wrote are taken out as the page streams.
    Strip,
    /// These tags go in before `</head>`.
    Inject(TraceMeta),
}

impl Default for Guard {
    /// Publicly cacheable pages guarded, pages that name no caching marked `private`, no
    /// `Server-Timing`, no injection.
    fn default() -> Self {
        Self {
            allow_cacheable: false,
            mark_private: true,
            server_timing: false,
            inject: false,
        }
    }
}

impl Guard {
    /// Decides for the response of the request of `root`, and changes its `headers` to match.
    /// A page is a response typed HTML, or one whose type a browser sniffs
    /// ([`PageType::Sniffed`]: no `Content-Type`, say) when it took its tags from the root or
    /// streams inside it, where it may still take them:
    /// - a publicly cacheable page ([`Cacheability::Shared`]) gets no `Server-Timing`, and no
    ///   tags from the root from now on ([`TraceRoot::withhold_tags`]); the tags it took before
    ///   are stripped, or, in a body that cannot be rewritten (compressed, part of a page, a
    ///   `charset` that is not ASCII-compatible, a sniffed type, also one that streams), the page
    ///   is kept out of shared caches instead;
    /// - a page that names no caching ([`Cacheability::Heuristic`]) is marked `private`;
    /// - a page that carries this request's tags loses its validators: a client revalidating
    ///   with them would reuse an old copy, and its old trace;
    /// - then `Server-Timing`, and the injection.
    ///
    /// Every read of [`TraceRoot::rendered`] comes before the first render that the guard
    /// makes itself.
    pub(crate) fn apply(
        self,
        headers: &mut HeaderMap,
        page: Page,
        root: &Arc<TraceRoot>,
    ) -> Rewrite {
        let page_type = cache::page_type(cache::content_type_lines(headers));
        let sniffed = page_type == PageType::Sniffed;
        // A sniffed body that streams may take the tags after the headers have left, also where
        // the root cannot tell (in a task spawned without it): counted as tagged.
        let sniffed_stream = sniffed && page.streamed;
        if !(page_type == PageType::Html || sniffed && root.rendered() || sniffed_stream) {
            return Rewrite::Keep;
        }
        let cacheability = Cacheability::of(headers);
        if !self.allow_cacheable && cacheability == Cacheability::Shared {
            warn_cacheable(root);
            // From now on the root gives pages no tags: a body that renders as it streams takes
            // none. Those taken before are stripped, or the page is kept from shared caches.
            let tagged = root.withhold_tags() || sniffed_stream;
            if page.is_rewritable(headers) {
                forget_length(headers);
                return Rewrite::Strip;
            }
            if tagged && is_unrewritable_page(page.status, headers) {
                cache::forbid_shared(headers);
                forget_validators(headers);
            }
            return Rewrite::Keep;
        }
        if self.mark_private && cacheability == Cacheability::Heuristic {
            cache::mark_private(headers);
        }
        if root.rendered() {
            forget_validators(headers);
        }
        // None until the request's transaction has started (no Sentry client, or another layer's
        // transaction): a header that names no server span would make the browser's pageload a
        // child of nothing.
        if self.server_timing
            && let Some(meta) = crate::request_meta(root)
            && let Ok(value) = HeaderValue::try_from(meta.server_timing_header())
        {
            headers.append(&SERVER_TIMING, value);
        }
        if self.inject
            && page.is_rewritable(headers)
            && has_one_content_type(headers)
            && let Some(meta) = root.clone().sync_scope(TraceMeta::current)
        {
            prepare_for_tags(headers);
            return Rewrite::Inject(meta);
        }
        Rewrite::Keep
    }
}

/// The headers of a page that the tags are injected into: its length changes (see
/// [`forget_length`]), and as it differs on every request, so do its validators.
pub(crate) fn prepare_for_tags(headers: &mut HeaderMap) {
    forget_length(headers);
    forget_validators(headers);
}

/// The headers of a page whose body is rewritten as it streams (tags taken out or put in):
/// `Content-Length` goes, as the new length is not known before the head has been read (for
/// HEAD too, which gets the headers of GET), and so does `Accept-Ranges`, as a range would be
/// one of the page before the rewrite.
pub(crate) fn forget_length(headers: &mut HeaderMap) {
    headers.remove(CONTENT_LENGTH);
    headers.remove(ACCEPT_RANGES);
}

/// Removes the validators of a page that carries this request's tags.
fn forget_validators(headers: &mut HeaderMap) {
    headers.remove(ETAG);
    headers.remove(LAST_MODIFIED);
}

/// The routes whose publicly cacheable pages the cache guard has warned about, once each in the
/// process: layers are often built per connection or per worker.
static WARNED_ROUTES: Mutex<BTreeSet<Box<str>>> = Mutex::new(BTreeSet::new());

/// Warns that a page of the request of `root` was publicly cacheable, the first time for its
/// route (unmatched paths share one entry: they are as many as clients care to send).
fn warn_cacheable(root: &TraceRoot) {
    let route = match root.transaction() {
        Some((_, TransactionSource::Url)) | None => "<unmatched>",
        // The route part of a transaction name `"{METHOD} {route}"`.
        Some((name, _)) => name.split_once(' ').map_or(name, |(_, route)| route),
    };
    let mut warned = WARNED_ROUTES.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.len() >= MAX_WARNED_ROUTES || warned.contains(route) {
        return;
    }
    warned.insert(route.into());
    drop(warned);
    tracing::warn!(
        target: "sentry_meta",
        route,
        "sentry-meta: a publicly cacheable page (Cache-Control public, s-maxage or max-age>0; \
         Expires in the future; CDN-Cache-Control, a CDN's own such field or \
         Surrogate-Control with a lifetime; X-Accel-Expires) \
         gets no trace tags or Server-Timing, or every visitor served from the cache would \
         join the trace it was rendered in; a page with tags in a body that cannot be \
         rewritten (compressed inside the layer) is made private instead. Send \
         `Cache-Control: private` or `no-store` (and no CDN lifetime) on pages that should \
         continue their trace, or allow it with allow_cacheable(true) on SentryMetaLayer \
         (or actix-web's SentryMetaMiddleware); put compression outside it"
    );
}
