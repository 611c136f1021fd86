//! Byte ranges (RFC 9110 §14): parsing `Range` and building 206 / 416 replies.

use bytes::{BufMut, Bytes, BytesMut};

/// A satisfiable byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

/// What a `Range` header asks of a representation of a given length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) `Range`: serve the whole representation. Unknown units and malformed
    /// headers are ignored, as RFC 9110 §14.2 says.
    Full,
    /// One or more satisfiable ranges, in the order asked, coalesced where they overlap.
    Partial(Vec<ByteRange>),
    /// None of the ranges overlap the representation: 416.
    Unsatisfiable,
}

/// Most ranges honoured in one request; more is treated as malformed (a defence against
/// many-small-ranges amplification, RFC 9110 §17.15).
pub const MAX_RANGES: usize = 16;

/// Parses a `Range` header value against a representation of `len` bytes.
pub fn parse(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let mut ranges = Vec::new();
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        any = true;
        let Some((a, b)) = part.split_once('-') else {
            return RangeRequest::Full;
        };
        let (a, b) = (a.trim(), b.trim());
        let range = if a.is_empty() {
            // Suffix range: the last N bytes.
            let Ok(n) = b.parse::<u64>() else {
                return RangeRequest::Full;
            };
            if n == 0 || len == 0 {
                continue;
            }
            ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            }
        } else {
            let Ok(first) = a.parse::<u64>() else {
                return RangeRequest::Full;
            };
            let last = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(l) if l >= first => l,
                    _ => return RangeRequest::Full,
                }
            };
            if first >= len {
                continue;
            }
            ByteRange {
                first,
                last: last.min(len - 1),
            }
        };
        ranges.push(range);
        if ranges.len() > MAX_RANGES {
            return RangeRequest::Full;
        }
    }
    if !any {
        return RangeRequest::Full;
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(coalesce(ranges))
}

/// Merges overlapping or adjacent ranges, keeping the first-asked order otherwise.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut out: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    ranges.sort_by_key(|r| r.first);
    for r in ranges {
        match out.last_mut() {
            Some(prev) if r.first <= prev.last.saturating_add(1) => {
                prev.last = prev.last.max(r.last)
            }
            _ => out.push(r),
        }
    }
    out
}

/// `Content-Range` for one range of a representation of `len` bytes.
pub fn content_range(r: ByteRange, len: u64) -> String {
    format!("bytes {}-{}/{len}", r.first, r.last)
}

/// `Content-Range` for a 416: `bytes */len`.
pub fn unsatisfied(len: u64) -> String {
    format!("bytes */{len}")
}

/// The boundary used for `multipart/byteranges` bodies.
pub const BOUNDARY: &str = "statuslab-byteranges";

/// A `multipart/byteranges` body (RFC 9110 §14.6) of `data`'s parts.
pub fn multipart(data: &[u8], content_type: &str, ranges: &[ByteRange]) -> Bytes {
    let mut out = BytesMut::new();
    let len = data.len() as u64;
    for r in ranges {
        out.put_slice(
            format!(
                "\r\n--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
                content_range(*r, len)
            )
            .as_bytes(),
        );
        out.put_slice(&data[r.first as usize..=r.last as usize]);
    }
    out.put_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn parses() {
        let cases: &[(&str, RangeRequest)] = &[
            ("bytes=0-99", RangeRequest::Partial(vec![br(0, 99)])),
            ("bytes=100-", RangeRequest::Partial(vec![br(100, 1023)])),
            ("bytes=-10", RangeRequest::Partial(vec![br(1014, 1023)])),
            ("bytes=-5000", RangeRequest::Partial(vec![br(0, 1023)])),
            ("bytes=0-5000", RangeRequest::Partial(vec![br(0, 1023)])),
            (
                "bytes=0-9,20-29",
                RangeRequest::Partial(vec![br(0, 9), br(20, 29)]),
            ),
            ("bytes=0-9,5-19", RangeRequest::Partial(vec![br(0, 19)])),
            ("bytes=2000-3000", RangeRequest::Unsatisfiable),
            ("bytes=1024-", RangeRequest::Unsatisfiable),
            ("bytes=-0", RangeRequest::Unsatisfiable),
            ("bytes=9-0", RangeRequest::Full),
            ("items=0-9", RangeRequest::Full),
            ("bytes=a-b", RangeRequest::Full),
            ("bytes=", RangeRequest::Full),
        ];
        for (h, want) in cases {
            assert_eq!(&parse(h, 1024), want, "Range: {h}");
        }
    }

    #[test]
    fn multipart_parts_carry_their_ranges() {
        let data: Vec<u8> = (0..100u8).collect();
        let body = multipart(&data, "application/octet-stream", &[br(0, 1), br(10, 11)]);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("Content-Range: bytes 0-1/100"));
        assert!(text.contains("Content-Range: bytes 10-11/100"));
        assert!(text.ends_with("--statuslab-byteranges--\r\n"));
    }
}
