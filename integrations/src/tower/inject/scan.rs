//! The head scanner: a framework-free state machine that reads an HTML document's bytes in
//! chunks of any size and says, for each chunk, which bytes to write out. One scanner, two
//! actions: [`Action::Inject`] writes the tags before `</head>`, [`Action::Strip`] drops the
//! trace tags.
//!
//! It reads the page as a browser with scripting enabled does, as far as finding the end of the
//! head and the trace tags needs: the tokenizer of the
//! [HTML standard](https://html.spec.whatwg.org/multipage/parsing.html#tokenization) (comments,
//! start and end tags, quoted and unquoted attributes, character references in the values that
//! matter), and the decisions of the tree builder that change what the tokenizer reads:
//!
//! - the elements whose content is text up to their own end tag: RCDATA (`title`, `textarea`),
//!   RAWTEXT (`style`, `xmp`, `iframe`, `noembed`, `noframes`, `noscript`) and script data,
//!   with its escaped and double-escaped states (`<script><!--<script></script></head>-->` is
//!   all script); after `<plaintext>` everything is text;
//! - `<template>` contents, which are not part of the document: a `</head>` or a trace tag there
//!   does not count.
//!
//! A *trace tag* is a `<meta>` start tag that the browser SDK finds with
//! `document.querySelector('meta[name="sentry-trace"]')` (or `baggage`, or the W3C
//! `traceparent`): its first `name` attribute (names are ASCII case-insensitive; a browser drops
//! later duplicates) is exactly one of [`TRACE_NAMES`], character references decoded and letter
//! case kept.
//!
//! The scanner stops, and the rest of the page passes through, at `<plaintext` (the rest is
//! text) and `<svg` or `<math`: in foreign content the tokenizer follows the tree (no raw text,
//! CDATA sections), which the scanner does not build. The injector also stops at `<body` or
//! `<frameset` (the head is over); the stripper reads on through the body, where a template may
//! have written the tags too. It never starts on a page that begins with a UTF-16 or UTF-32
//! byte-order mark: its bytes are not ASCII text.
//!
//! The scanner keeps as little as it can: bytes are held back only while they may be the start
//! of `</head` (at most 6 bytes), or, when stripping, of a trace tag (up to its `name`, at most
//! [`TAG_HOLD_MAX`] bytes). The injector stops looking after [`HEAD_LIMIT`] bytes; the stripper
//! reads the whole page, however long its head: a page it cannot strip must not keep its tags.

use std::mem;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::is_switching;

/// How far into a document the injector looks for the end of the head, in bytes. A page whose
/// head ends later is passed through unchanged.
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;

/// The most the stripper holds back of one tag while it cannot tell yet whether it is a trace
/// tag: the tag up to the end of its first `name` attribute. A `<meta content="…"
/// name="baggage">` with the longest escaped baggage the renderer can write fits, with room for
/// the tag's other bytes; a longer one is passed through (the renderer writes `name` first), and
/// the stripper reads on after it.
pub(crate) const TAG_HOLD_MAX: usize = sentry_meta_core::__private::BAGGAGE_CONTENT_MAX_LEN + 256;

/// The `name`s of trace tags: what the Sentry browser SDK reads (`sentry-trace`, `baggage`)
/// and the W3C `traceparent` that the renderer may write.
const TRACE_NAMES: [(&[u8], TraceName); 3] = [
    (b"sentry-trace", TraceName::SentryTrace),
    (b"baggage", TraceName::Baggage),
    (b"traceparent", TraceName::Traceparent),
];

/// The name of a trace tag, in the order in which the renderer writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TraceName {
    SentryTrace,
    Baggage,
    Traceparent,
}

/// What the scanner does with the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Insert the tags right before the first `</head>`, unless a trace tag comes first (see
    /// [`HeadScanner::injecting`] for which count).
    Inject,
    /// Remove every trace tag of the page, up to `<svg`, `<math` or `<plaintext`.
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

#[derive(Debug)]
pub(crate) struct HeadScanner {
    /// Whether the scanner injects the tags or strips trace tags.
    pub(super) action: Action,
    tokenizer: Tokenizer,
    /// Bytes looked at so far.
    scanned: usize,
    limit: usize,
    /// Whether the scanner has decided: everything from now on passes through unchanged. (Read
    /// by the body; this module alone writes it, as it does `action` and `held`.)
    pub(super) done: bool,
    /// The page's first bytes (up to 4), read for a byte-order mark.
    first: [u8; 4],
    /// What the held bytes (and the pending bytes of the current chunk) may turn out to be.
    hold: Hold,
    /// The bytes held back.
    pub(super) held: BytesMut,
    /// Stripping: `scanned` when the last `<` that opens a tag was read.
    opened_at: usize,
    /// Stripping: the name of the last tag dropped.
    dropped: Option<TraceName>,
    /// Injecting: a page's own `traceparent` tag counts as a copy of the tags (they hold one).
    own_traceparent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Nothing,
    /// Injecting: since a `<` that may open `</head`.
    HeadEnd,
    /// Stripping: since a `<` that may open a trace tag (and since the `\n` before it, after
    /// [`Hold::Newline`]).
    Tag {
        newline: bool,
    },
    /// Stripping: inside a trace tag, dropped up to its `>`.
    Dropping,
    /// Stripping: right after a dropped tag.
    Dropped,
    /// Stripping: a `\n` right after a dropped tag; it goes too if the next tag of a rendered
    /// block follows (the line break between two tags that `TraceMeta` renders).
    Newline,
}

impl HeadScanner {
    pub(crate) fn new(action: Action) -> Self {
        Self {
            action,
            tokenizer: Tokenizer::default(),
            scanned: 0,
            limit: match action {
                Action::Inject => HEAD_LIMIT,
                Action::Strip => usize::MAX,
            },
            done: false,
            first: [0; 4],
            hold: Hold::Nothing,
            held: BytesMut::new(),
            opened_at: usize::MAX,
            dropped: None,
            own_traceparent: true,
        }
    }

    /// A scanner that injects tags, with a `traceparent` tag among them or not. A page that has
    /// a `sentry-trace` or `baggage` tag already is left alone (the browser SDK reads them as a
    /// pair, and would read a mix of the page's and ours); one that has a `traceparent` tag
    /// only if the tags hold one too.
    pub(crate) fn injecting(with_traceparent: bool) -> Self {
        Self {
            own_traceparent: with_traceparent,
            ..Self::new(Action::Inject)
        }
    }

    /// Reads `chunk` and hands `out` what to write, in order. Bytes not handed out are held
    /// back (they come out in a later call) or, when stripping, dropped.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut impl FnMut(Piece)) {
        if !self.done && self.scanned < self.first.len() {
            // The page's first bytes: until done, every byte fed has been scanned.
            let take = chunk.len().min(self.first.len() - self.scanned);
            self.first[self.scanned..][..take].copy_from_slice(&chunk[..take]);
            if !is_ascii_text(&self.first[..self.scanned + take]) {
                // UTF-16 or UTF-32: ASCII bytes in it are parts of other characters.
                self.finish(out);
            }
        }
        // chunk[from..i] is neither written nor dropped yet.
        let mut from = 0;
        let mut i = 0;
        while !self.done && i < chunk.len() && !self.at_limit() {
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
                self.finish(out);
                break;
            }
            i += 1;
        }
        if !self.done && self.at_limit() {
            self.finish(out);
        }
        // Unless bytes are being held back (rather than written, or dropped).
        if self.done || !matches!(self.hold, Hold::HeadEnd | Hold::Tag { .. } | Hold::Newline) {
            emit_input(from..chunk.len(), out);
        } else {
            self.held.extend_from_slice(&chunk[from..]);
        }
    }

    /// Whether the scanner has looked as far as it may.
    fn at_limit(&self) -> bool {
        self.scanned >= self.limit
    }

    /// How many of the first `bytes` change nothing (text, comments, scripts and styles, and
    /// the attribute names and quoted values of tags other than `<meta>`, up to the next byte
    /// that may end them), to skip them at the speed of `memchr`.
    fn uneventful(&self, bytes: &[u8]) -> usize {
        if self.hold != Hold::Nothing {
            return 0;
        }
        let reads_attributes = self.tokenizer.reads_attributes();
        let next = match self.tokenizer.state {
            State::Data | State::RawText => memchr::memchr(b'<', bytes),
            State::Comment => memchr::memchr(b'-', bytes),
            State::BogusComment => memchr::memchr(b'>', bytes),
            State::ScriptEscaped { dashes: 0, .. } => memchr::memchr2(b'-', b'<', bytes),
            State::AttributeValueQuoted(quote) if !reads_attributes => memchr::memchr(quote, bytes),
            State::AttributeName if !reads_attributes => bytes
                .iter()
                .position(|&byte| is_whitespace(byte) || matches!(byte, b'/' | b'=' | b'>')),
            _ => return 0,
        };
        next.unwrap_or(bytes.len())
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
            // The page carries trace tags already.
            Event::TraceMeta(name) if name != TraceName::Traceparent || self.own_traceparent => {
                return true;
            }
            // Or the head is over without a `</head>`, or the page is not ASCII text after all.
            Event::Stop | Event::BodyStart | Event::NotAscii => return true,
            Event::TraceMeta(_) | Event::None => {}
        }
        if self.tokenizer.state == State::TagOpen {
            // This byte is a `<` that opens a tag: hold from here.
            self.release(out);
            emit_input(*from..i, out);
            *from = i;
            self.hold = Hold::HeadEnd;
        } else if self.hold == Hold::HeadEnd && !self.tokenizer.may_be_head_end() {
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
            Event::Stop => return true,
            Event::TraceMeta(name) if matches!(self.hold, Hold::Tag { .. }) => {
                self.drop_held_tag(name, *from, out);
            }
            // Past `</head>`, a `<meta>` still goes into the head ("after head" insertion mode,
            // §13.2.6.4.6), and in the body the browser SDK finds it as well: read on. A trace
            // tag not held is one after a `<` that is text, or one too long to hold (below).
            _ => {}
        }
        let opens_tag = self.tokenizer.state == State::TagOpen;
        // A `<` right after a `<` that is text opens a tag in the body (text ends the head), and
        // dropping that tag would join the text `<` to what follows it: it stays.
        let after_text_lt = opens_tag && self.opened_at.wrapping_add(1) == self.scanned;
        if opens_tag {
            self.opened_at = self.scanned;
        }
        match self.hold {
            Hold::Dropping => {
                *from = i + 1;
                if !self.tokenizer.in_tag() {
                    self.hold = Hold::Dropped;
                }
                return false;
            }
            Hold::Dropped if byte == b'\n' => {
                self.hold = Hold::Newline;
                return false;
            }
            Hold::Newline if opens_tag => {
                self.hold = Hold::Tag { newline: true };
                return false;
            }
            Hold::Tag { .. } if !opens_tag => {
                // Not a trace tag, or one held past `TAG_HOLD_MAX` before its `name`, which the
                // renderer writes first: it passes (and its `name`, not held, is ignored).
                let too_long = self.held.len() + (i + 1 - *from) > TAG_HOLD_MAX;
                if !self.tokenizer.may_be_trace_meta() || too_long {
                    self.release(out);
                }
                return false;
            }
            _ => self.release(out),
        }
        if opens_tag && !after_text_lt {
            // Only a `<` that opens a tag can start one (not one inside a comment or script).
            emit_input(*from..i, out);
            *from = i;
            self.hold = Hold::Tag { newline: false };
        }
        false
    }

    /// The tag held since `from` (the held bytes and what of this chunk follows) is trace tag
    /// `name`: drop it, and the rest of the tag as it comes.
    fn drop_held_tag(&mut self, name: TraceName, from: usize, out: &mut impl FnMut(Piece)) {
        if self.hold == (Hold::Tag { newline: true })
            && self.dropped.is_none_or(|dropped| dropped >= name)
        {
            // Not the next tag of the block just dropped: the line break stays. It is the first
            // byte held, or the first pending one.
            if self.held.is_empty() {
                emit_input(from..from + 1, out);
            } else {
                out(Piece::Held(Bytes::from_static(b"\n")));
            }
        }
        self.held.clear();
        self.dropped = Some(name);
        self.hold = Hold::Dropping;
    }

    /// Writes out what is held back: it was not what it might have been.
    fn release(&mut self, out: &mut impl FnMut(Piece)) {
        self.hold = Hold::Nothing;
        if !self.held.is_empty() {
            out(Piece::Held(mem::take(&mut self.held).freeze()));
        }
    }

    /// The document ended, or the scanner decided: hands out what is held back, and everything
    /// from now on passes through unchanged.
    pub(crate) fn finish(&mut self, out: &mut impl FnMut(Piece)) {
        self.release(out);
        self.done = true;
    }
}

fn emit_input(range: Range<usize>, out: &mut impl FnMut(Piece)) {
    if !range.is_empty() {
        out(Piece::Input(range));
    }
}

// ----- The encoding --------------------------------------------------------------------------

/// Whether a page that begins with `first` is ASCII text, as far as a byte-order mark tells
/// ("BOM sniffing", §13.2.3.1, which decides the encoding before anything else does). Read
/// again as the first bytes come in: while they may still become a mark, they are not `<`, and
/// the tokenizer reads them as text, which holds nothing back.
fn is_ascii_text(first: &[u8]) -> bool {
    // UTF-16BE, UTF-16LE (and UTF-32LE, which begins like it), UTF-32BE. Browsers know no
    // UTF-32, but they do not read such a page as ASCII text either. No mark, or UTF-8's
    // (EF BB BF), is ASCII text.
    const NOT_ASCII: [&[u8]; 3] = [b"\xFE\xFF", b"\xFF\xFE", b"\0\0\xFE\xFF"];
    !NOT_ASCII.iter().any(|bom| first.starts_with(bom))
}

// ----- The tokenizer -------------------------------------------------------------------------

/// What a byte completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    None,
    /// `</head` followed by whitespace, `/` or `>`, outside template contents: the end tag of
    /// the head.
    HeadEnd,
    /// The first `name` of a `<meta>` outside template contents is one of [`TRACE_NAMES`].
    TraceMeta(TraceName),
    /// The scanner reads no further: `<plaintext` (the rest is text), `<svg` or `<math`
    /// (foreign content).
    Stop,
    /// `<body` or `<frameset` outside template contents: the head is over.
    BodyStart,
    /// The `>` of a `<meta>` outside template contents that declares an encoding that is not
    /// ASCII-compatible (see [`DeclaredCharset`]).
    NotAscii,
}

impl Event {
    /// `self`, or `other` when `self` is nothing.
    fn or(self, other: Event) -> Event {
        match self {
            Event::None => other,
            event => event,
        }
    }
}

/// What a state did with a byte.
enum Flow {
    /// Consumed it, completing this.
    Consumed(Event),
    /// Left it to the state it switched to ("reconsume" in the standard).
    Reconsume,
}

const NEXT: Flow = Flow::Consumed(Event::None);

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
    /// After `</`, matching the element's end tag name; `escaped`: in escaped script data.
    RawTextEndTagName {
        escaped: bool,
    },
    /// Script data after `<!`, or `<!-` (`dash`).
    ScriptEscapeStart {
        dash: bool,
    },
    /// Script data after `<!--`, escaped or (after a nested `<script`) double escaped, after 0,
    /// 1 or 2 `-`.
    ScriptEscaped {
        double: bool,
        dashes: u8,
    },
    ScriptEscapedLessThan {
        double: bool,
    },
    /// A tag name in escaped script data, compared with `script`: after `<` it may start the
    /// double escape, after `</` (`end`) end it.
    ScriptDoubleEscape {
        end: bool,
    },
}

/// A name (lowercased by `push`) or an attribute value, kept only as far as it is useful to
/// compare: longer ones, and spoiled ones (an attribute value with a character reference that
/// is none of the names' characters), never match.
#[derive(Debug, Clone, Copy)]
struct ShortName<const N: usize> {
    bytes: [u8; N],
    /// `N + 1` once it is longer than `N`, or spoiled.
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

    /// Appends `byte`, lowercased.
    fn push(&mut self, byte: u8) {
        self.push_exact(byte.to_ascii_lowercase());
    }

    fn push_exact(&mut self, byte: u8) {
        if self.len < N {
            self.bytes[self.len] = byte;
            self.len += 1;
        } else {
            self.spoil();
        }
    }

    /// Makes it a name that matches none.
    fn spoil(&mut self) {
        self.len = N + 1;
    }

    fn get(&self) -> &[u8] {
        if self.len > N {
            // Matches no name of interest (none is a NUL).
            b"\0"
        } else {
            &self.bytes[..self.len]
        }
    }
}

/// The elements whose content is text up to their own end tag (§13.2.5.2-4: RCDATA, RAWTEXT and
/// script data), for a parser with scripting enabled (`noscript`).
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

const SCRIPT: &[u8] = b"script";

#[derive(Debug, Default)]
struct Tokenizer {
    state: State,
    end_tag: bool,
    tag: ShortName<9>,
    /// The start tag is a `<meta>` outside template contents that may still be a trace tag.
    meta: bool,
    /// What the start tag says of the page's encoding, when it is a `<meta>` outside template
    /// contents.
    charset: Option<DeclaredCharset>,
    /// The tag's first `name` attribute has been read: a browser drops later ones.
    name_seen: bool,
    /// The attribute being read is the first `name` of a `<meta>`.
    reading_name: bool,
    /// The start tag opens a raw-text element: its name.
    raw_text: Option<&'static [u8]>,
    /// How much of the raw-text element's end tag name (or of `script`, in escaped script
    /// data) has matched.
    raw_matched: usize,
    /// How many `<template>` elements are open: their contents are not part of the document.
    templates: usize,
    attribute: ShortName<10>,
    value: AttributeValue,
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

    /// Whether a tag is being read (from its name to its `>`).
    fn in_tag(&self) -> bool {
        matches!(
            self.state,
            State::TagName
                | State::BeforeAttributeName
                | State::AttributeName
                | State::AfterAttributeName
                | State::BeforeAttributeValue
                | State::AttributeValueQuoted(_)
                | State::AttributeValueUnquoted
                | State::AfterAttributeValueQuoted
                | State::SelfClosingStartTag
        )
    }

    /// Whether the tag being read may still turn out to be a trace tag.
    fn may_be_trace_meta(&self) -> bool {
        match self.state {
            State::TagOpen => true,
            State::TagName => {
                !self.end_tag && self.templates == 0 && b"meta".starts_with(self.tag.get())
            }
            _ => self.meta && self.in_tag(),
        }
    }

    fn step(&mut self, byte: u8) -> Event {
        // A state that hands the byte on to the next state ("reconsume") loops.
        loop {
            let flow = match self.state {
                State::Data | State::TagOpen | State::EndTagOpen | State::TagName => {
                    self.tag_open(byte)
                }
                State::BeforeAttributeName | State::AttributeName | State::AfterAttributeName => {
                    self.attribute_name(byte)
                }
                State::BeforeAttributeValue
                | State::AttributeValueQuoted(_)
                | State::AttributeValueUnquoted
                | State::AfterAttributeValueQuoted
                | State::SelfClosingStartTag => self.attribute_value(byte),
                State::MarkupDeclarationOpen
                | State::MarkupDeclarationDash
                | State::BogusComment
                | State::CommentStart
                | State::CommentStartDash => self.comment_start(byte),
                State::Comment
                | State::CommentEndDash
                | State::CommentEnd
                | State::CommentEndBang => self.comment(byte),
                State::RawText | State::RawTextLessThan => self.raw_text(byte),
                State::RawTextEndTagName { escaped } => self.raw_text_end_tag(byte, escaped),
                State::ScriptEscapeStart { .. }
                | State::ScriptEscaped { .. }
                | State::ScriptEscapedLessThan { .. } => self.script_escaped(byte),
                State::ScriptDoubleEscape { end } => self.script_double_escape(byte, end),
            };
            if let Flow::Consumed(event) = flow {
                return event;
            }
        }
    }

    fn switch(&mut self, state: State) -> Flow {
        self.state = state;
        NEXT
    }

    fn reconsume(&mut self, state: State) -> Flow {
        self.state = state;
        Flow::Reconsume
    }

    /// Text, `<`, `</` and tag names (§13.2.5.1, .6-8).
    fn tag_open(&mut self, byte: u8) -> Flow {
        match self.state {
            State::Data => match byte {
                b'<' => self.switch(State::TagOpen),
                _ => NEXT,
            },
            State::TagOpen => match byte {
                b'!' => self.switch(State::MarkupDeclarationOpen),
                b'/' => self.switch(State::EndTagOpen),
                b'?' => self.switch(State::BogusComment),
                _ if byte.is_ascii_alphabetic() => self.start_tag_name(false, byte),
                // A `<` that is text.
                _ => self.reconsume(State::Data),
            },
            State::EndTagOpen => match byte {
                _ if byte.is_ascii_alphabetic() => self.start_tag_name(true, byte),
                b'>' => self.switch(State::Data),
                _ => self.switch(State::BogusComment),
            },
            _ => match byte {
                _ if is_whitespace(byte) => {
                    self.state = State::BeforeAttributeName;
                    Flow::Consumed(self.tag_name_done())
                }
                b'/' => {
                    self.state = State::SelfClosingStartTag;
                    Flow::Consumed(self.tag_name_done())
                }
                b'>' => {
                    let event = self.tag_name_done();
                    Flow::Consumed(event.or(self.emit_tag()))
                }
                _ => {
                    self.tag.push(byte);
                    NEXT
                }
            },
        }
    }

    /// Before, in and after an attribute name (§13.2.5.32-34).
    fn attribute_name(&mut self, byte: u8) -> Flow {
        match self.state {
            State::BeforeAttributeName => match byte {
                _ if is_whitespace(byte) => NEXT,
                b'/' | b'>' => self.reconsume(State::AfterAttributeName),
                _ => {
                    self.attribute.clear();
                    if byte == b'=' {
                        // The first character of a name, here (a parse error).
                        self.attribute.push(byte);
                        return self.switch(State::AttributeName);
                    }
                    self.reconsume(State::AttributeName)
                }
            },
            State::AttributeName => match byte {
                _ if is_whitespace(byte) || byte == b'/' || byte == b'>' => {
                    self.attribute_name_done();
                    self.reconsume(State::AfterAttributeName)
                }
                b'=' => {
                    self.attribute_name_done();
                    self.switch(State::BeforeAttributeValue)
                }
                _ => {
                    self.attribute.push(byte);
                    NEXT
                }
            },
            _ => match byte {
                _ if is_whitespace(byte) => NEXT,
                b'/' => self.switch(State::SelfClosingStartTag),
                b'=' => self.switch(State::BeforeAttributeValue),
                b'>' => Flow::Consumed(self.emit_tag()),
                _ => {
                    self.attribute.clear();
                    self.reconsume(State::AttributeName)
                }
            },
        }
    }

    /// Attribute values and what follows them (§13.2.5.35-40).
    fn attribute_value(&mut self, byte: u8) -> Flow {
        match self.state {
            State::BeforeAttributeValue => match byte {
                _ if is_whitespace(byte) => NEXT,
                b'"' | b'\'' => self.switch(State::AttributeValueQuoted(byte)),
                // A `>` ends the (empty) unquoted value and the tag.
                _ => self.reconsume(State::AttributeValueUnquoted),
            },
            State::AttributeValueQuoted(quote) => {
                if byte == quote {
                    self.state = State::AfterAttributeValueQuoted;
                    return Flow::Consumed(self.attribute_done());
                }
                self.push_value(byte);
                NEXT
            }
            State::AttributeValueUnquoted => match byte {
                _ if is_whitespace(byte) => {
                    self.state = State::BeforeAttributeName;
                    Flow::Consumed(self.attribute_done())
                }
                b'>' => {
                    let event = self.attribute_done();
                    Flow::Consumed(event.or(self.emit_tag()))
                }
                _ => {
                    self.push_value(byte);
                    NEXT
                }
            },
            State::AfterAttributeValueQuoted => match byte {
                _ if is_whitespace(byte) => self.switch(State::BeforeAttributeName),
                b'/' => self.switch(State::SelfClosingStartTag),
                b'>' => Flow::Consumed(self.emit_tag()),
                _ => self.reconsume(State::BeforeAttributeName),
            },
            _ => match byte {
                b'>' => Flow::Consumed(self.emit_tag()),
                _ => self.reconsume(State::BeforeAttributeName),
            },
        }
    }

    /// `<!`, `<!-`, `<!--` and the first bytes of a comment; bogus comments (§13.2.5.41-45).
    fn comment_start(&mut self, byte: u8) -> Flow {
        match self.state {
            State::MarkupDeclarationOpen => match byte {
                b'-' => self.switch(State::MarkupDeclarationDash),
                // `<!DOCTYPE …>`, `<![CDATA[…]>`: up to the next `>`.
                _ => self.reconsume(State::BogusComment),
            },
            State::MarkupDeclarationDash => match byte {
                b'-' => self.switch(State::CommentStart),
                _ => self.reconsume(State::BogusComment),
            },
            State::BogusComment => match byte {
                b'>' => self.switch(State::Data),
                _ => NEXT,
            },
            State::CommentStart => match byte {
                b'-' => self.switch(State::CommentStartDash),
                // `<!-->`: an empty comment.
                b'>' => self.switch(State::Data),
                _ => self.reconsume(State::Comment),
            },
            _ => match byte {
                b'-' => self.switch(State::CommentEnd),
                b'>' => self.switch(State::Data),
                _ => self.reconsume(State::Comment),
            },
        }
    }

    /// A comment's text and its end (§13.2.5.45-52).
    fn comment(&mut self, byte: u8) -> Flow {
        match self.state {
            State::Comment => match byte {
                b'-' => self.switch(State::CommentEndDash),
                _ => NEXT,
            },
            State::CommentEndDash => match byte {
                b'-' => self.switch(State::CommentEnd),
                _ => self.reconsume(State::Comment),
            },
            State::CommentEnd => match byte {
                b'>' => self.switch(State::Data),
                b'!' => self.switch(State::CommentEndBang),
                b'-' => NEXT,
                _ => self.reconsume(State::Comment),
            },
            _ => match byte {
                b'-' => self.switch(State::CommentEndDash),
                // `--!>` ends a comment too.
                b'>' => self.switch(State::Data),
                _ => self.reconsume(State::Comment),
            },
        }
    }

    /// RCDATA, RAWTEXT and script data, and their `<` (§13.2.5.2-4, .9, .12, .15); in script
    /// data, `<!` may begin the escape (§13.2.5.15).
    fn raw_text(&mut self, byte: u8) -> Flow {
        if self.state == State::RawText {
            if byte == b'<' {
                self.state = State::RawTextLessThan;
            }
            return NEXT;
        }
        match byte {
            b'/' => {
                self.raw_matched = 0;
                self.switch(State::RawTextEndTagName { escaped: false })
            }
            b'!' if self.raw_text == Some(SCRIPT) => {
                self.switch(State::ScriptEscapeStart { dash: false })
            }
            _ => self.reconsume(State::RawText),
        }
    }

    /// After `</` in raw text or (escaped) script data: only the element's own end tag (an
    /// "appropriate end tag", §13.2.5.11) ends it; anything else is text.
    fn raw_text_end_tag(&mut self, byte: u8, escaped: bool) -> Flow {
        let name = self.raw_text.unwrap_or_default();
        if self.raw_matched < name.len() && byte.to_ascii_lowercase() == name[self.raw_matched] {
            self.raw_matched += 1;
            return NEXT;
        }
        if self.raw_matched == name.len() && (is_whitespace(byte) || byte == b'/' || byte == b'>') {
            // The element's end tag: back to markup.
            self.end_tag = true;
            self.meta = false;
            self.raw_text = None;
            return self.switch(match byte {
                b'/' => State::SelfClosingStartTag,
                b'>' => State::Data,
                _ => State::BeforeAttributeName,
            });
        }
        self.reconsume(if escaped {
            State::ScriptEscaped {
                double: false,
                dashes: 0,
            }
        } else {
            State::RawText
        })
    }

    /// Script data after `<!--` (§13.2.5.18-27, .29-31): `-->` ends the escape; escaped, a
    /// `</script` ends the script, and a `<script` begins the double escape, in which
    /// `</script` only ends the double escape.
    fn script_escaped(&mut self, byte: u8) -> Flow {
        match self.state {
            State::ScriptEscapeStart { dash } => match byte {
                b'-' if dash => self.switch(State::ScriptEscaped {
                    double: false,
                    dashes: 2,
                }),
                b'-' => self.switch(State::ScriptEscapeStart { dash: true }),
                _ => self.reconsume(State::RawText),
            },
            State::ScriptEscaped { double, dashes } => match byte {
                b'-' => self.switch(State::ScriptEscaped {
                    double,
                    dashes: (dashes + 1).min(2),
                }),
                b'<' => self.switch(State::ScriptEscapedLessThan { double }),
                b'>' if dashes == 2 => self.switch(State::RawText),
                _ => self.switch(State::ScriptEscaped { double, dashes: 0 }),
            },
            _ => {
                let double = self.state == State::ScriptEscapedLessThan { double: true };
                self.raw_matched = 0;
                match byte {
                    b'/' if double => self.switch(State::ScriptDoubleEscape { end: true }),
                    b'/' => self.switch(State::RawTextEndTagName { escaped: true }),
                    _ if !double && byte.is_ascii_alphabetic() => {
                        self.reconsume(State::ScriptDoubleEscape { end: false })
                    }
                    _ => self.reconsume(State::ScriptEscaped { double, dashes: 0 }),
                }
            }
        }
    }

    /// A tag name in escaped script data (§13.2.5.28, .32): `script` starts (after `<`) or ends
    /// (after `</`) the double escape.
    fn script_double_escape(&mut self, byte: u8, end: bool) -> Flow {
        if is_whitespace(byte) || byte == b'/' || byte == b'>' {
            let double = (self.raw_matched == SCRIPT.len()) != end;
            return self.switch(State::ScriptEscaped { double, dashes: 0 });
        }
        if byte.is_ascii_alphabetic() {
            self.raw_matched = match SCRIPT.get(self.raw_matched) {
                Some(&expected) if expected == byte.to_ascii_lowercase() => self.raw_matched + 1,
                _ => SCRIPT.len() + 1,
            };
            return NEXT;
        }
        self.reconsume(State::ScriptEscaped {
            double: end,
            dashes: 0,
        })
    }

    fn start_tag_name(&mut self, end_tag: bool, first: u8) -> Flow {
        self.end_tag = end_tag;
        self.tag.clear();
        self.tag.push(first);
        self.switch(State::TagName)
    }

    fn tag_name_done(&mut self) -> Event {
        let name = self.tag.get();
        let in_template = self.templates > 0;
        self.meta = false;
        self.charset = None;
        self.name_seen = false;
        self.reading_name = false;
        self.raw_text = None;
        match (self.end_tag, name) {
            (true, b"head") if !in_template => Event::HeadEnd,
            (true, b"template") => {
                self.templates = self.templates.saturating_sub(1);
                Event::None
            }
            (true, _) => Event::None,
            (false, b"body" | b"frameset") if !in_template => Event::BodyStart,
            (false, b"plaintext" | b"svg" | b"math") => Event::Stop,
            (false, b"meta") => {
                self.meta = !in_template;
                self.charset = (!in_template).then(DeclaredCharset::default);
                Event::None
            }
            (false, b"template") => {
                self.templates = self.templates.saturating_add(1);
                Event::None
            }
            (false, _) => {
                self.raw_text = RAW_TEXT_ELEMENTS.iter().copied().find(|raw| *raw == name);
                Event::None
            }
        }
    }

    /// Leaving an attribute's name: the first `name` of a `<meta>` is the one that counts.
    fn attribute_name_done(&mut self) {
        let is_name = self.attribute.get() == b"name";
        self.reading_name = self.meta && is_name && !self.name_seen;
        self.name_seen |= is_name;
        self.value.clear();
        if let Some(charset) = &mut self.charset {
            charset.attribute(self.attribute.get());
        }
    }

    /// Whether the names and values of the tag's attributes matter: it is a `<meta>` outside
    /// template contents (a trace tag, or one that may declare the page's encoding).
    fn reads_attributes(&self) -> bool {
        self.meta || self.charset.is_some()
    }

    fn push_value(&mut self, byte: u8) {
        if self.reading_name {
            self.value.push(byte);
        }
        if let Some(charset) = &mut self.charset {
            charset.push(byte);
        }
    }

    /// An attribute's value ended: whether it made the tag a trace tag.
    fn attribute_done(&mut self) -> Event {
        if let Some(charset) = &mut self.charset {
            charset.value_done();
        }
        if !mem::take(&mut self.reading_name) {
            return Event::None;
        }
        let value = self.value.finish();
        match TRACE_NAMES.iter().find(|(name, _)| *name == value) {
            Some(&(_, name)) => Event::TraceMeta(name),
            None => {
                self.meta = false;
                Event::None
            }
        }
    }

    /// The `>` of a tag: whether it ends a `<meta>` that declares an encoding that is not
    /// ASCII-compatible.
    fn emit_tag(&mut self) -> Event {
        self.state = match self.raw_text {
            Some(_) => State::RawText,
            None => State::Data,
        };
        match self.charset.take() {
            Some(charset) if charset.is_ascii_incompatible() => Event::NotAscii,
            _ => Event::None,
        }
    }
}

// ----- The encoding a `<meta>` declares --------------------------------------------------------

/// The longest attribute value read for an encoding: a `content` such as
/// `text/html; charset=iso-2022-jp`, with room to spare.
const CHARSET_VALUE_MAX: usize = 64;

/// The `<meta>` attributes that declare an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharsetAttribute {
    Charset,
    HttpEquiv,
    Content,
}

/// What a `<meta>` says of the page's encoding, read as the prescan of the HTML standard reads
/// it (§13.2.3.2, "prescan a byte stream"): its `charset`, or the `charset=` in its `content` when
/// it also has `http-equiv="content-type"`, whichever comes first; a repeated attribute counts
/// once. Values are taken as they are (the prescan decodes no character references) and up to
/// [`CHARSET_VALUE_MAX`] bytes. Only ISO-2022-JP and replacement matter ([`is_switching`]).
#[derive(Debug, Default)]
struct DeclaredCharset {
    /// The attribute whose value is being read.
    reading: Option<CharsetAttribute>,
    /// Which of `charset`, `http-equiv` and `content` the tag had so far.
    seen: [bool; 3],
    value: ShortName<CHARSET_VALUE_MAX>,
    /// The first encoding declared: whether it is one of [`is_switching`], and whether it came
    /// from `content` (which counts only with `http-equiv="content-type"`).
    declared: Option<(bool, bool)>,
    content_type: bool,
}

impl DeclaredCharset {
    /// An attribute `name` begins.
    fn attribute(&mut self, name: &[u8]) {
        let attribute = match name {
            b"charset" => CharsetAttribute::Charset,
            b"http-equiv" => CharsetAttribute::HttpEquiv,
            b"content" => CharsetAttribute::Content,
            _ => {
                self.reading = None;
                return;
            }
        };
        let first = !mem::replace(&mut self.seen[attribute as usize], true);
        self.reading = first.then_some(attribute);
        self.value.clear();
    }

    fn push(&mut self, byte: u8) {
        if self.reading.is_some() {
            self.value.push(byte);
        }
    }

    /// The attribute's value ended.
    fn value_done(&mut self) {
        let value = self.value.get();
        match self.reading.take() {
            Some(CharsetAttribute::Charset) => {
                self.declared.get_or_insert((is_switching(value), false));
            }
            Some(CharsetAttribute::HttpEquiv) => self.content_type = value == b"content-type",
            Some(CharsetAttribute::Content) => {
                if let Some(label) = charset_in_content(value) {
                    self.declared.get_or_insert((is_switching(label), true));
                }
            }
            None => {}
        }
    }

    /// Whether the tag declared an encoding that is not ASCII-compatible.
    fn is_ascii_incompatible(&self) -> bool {
        matches!(self.declared, Some((true, from_content)) if self.content_type || !from_content)
    }
}

/// The encoding label in a `<meta>`'s `content` (lowercased), as the HTML standard extracts it
/// (§2.6.4, "extracting a character encoding from a `meta` element"): after a `charset` followed
/// by `=`, a quoted value, or the bytes up to whitespace or `;`.
fn charset_in_content(content: &[u8]) -> Option<&[u8]> {
    let mut rest = content;
    loop {
        let at = memchr::memmem::find(rest, b"charset")?;
        rest = rest[at + b"charset".len()..].trim_ascii_start();
        let Some(value) = rest.strip_prefix(b"=") else {
            continue;
        };
        let value = value.trim_ascii_start();
        return match value.first() {
            Some(&quote @ (b'"' | b'\'')) => {
                let value = &value[1..];
                memchr::memchr(quote, value).map(|end| &value[..end])
            }
            Some(_) => value.split(|&b| is_whitespace(b) || b == b';').next(),
            None => None,
        };
    }
}

// ----- Attribute values ----------------------------------------------------------------------

/// The longest of [`TRACE_NAMES`].
const VALUE_MAX: usize = 12;

/// An attribute value as a browser reads it, kept only while it may be one of [`TRACE_NAMES`]:
/// its bytes as they are (a selector compares `name` case-sensitively), numeric character
/// references decoded (§13.2.5.72-80: `&#45;`, `&#x2D`, with or without `;`).
///
/// Named references need no decoding here: none decodes to a character of these names
/// (`&hyphen;` and `&dash;` are U+2010, not `-`; the only one that decodes to lowercase ASCII
/// letters is `&fjlig;`, "fj"), so a value holding one, or a `&` that is text, is none of them.
#[derive(Debug, Default)]
struct AttributeValue {
    /// Spoiled once the value cannot be a trace name.
    text: ShortName<VALUE_MAX>,
    reference: Reference,
}

/// Where a character reference in a value is at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Reference {
    #[default]
    None,
    /// After `&`.
    Ampersand,
    /// After `&#`.
    Number,
    /// After `&#x` or `&#X`.
    HexStart,
    /// In the digits: the code point so far, capped above U+10FFFF.
    Digits { radix: u32, code: u32 },
}

impl AttributeValue {
    fn clear(&mut self) {
        self.text.clear();
        self.reference = Reference::None;
    }

    fn push(&mut self, byte: u8) {
        let digit = char::from(byte).to_digit(match self.reference {
            Reference::Number => 10,
            Reference::Digits { radix, .. } => radix,
            _ => 16,
        });
        self.reference = match (self.reference, digit) {
            (Reference::None, _) if byte == b'&' => Reference::Ampersand,
            (Reference::None, _) => {
                self.text.push_exact(byte);
                Reference::None
            }
            (Reference::Ampersand, _) if byte == b'#' => Reference::Number,
            (Reference::Number, _) if byte == b'x' || byte == b'X' => Reference::HexStart,
            (Reference::Number, Some(code)) => Reference::Digits { radix: 10, code },
            (Reference::HexStart, Some(code)) => Reference::Digits { radix: 16, code },
            (Reference::Digits { radix, code }, Some(digit)) => Reference::Digits {
                radix,
                code: (code * radix + digit).min(0x11_0000),
            },
            (Reference::Digits { code, .. }, None) => {
                // The reference ends here; a `;` is part of it, anything else is not.
                self.reference = Reference::None;
                self.push_code(code);
                if byte != b';' {
                    self.push(byte);
                }
                return;
            }
            // A named reference, or `&`, `&#`, `&#x` that are text.
            _ => {
                self.text.spoil();
                Reference::None
            }
        };
    }

    /// A numeric reference's character: the ASCII one it names (0 and what is not a Unicode
    /// scalar value become U+FFFD, 0x80-0x9F windows-1252's characters: none is ASCII).
    fn push_code(&mut self, code: u32) {
        match u8::try_from(code) {
            Ok(byte @ 0x01..=0x7F) => self.text.push_exact(byte),
            _ => self.text.spoil(),
        }
    }

    /// The value has ended: its bytes (a name that matches none, if it cannot be a trace name).
    fn finish(&mut self) -> &[u8] {
        match mem::take(&mut self.reference) {
            Reference::None => {}
            Reference::Digits { code, .. } => self.push_code(code),
            _ => self.text.spoil(),
        }
        self.text.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry_meta_core::{DynamicSamplingContext, SerializedDsc, TraceMeta};

    const TAGS: &[u8] = b"<TAGS>";

    /// Feeds `chunks` and returns the output, with `TAGS` where the tags go.
    fn run(action: Action, limit: usize, chunks: &[&[u8]]) -> Vec<u8> {
        let mut scanner = HeadScanner::new(action);
        scanner.limit = limit;
        run_with(scanner, chunks)
    }

    fn run_with(mut scanner: HeadScanner, chunks: &[&[u8]]) -> Vec<u8> {
        let mut output = Vec::new();
        for chunk in chunks {
            scanner.feed(chunk, &mut |piece| match piece {
                Piece::Input(range) => output.extend_from_slice(&chunk[range]),
                Piece::Held(bytes) => output.extend_from_slice(&bytes),
                Piece::Tags => output.extend_from_slice(TAGS),
            });
            assert!(scanner.held.len() <= TAG_HOLD_MAX);
        }
        scanner.finish(&mut |piece| match piece {
            Piece::Held(bytes) => output.extend_from_slice(&bytes),
            other => panic!("finish handed out {other:?}"),
        });
        assert!(scanner.done);
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
        .traceparent(traceparent)
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
            "<head><frameset></head>",
            "<head><plaintext></head>",
            "<head><svg><style></style></head>",
            "<head><math></head>",
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
    fn every_raw_text_element_holds_its_text() {
        for element in RAW_TEXT_ELEMENTS {
            let element = std::str::from_utf8(element).expect("ascii");
            let upper = element.to_ascii_uppercase();
            let text = format!(
                "<{element}></head><meta name=sentry-trace><{element}></{element}x></{upper} >"
            );
            assert_eq!(
                inject(&format!("<head>{text}</head>")),
                format!("<head>{text}<TAGS></head>"),
                "{element}"
            );
        }
    }

    #[test]
    fn escaped_script_data() {
        // (the script's text, whether it ends at its `</script>`); then a `</head>`.
        for (text, ends) in [
            // `<!--<script>` double escapes: only `-->` gets back to script data.
            ("<!--<script></script></head>-->", false),
            ("<!--<script></script></head>--></script>", true),
            ("<!--<script></head></script>", false),
            ("<!--<script>--></script>", true),
            ("<!--<script >--!></script></script>", true),
            ("<!--<SCRIPT/></script>-></script>--></script>", true),
            // Escaped without a nested `<script`, `</script>` ends the script.
            ("<!--</script>", true),
            ("<!-- <scripts></script>", true),
            ("<!-- <scrip></script>", true),
            ("<!--x<script</script>", true),
            ("<!--x<script></script>", false),
            ("<!--<script>x</scriptx>--></script>", true),
            // Not an escape.
            ("<!-x<script></script>", true),
            ("<! --<script></script>", true),
            ("<!---->x<script></script>", true),
            ("<!-->x<script></script>", true),
        ] {
            let page = format!("<head><script>{text}</head>");
            let expected = if ends {
                format!("<head><script>{text}<TAGS></head>")
            } else {
                page.clone()
            };
            assert_eq!(inject(&page), expected, "{text:?}");
        }
        // In a style, `<!--` is text.
        assert_eq!(
            inject("<head><style><!--<script></style></head>"),
            "<head><style><!--<script></style><TAGS></head>"
        );
    }

    #[test]
    fn template_contents_are_not_the_document() {
        for (page, expected) in [
            (
                "<head><template></head></template></head>",
                "<head><template></head></template><TAGS></head>",
            ),
            (
                "<head><template><template></template></head></template></head>",
                "<head><template><template></template></head></template><TAGS></head>",
            ),
            (
                "<head></template><template><body></head></TEMPLATE></head>",
                "<head></template><template><body></head></TEMPLATE><TAGS></head>",
            ),
            // A trace tag there is not one the SDK finds.
            (
                "<head><template><meta name=\"sentry-trace\" content=x></template></head>",
                "<head><template><meta name=\"sentry-trace\" content=x></template><TAGS></head>",
            ),
        ] {
            assert_eq!(inject(page), expected, "{page:?}");
        }
        // Raw text and foreign content are as they are elsewhere.
        for page in [
            "<head><template><script></template></head>",
            "<head><template><svg></svg></template></head>",
        ] {
            assert_eq!(inject(page), page);
        }
    }

    #[test]
    fn skips_pages_that_carry_the_tags() {
        for page in [
            "<head><meta name=\"sentry-trace\" content=\"x\"></head>",
            "<head><META NAME='sentry-trace' content=x></head>",
            "<head><meta content=\"x\" name=sentry-trace></head>",
            "<head><meta\nname = \"sentry-trace\"/></head>",
            "<head><meta name=\"baggage\" content=\"sentry-trace_id=x\"></head>",
            "<head><meta name=traceparent></head>",
            // Character references, decoded.
            "<head><meta name=\"sentry&#45;trace\"></head>",
            "<head><meta name=\"sentry&#x2d;trace\"></head>",
            "<head><meta name=\"sentry&#X2D;trace\"></head>",
            "<head><meta name=\"sentry&#0000045trace\"></head>",
            "<head><meta name=\"&#115;entry-trac&#x65\"></head>",
            "<head><meta name=sentry-trac&#101;></head>",
            "<head><meta name=&#98;aggage></head>",
            // The first `name` counts.
            "<head><meta name=\"sentry-trace\" name=\"x\"></head>",
        ] {
            assert_eq!(inject(page), page, "{page:?}");
        }
        // Not what `meta[name="sentry-trace"]` finds.
        for page in [
            "<head><link name=\"sentry-trace\"></head>",
            "<head><meta content=\"sentry-trace\"></head>",
            "<head><meta name=\"Sentry-Trace\"></head>",
            "<head><meta name=\"SENTRY-TRACE\"></head>",
            "<head><meta name=\" sentry-trace\"></head>",
            "<head><meta name=\"sentry-trace\0\"></head>",
            "<head><meta name=\"sentry&hyphen;trace\"></head>",
            "<head><meta name=\"sentry&dash;trace\"></head>",
            "<head><meta name=\"sentry&#8208;trace\"></head>",
            "<head><meta name=\"sentry&#x2d0;trace\"></head>",
            "<head><meta name=\"sentry&#0;trace\"></head>",
            "<head><meta name=\"sentry&#x;trace\"></head>",
            "<head><meta name=\"sentry&#;trace\"></head>",
            "<head><meta name=\"sentry&#99999999999-trace\"></head>",
            "<head><meta name=\"x\" name=\"sentry-trace\"></head>",
            "<head><meta name name=\"sentry-trace\"></head>",
            "<head><meta name= name=\"sentry-trace\"></head>",
            "<head><meta name=>name=\"sentry-trace\"></head>",
            "<head></meta name=\"sentry-trace\"></head>",
            "<head><!-- <meta name=\"sentry-trace\"> --></head>",
            "<head><script>'<meta name=\"sentry-trace\">'</script></head>",
            "<head><metax name=\"sentry-trace\"></head>",
        ] {
            assert_eq!(
                inject(page),
                page.replacen("</head>", "<TAGS></head>", 1),
                "{page:?}"
            );
        }
        // Our own output, injected a second time.
        let once = inject("<head></head>").replace("<TAGS>", &meta("sentry-a=b", true).to_html());
        assert_eq!(inject(&once), once);
    }

    #[test]
    fn a_traceparent_tag_is_a_copy_only_of_tags_that_hold_one() {
        let page = b"<head><meta name=traceparent content=x></head>";
        let injected = b"<head><meta name=traceparent content=x><TAGS></head>";
        assert_eq!(run_with(HeadScanner::injecting(true), &[page]), page);
        assert_eq!(run_with(HeadScanner::injecting(false), &[page]), injected);
        // `sentry-trace` and `baggage` always are.
        let page = b"<head><meta name=baggage content=x></head>";
        assert_eq!(run_with(HeadScanner::injecting(false), &[page]), page);
    }

    #[test]
    fn byte_order_marks() {
        // UTF-16 and UTF-32 (even when their bytes spell `</head>`): left alone.
        for bom in [
            &b"\xFF\xFE"[..],
            b"\xFE\xFF",
            b"\xFF\xFE\0\0",
            b"\0\0\xFE\xFF",
        ] {
            let page = [bom, b"<head></head><meta name=baggage>"].concat();
            assert_eq!(scan(Action::Inject, &page), page);
            assert_eq!(scan(Action::Strip, &page), page);
        }
        // UTF-8's, or what only begins like one of them, is read on.
        for start in [
            &b"\xEF\xBB\xBF"[..],
            b"\xFE",
            b"\xFF",
            b"\0",
            b"\0\0\xFE",
            b"\xFE\xFE",
        ] {
            let page = [start, b"<head></head>"].concat();
            let expected = [start, b"<head><TAGS></head>"].concat();
            assert_eq!(scan(Action::Inject, &page), expected, "{start:?}");
        }
    }

    #[test]
    fn a_meta_that_declares_an_encoding_without_ascii() {
        // ISO-2022-JP: its kanji may be the bytes of `</head>` (here four kanji, `</head>>`,
        // between the escapes that switch to JIS X 0208 and back to ASCII).
        let jis = "\x1b$B</head>>\x1b(B";
        for declaration in [
            r#"<meta charset="iso-2022-jp">"#,
            "<meta charset=ISO-2022-JP>",
            "<META CHARSET=' csISO2022JP '/>",
            r#"<meta http-equiv="Content-Type" content="text/html; charset=iso-2022-jp">"#,
            r#"<meta content='text/html;charset="ISO-2022-JP"' http-equiv=content-type>"#,
            r#"<meta content="charset; charset = iso-2022-kr" name=x http-equiv="CONTENT-TYPE">"#,
        ] {
            let page = format!("<head>{declaration}{jis}</head><body>");
            assert_eq!(inject(&page), page, "{declaration}");
            // The stripper reads on: only trace tags go.
            let tagged = format!("<head>{declaration}<meta name=baggage content=x></head>");
            assert_eq!(strip(&tagged), format!("<head>{declaration}</head>"));
        }
        // ASCII-compatible, declared the way the prescan ignores, or not by a `<meta>`.
        for declaration in [
            "<meta charset=utf-8>",
            "<meta charset=utf-16>",
            "<meta charset=iso-2022-jp/>",
            r#"<meta charset="utf-8" charset="iso-2022-jp">"#,
            r#"<meta charset="utf-8" content="charset=iso-2022-jp" http-equiv=content-type>"#,
            r#"<meta content="text/html; charset=iso-2022-jp">"#,
            r#"<meta http-equiv=refresh content="charset=iso-2022-jp">"#,
            r#"<meta content="text/html; charset='iso-2022-jp" http-equiv=content-type>"#,
            r#"<meta content="text/html; charset" http-equiv=content-type>"#,
            "<link charset=iso-2022-jp>",
            "<template><meta charset=iso-2022-jp></template>",
            "<!-- <meta charset=iso-2022-jp> -->",
            "<meta charset=&#105;so-2022-jp>",
        ] {
            let page = format!("<head>{declaration}</head>");
            let expected = format!("<head>{declaration}<TAGS></head>");
            assert_eq!(inject(&page), expected, "{declaration}");
        }
    }

    #[test]
    fn strips_past_the_injectors_limit() {
        let tags = meta("sentry-release=1.0", true).to_html();
        let style = format!("<style>{}</style>", "a{}".repeat(HEAD_LIMIT / 2));
        let stripped = format!("<html><head>{style}<title>t</title></head><body></body></html>");
        let page = stripped.replace("</head>", &format!("{tags}</head>"));
        let stripper = |chunks: &[&[u8]]| run_with(HeadScanner::new(Action::Strip), chunks);
        assert_eq!(stripper(&[page.as_bytes()]), stripped.as_bytes());
        let (a, b) = page.split_at(page.find("<meta").expect("tags") + 3);
        assert_eq!(stripper(&[a.as_bytes(), b.as_bytes()]), stripped.as_bytes());
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
    fn trace_names_are_what_the_renderer_writes() {
        let html = meta("sentry-a=b", true).to_html();
        let names: Vec<&str> = html
            .split("name=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(names, ["sentry-trace", "baggage", "traceparent"]);
        for name in names {
            assert!(
                TRACE_NAMES
                    .iter()
                    .any(|(known, _)| *known == name.as_bytes())
            );
        }
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
                "<head>\n  \n  <title>t</title></head><body></body>",
                "{tags}"
            );
            // Twice, back to back or on consecutive lines: the line breaks within a block go
            // with it, the one between two blocks stays.
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
    fn strips_every_trace_tag() {
        for (page, expected) in [
            // Hand-written, in any attribute order, quotes or case of the attribute names.
            (
                "<head><meta name=\"sentry-trace\" content=\"hand-written\"><title>t</title></head>",
                "<head><title>t</title></head>",
            ),
            (
                "<head><META content='x' NAME=baggage />\n<meta name=traceparent>x</head>",
                "<head>x</head>",
            ),
            (
                "<head><meta name=\"sentry&#45;trace\" content=\">\"></head>",
                "<head></head>",
            ),
            // Between `</head>` and `<body>`, the tree builder moves them into the head; in the
            // body the browser SDK finds them too.
            (
                "<head></head>\n<meta name=\"baggage\" content=\"x\">\n<body><meta name=baggage>",
                "<head></head>\n\n<body>",
            ),
            (
                "<head></head><meta name=sentry-trace><BODY><p><meta name=sentry-trace></p>",
                "<head></head><BODY><p></p>",
            ),
            (
                "<body><textarea><meta name=baggage></textarea><meta name=baggage>",
                "<body><textarea><meta name=baggage></textarea>",
            ),
            (
                "<frameset><noframes><meta name=baggage></noframes><meta name=baggage>",
                "<frameset><noframes><meta name=baggage></noframes>",
            ),
            // A `\n` goes only between two stripped tags, in the renderer's order.
            (
                "<head>\n<meta name=baggage>\n<meta name=x>\n</head>",
                "<head>\n\n<meta name=x>\n</head>",
            ),
            (
                "<head><meta name=traceparent>\n<meta name=baggage>\n<meta name=baggage></head>",
                "<head>\n\n</head>",
            ),
            // A tag after a `<` that is text is in the body: taken out, it would leave `<x`.
            (
                "<head><meta name=baggage>\n<<meta name=baggage>x</head>",
                "<head>\n<<meta name=baggage>x</head>",
            ),
        ] {
            assert_eq!(strip(page), expected, "{page:?}");
        }
    }

    #[test]
    fn strips_nothing_else() {
        let tags = meta("sentry-a=b", true).to_html();
        for page in [
            "<head><meta name=\"Sentry-Trace\" content=\"x\"></head>".to_owned(),
            "<head><meta name=\"sentry&hyphen;trace\" content=\"x\"></head>".to_owned(),
            "<head><meta name=\"description\" NAME=\"sentry-trace\"></head>".to_owned(),
            "<head><meta content=\"sentry-trace\"></head>".to_owned(),
            "<head><link name=\"baggage\"></head>".to_owned(),
            "<head><metas name=\"baggage\"></head>".to_owned(),
            format!("<head><!-- {tags} --></head>"),
            format!("<head><script>'{tags}'</script></head>"),
            format!("<head><template>{tags}</template></head>"),
            format!("<head><script><!--<script>{tags}</script>--></script></head>"),
            // Foreign content, which the scanner does not read, and what follows it.
            format!("<head></head><body><svg><title>{tags}</title></svg>{tags}"),
            format!("<head><svg></svg>{tags}</head>"),
            format!("<head><plaintext>{tags}</head>"),
        ] {
            assert_eq!(strip(&page), page, "{page:?}");
        }
        // A tag the stripper cannot hold to its `name` passes whole; the tags after it do not.
        let long = format!(
            "<head><meta content=\"{}\" name=\"baggage\">",
            "x".repeat(TAG_HOLD_MAX)
        );
        let page = format!("{long}\n<meta name=baggage></head>");
        let whole = format!("{long}\n</head>");
        let stripper = |chunks: &[&[u8]]| run_with(HeadScanner::new(Action::Strip), chunks);
        assert_eq!(stripper(&[page.as_bytes()]), whole.as_bytes());
        let bytes: Vec<&[u8]> = page.as_bytes().chunks(4096).collect();
        assert_eq!(stripper(&bytes), whole.as_bytes());
        let held = format!(
            "<head><meta content=\"{}\" name=\"baggage\"></head>",
            "x".repeat(TAG_HOLD_MAX - 64)
        );
        assert_eq!(
            run(Action::Strip, HEAD_LIMIT, &[held.as_bytes()]),
            b"<head></head>"
        );
    }
}
