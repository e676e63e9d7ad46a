//! What shared caches (CDNs, proxies) may do with a response: a page they may store must not
//! carry one request's trace, or every visitor served from the cache would join that trace.
//!
//! The response's headers are read for the fields that decide it (`Cache-Control`,
//! `Expires` with `Date`, `CDN-Cache-Control` and CDNs' own targeted fields such as
//! `Cloudflare-CDN-Cache-Control`, `Surrogate-Control`, nginx's `X-Accel-Expires`) into a
//! [`Cacheability`];
//! both layers take their decision from it. (`headers::CacheControl` is not used: it matches
//! directive names case-sensitively, skips a field line with a non-ASCII byte, and drops an
//! overflowing `max-age`, all of which would let a cacheable page through.)

use std::time::SystemTime;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, DATE, EXPIRES, Entry};
use http::{HeaderMap, HeaderName, HeaderValue};

/// RFC 9213: the `Cache-Control` of CDNs, which they obey instead of `Cache-Control`.
static CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");
/// The Edge Architecture's field for surrogates (Fastly, Akamai, Varnish).
static SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");
/// nginx's lifetime for its proxy cache, which it obeys over `Cache-Control`.
static X_ACCEL_EXPIRES: HeaderName = HeaderName::from_static("x-accel-expires");

/// A delta-seconds too large to be held reads as 2^31
/// ([RFC 9111 §1.2.2](https://www.rfc-editor.org/rfc/rfc9111#section-1.2.2)).
const DELTA_SECONDS_MAX: u32 = 1 << 31;

/// What shared caches may do with a response, as its headers say
/// ([RFC 9111 §3](https://www.rfc-editor.org/rfc/rfc9111#section-3),
/// [RFC 9213](https://www.rfc-editor.org/rfc/rfc9213)).
///
/// The fields read, in one pass over the headers:
///
/// ```text
/// Cache-Control     = #cache-directive                       ; every field line
/// cache-directive   = token [ "=" ( token / quoted-string ) ]
/// Expires           = HTTP-date                              ; against Date, else now
/// CDN-Cache-Control = the same directives                   ; RFC 9213
/// Surrogate-Control = max-age=N[+N] / no-store / no-store-remote / …   ; its first line
/// X-Accel-Expires   = seconds / "@" unix-time                ; nginx
/// ```
///
/// Example values, and what they make of an HTML page behind
/// [`SentryMetaLayer`](super::SentryMetaLayer):
///
/// | headers | cacheability |
/// | --- | --- |
/// | `Cache-Control: public, max-age=600`; `s-maxage=60`; `max-age=99999999999999999999999` | [`Shared`](Self::Shared) |
/// | `Cache-Control: private="set-cookie", max-age=600` (only the named field is private) | [`Shared`](Self::Shared) |
/// | `Expires` later than `Date` (or than now), without `max-age`/`s-maxage` | [`Shared`](Self::Shared) |
/// | `CDN-Cache-Control: max-age=600`, even next to `Cache-Control: private` | [`Shared`](Self::Shared) |
/// | `Surrogate-Control: max-age=600`, `content="ESI/1.0"`, even next to `Cache-Control: private` | [`Shared`](Self::Shared) |
/// | `X-Accel-Expires: 600` or `@4102444800`, even next to `Cache-Control: private` | [`Shared`](Self::Shared) |
/// | no caching header at all | [`Heuristic`](Self::Heuristic) |
/// | `Cache-Control: must-revalidate`, `no-cache`, `max-age=0`, `private="set-cookie"`; an `Expires` in the past or invalid | [`Heuristic`](Self::Heuristic) |
/// | `Cache-Control: private`, `no-store` (not beside `must-understand`) | [`Private`](Self::Private) |
///
/// Reading rules:
///
/// - Directive names are case-insensitive; the field lines of one field combine; a comma inside
///   a quoted argument (`no-cache="a, b"`) does not end the directive; a quote left open runs
///   to the end of its field line.
/// - The values are read as bytes: a byte that is not ASCII spoils only the directive it is in.
///   A directive whose argument is not valid (`max-age=abc`, `max-age=-1`) gives no lifetime.
/// - `private` makes a response private only unqualified: `private="set-cookie"` keeps just the
///   named fields out of shared caches ([§5.2.2.7](https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.7)).
/// - `no-store` counts only bare: it takes no argument, and a cache may not read a malformed
///   `no-store=""` as one. Beside `must-understand` it does not count: a cache that implements
///   `must-understand` ignores `no-store` for a status code whose caching rules it knows
///   ([§5.2.2.3](https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2.3)), read here as every
///   status: `must-understand, no-store, max-age=600` is shared.
/// - `max-age`, `s-maxage` (which overrides `max-age` for shared caches), quoted or not;
///   an overflowing value is 2^31 seconds.
/// - `Expires` counts only without `max-age` and `s-maxage`; an invalid one means already
///   expired ([§5.3](https://www.rfc-editor.org/rfc/rfc9111#section-5.3)); it is compared with
///   `Date`, or with now when `Date` is missing or invalid.
/// - A CDN obeys `CDN-Cache-Control` instead of `Cache-Control` and `Expires`
///   ([RFC 9213 §2.1](https://www.rfc-editor.org/rfc/rfc9213#section-2.1)): it makes a
///   response shared when it gives a lifetime, `public`, or no freshness information at all
///   (the CDN then chooses a lifetime, and the `private` added to `Cache-Control` does not bind
///   it), and neither unqualified `no-store` or `private` nor `no-cache`/a zero lifetime.
/// - A CDN's own targeted field (`Cloudflare-CDN-Cache-Control` and any other
///   `<CDN>-CDN-Cache-Control`, `Akamai-Cache-Control`) is read as `CDN-Cache-Control`, each
///   field alone: the response is shared when any of them makes it so.
/// - `Surrogate-Control` makes a response shared unless its first field line has `no-store` (or
///   `no-store-remote`): a surrogate that obeys it does not read `Cache-Control`'s `private`,
///   `no-store` or `no-cache`, and without a lifetime there keeps the response for a default one
///   (Varnish's built-in rules, which read the field's first line only, for 120 s, also when
///   it names `max-age=0`: Varnish takes no lifetime from it).
/// - `X-Accel-Expires` makes a response shared when a field line gives nginx's proxy cache a
///   lifetime: seconds other than 0, or `@` and a time. nginx then stores it whatever
///   `Cache-Control` says (nginx 1.22 when the field comes before `Cache-Control`; it is counted
///   in any order); it ignores a value that is not a number, and `0` forbids storing.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use sentry_meta::tower::Cacheability;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(Cacheability::of(&headers), Cacheability::Heuristic);
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static(r#"private="set-cookie", max-age=600"#));
/// assert_eq!(Cacheability::of(&headers), Cacheability::Shared);
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=600, private"));
/// assert_eq!(Cacheability::of(&headers), Cacheability::Private);
/// headers.insert("cdn-cache-control", HeaderValue::from_static("max-age=600"));
/// assert_eq!(Cacheability::of(&headers), Cacheability::Shared);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cacheability {
    /// A shared cache may store the response and serve it to other clients without asking the
    /// server again: a page with trace tags must not be one.
    Shared,
    /// A shared cache may store the response, but nothing gives it a lifetime there: no caching
    /// header at all (the cache may then choose one itself,
    /// [§4.2.2](https://www.rfc-editor.org/rfc/rfc9111#section-4.2.2)), or caching headers
    /// without a lifetime and without unqualified `private`/`no-store` (`must-revalidate`,
    /// `no-cache`, `max-age=0`, `private="set-cookie"`, an expired `Expires`). Such a response
    /// is stored heuristically or stale and may reach another client; adding `private` to its
    /// `Cache-Control` makes it [`Private`](Self::Private) at no cost to its own client.
    Heuristic,
    /// Shared caches must not store the response: its `Cache-Control` has an unqualified
    /// `no-store` or `private`, and no CDN field gives it a lifetime.
    Private,
}

impl Cacheability {
    /// What shared caches may do with a response that has these `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        Self::at(headers, SystemTime::now)
    }

    /// As [`of`](Self::of), with `now` the time a response without a valid `Date` is taken to
    /// have been sent (asked only when `Expires` has to be compared with it).
    fn at(headers: &HeaderMap, now: impl FnOnce() -> SystemTime) -> Self {
        let mut cache_control = Directives::default();
        let mut cdn = Directives::default();
        let mut surrogate: Option<Directives> = None;
        let mut nginx_lifetime = false;
        let (mut expires, mut date) = (None, None);
        for (name, value) in headers {
            if *name == CACHE_CONTROL {
                cache_control.read(value.as_bytes());
            } else if *name == EXPIRES {
                // More than one: the first is used (§4.2.1).
                expires.get_or_insert(value);
            } else if *name == DATE {
                date.get_or_insert(value);
            } else if *name == CDN_CACHE_CONTROL {
                cdn.read(value.as_bytes());
            } else if *name == SURROGATE_CONTROL && surrogate.is_none() {
                // Its first line only.
                surrogate.get_or_insert_default().read(value.as_bytes());
            } else if *name == X_ACCEL_EXPIRES {
                nginx_lifetime |= gives_nginx_lifetime(value.as_bytes());
            }
        }
        // A CDN obeys its own targeted field before `CDN-Cache-Control`: each is read alone, as
        // one CDN's `no-store` does not bind another.
        let targeted_shared = || {
            headers
                .keys()
                .filter(|name| is_targeted_cdn_field(name.as_str()))
                .any(|name| {
                    let mut field = Directives::default();
                    for value in headers.get_all(name) {
                        field.read(value.as_bytes());
                    }
                    field.is_shared_for_cdn()
                })
        };
        // Unless `no-store` or `no-store-remote` (no store in a surrogate away from the server).
        let surrogate_shared =
            surrogate.is_some_and(|line| !(line.no_store || line.no_store_remote));
        if cdn.is_shared_for_cdn() || surrogate_shared || nginx_lifetime || targeted_shared() {
            return Self::Shared;
        }
        if cache_control.forbids_storing() {
            return Self::Private;
        }
        if cache_control.public || cache_control.shared_lifetime() > 0 {
            return Self::Shared;
        }
        // §5.3: a max-age or s-maxage directive, even an invalid one, overrides Expires. An
        // invalid Expires is in the past; without a valid Date, the response was sent now.
        if !cache_control.max_age_seen
            && !cache_control.s_maxage_seen
            && let Some(expires) = expires.and_then(http_date)
            && expires > date.and_then(http_date).unwrap_or_else(now)
        {
            return Self::Shared;
        }
        Self::Heuristic
    }
}

/// Whether an `X-Accel-Expires` line gives nginx's proxy cache a lifetime: seconds other than 0,
/// or `@` and a time (`ngx_http_upstream_process_accel_expires`).
fn gives_nginx_lifetime(value: &[u8]) -> bool {
    let number = |digits: &[u8]| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    match value.trim_ascii() {
        [b'@', time @ ..] => number(time),
        seconds => number(seconds) && seconds.iter().any(|&digit| digit != b'0'),
    }
}

fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

/// Whether `headers` make the response storable by a shared cache and reusable from it without
/// asking the server: [`Cacheability::of`] is [`Cacheability::Shared`].
///
/// That is any of: `Cache-Control` with `public`, `s-maxage` > 0 or `max-age` > 0 (an
/// overflowing value reads as 2^31 seconds) and neither an unqualified `no-store` nor an
/// unqualified `private`; an `Expires` later than `Date` (or now) without `max-age`/`s-maxage`; a
/// `CDN-Cache-Control` or a CDN's own targeted field (`Cloudflare-CDN-Cache-Control`,
/// `Akamai-Cache-Control`, …) that gives a lifetime, `public` or no freshness information at all,
/// without an unqualified `no-store` or `private`, `no-cache` or a zero lifetime; a
/// `Surrogate-Control` without `no-store` in its first line; or an `X-Accel-Expires` with a
/// lifetime: these whatever `Cache-Control` says (see [`Cacheability`] for the exact reading).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::{CACHE_CONTROL, EXPIRES}};
/// use sentry_meta::tower::is_publicly_cacheable;
///
/// let mut headers = HeaderMap::new();
/// assert!(!is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=600"));
/// assert!(is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=600"));
/// assert!(!is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=0, must-revalidate"));
/// assert!(!is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static(r#"private="set-cookie", max-age=600"#));
/// assert!(is_publicly_cacheable(&headers));
///
/// let mut headers = HeaderMap::new();
/// headers.insert(EXPIRES, HeaderValue::from_static("Fri, 01 Jan 2100 00:00:00 GMT"));
/// assert!(is_publicly_cacheable(&headers));
/// headers.insert(EXPIRES, HeaderValue::from_static("0"));
/// assert!(!is_publicly_cacheable(&headers));
/// ```
pub fn is_publicly_cacheable(headers: &HeaderMap) -> bool {
    Cacheability::of(headers) == Cacheability::Shared
}

/// Makes a [`Cacheability::Heuristic`] response private: `Cache-Control: private` when it has
/// no `Cache-Control`, else one field line with `private` before its directives (first, so
/// that a quote the app left open cannot take it in; one line, for caches that read only the
/// first).
pub(crate) fn mark_private(headers: &mut HeaderMap) {
    const PRIVATE: HeaderValue = HeaderValue::from_static("private");
    // One look-up; no allocation for the common page, which has no Cache-Control.
    let mut entry = match headers.entry(CACHE_CONTROL) {
        Entry::Vacant(entry) => {
            entry.insert(PRIVATE);
            return;
        }
        Entry::Occupied(entry) => entry,
    };
    let mut line = b"private".to_vec();
    for value in entry.iter() {
        let value = value.as_bytes().trim_ascii();
        if !value.is_empty() {
            line.extend_from_slice(b", ");
            line.extend_from_slice(value);
        }
    }
    // Header bytes joined by ", " stay valid header bytes.
    entry.insert(HeaderValue::from_bytes(&line).unwrap_or(PRIVATE));
}

/// Keeps a response whose body may carry trace tags out of shared caches when its tags cannot
/// be taken out: `private` first in its `Cache-Control` (see [`mark_private`]), and no
/// `CDN-Cache-Control`, targeted CDN field, `Surrogate-Control` or `X-Accel-Expires`, which
/// would give it a lifetime there whatever `Cache-Control` says. It is then
/// [`Cacheability::Private`].
pub(crate) fn forbid_shared(headers: &mut HeaderMap) {
    let targeted: Vec<HeaderName> = (headers.keys())
        .filter(|name| is_targeted_cdn_field(name.as_str()))
        .cloned()
        .collect();
    for name in [&CDN_CACHE_CONTROL, &SURROGATE_CONTROL, &X_ACCEL_EXPIRES]
        .into_iter()
        .chain(&targeted)
    {
        headers.remove(name);
    }
    mark_private(headers);
}

/// Whether the field `name` (lowercase) is a CDN's own targeted `CDN-Cache-Control`
/// ([RFC 9213 §2](https://www.rfc-editor.org/rfc/rfc9213#section-2)), read as that field is:
/// `<CDN>-CDN-Cache-Control` (Cloudflare, Vercel, Netlify) or `Akamai-Cache-Control`.
pub(crate) fn is_targeted_cdn_field(name: &str) -> bool {
    name.ends_with("-cdn-cache-control") || name == "akamai-cache-control"
}

/// What the directives of a `Cache-Control`-like field say, over all its field lines.
#[derive(Debug, Default)]
struct Directives {
    /// Any directive at all (an empty field is no field, RFC 9213 §2.1).
    seen: bool,
    no_store: bool,
    /// Unqualified `private`.
    private: bool,
    /// Unqualified `no-cache`.
    no_cache: bool,
    public: bool,
    max_age_seen: bool,
    /// The largest valid `max-age`.
    max_age: Option<u32>,
    s_maxage_seen: bool,
    /// The largest valid `s-maxage`.
    s_maxage: Option<u32>,
    /// Surrogate-Control's `no-store-remote`: no store in a surrogate away from the server.
    no_store_remote: bool,
    /// `must-understand`: a cache that implements it ignores `no-store` (§5.2.2.3).
    must_understand: bool,
}

impl Directives {
    /// Reads one field line.
    fn read(&mut self, line: &[u8]) {
        for (name, argument) in directives(line) {
            self.seen = true;
            let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
            let seconds = || delta_seconds(argument.unwrap_or_default());
            if is("no-store") {
                // It takes no argument: one with an argument is malformed, which a cache may
                // ignore (Chromium's compares the whole directive), so it forbids nothing here.
                self.no_store |= argument.is_none();
            } else if is("private") {
                // `private="set-cookie"` names fields; only the bare directive is about storing.
                self.private |= argument.is_none();
            } else if is("no-cache") {
                self.no_cache |= argument.is_none();
            } else if is("public") {
                self.public = true;
            } else if is("max-age") {
                self.max_age_seen = true;
                self.max_age = self.max_age.max(seconds());
            } else if is("s-maxage") {
                self.s_maxage_seen = true;
                self.s_maxage = self.s_maxage.max(seconds());
            } else if is("no-store-remote") {
                self.no_store_remote = true;
            } else if is("must-understand") {
                self.must_understand = true;
            }
        }
    }

    /// An unqualified `private`, or a bare `no-store` without `must-understand`.
    fn forbids_storing(&self) -> bool {
        (self.no_store && !self.must_understand) || self.private
    }

    /// The lifetime a shared cache gives the response: a valid `s-maxage` overrides `max-age`
    /// (§5.2.2.10); 0 without either.
    fn shared_lifetime(&self) -> u32 {
        self.s_maxage.or(self.max_age).unwrap_or(0)
    }

    /// As `CDN-Cache-Control`: whether the CDN may serve the response to other clients.
    fn is_shared_for_cdn(&self) -> bool {
        if !self.seen || self.forbids_storing() {
            return false;
        }
        // Without any freshness information the CDN picks a lifetime itself, ignoring the
        // `private` that would be added to Cache-Control.
        let no_freshness = !self.no_cache && !self.max_age_seen && !self.s_maxage_seen;
        self.public || self.shared_lifetime() > 0 || no_freshness
    }
}

/// delta-seconds = 1*DIGIT, quoted or not; too large reads as 2^31 (§1.2.2).
fn delta_seconds(argument: &[u8]) -> Option<u32> {
    // Quoted or not (escapes left as they are: a number has none).
    let digits = match argument {
        [b'"', inner @ .., b'"'] => inner,
        _ => argument,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All digits: only a number too large for a `u32` fails to parse.
    let seconds = std::str::from_utf8(digits).ok()?.parse::<u32>();
    Some(seconds.map_or(DELTA_SECONDS_MAX, |seconds| seconds.min(DELTA_SECONDS_MAX)))
}

/// The directives of one field line, `(name, argument)`, trimmed, empty ones skipped. A comma
/// ends a directive except inside a quoted-string argument (with `\` escapes); a quote opens
/// one only at the start of an argument, so that a stray one spoils only its own directive.
fn directives(line: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    list_members(line, directive_end).map(|directive| {
        let mut parts = directive.splitn(2, |&b| b == b'=');
        let name = parts.next().unwrap_or_default().trim_ascii();
        (name, parts.next().map(<[u8]>::trim_ascii))
    })
}

/// The members of a comma-separated field line, each ending where `end` says, trimmed, empty
/// ones skipped.
fn list_members(line: &[u8], end: fn(&[u8]) -> usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = line;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (member, after) = rest.split_at(end(rest));
            rest = after.get(1..).unwrap_or_default();
            let member = member.trim_ascii();
            if !member.is_empty() {
                return Some(member);
            }
        }
        None
    })
}

/// Where the directive at the start of `line` ends: its comma, or the end of the line.
fn directive_end(line: &[u8]) -> usize {
    #[derive(Clone, Copy)]
    enum State {
        Name,
        ArgumentStart,
        Argument,
        Quoted,
        Escaped,
    }
    let mut state = State::Name;
    for (i, &b) in line.iter().enumerate() {
        state = match (state, b) {
            (State::Quoted, b'\\') => State::Escaped,
            (State::Quoted, b'"') => State::Argument,
            (State::Quoted, _) | (State::Escaped, _) => State::Quoted,
            (_, b',') => return i,
            (State::Name, b'=') => State::ArgumentStart,
            (State::Name, _) => State::Name,
            (State::ArgumentStart, b' ' | b'\t') => State::ArgumentStart,
            (State::ArgumentStart, b'"') => State::Quoted,
            (State::ArgumentStart | State::Argument, _) => State::Argument,
        };
    }
    line.len()
}

/// Whether a `Content-Type` value names `text/html` or `application/xhtml+xml`, parameters
/// aside: any of them ([`content_type_values`]), as browsers take the last one and the guard must
/// not miss a page (the injector, which must know the page's type, leaves a response with
/// several alone).
pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    content_type_values(content_type_lines(headers)).any(is_html_type)
}

/// The response's `Content-Type` field lines.
pub(crate) fn content_type_lines(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    (headers.get_all(CONTENT_TYPE).iter()).map(HeaderValue::as_bytes)
}

/// The values of `Content-Type` field lines as browsers split them (Fetch, "get, decode, and
/// split"): every line cut at each comma outside a quoted string, trimmed, empty ones left out.
/// A browser takes the last that is a MIME type: `text/plain; charset=utf-8, text/html` is an
/// HTML page.
pub(crate) fn content_type_values<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = &'a [u8]> {
    (lines.into_iter()).flat_map(|line| list_members(line, value_end))
}

/// Where the value at the start of `line` ends: its first comma outside a quoted string (`\`
/// escapes a byte in one), or the end of the line.
fn value_end(line: &[u8]) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in line.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return i,
            _ => {}
        }
    }
    line.len()
}

/// What a browser makes of a response, by its `Content-Type` field lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageType {
    /// One of them names HTML ([`is_html_type`]).
    Html,
    /// None names a type the browser takes as given: no `Content-Type`, none that is a MIME
    /// type, or only those that ask it to look at the body (`unknown/unknown`,
    /// `application/unknown`, `*/*`). It sniffs the body, which it renders as HTML when it
    /// starts like HTML (the MIME Sniffing Standard, "Determining the computed MIME type").
    Sniffed,
    /// Another type: not a page.
    Other,
}

/// The [`PageType`] of a response with these `Content-Type` field lines, by their values
/// ([`content_type_values`]).
pub(crate) fn page_type<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> PageType {
    let mut page = PageType::Sniffed;
    for content_type in content_type_values(lines) {
        if is_html_type(content_type) {
            return PageType::Html;
        }
        if is_given_type(content_type) {
            page = PageType::Other;
        }
    }
    page
}

/// Whether a `Content-Type` field line holds a MIME type that a browser takes as given:
/// `type/subtype` of token characters, parameters aside, and not one that asks it to sniff.
fn is_given_type(content_type: &[u8]) -> bool {
    let essence = essence(content_type);
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    let token = |part: &[u8]| {
        !part.is_empty()
            && (part.iter()).all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let sniff = [&b"unknown/unknown"[..], b"application/unknown", b"*/*"];
    token(kind) && token(subtype) && !sniff.iter().any(|s| essence.eq_ignore_ascii_case(s))
}

/// Whether one `Content-Type` field line names HTML (see [`is_html`]).
pub(crate) fn is_html_type(content_type: &[u8]) -> bool {
    let essence = essence(content_type);
    essence.eq_ignore_ascii_case(b"text/html")
        || essence.eq_ignore_ascii_case(b"application/xhtml+xml")
}

/// A `Content-Type` field line without its parameters and surrounding whitespace.
fn essence(content_type: &[u8]) -> &[u8] {
    (content_type.split(|&b| b == b';').next())
        .unwrap_or_default()
        .trim_ascii()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use Cacheability::{Heuristic, Private, Shared};

    /// 2001-09-09T01:46:40Z, the `now` of these tests.
    const NOW: &str = "Sun, 09 Sep 2001 01:46:40 GMT";

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)
    }

    /// The cacheability of a response with these header lines, at [`NOW`].
    fn of(lines: &[(&str, &[u8])]) -> Cacheability {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            let value = HeaderValue::from_bytes(value).expect("a header value");
            headers.append(name, value);
        }
        Cacheability::at(&headers, now)
    }

    fn cache_control(values: &[&str]) -> Cacheability {
        let lines: Vec<(&str, &[u8])> = values
            .iter()
            .map(|value| ("cache-control", value.as_bytes()))
            .collect();
        of(&lines)
    }

    #[test]
    fn the_test_clock_reads_now() {
        assert_eq!(httpdate::parse_http_date(NOW).ok(), Some(now()));
    }

    #[test]
    fn html_content_types() {
        let html = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            is_html(&headers)
        };
        assert!(html("text/html; charset=utf-8"));
        assert!(html("text/html"));
        assert!(html("text/html ;charset=utf-8"));
        assert!(html("TEXT/HTML"));
        assert!(html(" application/xhtml+xml "));
        assert!(!html("text/plain"));
        assert!(!html("text/htmlx"));
        assert!(!is_html(&HeaderMap::new()));
        // A field line holds several values, split at commas outside quotes, as browsers do.
        assert!(html("text/plain; charset=utf-8, text/html"));
        assert!(html("text/plain,text/html;x=\"a,b\""));
        assert!(!html("text/plain; x=\"a, text/html\""));
        assert!(!html("text/plain; x=\"a\\\", text/html\""));
    }

    #[test]
    fn content_type_values_split_as_browsers_split_them() {
        let values = |line: &'static [u8]| content_type_values([line]).collect::<Vec<_>>();
        assert_eq!(
            values(b"text/plain, text/html"),
            [&b"text/plain"[..], b"text/html"]
        );
        assert_eq!(values(b" , text/html ,,"), [&b"text/html"[..]]);
        assert_eq!(values(b"a;x=\"1,2\", b"), [&b"a;x=\"1,2\""[..], b"b"]);
        assert_eq!(
            values(b"a;x=\"1\\\",2\", b"),
            [&b"a;x=\"1\\\",2\""[..], b"b"]
        );
        // A quote left open runs to the end of the line.
        assert_eq!(values(b"a;x=\"1, b"), [&b"a;x=\"1, b"[..]]);
        assert_eq!(values(b""), Vec::<&[u8]>::new());
    }

    #[test]
    fn sniffed_content_types() {
        let of = |lines: &[&[u8]]| page_type(lines.iter().copied());
        assert_eq!(of(&[]), PageType::Sniffed);
        for sniffed in [
            &b""[..],
            b"garbage",
            b"text",
            b"text/",
            b"/html",
            b"text /html",
            b"text/ht ml",
            b"*/*",
            b"Unknown/Unknown; charset=utf-8",
            b"application/unknown",
            b"\xe9/x",
        ] {
            assert_eq!(of(&[sniffed]), PageType::Sniffed, "{sniffed:?}");
        }
        for other in [
            &b"text/plain"[..],
            b"application/json",
            b" image/png ;x=y",
            b"a/b",
        ] {
            assert_eq!(of(&[other]), PageType::Other, "{other:?}");
            assert_eq!(of(&[b"garbage", other]), PageType::Other, "{other:?}");
        }
        assert_eq!(of(&[b"text/plain", b"text/html"]), PageType::Html);
        assert_eq!(
            of(&[b"text/plain; charset=utf-8, text/html"]),
            PageType::Html
        );
        assert_eq!(of(&[b"text/plain, garbage"]), PageType::Other);
        assert_eq!(of(&[b"garbage, */*"]), PageType::Sniffed);
    }

    #[test]
    fn cache_control_directives() {
        assert_eq!(cache_control(&["public"]), Shared);
        assert_eq!(cache_control(&["S-MaxAge=60"]), Shared);
        assert_eq!(cache_control(&["max-age=\"30\""]), Shared);
        assert_eq!(cache_control(&["Max-Age=600"]), Shared);
        assert_eq!(cache_control(&["no-cache", "max-age=5"]), Shared);
        assert_eq!(cache_control(&["public", "no-store"]), Private);
        assert_eq!(cache_control(&["s-maxage=60, PRIVATE"]), Private);
        assert_eq!(cache_control(&["max-age=600, private"]), Private);
        assert_eq!(cache_control(&["no-store, max-age=600"]), Private);
        // `no-store` takes no argument: with one, a cache may not read it as `no-store`.
        assert_eq!(cache_control(&[r#"max-age=60, no-store="""#]), Shared);
        assert_eq!(cache_control(&["no-store=x, max-age=60"]), Shared);
        assert_eq!(cache_control(&[r#"no-store="""#]), Heuristic);
    }

    #[test]
    fn several_field_lines_combine() {
        assert_eq!(cache_control(&["must-revalidate", "max-age=600"]), Shared);
        assert_eq!(cache_control(&["max-age=600", "private"]), Private);
        assert_eq!(cache_control(&["", "max-age=600", ""]), Shared);
    }

    #[test]
    fn qualified_private_names_fields_only() {
        // §5.2.2.7: only the named fields are private; the response itself may be stored.
        assert_eq!(
            cache_control(&[r#"private="set-cookie", max-age=600"#]),
            Shared
        );
        assert_eq!(cache_control(&["private=set-cookie, max-age=600"]), Shared);
        assert_eq!(cache_control(&[r#"private="set-cookie""#]), Heuristic);
        assert_eq!(
            cache_control(&[r#"no-cache="set-cookie", s-maxage=60"#]),
            Shared
        );
    }

    #[test]
    fn commas_in_quoted_arguments_do_not_split() {
        assert_eq!(cache_control(&[r#"private="a, b", max-age=600"#]), Shared);
        assert_eq!(cache_control(&[r#"no-cache="x,y", max-age=600"#]), Shared);
        // The `private` and `no-store` inside the quotes are field names, not directives.
        assert_eq!(
            cache_control(&[r#"no-cache="x, private", max-age=600"#]),
            Shared
        );
        assert_eq!(
            cache_control(&[r#"community="a\", no-store", max-age=600"#]),
            Shared
        );
        // Quotes that open no argument are bytes of their own directive only.
        assert_eq!(cache_control(&[r#"x"y, max-age=600"#]), Shared);
        // A quote left open runs to the end of its field line, not into the next one.
        assert_eq!(cache_control(&[r#"x="open, private"#]), Heuristic);
        assert_eq!(
            cache_control(&[r#"x="open, max-age=600"#, "private"]),
            Private
        );
    }

    #[test]
    fn overflowing_lifetimes_read_as_2_pow_31() {
        assert_eq!(delta_seconds(b"99999999999999999999999"), Some(1 << 31));
        assert_eq!(delta_seconds(b"2147483648"), Some(1 << 31));
        assert_eq!(delta_seconds(b"2147483647"), Some((1 << 31) - 1));
        assert_eq!(delta_seconds(b"\"600\""), Some(600));
        for invalid in [&b""[..], b"-1", b"1.5", b"abc", b"6 0", b"\"\"", b"+5"] {
            assert_eq!(delta_seconds(invalid), None, "{invalid:?}");
        }
        assert_eq!(cache_control(&["max-age=99999999999999999999999"]), Shared);
        assert_eq!(cache_control(&["s-maxage=99999999999999999999999"]), Shared);
        assert_eq!(
            cache_control(&["max-age=000000000000000000000000"]),
            Heuristic
        );
    }

    #[test]
    fn a_non_ascii_byte_spoils_only_its_directive() {
        let cases: [(&[u8], Cacheability); 5] = [
            (b"max-age=600, x=\xff", Shared),
            (b"\xe9t\xe9, public", Shared),
            (b"max-age=600, private\xff", Shared),
            (b"max-age=60\xff", Heuristic),
            (b"no-store, x=\xc3\xa9", Private),
        ];
        for (value, expected) in cases {
            assert_eq!(of(&[("cache-control", value)]), expected, "{value:?}");
        }
    }

    #[test]
    fn no_lifetime_is_heuristic() {
        assert_eq!(of(&[]), Heuristic);
        assert_eq!(of(&[("content-type", b"text/html")]), Heuristic);
        for value in [
            "max-age=0",
            "max-age=abc",
            "max-age=-1",
            "no-cache",
            "must-revalidate",
            "s-maxage=0",
            "max-age=600, s-maxage=0",
            "",
            ",,",
        ] {
            assert_eq!(cache_control(&[value]), Heuristic, "{value:?}");
        }
        // An invalid s-maxage does not override max-age.
        assert_eq!(cache_control(&["max-age=600, s-maxage=x"]), Shared);
    }

    #[test]
    fn expires() {
        let future = b"Sun, 09 Sep 2001 01:56:40 GMT";
        let past = b"Sun, 09 Sep 2001 01:36:40 GMT";
        // Against now, without Date.
        assert_eq!(of(&[("expires", future)]), Shared);
        assert_eq!(of(&[("expires", past)]), Heuristic);
        assert_eq!(of(&[("expires", NOW.as_bytes())]), Heuristic);
        // The other two HTTP-date formats.
        assert_eq!(
            of(&[("expires", b"Sunday, 09-Sep-01 01:56:40 GMT")]),
            Shared
        );
        assert_eq!(of(&[("expires", b"Sun Sep  9 01:56:40 2001")]), Shared);
        // Invalid: already expired (§5.3).
        for invalid in [
            &b"0"[..],
            b"-1",
            b"tomorrow",
            b"",
            b"Sun, 09 Sep 2001 01:56:40 GMT\xff",
        ] {
            assert_eq!(of(&[("expires", invalid)]), Heuristic, "{invalid:?}");
        }
        // Against Date when there is one.
        let later = b"Sun, 09 Sep 2001 02:46:40 GMT";
        assert_eq!(of(&[("date", later), ("expires", future)]), Heuristic);
        assert_eq!(of(&[("date", past), ("expires", future)]), Shared);
        assert_eq!(of(&[("date", b"junk"), ("expires", future)]), Shared);
        assert_eq!(of(&[("date", future), ("expires", future)]), Heuristic);
        // The first of several.
        assert_eq!(of(&[("expires", future), ("expires", past)]), Shared);
        assert_eq!(of(&[("expires", past), ("expires", future)]), Heuristic);
        // Cache-Control's max-age and s-maxage, valid or not, override it; private wins.
        let with = |value: &'static [u8]| of(&[("expires", future), ("cache-control", value)]);
        assert_eq!(with(b"must-revalidate"), Shared);
        assert_eq!(with(b"private=\"set-cookie\""), Shared);
        assert_eq!(with(b"max-age=0"), Heuristic);
        assert_eq!(with(b"s-maxage=0"), Heuristic);
        assert_eq!(with(b"max-age=junk"), Heuristic);
        assert_eq!(with(b"private"), Private);
        assert_eq!(with(b"no-store"), Private);
    }

    #[test]
    fn cdn_cache_control_overrides_cache_control() {
        let cdn = |cdn: &'static [u8], cache_control: Option<&'static [u8]>| {
            let mut lines = vec![("cdn-cache-control", cdn)];
            lines.extend(cache_control.map(|value| ("cache-control", value)));
            of(&lines)
        };
        assert_eq!(cdn(b"max-age=600", None), Shared);
        assert_eq!(cdn(b"max-age=600", Some(b"private")), Shared);
        assert_eq!(cdn(b"max-age=600", Some(b"no-store")), Shared);
        assert_eq!(cdn(b"s-maxage=600", Some(b"private")), Shared);
        assert_eq!(cdn(b"public", Some(b"private")), Shared);
        assert_eq!(
            cdn(b"MAX-AGE=99999999999999999999999", Some(b"private")),
            Shared
        );
        // No freshness at all: the CDN chooses a lifetime and ignores Cache-Control.
        assert_eq!(cdn(b"must-revalidate", Some(b"private")), Shared);
        // The CDN does not keep it: Cache-Control decides for every other cache.
        assert_eq!(cdn(b"no-store", None), Heuristic);
        assert_eq!(cdn(b"private", Some(b"no-store")), Private);
        assert_eq!(cdn(b"max-age=600, private", Some(b"private")), Private);
        assert_eq!(cdn(b"max-age=0", Some(b"private")), Private);
        assert_eq!(cdn(b"no-cache", Some(b"private")), Private);
        assert_eq!(cdn(b"no-store", Some(b"public, max-age=600")), Shared);
        // An empty field is no field.
        assert_eq!(cdn(b"", Some(b"private")), Private);
    }

    #[test]
    fn surrogate_control() {
        let surrogate = |value: &'static [u8]| {
            of(&[("surrogate-control", value), ("cache-control", b"private")])
        };
        assert_eq!(surrogate(b"max-age=600"), Shared);
        assert_eq!(surrogate(b"max-age=600+60"), Shared);
        assert_eq!(surrogate(b"content=\"ESI/1.0\", max-age=600;edge"), Shared);
        assert_eq!(surrogate(b"max-age=99999999999999999999999"), Shared);
        assert_eq!(surrogate(b"max-age=600, no-store"), Private);
        assert_eq!(surrogate(b"max-age=600, no-store-remote"), Private);
        // Varnish's built-in rules then ignore Cache-Control's `private` and keep the page for
        // their default lifetime: a field without `no-store` makes it shared.
        assert_eq!(surrogate(b"max-age=0"), Shared);
        assert_eq!(surrogate(b"content=\"ESI/1.0\""), Shared);
        assert_eq!(surrogate(b""), Shared);
        assert_eq!(surrogate(b"private"), Shared);
        assert_eq!(surrogate(b"no-store=\"x\""), Shared);
        assert_eq!(of(&[("surrogate-control", b"max-age=600")]), Shared);
        assert_eq!(of(&[("surrogate-control", b"no-store")]), Heuristic);
        // Only the first line counts, as Varnish reads it.
        let lines = [
            ("surrogate-control", &b"max-age=600"[..]),
            ("surrogate-control", b"no-store"),
            ("cache-control", b"private"),
        ];
        assert_eq!(of(&lines), Shared);
        let lines = [
            ("surrogate-control", &b"no-store"[..]),
            ("surrogate-control", b"max-age=600"),
        ];
        assert_eq!(of(&lines), Heuristic);
    }

    #[test]
    fn x_accel_expires() {
        let nginx =
            |value: &'static [u8]| of(&[("x-accel-expires", value), ("cache-control", b"private")]);
        // nginx stores the page for that long, whatever Cache-Control says.
        assert_eq!(nginx(b"600"), Shared);
        assert_eq!(nginx(b" 0600 "), Shared);
        assert_eq!(nginx(b"@4102444800"), Shared);
        // Too large for nginx, which then ignores it: counted all the same (failing closed).
        assert_eq!(nginx(b"99999999999999999999999"), Shared);
        // `0` forbids storing; what is not a number nginx ignores.
        assert_eq!(nginx(b"0"), Private);
        assert_eq!(nginx(b"00"), Private);
        assert_eq!(nginx(b"off"), Private);
        assert_eq!(nginx(b"-1"), Private);
        assert_eq!(nginx(b"@"), Private);
        assert_eq!(nginx(b"@soon"), Private);
        assert_eq!(nginx(b""), Private);
        assert_eq!(of(&[("x-accel-expires", b"600")]), Shared);
        assert_eq!(of(&[("x-accel-expires", b"0")]), Heuristic);
        // Any line with a lifetime counts.
        let lines = [("x-accel-expires", &b"0"[..]), ("x-accel-expires", b"60")];
        assert_eq!(of(&lines), Shared);
    }

    #[test]
    fn is_publicly_cacheable_is_shared() {
        let mut headers = HeaderMap::new();
        assert!(!is_publicly_cacheable(&headers));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        assert!(!is_publicly_cacheable(&headers));
        headers.insert(
            CDN_CACHE_CONTROL.clone(),
            HeaderValue::from_static("max-age=600"),
        );
        assert!(is_publicly_cacheable(&headers));
    }

    #[test]
    fn forbidden_to_shared_caches() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("cache-control", "public, max-age=600"),
            ("cdn-cache-control", "max-age=600"),
            ("surrogate-control", "max-age=600"),
            ("cloudflare-cdn-cache-control", "max-age=600"),
            ("akamai-cache-control", "max-age=600"),
            ("x-accel-expires", "600"),
            ("etag", "\"v1\""),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        assert_eq!(Cacheability::at(&headers, now), Shared);
        forbid_shared(&mut headers);
        assert_eq!(Cacheability::at(&headers, now), Private);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["cache-control", "etag"]);
        assert_eq!(headers[CACHE_CONTROL], "private, public, max-age=600");
    }

    #[test]
    fn marked_private() {
        let marked = |values: &[&'static [u8]]| {
            let mut headers = HeaderMap::new();
            for value in values {
                let value = HeaderValue::from_bytes(value).expect("a header value");
                headers.append(CACHE_CONTROL, value);
            }
            mark_private(&mut headers);
            assert_eq!(Cacheability::at(&headers, now), Private, "{values:?}");
            let lines: Vec<_> = headers.get_all(CACHE_CONTROL).iter().collect();
            assert_eq!(lines.len(), 1, "{values:?}");
            lines[0].as_bytes().to_vec()
        };
        assert_eq!(marked(&[]), b"private");
        assert_eq!(marked(&[b"must-revalidate"]), b"private, must-revalidate");
        assert_eq!(
            marked(&[b"no-cache", b" ", b"max-age=0"]),
            b"private, no-cache, max-age=0"
        );
        assert_eq!(
            marked(&[b"x=\"open, max-age=0"]),
            b"private, x=\"open, max-age=0"
        );
        assert_eq!(marked(&[b"\xe9"]), b"private, \xe9");
    }
}
