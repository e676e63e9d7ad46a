//! The head scanner: a framework-free state machine that reads an HTML document's bytes in
//! chunks of any size and says, for each chunk, which bytes to write out. One scanner, two
//! actions: [`Action::Inject`] writes the tags before `</head>`, [`Action::Strip`] drops the
//! bytes that `TraceMeta` renders.
//!
//! It follows the tokenizer of the [HTML standard](https://html.spec.whatwg.org/multipage/parsing.html#tokenization)
//! as far as finding the end of the head needs: comments, start and end tags with quoted and
//! unquoted attributes, and the raw-text elements (`script`, `style`, `title`, `textarea`,
//! `noscript`, …) whose content cannot hold a tag. So a `</head>` or a
//! `<meta name="sentry-trace">` inside a comment or a script is text, as a browser reads it.
//! Not followed (never met in a real `<head>`): character references in attribute values, the
//! double-escaped `<!--<script>` state of scripts, and `<template>` contents.
//!
//! The scanner keeps as little as it can: bytes are held back only while they may be the start
//! of `</head` (at most 6 bytes) or of the tags to strip (at most one rendered block), and it
//! stops looking after [`HEAD_LIMIT`] bytes.

use std::mem;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

/// How far into a document the scanner looks for the end of the head, in bytes. A page whose
/// head ends later is passed through unchanged.
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;

/// What the scanner does with the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Insert the tags right before the first `</head>`, unless a
    /// `<meta name="sentry-trace">` comes first.
    Inject,
    /// Remove every block of tags exactly as `TraceMeta` renders them, up to `</head>`.
    Strip,
}

/// One piece of output, in order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// These bytes of the chunk just fed.
    Input(Range<usize>),
    /// Bytes held back from earlier chunks.
    Held(Bytes),
    /// The tags to inject.
    Tags,
}

/// The scanner.
#[derive(Debug)]
pub(crate) struct HeadScanner {
    action: Action,
    tokenizer: Tokenizer,
    /// Bytes looked at so far.
    scanned: usize,
    limit: usize,
    done: bool,
    /// What the held bytes (and the pending bytes of the current chunk) may turn out to be.
    hold: Hold,
    held: BytesMut,
}

#[derive(Debug)]
enum Hold {
    Nothing,
    /// Since a `<` that may open `</head`.
    HeadEnd,
    /// Since the start of what may be a rendered block of tags.
    Strip(StripMatch),
}

impl HeadScanner {
    pub(crate) fn new(action: Action) -> Self {
        Self::with_limit(action, HEAD_LIMIT)
    }

    pub(crate) fn with_limit(action: Action, limit: usize) -> Self {
        Self {
            action,
            tokenizer: Tokenizer::default(),
            scanned: 0,
            limit,
            done: false,
            hold: Hold::Nothing,
            held: BytesMut::new(),
        }
    }

    pub(crate) fn action(&self) -> Action {
        self.action
    }

    /// Whether the scanner has decided: everything from now on passes through unchanged.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// How many bytes are held back.
    pub(crate) fn held_len(&self) -> usize {
        self.held.len()
    }

    /// How many more bytes the scanner may look at before it gives up: up to the limit, and,
    /// when stripping, past it to the end of a block that began before it.
    pub(crate) fn remaining_limit(&self) -> usize {
        if self.done {
            return 0;
        }
        let overrun = match self.action {
            Action::Strip => BLOCK_MAX,
            Action::Inject => 0,
        };
        self.limit.saturating_sub(self.scanned) + overrun
    }

    /// Reads `chunk` and hands `out` what to write, in order. Bytes not handed out are held
    /// back (they come out in a later call) or, when stripping, dropped.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut impl FnMut(Piece)) {
        // chunk[from..i] is neither written nor dropped yet.
        let mut from = 0;
        let mut i = 0;
        while !self.done && i < chunk.len() {
            if self.at_limit() {
                self.stop(out);
                break;
            }
            let room = self.limit.saturating_sub(self.scanned).min(chunk.len() - i);
            let skip = self.uneventful(&chunk[i..i + room]);
            if skip > 0 {
                self.scanned += skip;
                i += skip;
                continue;
            }
            let byte = chunk[i];
            self.scanned += 1;
            let event = self.tokenizer.step(byte);
            let stop = match self.action {
                Action::Inject => self.inject_step(event, i, &mut from, out),
                Action::Strip => self.strip_step(byte, event, i, &mut from, out),
            };
            if stop {
                self.stop(out);
                break;
            }
            i += 1;
        }
        if !self.done && self.at_limit() {
            self.stop(out);
        }
        if self.done || matches!(self.hold, Hold::Nothing) {
            emit_input(from..chunk.len(), out);
        } else {
            self.held.extend_from_slice(&chunk[from..]);
        }
    }

    /// Whether the scanner has looked as far as it may. A block of tags that started before the
    /// limit is still matched to its end (a block is bounded: its values are), so that one
    /// straddling the limit is stripped whole or not at all.
    fn at_limit(&self) -> bool {
        self.scanned >= self.limit && !matches!(self.hold, Hold::Strip(_))
    }

    /// How many of the first `bytes` change nothing (text, comments, scripts and styles up to
    /// the next byte that may end them), to skip them at the speed of `memchr`.
    fn uneventful(&self, bytes: &[u8]) -> usize {
        if !matches!(self.hold, Hold::Nothing) {
            return 0;
        }
        let next = match self.tokenizer.state {
            State::Data | State::RawText => memchr::memchr(b'<', bytes),
            State::Comment => memchr::memchr(b'-', bytes),
            State::BogusComment => memchr::memchr(b'>', bytes),
            _ => return 0,
        };
        next.unwrap_or(bytes.len())
    }

    /// The document ended: hands out what is held back.
    pub(crate) fn finish(&mut self, out: &mut impl FnMut(Piece)) {
        self.stop(out);
    }

    fn inject_step(
        &mut self,
        event: Event,
        i: usize,
        from: &mut usize,
        out: &mut impl FnMut(Piece),
    ) -> bool {
        match event {
            Event::HeadEnd => {
                // The held bytes and chunk[from..] are `</head`: the tags go before them.
                out(Piece::Tags);
                return true;
            }
            // The page carries its tags already, or the head is over without a `</head>`.
            Event::SentryTraceMeta | Event::BodyStart | Event::Plaintext => return true,
            Event::None => {}
        }
        if self.tokenizer.state == State::TagOpen {
            // This byte is a `<` that opens a tag: hold from here.
            self.release(out);
            emit_input(*from..i, out);
            *from = i;
            self.hold = Hold::HeadEnd;
        } else if matches!(self.hold, Hold::HeadEnd) && !self.tokenizer.may_be_head_end() {
            self.release(out);
        }
        false
    }

    fn strip_step(
        &mut self,
        byte: u8,
        event: Event,
        i: usize,
        from: &mut usize,
        out: &mut impl FnMut(Piece),
    ) -> bool {
        match event {
            Event::HeadEnd | Event::BodyStart | Event::Plaintext => return true,
            Event::SentryTraceMeta | Event::None => {}
        }
        if let Hold::Strip(matcher) = &mut self.hold {
            match matcher.step(byte) {
                StripStep::Continue => return false,
                StripStep::Commit(next) => {
                    // Everything held and chunk[from..=i] is one whole tag: drop it.
                    self.held.clear();
                    *from = i + 1;
                    self.hold = next.map_or(Hold::Nothing, Hold::Strip);
                    return false;
                }
                StripStep::ReleaseNewline => {
                    // The held `\n` was not the start of a continuation tag but is followed by
                    // a new block: write it and keep matching the rest.
                    if self.held.is_empty() {
                        emit_input(*from..*from + 1, out);
                        *from += 1;
                    } else {
                        self.held.advance(1);
                        out(Piece::Held(Bytes::from_static(b"\n")));
                    }
                    return false;
                }
                StripStep::Fail => self.release(out),
            }
        }
        // Only a `<` that opens a tag can start a block (not one inside a comment or script).
        if self.tokenizer.state == State::TagOpen {
            emit_input(*from..i, out);
            *from = i;
            let mut matcher = StripMatch::new();
            // The `<` itself.
            let _ = matcher.step(byte);
            self.hold = Hold::Strip(matcher);
        }
        false
    }

    /// Writes out what is held back: it was not what it might have been.
    fn release(&mut self, out: &mut impl FnMut(Piece)) {
        self.hold = Hold::Nothing;
        if !self.held.is_empty() {
            out(Piece::Held(mem::take(&mut self.held).freeze()));
        }
    }

    fn stop(&mut self, out: &mut impl FnMut(Piece)) {
        self.release(out);
        self.done = true;
    }
}

fn emit_input(range: Range<usize>, out: &mut impl FnMut(Piece)) {
    if !range.is_empty() {
        out(Piece::Input(range));
    }
}

// ----- The tokenizer -------------------------------------------------------------------------

/// What a byte completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    None,
    /// `</head` followed by whitespace, `/` or `>`: the end tag of the head.
    HeadEnd,
    /// A `<meta>` whose `name` attribute is `sentry-trace` (ASCII case-insensitive).
    SentryTraceMeta,
    /// `<body`: the head is over.
    BodyStart,
    /// `<plaintext`: everything after it is text.
    Plaintext,
}

/// The tokenizer states of the HTML standard that matter here (§13.2.5), by the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Data,
    TagOpen,
    EndTagOpen,
    TagName,
    BeforeAttributeName,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValueQuoted(u8),
    AttributeValueUnquoted,
    AfterAttributeValueQuoted,
    SelfClosingStartTag,
    MarkupDeclarationOpen,
    MarkupDeclarationDash,
    BogusComment,
    CommentStart,
    CommentStartDash,
    Comment,
    CommentEndDash,
    CommentEnd,
    CommentEndBang,
    /// Inside `script`, `style`, `title`, … until the matching end tag.
    RawText,
    RawTextLessThan,
    RawTextEndTagName,
}

/// A lowercased name, kept only as far as it is useful to compare: longer names never match.
#[derive(Debug, Clone, Copy)]
struct ShortName<const N: usize> {
    bytes: [u8; N],
    /// `N + 1` once the name is longer than `N`.
    len: usize,
}

impl<const N: usize> Default for ShortName<N> {
    fn default() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> ShortName<N> {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn push(&mut self, byte: u8) {
        if self.len < N {
            self.bytes[self.len] = byte.to_ascii_lowercase();
            self.len += 1;
        } else {
            self.len = N + 1;
        }
    }

    fn get(&self) -> &[u8] {
        if self.len > N {
            // Matches no name of interest (all are at most N bytes).
            b"\0"
        } else {
            &self.bytes[..self.len]
        }
    }
}

/// The elements whose content is text up to their own end tag (§13.2.5.2-4: RCDATA, RAWTEXT and
/// script data).
const RAW_TEXT_ELEMENTS: [&[u8]; 9] = [
    b"script",
    b"style",
    b"title",
    b"textarea",
    b"noscript",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
];

#[derive(Debug, Default)]
struct Tokenizer {
    state: State,
    end_tag: bool,
    tag: ShortName<9>,
    /// The start tag is `<meta`.
    meta: bool,
    /// The start tag opens a raw-text element: its name.
    raw_text: Option<&'static [u8]>,
    /// How much of the raw-text element's end tag name has matched.
    raw_matched: usize,
    attribute: ShortName<4>,
    value: ShortName<12>,
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl Tokenizer {
    /// Whether the tag being read may still turn out to be `</head`.
    fn may_be_head_end(&self) -> bool {
        match self.state {
            State::TagOpen | State::EndTagOpen => true,
            State::TagName => self.end_tag && b"head".starts_with(self.tag.get()),
            _ => false,
        }
    }

    /// Reads one byte.
    fn step(&mut self, byte: u8) -> Event {
        // A state that hands the byte on to the next state ("reconsume") loops.
        loop {
            match self.state {
                State::Data => {
                    if byte == b'<' {
                        self.state = State::TagOpen;
                    }
                    return Event::None;
                }
                State::TagOpen => {
                    match byte {
                        b'!' => self.state = State::MarkupDeclarationOpen,
                        b'/' => self.state = State::EndTagOpen,
                        b'?' => self.state = State::BogusComment,
                        _ if byte.is_ascii_alphabetic() => self.start_tag_name(false, byte),
                        // A `<` that is text.
                        _ => {
                            self.state = State::Data;
                            continue;
                        }
                    }
                    return Event::None;
                }
                State::EndTagOpen => {
                    match byte {
                        _ if byte.is_ascii_alphabetic() => self.start_tag_name(true, byte),
                        b'>' => self.state = State::Data,
                        _ => self.state = State::BogusComment,
                    }
                    return Event::None;
                }
                State::TagName => {
                    return match byte {
                        _ if is_whitespace(byte) => {
                            self.state = State::BeforeAttributeName;
                            self.tag_name_done()
                        }
                        b'/' => {
                            self.state = State::SelfClosingStartTag;
                            self.tag_name_done()
                        }
                        b'>' => {
                            let event = self.tag_name_done();
                            self.emit_tag();
                            event
                        }
                        _ => {
                            self.tag.push(byte);
                            Event::None
                        }
                    };
                }
                State::BeforeAttributeName => match byte {
                    _ if is_whitespace(byte) => return Event::None,
                    b'/' | b'>' => self.state = State::AfterAttributeName,
                    b'=' => {
                        self.attribute.clear();
                        self.attribute.push(byte);
                        self.state = State::AttributeName;
                        return Event::None;
                    }
                    _ => {
                        self.attribute.clear();
                        self.state = State::AttributeName;
                    }
                },
                State::AttributeName => match byte {
                    b'/' | b'>' => self.state = State::AfterAttributeName,
                    _ if is_whitespace(byte) => self.state = State::AfterAttributeName,
                    b'=' => {
                        self.state = State::BeforeAttributeValue;
                        return Event::None;
                    }
                    _ => {
                        self.attribute.push(byte);
                        return Event::None;
                    }
                },
                State::AfterAttributeName => {
                    match byte {
                        _ if is_whitespace(byte) => {}
                        b'/' => self.state = State::SelfClosingStartTag,
                        b'=' => self.state = State::BeforeAttributeValue,
                        b'>' => self.emit_tag(),
                        _ => {
                            self.attribute.clear();
                            self.state = State::AttributeName;
                            continue;
                        }
                    }
                    return Event::None;
                }
                State::BeforeAttributeValue => {
                    match byte {
                        _ if is_whitespace(byte) => {}
                        b'"' | b'\'' => {
                            self.value.clear();
                            self.state = State::AttributeValueQuoted(byte);
                        }
                        b'>' => self.emit_tag(),
                        _ => {
                            self.value.clear();
                            self.state = State::AttributeValueUnquoted;
                            continue;
                        }
                    }
                    return Event::None;
                }
                State::AttributeValueQuoted(quote) => {
                    if byte == quote {
                        self.state = State::AfterAttributeValueQuoted;
                        return self.attribute_done();
                    }
                    self.value.push(byte);
                    return Event::None;
                }
                State::AttributeValueUnquoted => {
                    return match byte {
                        _ if is_whitespace(byte) => {
                            self.state = State::BeforeAttributeName;
                            self.attribute_done()
                        }
                        b'>' => {
                            let event = self.attribute_done();
                            self.emit_tag();
                            event
                        }
                        _ => {
                            self.value.push(byte);
                            Event::None
                        }
                    };
                }
                State::AfterAttributeValueQuoted => match byte {
                    _ if is_whitespace(byte) => {
                        self.state = State::BeforeAttributeName;
                        return Event::None;
                    }
                    b'/' => {
                        self.state = State::SelfClosingStartTag;
                        return Event::None;
                    }
                    b'>' => {
                        self.emit_tag();
                        return Event::None;
                    }
                    _ => self.state = State::BeforeAttributeName,
                },
                State::SelfClosingStartTag => {
                    if byte == b'>' {
                        self.emit_tag();
                        return Event::None;
                    }
                    self.state = State::BeforeAttributeName;
                }
                State::MarkupDeclarationOpen => {
                    if byte == b'-' {
                        self.state = State::MarkupDeclarationDash;
                        return Event::None;
                    }
                    // `<!DOCTYPE …>`, `<![CDATA[…]>`: up to the next `>`.
                    self.state = State::BogusComment;
                }
                State::MarkupDeclarationDash => {
                    if byte == b'-' {
                        self.state = State::CommentStart;
                        return Event::None;
                    }
                    self.state = State::BogusComment;
                }
                State::BogusComment => {
                    if byte == b'>' {
                        self.state = State::Data;
                    }
                    return Event::None;
                }
                State::CommentStart => match byte {
                    b'-' => {
                        self.state = State::CommentStartDash;
                        return Event::None;
                    }
                    // `<!-->`: an empty comment.
                    b'>' => {
                        self.state = State::Data;
                        return Event::None;
                    }
                    _ => self.state = State::Comment,
                },
                State::CommentStartDash => match byte {
                    b'-' => {
                        self.state = State::CommentEnd;
                        return Event::None;
                    }
                    b'>' => {
                        self.state = State::Data;
                        return Event::None;
                    }
                    _ => self.state = State::Comment,
                },
                State::Comment => {
                    if byte == b'-' {
                        self.state = State::CommentEndDash;
                    }
                    return Event::None;
                }
                State::CommentEndDash => {
                    if byte == b'-' {
                        self.state = State::CommentEnd;
                        return Event::None;
                    }
                    self.state = State::Comment;
                }
                State::CommentEnd => match byte {
                    b'>' => {
                        self.state = State::Data;
                        return Event::None;
                    }
                    b'!' => {
                        self.state = State::CommentEndBang;
                        return Event::None;
                    }
                    b'-' => return Event::None,
                    _ => self.state = State::Comment,
                },
                State::CommentEndBang => match byte {
                    b'-' => {
                        self.state = State::CommentEndDash;
                        return Event::None;
                    }
                    // `--!>` ends a comment too.
                    b'>' => {
                        self.state = State::Data;
                        return Event::None;
                    }
                    _ => self.state = State::Comment,
                },
                State::RawText => {
                    if byte == b'<' {
                        self.state = State::RawTextLessThan;
                    }
                    return Event::None;
                }
                State::RawTextLessThan => {
                    if byte == b'/' {
                        self.raw_matched = 0;
                        self.state = State::RawTextEndTagName;
                        return Event::None;
                    }
                    self.state = State::RawText;
                }
                State::RawTextEndTagName => {
                    let name = self.raw_text.unwrap_or_default();
                    if self.raw_matched < name.len()
                        && byte.to_ascii_lowercase() == name[self.raw_matched]
                    {
                        self.raw_matched += 1;
                        return Event::None;
                    }
                    if self.raw_matched == name.len()
                        && (is_whitespace(byte) || byte == b'/' || byte == b'>')
                    {
                        // The element's end tag: back to markup.
                        self.end_tag = true;
                        self.meta = false;
                        self.raw_text = None;
                        self.state = match byte {
                            b'/' => State::SelfClosingStartTag,
                            b'>' => State::Data,
                            _ => State::BeforeAttributeName,
                        };
                        return Event::None;
                    }
                    self.state = State::RawText;
                }
            }
        }
    }

    fn start_tag_name(&mut self, end_tag: bool, first: u8) {
        self.end_tag = end_tag;
        self.tag.clear();
        self.tag.push(first);
        self.state = State::TagName;
    }

    fn tag_name_done(&mut self) -> Event {
        let name = self.tag.get();
        self.meta = false;
        self.raw_text = None;
        if self.end_tag {
            return if name == b"head" {
                Event::HeadEnd
            } else {
                Event::None
            };
        }
        match name {
            b"body" => Event::BodyStart,
            b"plaintext" => Event::Plaintext,
            b"meta" => {
                self.meta = true;
                Event::None
            }
            _ => {
                self.raw_text = RAW_TEXT_ELEMENTS.iter().copied().find(|raw| *raw == name);
                Event::None
            }
        }
    }

    fn attribute_done(&mut self) -> Event {
        if self.meta && self.attribute.get() == b"name" && self.value.get() == b"sentry-trace" {
            Event::SentryTraceMeta
        } else {
            Event::None
        }
    }

    /// The `>` of a tag.
    fn emit_tag(&mut self) {
        self.state = match self.raw_text {
            Some(_) => State::RawText,
            None => State::Data,
        };
    }
}

// ----- Matching the rendered tags ------------------------------------------------------------

// The bytes `TraceMeta::write_html` writes (core/src/meta.rs); a unit test checks them against
// the renderer.
// The renderer's own bytes: one definition, in the core.
const SENTRY_TRACE_OPEN: &[u8] = sentry_meta_core::markup::SENTRY_TRACE_OPEN.as_bytes();
const BAGGAGE_OPEN: &[u8] = sentry_meta_core::markup::BAGGAGE_OPEN.as_bytes();
const TRACEPARENT_OPEN: &[u8] = sentry_meta_core::markup::TRACEPARENT_OPEN.as_bytes();
const CLOSE: &[u8] = sentry_meta_core::markup::CLOSE.as_bytes();

/// The longest escaped baggage: 8192 bytes of header, each `'` escaped as `&#x27;`.
const BAGGAGE_ATTR_MAX: usize = 8192 * 6;
/// The longest block of tags `TraceMeta` renders.
const BLOCK_MAX: usize = SENTRY_TRACE_OPEN.len()
    + 51
    + BAGGAGE_OPEN.len()
    + BAGGAGE_ATTR_MAX
    + TRACEPARENT_OPEN.len()
    + 55
    + 3 * CLOSE.len();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    SentryTrace,
    Baggage,
    Traceparent,
}

impl Tag {
    fn open(self) -> &'static [u8] {
        match self {
            Tag::SentryTrace => SENTRY_TRACE_OPEN,
            Tag::Baggage => BAGGAGE_OPEN,
            Tag::Traceparent => TRACEPARENT_OPEN,
        }
    }

    /// Whether `byte` may be the `pos`-th byte of the tag's `content`.
    fn content_byte(self, pos: usize, byte: u8) -> bool {
        let hex = matches!(byte, b'0'..=b'9' | b'a'..=b'f');
        match self {
            // TRACEID-SPANID[-1|-0]
            Tag::SentryTrace => match pos {
                0..32 | 33..49 => hex,
                32 | 49 => byte == b'-',
                50 => matches!(byte, b'0' | b'1'),
                _ => false,
            },
            // Percent-encoded, then HTML-escaped: visible ASCII without quotes or brackets.
            Tag::Baggage => {
                pos < BAGGAGE_ATTR_MAX
                    && byte.is_ascii_graphic()
                    && !matches!(byte, b'"' | b'<' | b'>')
            }
            // 00-TRACEID-SPANID-0[01]
            Tag::Traceparent => match pos {
                0 | 1 | 53 => byte == b'0',
                3..35 | 36..52 => hex,
                2 | 35 | 52 => byte == b'-',
                54 => matches!(byte, b'0' | b'1'),
                _ => false,
            },
        }
    }

    fn content_may_end(self, len: usize) -> bool {
        match self {
            Tag::SentryTrace => len == 49 || len == 51,
            Tag::Baggage => len > 0,
            Tag::Traceparent => len == 55,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    Content,
    Close,
}

/// Matches one rendered block: `sentry-trace`, then optionally `\nbaggage`, then optionally
/// `\ntraceparent`, byte by byte.
#[derive(Debug, Clone)]
struct StripMatch {
    tag: Tag,
    phase: Phase,
    /// Bytes of the phase matched so far.
    pos: usize,
    /// While matching `\n<meta name="`: a traceparent tag may come instead of baggage.
    traceparent_may_follow: bool,
}

enum StripStep {
    Continue,
    /// A whole tag matched; what may follow it.
    Commit(Option<StripMatch>),
    /// The first byte held (a `\n`) is not part of a tag; the rest may be.
    ReleaseNewline,
    Fail,
}

impl StripMatch {
    fn new() -> Self {
        Self::at(Tag::SentryTrace, false)
    }

    fn at(tag: Tag, traceparent_may_follow: bool) -> Self {
        Self {
            tag,
            phase: Phase::Open,
            pos: 0,
            traceparent_may_follow,
        }
    }

    fn step(&mut self, byte: u8) -> StripStep {
        match self.phase {
            Phase::Open => {
                let open = self.tag.open();
                if byte == open[self.pos] {
                    self.pos += 1;
                } else if self.traceparent_may_follow
                    && TRACEPARENT_OPEN[..self.pos] == open[..self.pos]
                    && byte == TRACEPARENT_OPEN[self.pos]
                {
                    self.tag = Tag::Traceparent;
                    self.traceparent_may_follow = false;
                    self.pos += 1;
                } else if self.tag != Tag::SentryTrace
                    && self.pos >= 1
                    && open[1..self.pos] == SENTRY_TRACE_OPEN[..self.pos - 1]
                    && byte == SENTRY_TRACE_OPEN[self.pos - 1]
                {
                    // `\n<meta name="s…`: not a continuation, but a new block right after a
                    // newline. The newline stays; the block may go.
                    let matched = self.pos;
                    *self = Self::new();
                    self.pos = matched;
                    return StripStep::ReleaseNewline;
                } else {
                    return StripStep::Fail;
                }
                if self.pos == self.tag.open().len() {
                    self.phase = Phase::Content;
                    self.pos = 0;
                }
                StripStep::Continue
            }
            Phase::Content => {
                if self.tag.content_byte(self.pos, byte) {
                    self.pos += 1;
                    StripStep::Continue
                } else if byte == b'"' && self.tag.content_may_end(self.pos) {
                    self.phase = Phase::Close;
                    self.pos = 1;
                    StripStep::Continue
                } else {
                    StripStep::Fail
                }
            }
            Phase::Close => {
                if byte != CLOSE[self.pos] {
                    return StripStep::Fail;
                }
                self.pos += 1;
                if self.pos < CLOSE.len() {
                    return StripStep::Continue;
                }
                StripStep::Commit(match self.tag {
                    Tag::SentryTrace => Some(Self::at(Tag::Baggage, true)),
                    Tag::Baggage => Some(Self::at(Tag::Traceparent, false)),
                    Tag::Traceparent => None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, TraceMeta};

    const TAGS: &[u8] = b"<TAGS>";

    /// Feeds `chunks` and returns the output, with `TAGS` where the tags go.
    fn run(action: Action, limit: usize, chunks: &[&[u8]]) -> Vec<u8> {
        let mut scanner = HeadScanner::with_limit(action, limit);
        let mut output = Vec::new();
        for chunk in chunks {
            scanner.feed(chunk, &mut |piece| match piece {
                Piece::Input(range) => output.extend_from_slice(&chunk[range]),
                Piece::Held(bytes) => output.extend_from_slice(&bytes),
                Piece::Tags => output.extend_from_slice(TAGS),
            });
            assert!(scanner.held_len() <= BAGGAGE_ATTR_MAX + 256);
        }
        scanner.finish(&mut |piece| match piece {
            Piece::Held(bytes) => output.extend_from_slice(&bytes),
            other => panic!("finish handed out {other:?}"),
        });
        assert!(scanner.is_done());
        output
    }

    /// The output for `input` fed whole, after checking that every split into two chunks and
    /// 1-byte chunks give the same.
    fn scan(action: Action, input: &[u8]) -> Vec<u8> {
        let whole = run(action, HEAD_LIMIT, &[input]);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                run(action, HEAD_LIMIT, &[a, b]),
                whole,
                "split at {at} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(action, HEAD_LIMIT, &bytes), whole, "1-byte chunks");
        whole
    }

    fn inject(input: &str) -> String {
        String::from_utf8(scan(Action::Inject, input.as_bytes())).expect("utf-8")
    }

    fn strip(input: &str) -> String {
        String::from_utf8(scan(Action::Strip, input.as_bytes())).expect("utf-8")
    }

    fn meta(baggage: &str, traceparent: bool) -> TraceMeta {
        let dsc = DynamicSamplingContext::from_baggage([baggage.as_bytes()]);
        TraceMeta::new(
            "771a43a4192642f0b136d5159a501700"
                .parse()
                .expect("trace id"),
            "b7ad6b7169203331".parse().expect("span id"),
            Some(true),
            Some(SerializedDsc::new(dsc)),
        )
        .with_traceparent(traceparent)
    }

    #[test]
    fn injects_before_the_head_end_tag() {
        assert_eq!(
            inject("<html><head><title>t</title></head><body></body>"),
            "<html><head><title>t</title><TAGS></head><body></body>"
        );
        for end in [
            "</HEAD>",
            "</Head >",
            "</head\n>",
            "</head/>",
            "</head foo=\">\">",
        ] {
            assert_eq!(
                inject(&format!("<head>{end}x</head>")),
                format!("<head><TAGS>{end}x</head>")
            );
        }
    }

    #[test]
    fn only_a_real_head_end_tag() {
        for page in [
            "<head></header></heads></hea></head-x>",
            "<head><!-- </head> -->",
            "<head><!--x--!</head>",
            "<head><!-- -></head>",
            "<head><script>let s = '</head>';</script>",
            "<head><script>if (a</head) {}</script>",
            "<head><style>/* </head> */</style>",
            "<head><title></head></title>",
            "<head><link href='</head>'>",
            "<head><link href=\"</head>\">",
            "<head><!DOCTYPE </head>",
            "<head></head",
            "<head><body></head>",
            "<head><plaintext></head>",
            "< /head>",
        ] {
            assert_eq!(inject(page), page, "{page:?}");
        }
        // After those, the real one.
        assert_eq!(
            inject("<head><!-- </head> --><script>'</head>'</script></head>"),
            "<head><!-- </head> --><script>'</head>'</script><TAGS></head>"
        );
        // Comments end as the tokenizer ends them.
        for comment in ["<!-- a --!>", "<!-->", "<!--->", "<!---->", "<!-- --->"] {
            assert_eq!(
                inject(&format!("<head>{comment}</head>")),
                format!("<head>{comment}<TAGS></head>")
            );
        }
        assert_eq!(
            inject("<head><script>'</script ></head>"),
            "<head><script>'</script ><TAGS></head>"
        );
        assert_eq!(inject("<<</head>"), "<<<TAGS></head>");
    }

    #[test]
    fn injects_once() {
        assert_eq!(
            inject("<head></head></head><head></head>"),
            "<head><TAGS></head></head><head></head>"
        );
    }

    #[test]
    fn skips_pages_that_carry_the_tags() {
        for page in [
            "<head><meta name=\"sentry-trace\" content=\"x\"></head>",
            "<head><META NAME='Sentry-Trace' content=x></head>",
            "<head><meta content=\"x\" name=sentry-trace></head>",
            "<head><meta\nname = \"sentry-trace\"/></head>",
        ] {
            assert_eq!(inject(page), page, "{page:?}");
        }
        // Only a meta element with that name.
        for page in [
            "<head><link name=\"sentry-trace\"></head>",
            "<head><meta content=\"sentry-trace\"></head>",
            "<head><!-- <meta name=\"sentry-trace\"> --></head>",
            "<head><script>'<meta name=\"sentry-trace\">'</script></head>",
        ] {
            assert_eq!(inject(page), page.replace("</head>", "<TAGS></head>"));
        }
        // Our own output, injected a second time.
        let once = inject("<head></head>").replace("<TAGS>", &meta("sentry-a=b", true).to_html());
        assert_eq!(inject(&once), once);
    }

    #[test]
    fn strips_a_block_that_straddles_the_limit_whole() {
        let tags = meta("sentry-release=1.0", true).to_html();
        let stripped = "<html><head><title>t</title></head><body></body></html>";
        let page = stripped.replace("</head>", &format!("{tags}</head>"));
        let start = page.find("<meta").expect("tags");
        for limit in 0..page.len() {
            let out = run(Action::Strip, limit, &[page.as_bytes()]);
            // A block that began before the limit is matched to its end and dropped whole.
            let expected = if limit > start {
                stripped
            } else {
                page.as_str()
            };
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                expected,
                "limit {limit}"
            );
        }
    }

    #[test]
    fn gives_up_after_the_limit() {
        let page = b"<head><title>long</title></head>";
        for limit in 0..page.len() {
            assert_eq!(run(Action::Inject, limit, &[page]), page, "limit {limit}");
        }
        assert_eq!(
            run(Action::Inject, page.len(), &[page]),
            b"<head><title>long</title><TAGS></head>"
        );
    }

    #[test]
    fn bytes_pass_through() {
        let page: Vec<u8> = (0..=255u8).chain(*b"</head>\xff\xfe").collect();
        let out = scan(Action::Inject, &page);
        assert!(out.ends_with(b"<TAGS></head>\xff\xfe"));
        assert_eq!(out.len(), page.len() + TAGS.len());
        assert_eq!(scan(Action::Strip, &page), page);
    }

    #[test]
    fn constants_are_what_the_renderer_writes() {
        let html = meta("sentry-a=%27%22", true).to_html();
        let baggage = html.find("\n<meta name=\"baggage\"").expect("baggage");
        let traceparent = html
            .find("\n<meta name=\"traceparent\"")
            .expect("traceparent");
        assert!(html.starts_with(std::str::from_utf8(SENTRY_TRACE_OPEN).expect("ascii")));
        assert!(html[baggage..].starts_with(std::str::from_utf8(BAGGAGE_OPEN).expect("ascii")));
        assert!(
            html[traceparent..].starts_with(std::str::from_utf8(TRACEPARENT_OPEN).expect("ascii"))
        );
        assert!(html.ends_with(std::str::from_utf8(CLOSE).expect("ascii")));
    }

    #[test]
    fn strips_rendered_tags() {
        for tags in [
            meta("", false).to_html(),
            meta("sentry-a=b", false).to_html(),
            meta("sentry-a=b", true).to_html(),
            meta("", true).to_html(),
            meta("sentry-q=%27%3C%3E%22%26", false).to_html(),
            TraceMeta::new(
                "771a43a4192642f0b136d5159a501700"
                    .parse()
                    .expect("trace id"),
                "b7ad6b7169203331".parse().expect("span id"),
                None,
                None,
            )
            .to_html(),
        ] {
            let page = format!("<head>\n  {tags}\n  <title>t</title></head><body>{tags}</body>");
            assert_eq!(
                strip(&page),
                format!("<head>\n  \n  <title>t</title></head><body>{tags}</body>"),
                "{tags}"
            );
            // Twice, back to back or on consecutive lines.
            assert_eq!(
                strip(&format!("<head>{tags}{tags}</head>")),
                "<head></head>"
            );
            assert_eq!(
                strip(&format!("<head>{tags}\n{tags}\n</head>")),
                "<head>\n\n</head>"
            );
        }
    }

    #[test]
    fn strips_nothing_else() {
        let tags = meta("sentry-a=b", true).to_html();
        for page in [
            "<head><meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1\"></head>".to_owned(),
            "<head><meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331-2\"/></head>".to_owned(),
            "<head><meta name=\"sentry-trace\" content=\"771A43a4192642f0b136d5159a501700-b7ad6b7169203331\"/></head>".to_owned(),
            "<head><meta name=\"sentry-trace\" content=\"771a43a4192642f0b136d5159a501700-b7ad6b716920333\"/></head>".to_owned(),
            "<head><meta name='sentry-trace' content=\"771a43a4192642f0b136d5159a501700-b7ad6b7169203331\"/></head>".to_owned(),
            "<head><meta name=\"baggage\" content=\"sentry-a=b\"/></head>".to_owned(),
            format!("<head><!-- {tags} --></head>"),
            format!("<head><script>'{tags}'</script></head>"),
            format!("<head></head>{tags}"),
            "<head><<meta name=\"sentry-trace\" x></head>".to_owned(),
        ] {
            assert_eq!(strip(&page), page, "{page:?}");
        }
        // A continuation that is not ours stays, the block before it goes.
        let block = meta("", false).to_html();
        assert_eq!(
            strip(&format!(
                "<head>{block}\n<meta name=\"baggage\" content=\"x\"></head>"
            )),
            "<head>\n<meta name=\"baggage\" content=\"x\"></head>"
        );
        assert_eq!(
            strip(&format!(
                "<head>{block}\n<meta name=\"description\"></head>"
            )),
            "<head>\n<meta name=\"description\"></head>"
        );
        assert_eq!(strip(&format!("<head>{block}\n</head>")), "<head>\n</head>");
    }
}
