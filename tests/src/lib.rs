//! What the cross-crate tests share: the test-vector file that every layer's tests read, and
//! checks of rendered HTML with a real HTML parser.

use std::path::PathBuf;

use serde::Deserialize;

/// The shared test vectors, `tests/vectors/vectors.json`.
#[derive(Debug, Deserialize)]
pub struct Vectors {
    /// `sentry-trace` header values and how they parse.
    pub sentry_trace: Vec<SentryTraceVector>,
    /// `baggage` header values and the DSC they carry.
    pub baggage: Vec<BaggageVector>,
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
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        entries.sort();
        entries
    }
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
