//! Connection faults on demand: the broken answers a retry policy must survive, each written
//! deliberately by the wire layer, in this one place, never by accident.
//!
//! A handler asks for a fault by setting [`crate::wire::reply::Reply::fault`]; the HTTP/1.1
//! connection writes exactly the bytes below (or none), and HTTP/2 maps each kind onto its own
//! failure (`RST_STREAM`, a stream that never ends, data sent slowly). WireMock's `Fault` enum
//! and toxiproxy's toxics are the models; what a real client sees is in the README.

use std::time::Duration;

/// The kinds of fault, by the name used in URLs (`/fault/reset`, `/sequence/k/503,reset,200`,
/// `/status/200:0.9,reset:0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A TCP reset before any byte of the answer (curl: exit 56).
    Reset,
    /// The connection closes without a byte of the answer (curl: exit 52).
    Empty,
    /// A head promising `Content-Length: N`, fewer bytes, then the close (curl: exit 18).
    Truncate,
    /// A chunked answer with an invalid chunk-size line, then the close (curl: exit 56).
    MalformedChunk,
    /// Random bytes instead of an answer, then the close.
    Garbage,
    /// The head of a 200 with `Content-Length`, no content, then the close (curl: exit 18).
    CloseAfterHeaders,
    /// The request is read and never answered (curl with `--max-time`: exit 28).
    Stall,
    /// A valid answer whose content arrives in pieces over `duration`.
    Drip,
    /// A valid answer whose head arrives in pieces over `duration`.
    SlowHeaders,
    /// A valid answer after a delay drawn from `jitter`.
    Latency,
    /// A valid answer, then the connection stays open for `duration` before it closes.
    SlowClose,
}

impl FaultKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Reset,
        FaultKind::Empty,
        FaultKind::Truncate,
        FaultKind::MalformedChunk,
        FaultKind::Garbage,
        FaultKind::CloseAfterHeaders,
        FaultKind::Stall,
        FaultKind::Drip,
        FaultKind::SlowHeaders,
        FaultKind::Latency,
        FaultKind::SlowClose,
    ];

    /// The name in URLs.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::Reset => "reset",
            FaultKind::Empty => "empty",
            FaultKind::Truncate => "truncate",
            FaultKind::MalformedChunk => "malformed-chunk",
            FaultKind::Garbage => "garbage",
            FaultKind::CloseAfterHeaders => "close-after-headers",
            FaultKind::Stall => "stall",
            FaultKind::Drip => "drip",
            FaultKind::SlowHeaders => "slow-headers",
            FaultKind::Latency => "latency",
            FaultKind::SlowClose => "slow-close",
        }
    }

    /// The kind a URL names.
    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// Whether the client still gets a complete, valid answer (only late or slowly).
    pub const fn answers(self) -> bool {
        matches!(
            self,
            FaultKind::Drip | FaultKind::SlowHeaders | FaultKind::Latency | FaultKind::SlowClose
        )
    }

    /// A stable number for storing the kind among status codes (a sequence step): 900 + its
    /// index, outside 100–599.
    pub const fn code(self) -> u16 {
        900 + self as u16
    }

    /// The kind stored as [`FaultKind::code`].
    pub fn from_code(code: u16) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A fault with its timing, as the wire layer applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// How long the fault takes: the drip or trickle, the wait before a slow close, the delay
    /// of `latency`, the longest a `stall` holds the connection.
    pub duration: Duration,
}

/// In how many pieces a drip or a slow head is written.
pub(crate) const PIECES: usize = 10;

/// Bytes that are not HTTP, for `garbage`: printable noise with no line structure a parser
/// could mistake for a status line.
pub(crate) fn garbage() -> Vec<u8> {
    let len = fastrand::usize(64..=512);
    (0..len).map(|_| fastrand::u8(0x21..0x7f)).collect()
}

/// `len` split into `PIECES` nearly equal parts (fewer when `len` is small), never empty.
pub(crate) fn pieces(len: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = PIECES.min(len.max(1));
    let step = len.div_ceil(n).max(1);
    (0..len)
        .step_by(step)
        .map(move |start| start..(start + step).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(FaultKind::from_name(k.name()), Some(k));
            assert_eq!(FaultKind::from_code(k.code()), Some(k));
            assert!(!(100..=599).contains(&k.code()));
        }
        assert_eq!(FaultKind::from_name("nope"), None);
    }

    #[test]
    fn pieces_cover_the_bytes() {
        for len in [0, 1, 9, 10, 11, 1000] {
            let parts: Vec<_> = pieces(len).collect();
            assert!(parts.len() <= PIECES);
            assert_eq!(parts.iter().map(|r| r.len()).sum::<usize>(), len);
        }
    }

    #[test]
    fn garbage_is_not_http() {
        let g = garbage();
        assert!(!g.starts_with(b"HTTP/"));
        assert!(g.iter().all(|b| b.is_ascii_graphic()));
    }
}
