//! The sentry-meta demo (see the demo issue); for now it prints the tags of a new trace.

use sentry_meta::{SpanId, TraceId, TraceMeta};

fn main() {
    let meta = TraceMeta::new(TraceId::random(), SpanId::random(), None, None);
    println!("{meta}");
}
