//! Reading back, from the embedded sink's database, the server transaction of every page.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use sentry_meta_demo::sink::envelope::SpanRecord;
use sentry_meta_demo::sink::store::Store;

use crate::client::Exchange;

/// What the sink says about the pages of a run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Pages whose span was found in a captured transaction.
    pub captured: usize,
    /// Pages whose own transaction is in another trace than the page's tags: must be 0.
    pub mismatched: Vec<String>,
    /// Pages whose transaction's envelope carries another DSC than the page's `baggage` tag:
    /// must be 0.
    pub dsc_mismatched: Vec<String>,
}

/// Waits until the sink holds `expected` envelopes, or their count stops growing for `quiet`
/// (it also stops at its own limit, deleting the oldest).
pub fn wait_for_envelopes(path: &Path, expected: i64, quiet: Duration) -> i64 {
    let mut last = -1;
    let mut since = Instant::now();
    loop {
        let count = Store::open(path)
            .and_then(|store| store.envelope_count())
            .unwrap_or(0);
        if count >= expected {
            return count;
        }
        if count != last {
            last = count;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return count;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks every answered page against its server transaction: the page's span (its
/// `sentry-trace` parent id) must be a span of a `web` transaction named `transaction`, in the
/// page's trace; for a request that came with a trace, that is the caller's trace and the
/// transaction's parent is the caller's span.
pub fn check(path: &Path, pages: &[Exchange], transaction: &str) -> Result<Verdict, String> {
    let spans = read_spans(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut verdict = Verdict::default();
    for page in pages {
        let Some(tags) = &page.tags else { continue };
        // A page whose span is in no captured envelope: the SDK dropped it (counted as not
        // captured).
        let Some((span, _)) = spans.get(&tags.span_id) else {
            continue;
        };
        verdict.captured += 1;
        let mut problems = Vec::new();
        if span.trace_id != tags.trace_id {
            problems.push(format!("its span is in trace {}", span.trace_id));
        }
        let segment = span
            .segment_id
            .as_ref()
            .and_then(|id| spans.get(id))
            .filter(|(segment, _)| segment.is_segment);
        if let Some((_, dsc)) = segment
            && envelope_dsc(dsc.as_deref()) != tags.dsc
        {
            verdict.dsc_mismatched.push(format!(
                "page {}-{}: its transaction's envelope carries {dsc:?}",
                tags.trace_id, tags.span_id
            ));
        }
        match segment.map(|(segment, _)| segment) {
            None => problems.push("its span belongs to no transaction".into()),
            Some(segment) => {
                if segment.trace_id != tags.trace_id {
                    problems.push(format!("its transaction is in trace {}", segment.trace_id));
                }
                if segment.name != transaction || segment.service != "web" {
                    problems.push(format!(
                        "its transaction is {}/{}",
                        segment.service, segment.name
                    ));
                }
                if let Some(sent) = &page.sent
                    && segment.parent_span_id.as_deref() != Some(sent.parent_span_id.as_str())
                {
                    problems.push(format!(
                        "its transaction's parent is {:?}, not the caller's span {}",
                        segment.parent_span_id, sent.parent_span_id
                    ));
                }
            }
        }
        if !problems.is_empty() {
            verdict.mismatched.push(format!(
                "page {}-{}: {}",
                tags.trace_id,
                tags.span_id,
                problems.join("; ")
            ));
        }
    }
    Ok(verdict)
}

/// Every span of the sink, by span id (span ids are random 64-bit numbers: a collision between
/// the few tens of thousands of a run is not expected, and would show as a mismatch), with the
/// DSC of the envelope it came in.
fn read_spans(path: &Path) -> Result<HashMap<String, (SpanRecord, Option<String>)>, String> {
    let spans = Store::open(path)
        .and_then(|store| store.all_spans())
        .map_err(|e| e.to_string())?;
    Ok(spans
        .into_iter()
        .map(|stored| (stored.span.span_id.clone(), (stored.span, stored.dsc)))
        .collect())
}

/// An envelope header's `trace` (JSON) as `(key, value)` pairs sorted by key.
fn envelope_dsc(json: Option<&str>) -> Vec<(String, String)> {
    let object = json
        .and_then(|json| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).ok()
        })
        .unwrap_or_default();
    let mut dsc: Vec<(String, String)> = object
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(value) => (key, value),
            other => (key, other.to_string()),
        })
        .collect();
    dsc.sort();
    dsc
}

/// The pages' own checks, without the sink.
#[derive(Debug, Default)]
pub struct PageCheck {
    /// Pages with a problem: a transport error, a status other than 200, no tags, or tags that
    /// do not continue the caller's trace.
    pub bad: usize,
    /// The first problems, spelled out.
    pub samples: Vec<String>,
    /// Pages (of requests without a caller's trace) whose trace id an earlier page had.
    pub shared: usize,
}

/// Checks each page: it answered 200 with tags; with a caller's trace, the page continues it
/// (`sentry-trace` and baggage); without, its baggage names its own trace and no two pages
/// share a trace id.
pub fn check_pages(pages: &[Exchange]) -> PageCheck {
    let mut check = PageCheck::default();
    let mut seen = HashSet::with_capacity(pages.len());
    for page in pages {
        let problem = match (&page.outcome, &page.tags, &page.sent) {
            (Err(e), _, _) => Some(format!("error: {e}")),
            (Ok(status), _, _) if *status != 200 => Some(format!("status {status}")),
            (Ok(_), None, _) => Some("no sentry-trace tag".into()),
            (Ok(_), Some(tags), Some(sent)) => (tags.trace_id != sent.trace_id
                || tags.baggage_trace_id.as_deref() != Some(sent.trace_id.as_str()))
            .then(|| {
                format!(
                    "sent trace {} but the page has {} (baggage {:?})",
                    sent.trace_id, tags.trace_id, tags.baggage_trace_id
                )
            }),
            (Ok(_), Some(tags), None) => {
                if !seen.insert(tags.trace_id.clone()) {
                    check.shared += 1;
                }
                (tags.baggage_trace_id.as_deref() != Some(tags.trace_id.as_str())).then(|| {
                    format!(
                        "baggage trace {:?} is not the page's {}",
                        tags.baggage_trace_id, tags.trace_id
                    )
                })
            }
        };
        if let Some(problem) = problem {
            check.bad += 1;
            if check.samples.len() < 5 {
                check.samples.push(problem);
            }
        }
    }
    check
}
