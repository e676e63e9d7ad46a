//! PROTOTYPE (to be deleted): the `</head>` injector on `lol_html`, to compare with the
//! hand-written scanner. Same rules as far as `lol_html`'s API lets them be written: the
//! byte-order mark and the 64 KiB limit are ours, the rest is selectors and handlers.

#![allow(clippy::drop_non_drop, clippy::collapsible_if)]

use std::cell::Cell;
use std::rc::Rc;

use lol_html::html_content::ContentType;
use lol_html::{HtmlRewriter, Settings, element, end_tag};

const HEAD_LIMIT: usize = 64 * 1024;
const TRACE_NAMES: [&str; 3] = ["sentry-trace", "baggage", "traceparent"];

#[derive(Default)]
struct State {
    /// Decided: a copy, `<body>` and the like, or the tags written.
    done: Cell<bool>,
}

/// Injects `tags` into the page given as `chunks`, streaming: each chunk is written to the
/// rewriter as it comes; once decided (or `early_stop` off: never), the rewriter is ended and
/// the rest is copied through. `early_stop: false` is the plain `lol_html` use: the whole page
/// goes through the rewriter.
pub fn inject(chunks: &[&[u8]], tags: &str, early_stop: bool) -> Vec<u8> {
    inject_measured(chunks, tags, early_stop).0
}

/// [`inject`], and the most bytes held back (read, not yet written) after any chunk.
pub fn inject_measured(chunks: &[&[u8]], tags: &str, early_stop: bool) -> (Vec<u8>, usize) {
    let tags_len = tags.len();
    let mut total_in = 0;
    let mut max_held = 0;
    let out = Rc::new(std::cell::RefCell::new(Vec::new()));
    let state = Rc::new(State::default());
    let own_traceparent = tags.contains("name=\"traceparent\"");
    let tags: Rc<str> = Rc::from(tags);
    let mut rewriter = {
        let sink = Rc::clone(&out);
        let on_meta = Rc::clone(&state);
        let on_head = Rc::clone(&state);
        let on_body = Rc::clone(&state);
        Some(HtmlRewriter::new(
            Settings::new()
                .append_element_content_handler(element!("meta[name]", move |el| {
                    // The first `name` attribute, raw: `lol_html` decodes no character
                    // references.
                    if let Some(name) = el.get_attribute("name")
                        && TRACE_NAMES.contains(&name.as_str())
                        && (name != "traceparent" || own_traceparent)
                    {
                        on_meta.done.set(true);
                    }
                    Ok(())
                }))
                .append_element_content_handler(element!("head", move |el| {
                    let state = Rc::clone(&on_head);
                    let tags = Rc::clone(&tags);
                    // `can_have_content` is always true for `head`.
                    let _ = el.on_end_tag(end_tag!(move |end| {
                        if !state.done.get() {
                            end.before(&tags, ContentType::Html);
                            state.done.set(true);
                        }
                        Ok(())
                    }));
                    Ok(())
                }))
                .append_element_content_handler(element!(
                    "body, frameset, plaintext, svg, math",
                    move |_| {
                        on_body.done.set(true);
                        Ok(())
                    }
                )),
            move |bytes: &[u8]| sink.borrow_mut().extend_from_slice(bytes),
        ))
    };
    let mut start: Vec<u8> = Vec::new();
    let mut started = false;
    let mut fed = 0;
    let mut feed = |chunk: &[u8], rewriter: &mut Option<HtmlRewriter<'_, _>>| {
        let Some(r) = rewriter.as_mut() else {
            out.borrow_mut().extend_from_slice(chunk);
            return;
        };
        let room = HEAD_LIMIT - fed;
        let (now, rest) = chunk.split_at(room.min(chunk.len()));
        r.write(now).expect("rewrite");
        fed += now.len();
        if (early_stop && state.done.get()) || fed == HEAD_LIMIT {
            if let Some(r) = rewriter.take() {
                r.end().expect("end");
            }
        }
        if !rest.is_empty() {
            match rewriter.as_mut() {
                Some(r) => r.write(rest).expect("rewrite"),
                None => out.borrow_mut().extend_from_slice(rest),
            }
        }
    };
    for chunk in chunks {
        total_in += chunk.len();
        let measure = |max_held: &mut usize, out: &std::cell::RefCell<Vec<u8>>, state: &State| {
            let written = out.borrow().len();
            let injected = if written >= tags_len && state.done.get() {
                tags_len
            } else {
                0
            };
            *max_held = (*max_held).max(total_in.saturating_sub(written - injected));
        };
        let _ = &measure;
        if !started {
            // Byte-order mark sniffing: ours (`lol_html` takes the encoding as given).
            start.extend_from_slice(chunk);
            if start.len() < 4 {
                continue;
            }
            started = true;
            if is_utf16_or_32(&start) {
                rewriter = None;
            }
            let first = std::mem::take(&mut start);
            feed(&first, &mut rewriter);
            measure(&mut max_held, &out, &state);
            continue;
        }
        feed(chunk, &mut rewriter);
        measure(&mut max_held, &out, &state);
    }
    if !started {
        if is_utf16_or_32(&start) {
            rewriter = None;
        }
        let first = std::mem::take(&mut start);
        feed(&first, &mut rewriter);
    }
    if let Some(r) = rewriter.take() {
        r.end().expect("end");
    }
    drop(feed);
    let out = Rc::try_unwrap(out)
        .map(|o| o.into_inner())
        .unwrap_or_default();
    (out, max_held)
}

fn is_utf16_or_32(start: &[u8]) -> bool {
    start.starts_with(b"\xFE\xFF")
        || start.starts_with(b"\xFF\xFE")
        || start.starts_with(b"\0\0\xFE\xFF")
}

/// The stripper on `lol_html`: every `<meta>` whose first `name` (raw) is a trace name goes,
/// up to `<body>` (and the first 64 KiB); the rest streams through.
#[allow(dead_code)]
pub fn strip(chunks: &[&[u8]]) -> Vec<u8> {
    let out = Rc::new(std::cell::RefCell::new(Vec::new()));
    let state = Rc::new(State::default());
    let sink = Rc::clone(&out);
    let on_meta = Rc::clone(&state);
    let on_body = Rc::clone(&state);
    let mut rewriter = Some(HtmlRewriter::new(
        Settings::new()
            .append_element_content_handler(element!("meta[name]", move |el| {
                if !on_meta.done.get()
                    && el
                        .get_attribute("name")
                        .is_some_and(|name| TRACE_NAMES.contains(&name.as_str()))
                {
                    el.remove();
                }
                Ok(())
            }))
            .append_element_content_handler(element!(
                "body, frameset, plaintext, svg, math",
                move |_| {
                    on_body.done.set(true);
                    Ok(())
                }
            )),
        move |bytes: &[u8]| sink.borrow_mut().extend_from_slice(bytes),
    ));
    let page = chunks.concat();
    if is_utf16_or_32(&page) {
        return page;
    }
    let mut fed = 0;
    for chunk in chunks {
        let Some(r) = rewriter.as_mut() else {
            out.borrow_mut().extend_from_slice(chunk);
            continue;
        };
        let room = HEAD_LIMIT - fed;
        let (now, rest) = chunk.split_at(room.min(chunk.len()));
        r.write(now).expect("rewrite");
        fed += now.len();
        if state.done.get() || fed == HEAD_LIMIT {
            if let Some(r) = rewriter.take() {
                r.end().expect("end");
            }
        }
        match rewriter.as_mut() {
            Some(r) => r.write(rest).expect("rewrite"),
            None => out.borrow_mut().extend_from_slice(rest),
        }
    }
    if let Some(r) = rewriter.take() {
        r.end().expect("end");
    }
    Rc::try_unwrap(out)
        .map(|o| o.into_inner())
        .unwrap_or_default()
}
