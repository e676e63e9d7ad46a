//! What the fuzz targets share: how one fuzz input is cut into header values, and the oracles
//! that more than one target checks.
//!
//! # Input format
//!
//! Most targets need several byte strings (a `sentry-trace`, several `baggage` values, a page).
//! The first byte of the input names a separator, and the rest is split on it: any byte may then
//! appear in a field, control bytes and invalid UTF-8 included, as long as the input picks a
//! separator it does not use. `fuzz/seeds.py` writes the seed corpus in this format.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sentry_meta_core::{MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};

/// The fields of `data`: `data[0]` is the separator, `data[1..]` split on it. An empty input has
/// no fields.
pub fn fields(data: &[u8]) -> Vec<&[u8]> {
    match data.split_first() {
        Some((sep, rest)) => rest.split(|b| b == sep).collect(),
        None => Vec::new(),
    }
}

/// `data[1..]` cut at the first separator `data[0]`: a control field and the rest, which may
/// hold the separator.
pub fn control_and_rest(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((sep, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    match rest.iter().position(|b| b == sep) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[]),
    }
}

/// The characters `encodeURIComponent` leaves as they are.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Checks one side of a member: only `encodeURIComponent` output (unreserved characters and
/// `%XX` escapes with uppercase hex), not empty.
fn assert_encoded(side: &str, whole: &str) {
    assert!(!side.is_empty(), "empty key or value in {whole:?}");
    let bytes = side.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
            assert!(
                hex.len() == 2 && hex.iter().all(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F')),
                "bad escape at {i} of {side:?} in {whole:?}"
            );
            i += 3;
        } else {
            assert!(
                is_unreserved(bytes[i]),
                "{:?} not encoded in {whole:?}",
                char::from(bytes[i])
            );
            i += 1;
        }
    }
}

/// Checks a `baggage` value this crate wrote: within [`MAX_BAGGAGE_BYTES`] and
/// [`MAX_BAGGAGE_MEMBERS`], members `key=value` joined by `,`, each side `encodeURIComponent`
/// output. Returns the number of members.
pub fn assert_canonical_baggage(baggage: &str) -> usize {
    assert!(
        baggage.len() <= MAX_BAGGAGE_BYTES,
        "{} bytes of baggage",
        baggage.len()
    );
    if baggage.is_empty() {
        return 0;
    }
    let mut members = 0;
    for member in baggage.split(',') {
        let (key, value) = member
            .split_once('=')
            .unwrap_or_else(|| panic!("member {member:?} without '=' in {baggage:?}"));
        assert_encoded(key, baggage);
        assert_encoded(value, baggage);
        members += 1;
    }
    assert!(members <= MAX_BAGGAGE_MEMBERS, "{members} members");
    members
}

/// Whether `a` is `b` with some entries left out (the same order, the same values).
pub fn is_subsequence<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y == x))
}

/// Checks that two byte strings are equal; on a difference, says where, without printing
/// every byte of both.
#[track_caller]
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    let excerpt = |s: &[u8]| {
        let from = at.saturating_sub(40);
        let to = (at + 80).min(s.len());
        String::from_utf8_lossy(&s[from.min(to)..to]).into_owned()
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at {at}:\n  got      {:?}\n  expected {:?}",
        actual.len(),
        expected.len(),
        excerpt(actual),
        excerpt(expected),
    );
}

/// A response body that yields the given chunks, ready at once, with an exact size hint.
#[derive(Debug)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`, for an O(1) size hint.
    remaining: u64,
}

impl Chunks {
    /// `data` cut into chunks by `lengths`, one chunk per byte: a byte `b` below 128 is a chunk
    /// of `b + 1` bytes, a larger one a chunk of `(b - 127) * 512` bytes (to cut anywhere in a
    /// long page with a short input). What the lengths leave is the last chunk.
    pub fn new(data: &[u8], lengths: &[u8]) -> Self {
        Self::after(0, data, lengths)
    }

    /// `data[..first]` as one chunk (when not empty), then the rest as [`new`](Self::new) cuts
    /// it.
    pub fn after(first: usize, data: &[u8], lengths: &[u8]) -> Self {
        let mut chunks = VecDeque::new();
        let (head, mut rest) = data.split_at(first.min(data.len()));
        if !head.is_empty() {
            chunks.push_back(Bytes::copy_from_slice(head));
        }
        for &len in lengths {
            if rest.is_empty() {
                break;
            }
            let len = match len {
                0..128 => usize::from(len) + 1,
                _ => usize::from(len - 127) * 512,
            };
            let (chunk, tail) = rest.split_at(len.min(rest.len()));
            chunks.push_back(Bytes::copy_from_slice(chunk));
            rest = tail;
        }
        if !rest.is_empty() {
            chunks.push_back(Bytes::copy_from_slice(rest));
        }
        Self {
            remaining: data.len() as u64,
            chunks,
        }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Reads a body whose frames are always ready to the end; checks on the way that its size hint
/// holds what is still to come and that it ends when it says so.
pub fn read_body<B>(body: B) -> Vec<u8>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut hints = Vec::new();
    loop {
        hints.push((out.len() as u64, body.size_hint()));
        let ended = body.is_end_stream();
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                assert!(!ended, "a frame after is_end_stream");
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(error))) => panic!("body error {error:?}"),
            Poll::Ready(None) => break,
            Poll::Pending => panic!("an in-memory body is never pending"),
        }
    }
    let total = out.len() as u64;
    for (read, hint) in hints {
        let left = total - read;
        assert!(
            hint.lower() <= left,
            "size hint {hint:?}, {left} bytes left"
        );
        if let Some(upper) = hint.upper() {
            assert!(left <= upper, "size hint {hint:?}, {left} bytes left");
        }
    }
    out
}
