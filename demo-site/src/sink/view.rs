//! The sink's pages: the list of traces, and one trace drawn as a waterfall across services
//! (server-rendered HTML and CSS bars, no script), plus the same data as JSON.

use std::collections::{HashMap, HashSet};

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::envelope::SpanRecord;
use super::store::{StoredSpan, TraceSummary};

const STYLE: &str = r#"
:root { font-family: system-ui, sans-serif; color: #1f1633; background: #fbfaff; }
body { margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
a { color: #6c5fc7; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; } h1 code { font-size: 1.1rem; }
.meta { color: #5c5470; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e6e1f0; font-size: .9rem; }
code, .mono { font-family: ui-monospace, monospace; font-size: .85rem; }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: .75rem; color: #fff; margin-right: .2rem; }
.svc-browser { background: #e1567c; } .svc-web { background: #6c5fc7; } .svc-api { background: #2ba185; }
.svc-other { background: #7a7289; }
.waterfall { border: 1px solid #e6e1f0; border-radius: .4rem; background: #fff; }
.row { display: grid; grid-template-columns: minmax(0, 42%) minmax(0, 58%); border-bottom: 1px solid #f0edf6; }
.row:last-child { border-bottom: 0; }
.label { padding: .3rem .5rem; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: .85rem; }
.label .op { color: #5c5470; font-family: ui-monospace, monospace; font-size: .8rem; }
.track { position: relative; border-left: 1px solid #f0edf6; }
.bar { position: absolute; top: .45rem; height: .9rem; min-width: 2px; border-radius: 2px; opacity: .9; }
.dur { position: absolute; top: .35rem; font-size: .75rem; color: #5c5470; white-space: nowrap; }
.ids { color: #8a8299; font-size: .72rem; display: block; }
.legend span { margin-right: .8rem; }
"#;

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
    #[allow(clippy::cast_possible_truncation)] // Dates far out of range are shown as nothing.
    let date = time::OffsetDateTime::from_unix_timestamp(seconds.floor() as i64);
    date.map(|d| {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    })
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
                        td { (badge(&trace.root.0)) " " (trace.root.1) }
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
fn url_of(span: &SpanRecord) -> Option<String> {
    let attributes: Value = serde_json::from_str(span.attributes.as_deref()?).ok()?;
    ["url.full", "url.path"].iter().find_map(|key| {
        attributes
            .get(key)?
            .get("value")?
            .as_str()
            .map(str::to_owned)
    })
}

/// JSON text as it is stored, written out as it is.
fn raw(json: Option<&str>) -> Option<&RawValue> {
    serde_json::from_str(json?).ok()
}

/// A span in the sink's JSON.
#[derive(Serialize)]
struct SpanJson<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    parent_span_id: Option<&'a str>,
    segment_id: Option<&'a str>,
    service: &'a str,
    sdk: &'a str,
    item: &'a str,
    is_segment: bool,
    op: Option<&'a str>,
    name: &'a str,
    start_timestamp: Option<f64>,
    end_timestamp: Option<f64>,
    status: Option<&'a str>,
    attributes: Option<&'a RawValue>,
    received_at: f64,
    /// Its envelope header's `trace` (the Dynamic Sampling Context), as it arrived.
    dsc: Option<&'a RawValue>,
}

/// One trace as JSON: `{"trace_id": …, "spans": [{span_id, parent_span_id, service, op, …, dsc}]}`.
#[derive(Serialize)]
pub struct TraceJson<'a> {
    trace_id: &'a str,
    spans: Vec<SpanJson<'a>>,
}

/// One trace as JSON ([`TraceJson`]).
pub fn trace_json<'a>(trace_id: &'a str, spans: &'a [StoredSpan]) -> TraceJson<'a> {
    let spans = spans
        .iter()
        .map(|stored| {
            let span = &stored.span;
            SpanJson {
                trace_id: &span.trace_id,
                span_id: &span.span_id,
                parent_span_id: span.parent_span_id.as_deref(),
                segment_id: span.segment_id.as_deref(),
                service: &span.service,
                sdk: &span.sdk,
                item: &stored.item,
                is_segment: span.is_segment,
                op: span.op.as_deref(),
                name: &span.name,
                start_timestamp: span.start,
                end_timestamp: span.end,
                status: span.status.as_deref(),
                attributes: raw(span.attributes.as_deref()),
                received_at: stored.received_at,
                dsc: raw(stored.dsc.as_deref()),
            }
        })
        .collect();
    TraceJson { trace_id, spans }
}

/// A page of the list of traces as JSON; `next`: the place of its last trace, when older ones
/// follow.
pub fn traces_json(traces: &[TraceSummary], next: Option<i64>) -> Value {
    json!({
        "traces": traces.iter().map(|t| json!({
            "trace_id": t.trace_id,
            "root_service": t.root.0,
            "root_name": t.root.1,
            "services": t.services,
            "spans": t.spans,
            "duration": t.duration,
            "last_received": t.last_received,
        })).collect::<Vec<_>>(),
        "next": next.map(|before| format!("/traces?format=json&before={before}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000.5), "2023-11-14 22:13:20 UTC");
    }

    const HOSTILE: &str = "\"><script>alert('x')</script>&amp;";

    fn hostile_span(span_id: &str, parent: Option<&str>, start: f64) -> StoredSpan {
        StoredSpan {
            span: SpanRecord {
                trace_id: "771a43a4192642f0b136d5159a501700".into(),
                span_id: span_id.into(),
                parent_span_id: parent.map(Into::into),
                segment_id: None,
                service: HOSTILE.into(),
                sdk: HOSTILE.into(),
                item: super::super::envelope::ItemKind::SpanV2,
                is_segment: parent.is_none(),
                op: Some(HOSTILE.into()),
                name: HOSTILE.into(),
                start: Some(start),
                end: Some(start + 0.25),
                status: None,
                attributes: Some(format!(
                    "{{\"url.full\":{{\"value\":{}}}}}",
                    json!(format!("http://x/{HOSTILE}"))
                )),
            },
            item: HOSTILE.into(),
            received_at: 1_700_000_000.0,
            dsc: Some(format!("{{\"transaction\":{},\"zz\":1}}", json!(HOSTILE))),
        }
    }

    #[test]
    fn views_escape_what_the_sink_received() {
        let summary = TraceSummary {
            trace_id: "771a43a4192642f0b136d5159a501700".into(),
            seq: 7,
            last_received: 1_700_000_000.0,
            spans: 2,
            services: vec![HOSTILE.into(), "a,b".into(), "web".into()],
            root: (HOSTILE.into(), HOSTILE.into()),
            duration: Some(0.5),
        };
        let list = traces_html(&[summary], 3, Some(7)).into_string();
        let spans = [
            hostile_span("b7ad6b7169203331", None, 1.0),
            hostile_span("c7ad6b7169203331", Some("b7ad6b7169203331"), 1.25),
        ];
        let trace = trace_html("771a43a4192642f0b136d5159a501700", &spans).into_string();
        for html in [&list, &trace] {
            assert!(
                !html.contains("<script>") && html.contains("&lt;script&gt;"),
                "{html}"
            );
        }
        insta::assert_snapshot!("traces_html", list);
        insta::assert_snapshot!("trace_html", trace);
        let json = serde_json::to_string(&trace_json("771a43a4192642f0b136d5159a501700", &spans))
            .expect("json");
        insta::assert_snapshot!("trace_json", json);
    }

    #[test]
    fn durations_stay_short() {
        assert_eq!(duration(0.0123), "12.3 ms");
        assert_eq!(duration(1.5), "1.50 s");
        assert_eq!(duration(253_402_300_799.0), "2932897.0 days");
    }
}
