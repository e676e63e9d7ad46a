//! The sink's store: spans, per-trace summaries and the envelope header's `trace` kept across
//! reopening; pages of traces; the oldest traces evicted; reads stopped on demand.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use sentry_meta_demo::sink::envelope::{Envelope, ItemKind, SpanRecord};
use sentry_meta_demo::sink::store::{Stop, Store};

const TRACE: &str = "771a43a4192642f0b136d5159a501700";

fn span(trace_id: &str, span_id: &str, parent: Option<&str>, start: f64) -> SpanRecord {
    SpanRecord {
        trace_id: trace_id.into(),
        span_id: span_id.into(),
        parent_span_id: parent.map(Into::into),
        segment_id: None,
        service: "web".into(),
        sdk: "sentry.rust".into(),
        item: ItemKind::Transaction,
        is_segment: parent.is_none(),
        op: Some("http.server".into()),
        name: "GET /".into(),
        start: Some(start),
        end: Some(start + 1.0),
        status: None,
        attributes: None,
    }
}

fn envelope(dsc: Option<&str>, spans: Vec<SpanRecord>) -> Envelope {
    Envelope {
        dsc: dsc.map(Into::into),
        spans,
    }
}

fn store(name: &str) -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    (Store::open(&dir.join("sink.sqlite")).expect("store"), dir)
}

#[test]
fn keeps_spans_summaries_and_dsc_across_reopening() -> rusqlite::Result<()> {
    let (store, dir) = store("reopen");
    let dsc = r#"{"trace_id":"771a43a4192642f0b136d5159a501700","zz":"kept"}"#;
    let mut child = span(TRACE, "c7ad6b7169203331", Some("b7ad6b7169203331"), 2.0);
    child.service = "a,b".into();
    store.insert(6.0, &[envelope(None, vec![child])])?;
    let root = span(TRACE, "b7ad6b7169203331", None, 1.0);
    store.insert(5.0, &[envelope(Some(dsc), vec![root])])?;
    drop(store);
    let store = Store::open(&dir.join("sink.sqlite"))?;
    let spans = store.trace(TRACE, &Stop::default())?;
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].span.span_id, "b7ad6b7169203331");
    assert_eq!(
        (spans[0].dsc.as_deref(), spans[1].dsc.as_deref()),
        (Some(dsc), None)
    );
    let recent = store.recent_traces(None, 10, &Stop::default())?;
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].spans, 2);
    assert_eq!(recent[0].services, ["a,b", "web"]);
    assert_eq!(
        (&*recent[0].root_service, &*recent[0].root_name),
        ("web", "GET /")
    );
    assert_eq!(recent[0].duration, Some(2.0));
    assert_eq!(store.envelope_count()?, 2);
    let all: Vec<_> = store.all_spans()?.into_iter().map(|s| s.span).collect();
    assert_eq!(all.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn pages_and_evicts_the_oldest_traces() -> rusqlite::Result<()> {
    let (store, dir) = store("evict");
    let store = store.with_limits(20, 4);
    let stop = Stop::default();
    for t in 0..8u8 {
        let trace = format!("{t:032x}");
        let spans = (0..6u8)
            .map(|s| span(&trace, &format!("{s:016x}"), None, f64::from(s)))
            .collect();
        store.insert(f64::from(t), &[envelope(None, spans)])?;
    }
    // 4 spans per trace kept; 20 spans at most, down to 18: the 4 newest traces.
    let recent = store.recent_traces(None, 3, &stop)?;
    let ids: Vec<_> = recent.iter().map(|t| &t.trace_id[30..]).collect();
    assert_eq!(ids, ["07", "06", "05"]);
    assert!(recent.iter().all(|t| t.spans == 4));
    let older = store.recent_traces(Some(recent[2].seq), 3, &stop)?;
    let ids: Vec<_> = older.iter().map(|t| &t.trace_id[30..]).collect();
    assert_eq!(ids, ["04"]);
    assert!(store.trace(&format!("{:032x}", 1), &stop)?.is_empty());
    assert_eq!(store.all_spans()?.len(), 16);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_stopped_read_ends() -> rusqlite::Result<()> {
    let (store, dir) = store("stop");
    store.insert(
        1.0,
        &[envelope(
            None,
            vec![span(TRACE, "b7ad6b7169203331", None, 1.0)],
        )],
    )?;
    let stop = Stop::new(AtomicBool::new(true));
    assert!(store.trace(TRACE, &stop).is_err());
    assert_eq!(store.trace(TRACE, &Stop::default())?.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
