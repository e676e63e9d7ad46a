//! Reading envelopes: spans of transactions and span-v2 items, the header's `trace` kept as it
//! came, hostile input and the limits.

use sentry_meta_demo::sink::envelope::{
    EnvelopeError, ItemKind, MAX_ITEMS, MAX_SPANS_PER_ENVELOPE, parse,
};

const T: &str = "771a43a4192642f0b136d5159a501700";

#[test]
fn reads_a_rust_transaction_with_length() {
    let payload = format!(
        r#"{{"type":"transaction","transaction":"GET /api/pages/{{page}}","start_timestamp":10.0,"timestamp":"1970-01-01T00:00:10.500Z","sdk":{{"name":"sentry.rust"}},"tags":{{"service":"api"}},"contexts":{{"trace":{{"trace_id":"{T}","span_id":"b7ad6b7169203331","parent_span_id":"a000000000000001","op":"http.server","status":"ok"}}}},"spans":[{{"span_id":"c000000000000001","trace_id":"{T}","parent_span_id":"b7ad6b7169203331","op":"db.sql.query","description":"SELECT 1","start_timestamp":10.1,"timestamp":10.2}}]}}"#
    );
    let body = format!(
        "{{\"event_id\":\"x\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        payload.len()
    );
    let spans = parse(body.as_bytes()).expect("valid envelope").spans;
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].service, "api");
    assert_eq!(spans[0].item, ItemKind::Transaction);
    assert_eq!(spans[0].parent_span_id.as_deref(), Some("a000000000000001"));
    assert_eq!((spans[0].start, spans[0].end), (Some(10.0), Some(10.5)));
    assert_eq!(spans[1].op.as_deref(), Some("db.sql.query"));
    assert_eq!(spans[1].name, "SELECT 1");
    assert_eq!(spans[1].segment_id.as_deref(), Some("b7ad6b7169203331"));
}

#[test]
fn reads_span_v2_items_without_length() {
    let body = format!(
        "{{\"sdk\":{{\"name\":\"sentry.javascript.browser\"}}}}\n{{\"type\":\"span\",\"item_count\":1,\"content_type\":\"application/vnd.sentry.items.span.v2+json\"}}\n{{\"version\":2,\"items\":[{{\"trace_id\":\"{T}\",\"span_id\":\"d000000000000001\",\"parent_span_id\":\"b7ad6b7169203331\",\"name\":\"/askama\",\"start_timestamp\":1,\"end_timestamp\":2,\"status\":\"ok\",\"is_segment\":true,\"attributes\":{{\"sentry.op\":{{\"type\":\"string\",\"value\":\"pageload\"}}}}}}]}}"
    );
    let spans = parse(body.as_bytes()).expect("valid envelope").spans;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].service, "browser");
    assert_eq!(spans[0].op.as_deref(), Some("pageload"));
    assert_eq!(spans[0].segment_id.as_deref(), Some("d000000000000001"));
}

#[test]
fn hostile_input_never_panics() {
    for body in [
        &b""[..],
        b"\n\n\n",
        b"not json",
        b"{}\n{\"type\":\"transaction\",\"length\":99999999999999999999}\n{}",
        b"{}\n{\"type\":\"transaction\",\"length\":18446744073709551615}\n{}",
        b"{}\n{\"type\":\"span\"}\n{\"items\":[1,null,{\"trace_id\":\"ZZ\"}]}",
        b"{}\n{\"type\":\"transaction\"}\n{\"contexts\":{\"trace\":{\"trace_id\":1}}}",
        b"{}\n\xff\xfe\n",
    ] {
        // An error, or no span: nothing with a bad id or from a bad item is stored.
        match parse(body) {
            Err(_) => {}
            Ok(envelope) => assert!(envelope.spans.is_empty(), "{body:?} gave {envelope:?}"),
        }
    }
    assert_eq!(parse(b"[]"), Err(EnvelopeError::BadHeader));
}
#[test]
fn keeps_the_header_trace_as_it_came() {
    let header = format!(
        r#"{{"event_id":"x","trace":{{"trace_id":"{T}","sample_rate":"0.5","sampled":"true","zz_unknown":{{"a":[1]}},"org_id":"42"}}}}"#
    );
    let envelope = parse(format!("{header}\n").as_bytes()).expect("valid envelope");
    assert_eq!(
        envelope.dsc.as_deref(),
        Some(&header[header.find("{\"trace_id").expect("trace")..header.len() - 1])
    );
    assert_eq!(parse(b"{}\n").map(|e| e.dsc), Ok(None));
}

#[test]
fn limits_are_refused_as_too_large() {
    let deep = format!(
        "{{}}\n{{\"type\":\"span\"}}\n{}{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    assert_eq!(parse(deep.as_bytes()), Err(EnvelopeError::TooDeep));
    // Brackets inside strings do not nest.
    let quoted = format!("{{\"sdk\":{{\"name\":\"{}\\\"\"}}}}\n", "[".repeat(40));
    assert!(parse(quoted.as_bytes()).is_ok());
    let items = "{\"type\":\"x\"}\n{}\n".repeat(MAX_ITEMS + 1);
    assert_eq!(
        parse(format!("{{}}\n{items}").as_bytes()),
        Err(EnvelopeError::TooManyItems)
    );
    let zeros = vec!["0"; MAX_SPANS_PER_ENVELOPE + 1].join(",");
    let bomb = format!("{{}}\n{{\"type\":\"span\"}}\n{{\"items\":[{zeros}]}}\n");
    assert_eq!(parse(bomb.as_bytes()), Err(EnvelopeError::TooManySpans));
    assert!(EnvelopeError::TooManySpans.is_too_large() && !EnvelopeError::BadHeader.is_too_large());
}

#[test]
fn odd_values_read_as_absent() {
    let body = format!(
        "{{}}\n{{\"type\":\"span\"}}\n{{\"items\":[7,{{\"trace_id\":\"{T}\",\"span_id\":\"d000000000000001\",\"name\":[1],\"status\":5,\"start_timestamp\":1e300,\"end_timestamp\":\"2\",\"attributes\":{{}}}}]}}"
    );
    let spans = parse(body.as_bytes()).expect("valid envelope").spans;
    assert_eq!(spans.len(), 1);
    assert_eq!(
        (spans[0].name.as_str(), spans[0].status.as_deref()),
        ("", None)
    );
    assert_eq!((spans[0].start, spans[0].end), (None, Some(2.0)));
    assert_eq!(
        (spans[0].service.as_str(), spans[0].attributes.as_deref()),
        ("unknown", None)
    );
}
