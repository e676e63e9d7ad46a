//! The sink's views write what they received escaped, byte for byte as in the snapshots.

use sentry_meta_demo::sink::envelope::{ItemKind, SpanRecord};
use sentry_meta_demo::sink::store::{StoredSpan, TraceSummary};
use sentry_meta_demo::sink::view::{TraceJson, trace_html, traces_html};
use serde_json::json;

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
            item: ItemKind::SpanV2,
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
        root_service: HOSTILE.into(),
        root_name: HOSTILE.into(),
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
    let trace_id = "771a43a4192642f0b136d5159a501700";
    let json = serde_json::to_string(&TraceJson {
        trace_id,
        spans: &spans,
    })
    .expect("json");
    insta::assert_snapshot!("trace_json", json);
}

#[test]
fn long_durations_stay_short() {
    let mut span = hostile_span("b7ad6b7169203331", None, 0.0);
    span.span.end = Some(253_402_300_799.0); // The latest a span may end.
    let html = trace_html("771a43a4192642f0b136d5159a501700", &[span]).into_string();
    assert!(html.contains(">2932897.0 days</span>"), "{html}");
}
