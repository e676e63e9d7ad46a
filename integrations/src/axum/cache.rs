//! Whether a response may be stored by shared caches (CDNs, proxies): such a page must not carry
//! one request's trace, or every visitor served from the cache would join that trace.

use http::HeaderMap;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

/// Whether `headers` make the response storable by a shared cache: `Cache-Control` has `public`,
/// `s-maxage`, or a `max-age` above zero, and neither `private` nor `no-store`
/// ([RFC 9111 §3](https://www.rfc-editor.org/rfc/rfc9111#section-3)).
///
/// Every `Cache-Control` field line is read; directive names are case-insensitive; a malformed
/// directive is ignored.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CACHE_CONTROL};
/// use sentry_meta::axum::is_publicly_cacheable;
///
/// let mut headers = HeaderMap::new();
/// assert!(!is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=600"));
/// assert!(is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=600"));
/// assert!(!is_publicly_cacheable(&headers));
/// headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=0, must-revalidate"));
/// assert!(!is_publicly_cacheable(&headers));
/// ```
pub fn is_publicly_cacheable(headers: &HeaderMap) -> bool {
    let mut cacheable = false;
    for value in headers.get_all(CACHE_CONTROL) {
        // A value that is not visible ASCII is not a directive list we can trust either way.
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("private") || name.eq_ignore_ascii_case("no-store") {
                return false;
            }
            if name.eq_ignore_ascii_case("public") || name.eq_ignore_ascii_case("s-maxage") {
                cacheable = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                cacheable |= argument
                    .and_then(|seconds| seconds.parse::<u64>().ok())
                    .is_some_and(|seconds| seconds > 0);
            }
        }
    }
    cacheable
}

/// Whether the media type is `text/html` or `application/xhtml+xml`, parameters aside.
pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let bytes = content_type.as_bytes();
    // What frameworks write (`text/html; charset=utf-8`), recognized without splitting.
    if let Some(rest) = bytes.strip_prefix(b"text/html") {
        match rest.first() {
            None | Some(b';') => return true,
            Some(_) => {}
        }
    }
    let essence = bytes
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"text/html")
        || essence.eq_ignore_ascii_case(b"application/xhtml+xml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cacheable(values: &[&'static str]) -> bool {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        is_publicly_cacheable(&headers)
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
    }

    #[test]
    fn directives() {
        assert!(cacheable(&["public"]));
        assert!(cacheable(&["S-MaxAge=60"]));
        assert!(cacheable(&["max-age=\"30\""]));
        assert!(cacheable(&["no-cache", "max-age=5"]));
        assert!(!cacheable(&["max-age=0"]));
        assert!(!cacheable(&["max-age=abc"]));
        assert!(!cacheable(&["no-cache"]));
        assert!(!cacheable(&["public", "no-store"]));
        assert!(!cacheable(&["s-maxage=60, PRIVATE"]));
        assert!(!cacheable(&[]));
    }
}
