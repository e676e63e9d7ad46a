//! The sink's pages: recent traces, and one trace drawn as a waterfall across services
//! (server-rendered HTML and CSS bars, no script), plus the same data as JSON.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>\n",
        text(title)
    )
}

fn service_class(service: &str) -> &'static str {
    match service {
        "browser" => "svc-browser",
        "web" => "svc-web",
        "api" => "svc-api",
        _ => "svc-other",
    }
}

fn badge(service: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        service_class(service),
        text(service)
    )
}

/// `1234.5 ms` or `1.23 s`.
fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2} s")
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

/// The list of recent traces.
pub fn traces_html(traces: &[TraceSummary], envelopes: i64) -> String {
    let mut body = String::from("<h1>Recent traces</h1>");
    let _ = write!(
        body,
        "<p class=\"meta\">{} traces shown, {envelopes} envelopes received by this sink. \
         <a href=\"/\">Demo pages</a> · <a href=\"/traces?format=json\">JSON</a></p>",
        traces.len()
    );
    if traces.is_empty() {
        body.push_str("<p>No traces yet: open one of the <a href=\"/\">demo pages</a>.</p>");
        return page("Traces", &body);
    }
    body.push_str(
        "<table><thead><tr><th>Trace</th><th>Root</th><th>Services</th><th>Spans</th>\
         <th>Duration</th><th>Last received</th></tr></thead><tbody>",
    );
    for trace in traces {
        let services: String = trace.services.iter().map(|s| badge(s)).collect();
        let _ = write!(
            body,
            "<tr><td><a class=\"mono\" href=\"/traces/{id}\">{id}</a></td><td>{root_badge} {root}</td>\
             <td>{services}</td><td>{spans}</td><td>{duration}</td><td>{received}</td></tr>",
            id = attr(&trace.trace_id),
            root_badge = badge(&trace.root.0),
            root = text(&trace.root.1),
            spans = trace.spans,
            duration = trace.duration.map(duration).unwrap_or_default(),
            received = utc(trace.last_received),
        );
    }
    body.push_str("</tbody></table>");
    page("Traces", &body)
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

/// One trace as a waterfall.
pub fn trace_html(trace_id: &str, spans: &[StoredSpan]) -> String {
    let mut body = format!(
        "<p><a href=\"/traces\">← Recent traces</a> · <a href=\"/traces/{0}.json\">JSON</a></p>\
         <h1>Trace <code>{0}</code></h1>",
        attr(trace_id)
    );
    if spans.is_empty() {
        body.push_str("<p>No spans of this trace have arrived (yet).</p>");
        return page("Trace", &body);
    }
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
    let _ = write!(
        body,
        "<p class=\"meta legend\">{} spans · {} · {}</p><div class=\"waterfall\">",
        spans.len(),
        duration(total),
        services.iter().map(|s| badge(s)).collect::<String>()
    );
    for (i, depth) in waterfall_order(spans) {
        let stored = &spans[i];
        let span = &stored.span;
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
        let span_duration = span
            .start
            .zip(span.end)
            .map(|(s, e)| duration((e - s).max(0.0)));
        // The duration goes after the bar, or before it when the bar ends near the right edge,
        // or inside it when it is wide.
        let label_at = if left + width <= 80.0 {
            format!("left:{:.3}%", left + width + 0.5)
        } else if left >= 20.0 {
            format!("right:{:.3}%", 100.0 - left + 0.5)
        } else {
            format!("left:{:.3}%;color:#fff", left + 0.5)
        };
        let detail = url_of(span).filter(|url| !span.name.contains(url.as_str()));
        let _ = write!(
            body,
            "<div class=\"row\" id=\"span-{id}\"><div class=\"label\" style=\"padding-left:{pad}rem\" \
             title=\"{title}\">{badge} <span class=\"op\">{op}</span> {name}{detail}\
             <span class=\"ids mono\">span {id} · parent {parent} · {item}</span></div>\
             <div class=\"track\"><div class=\"bar {class}\" style=\"left:{left:.3}%;width:{width:.3}%\"></div>\
             <span class=\"dur\" style=\"{label_at}\">{dur}</span></div></div>",
            id = attr(&span.span_id),
            pad = 0.5 + 1.1 * depth.min(20) as f64,
            title = attr(&span.name),
            badge = badge(&span.service),
            op = text(span.op.as_deref().unwrap_or("")),
            name = text(&span.name),
            detail = detail
                .map(|url| format!(" <span class=\"op\">{}</span>", text(&url)))
                .unwrap_or_default(),
            parent = text(span.parent_span_id.as_deref().unwrap_or("none")),
            item = text(&stored.item),
            class = service_class(&span.service),
            dur = span_duration.unwrap_or_default(),
        );
    }
    body.push_str("</div>");
    page(&format!("Trace {trace_id}"), &body)
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

fn span_json(stored: &StoredSpan) -> Value {
    let span = &stored.span;
    json!({
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "segment_id": span.segment_id,
        "service": span.service,
        "sdk": span.sdk,
        "item": stored.item,
        "is_segment": span.is_segment,
        "op": span.op,
        "name": span.name,
        "start_timestamp": span.start,
        "end_timestamp": span.end,
        "status": span.status,
        "attributes": span.attributes.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
        "received_at": stored.received_at,
    })
}

/// One trace as JSON: `{"trace_id": …, "spans": [{span_id, parent_span_id, service, op, …}]}`.
pub fn trace_json(trace_id: &str, spans: &[StoredSpan]) -> Value {
    json!({ "trace_id": trace_id, "spans": spans.iter().map(span_json).collect::<Vec<_>>() })
}

/// The recent traces as JSON.
pub fn traces_json(traces: &[TraceSummary]) -> Value {
    json!({
        "traces": traces.iter().map(|t| json!({
            "trace_id": t.trace_id,
            "root_service": t.root.0,
            "root_name": t.root.1,
            "services": t.services,
            "spans": t.spans,
            "duration": t.duration,
            "last_received": t.last_received,
        })).collect::<Vec<_>>()
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
}
