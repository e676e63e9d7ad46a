//! Trace and span identifiers: fixed-size byte arrays written as lowercase hex.

use std::fmt;
use std::str::FromStr;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of every byte as a lowercase hex digit, or [`NOT_HEX`].
static HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut b = 0;
    while b < 16 {
        table[HEX[b] as usize] = b as u8;
        b += 1;
    }
    table
};

/// The bit that marks a byte that is not a lowercase hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0x10;

/// Decodes `2 * N` lowercase hex digits into `N` bytes: a table look-up per digit, and one check
/// for a non-digit at the end rather than a branch per digit.
pub(crate) fn decode_lower_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    let mut seen = 0u8;
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let high = HEX_VALUE[usize::from(pair[0])];
        let low = HEX_VALUE[usize::from(pair[1])];
        seen |= high | low;
        *byte = ((high & 0x0f) << 4) | (low & 0x0f);
    }
    (seen & NOT_HEX == 0).then_some(out)
}

/// Writes `bytes` as lowercase hex into `out`, which must be twice as long.
#[inline]
pub(crate) fn encode_lower_hex(bytes: &[u8], out: &mut [u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// The two lowercase hex digits of every byte: one load per byte instead of two.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = [HEX[b >> 4], HEX[b & 0x0f]];
        b += 1;
    }
    table
};

/// An error from parsing a [`TraceId`] or [`SpanId`]: not exactly 32 (or 16) lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseIdError {
    expected_len: usize,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {} lowercase hex digits", self.expected_len)
    }
}

impl std::error::Error for ParseIdError {}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $bytes:literal, $word:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $bytes]);

        impl $name {
            /// The length of the hex form.
            pub const HEX_LEN: usize = 2 * $bytes;

            /// Makes an identifier from its bytes.
            pub const fn from_bytes(bytes: [u8; $bytes]) -> Self {
                Self(bytes)
            }

            /// The identifier's bytes.
            pub const fn to_bytes(self) -> [u8; $bytes] {
                self.0
            }

            /// A new random, non-zero identifier.
            pub fn random() -> Self {
                Self::random_with(&mut rand::rng())
            }

            /// [`random`](Self::random), from a handle on the thread's CSPRNG that the caller
            /// holds for several ids.
            fn random_with(rng: &mut rand::rngs::ThreadRng) -> Self {
                // Whole words (`random::<[u8; N]>()` would draw each byte separately). An
                // all-zero id is invalid in W3C Trace Context, and no Sentry SDK makes one
                // (their parsers accept it, and so does this crate's).
                loop {
                    let word: $word = rand::RngExt::random(rng);
                    if word != 0 {
                        return Self(word.to_ne_bytes());
                    }
                }
            }

            /// Parses exactly the lowercase hex form (no surrounding whitespace).
            pub fn parse_hex(s: &[u8]) -> Result<Self, ParseIdError> {
                decode_lower_hex(s).map(Self).ok_or(ParseIdError {
                    expected_len: Self::HEX_LEN,
                })
            }

            /// The lowercase hex form, without allocating.
            pub fn to_hex(self) -> [u8; 2 * $bytes] {
                let mut out = [0u8; 2 * $bytes];
                encode_lower_hex(&self.0, &mut out);
                out
            }
        }

        impl From<[u8; $bytes]> for $name {
            fn from(bytes: [u8; $bytes]) -> Self {
                Self(bytes)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_hex(s.as_bytes())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hex = self.to_hex();
                // Hex digits are ASCII, so this never fails.
                f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

hex_id!(
    /// A trace id: 16 bytes, written as 32 lowercase hex digits.
    ///
    /// ```
    /// use sentry_meta_core::TraceId;
    /// let id: TraceId = "771a43a4192642f0b136d5159a501700".parse().unwrap();
    /// assert_eq!(id.to_string(), "771a43a4192642f0b136d5159a501700");
    /// assert!("771A43A4192642F0B136D5159A501700".parse::<TraceId>().is_err());
    /// ```
    TraceId,
    16,
    u128
);

hex_id!(
    /// A span id: 8 bytes, written as 16 lowercase hex digits.
    ///
    /// ```
    /// use sentry_meta_core::SpanId;
    /// let id: SpanId = "b7ad6b7169203331".parse().unwrap();
    /// assert_eq!(id.to_string(), "b7ad6b7169203331");
    /// ```
    SpanId,
    8,
    u64
);

/// A new trace id and span id, drawn with one handle on the thread's CSPRNG.
pub(crate) fn random_trace_and_span() -> (TraceId, SpanId) {
    let mut rng = rand::rng();
    (
        TraceId::random_with(&mut rng),
        SpanId::random_with(&mut rng),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = TraceId::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xd, 0xe, 0xff]);
        assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0eff");
        assert_eq!(id.to_string().parse::<TraceId>(), Ok(id));
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(SpanId::parse_hex(b"b7ad6b716920333").is_err());
        assert!(SpanId::parse_hex(b"b7ad6b71692033312").is_err());
        assert!(SpanId::parse_hex(b"B7AD6B7169203331").is_err());
        assert!(SpanId::parse_hex(b"b7ad6b716920333g").is_err());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(TraceId::random(), TraceId::random());
        assert_ne!(SpanId::random(), SpanId::random());
    }
}
