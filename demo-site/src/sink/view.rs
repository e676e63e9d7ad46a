//! The sink's pages: the list of traces, and one trace drawn as a waterfall across services
//! (server-rendered HTML and CSS bars, no script), plus the same data as JSON.

use std::collections::{HashMap, HashSet};

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use serde_json::{Value, json};

use super::envelope::{MAX_TEXT, SpanRecord};
use super::store::{StoredSpan, TraceSummary};

/// The sink pages' stylesheet, in their `<style>`.
const STYLE: &str = include_str!("../../static/sink.css");

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } style { (PreEscaped(STYLE)) } }
            body { (body) }
        }
    }
}

fn service_class(service: &str) -> &'static str {
    match service {
        "browser" => "svc-browser",
        "web" => "svc-web",
        "api" => "svc-api",
        _ => "svc-other",
    }
}

fn badge(service: &str) -> Markup {
    html! { span class={ "badge " (service_class(service)) } { (service) } }
}

/// `12.3 ms`, `1.23 s` or `2.5 days`.
fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else if seconds < 86_400.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// `2025-01-31 12:34:56 UTC` from seconds since the UNIX epoch.
fn utc(seconds: f64) -> String {
    let format = "[year]-[month]-[day] [hour]:[minute]:[second] UTC";
    #[allow(clippy::cast_possible_truncation)] // Dates far out of range are shown as nothing.
    let date = time::OffsetDateTime::from_unix_timestamp(seconds.floor() as i64).ok();
    let format = time::format_description::parse_borrowed::<2>(format).ok();
    date.zip(format)
        .and_then(|(date, format)| date.format(&format).ok())
        .unwrap_or_default()
}

/// A page of the list of traces; `next`: the place of its last trace, when older ones follow.
pub fn traces_html(traces: &[TraceSummary], envelopes: i64, next: Option<i64>) -> Markup {
    page(
        "Traces",
        html! {
            h1 { "Recent traces" }
            p.meta {
                (traces.len()) " traces shown, " (envelopes) " envelopes received by this sink. "
                a href="/" { "Demo pages" } " · " a href="/traces?format=json" { "JSON" }
            }
            @if traces.is_empty() {
                p { "No traces yet: open one of the " a href="/" { "demo pages" } "." }
            } @else {
                table {
                    thead { tr {
                        th { "Trace" } th { "Root" } th { "Services" } th { "Spans" }
                        th { "Duration" } th { "Last received" }
                    } }
                    tbody { @for trace in traces { tr {
                        td { a.mono href={ "/traces/" (trace.trace_id) } { (trace.trace_id) } }
                        td { (badge(&trace.root_service)) " " (trace.root_name) }
                        td { @for service in &trace.services { (badge(service)) } }
                        td { (trace.spans) }
                        td { (trace.duration.map(duration).unwrap_or_default()) }
                        td { (utc(trace.last_received)) }
                    } } }
                }
                @if let Some(before) = next {
                    p { a href={ "/traces?before=" (before) } { "Older traces →" } }
                }
            }
        },
    )
}

/// The spans in waterfall order: each after its parent, siblings by start; spans whose parent
/// is not in the trace (the head of the trace, or a part that has not arrived) are roots.
fn waterfall_order(spans: &[StoredSpan]) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span.span_id.as_str(), i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, stored) in spans.iter().enumerate() {
        match stored
            .span
            .parent_span_id
            .as_deref()
            .and_then(|p| index.get(p))
        {
            Some(&parent) if parent != i => children.entry(parent).or_default().push(i),
            _ => roots.push(i),
        }
    }
    // `spans` are sorted by start already, so every list is in start order.
    let mut order = Vec::with_capacity(spans.len());
    let mut seen = HashSet::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        order.push((i, depth));
        if let Some(kids) = children.get(&i) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    // Spans on a parent cycle are not reachable from a root: show them at the end.
    for i in 0..spans.len() {
        if !seen.contains(&i) {
            order.push((i, 0));
        }
    }
    order
}

/// Where a span's bar goes, as percentages of the trace's time (`left`, `width`), and where its
/// duration label goes: after the bar, before it when the bar ends near the right edge, or
/// inside it when it is wide.
fn bar(span: &SpanRecord, start: f64, total: f64) -> (f64, f64, String) {
    let (left, width) = match (span.start, total > 0.0) {
        (Some(s), true) => {
            let e = span.end.unwrap_or(s).max(s);
            (
                ((s - start) / total * 100.0).clamp(0.0, 100.0),
                ((e - s) / total * 100.0).clamp(0.0, 100.0),
            )
        }
        _ => (0.0, 0.0),
    };
    let label_at = if left + width <= 80.0 {
        format!("left:{:.3}%", left + width + 0.5)
    } else if left >= 20.0 {
        format!("right:{:.3}%", 100.0 - left + 0.5)
    } else {
        format!("left:{:.3}%;color:#fff", left + 0.5)
    };
    (left, width, label_at)
}

/// One trace as a waterfall.
pub fn trace_html(trace_id: &str, spans: &[StoredSpan]) -> Markup {
    let start = spans
        .iter()
        .filter_map(|s| s.span.start)
        .fold(f64::INFINITY, f64::min);
    let end = spans
        .iter()
        .filter_map(|s| s.span.end.or(s.span.start))
        .fold(f64::NEG_INFINITY, f64::max);
    let total = if start.is_finite() && end > start {
        end - start
    } else {
        0.0
    };
    let mut services: Vec<&str> = spans.iter().map(|s| s.span.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let body = html! {
        p { a href="/traces" { "← Recent traces" } " · " a href={ "/traces/" (trace_id) ".json" } { "JSON" } }
        h1 { "Trace " code { (trace_id) } }
        @if spans.is_empty() {
            p { "No spans of this trace have arrived (yet)." }
        } @else {
            p.meta.legend {
                (spans.len()) " spans · " (duration(total)) " · "
                @for service in &services { (badge(service)) }
            }
            div.waterfall { @for (i, depth) in waterfall_order(spans) {
                @let stored = &spans[i];
                @let span = &stored.span;
                @let (left, width, label_at) = bar(span, start, total);
                @let detail = url_of(span).filter(|url| !span.name.contains(url.as_str()));
                div.row id={ "span-" (span.span_id) } {
                    div.label style={ "padding-left:" (0.5 + 1.1 * depth.min(20) as f64) "rem" } title=(span.name) {
                        (badge(&span.service)) " " span.op { (span.op.as_deref().unwrap_or("")) } " " (span.name)
                        @if let Some(url) = detail { " " span.op { (url) } }
                        span.ids.mono {
                            "span " (span.span_id) " · parent "
                            (span.parent_span_id.as_deref().unwrap_or("none")) " · " (stored.item)
                        }
                    }
                    div.track {
                        div class={ "bar " (service_class(&span.service)) }
                            style=(format!("left:{left:.3}%;width:{width:.3}%")) {}
                        span.dur style=(label_at) {
                            (span.start.zip(span.end).map(|(s, e)| duration((e - s).max(0.0))).unwrap_or_default())
                        }
                    }
                }
            } }
        }
    };
    page(&format!("Trace {trace_id}"), body)
}

/// The URL a span-v2 span is about (`url.full`, else `url.path`): in "stream" mode the browser
/// SDK names a pageload `Pageload` and a fetch `GET <host>`, and keeps the URL as an attribute.
/// Cut as names are ([`MAX_TEXT`] characters).
fn url_of(span: &SpanRecord) -> Option<String> {
    let attributes: Value = serde_json::from_str(span.attributes.as_deref()?).ok()?;
    ["url.full", "url.path"].iter().find_map(|key| {
        let url = attributes.get(key)?.get("value")?.as_str()?;
        Some(url.chars().take(MAX_TEXT).collect())
    })
}

/// One trace as JSON: `{"trace_id": …, "spans": [{span_id, parent_span_id, service, op, …, dsc}]}`.
#[derive(Serialize)]
pub struct TraceJson<'a> {
    /// The trace.
    pub trace_id: &'a str,
    /// Its spans.
    pub spans: &'a [StoredSpan],
}

/// A page of the list of traces as JSON; `next`: the place of its last trace, when older ones
/// follow.
pub fn traces_json(traces: &[TraceSummary], next: Option<i64>) -> Value {
    let next = next.map(|before| format!("/traces?format=json&before={before}"));
    json!({ "traces": traces, "next": next })
}
