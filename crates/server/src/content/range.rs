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
    /// One or more satisfiable ranges, sorted by first byte, coalesced where they overlap or
    /// touch (RFC 9110 §14.6 allows both whatever order they were asked in).
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

/// Sorts ranges by first byte and merges overlapping or adjacent ones.
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

/// Properties of `Range` parsing, shared by the property tests below and the `range` fuzz
/// target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any header and length: no panic; the ranges of a partial answer are non-empty, at
    /// most [`MAX_RANGES`], each within `0..len` with `first <= last`, sorted and neither
    /// overlapping nor adjacent (coalesced); their `Content-Range` reads back as the range; and
    /// a `multipart/byteranges` body of them (for a length that fits in memory) holds exactly
    /// the asked bytes.
    pub(crate) fn check_parse(header: &str, len: u64) -> RangeRequest {
        let got = parse(header, len);
        if let RangeRequest::Partial(ranges) = &got {
            assert!(
                !ranges.is_empty() && ranges.len() <= MAX_RANGES,
                "{ranges:?}"
            );
            for r in ranges {
                assert!(r.first <= r.last && r.last < len, "{r:?} of {len}");
                assert_eq!(
                    content_range(*r, len),
                    format!("bytes {}-{}/{len}", r.first, r.last)
                );
            }
            for pair in ranges.windows(2) {
                assert!(pair[0].last + 1 < pair[1].first, "{ranges:?}");
            }
            if len <= 4096 {
                let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let body = multipart(&data, "text/plain", ranges);
                let parts: usize = ranges.iter().map(|r| (r.last - r.first + 1) as usize).sum();
                assert!(body.len() > parts);
                assert!(body.ends_with(format!("\r\n--{BOUNDARY}--\r\n").as_bytes()));
                for r in ranges {
                    let head = format!("Content-Range: {}\r\n\r\n", content_range(*r, len));
                    let at = find(&body, head.as_bytes()).expect("every part has its head");
                    let part = &body[at + head.len()..];
                    assert!(part.starts_with(&data[r.first as usize..=r.last as usize]));
                }
            }
        }
        got
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    /// One range-spec as asked: `first-last`, `first-` or `-suffix`.
    #[cfg(test)]
    #[derive(Debug, Clone)]
    enum Spec {
        Closed(u64, u64),
        Open(u64),
        Suffix(u64),
    }

    #[cfg(test)]
    fn spec() -> impl Strategy<Value = Spec> {
        prop_oneof![
            (0u64..80, 0u64..80).prop_map(|(a, b)| Spec::Closed(a.min(b), a.max(b))),
            (0u64..80).prop_map(Spec::Open),
            (0u64..80).prop_map(Spec::Suffix),
        ]
    }

    #[cfg(test)]
    fn render(s: &Spec) -> String {
        match s {
            Spec::Closed(a, b) => format!("{a}-{b}"),
            Spec::Open(a) => format!("{a}-"),
            Spec::Suffix(n) => format!("-{n}"),
        }
    }

    /// The bytes of `0..len` a spec asks for (empty if unsatisfiable).
    #[cfg(test)]
    fn covers(s: &Spec, len: u64) -> std::ops::Range<u64> {
        match *s {
            Spec::Closed(a, b) => a.min(len)..(b + 1).min(len),
            Spec::Open(a) => a.min(len)..len,
            Spec::Suffix(n) => len.saturating_sub(n)..len,
        }
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn any_header_is_bounded(
            header in prop_oneof![
                ".{0,40}",
                "bytes=[0-9, -]{0,40}",
                "bytes=([0-9]{0,20}-[0-9]{0,20},){0,20}",
            ],
            len in prop_oneof![0u64..100, Just(u64::MAX), any::<u64>()],
        ) {
            check_parse(&header, len);
        }

        /// Well-formed specs give exactly the bytes they ask for (their union, coalesced), or
        /// 416 when none is satisfiable; more than 16 satisfiable ones are ignored (`Full`).
        #[test]
        fn well_formed_specs_give_the_bytes_asked(
            specs in vec(spec(), 1..20),
            len in 0u64..64,
            ows in prop_oneof![Just(""), Just(" "), Just(" \t")],
        ) {
            let header = format!(
                "bytes={}",
                specs.iter().map(render).collect::<Vec<_>>().join(&format!("{ows},{ows}"))
            );
            let asked: Vec<_> = specs.iter().map(|s| covers(s, len)).filter(|r| !r.is_empty()).collect();
            let got = check_parse(&header, len);
            if asked.len() > MAX_RANGES {
                prop_assert_eq!(got, RangeRequest::Full);
            } else if asked.is_empty() {
                prop_assert_eq!(got, RangeRequest::Unsatisfiable);
            } else {
                let RangeRequest::Partial(ranges) = got else {
                    return Err(TestCaseError::fail(format!("{header}: {got:?}")));
                };
                let mut want = vec![false; len as usize];
                for r in &asked {
                    (r.start..r.end).for_each(|i| want[i as usize] = true);
                }
                let mut have = vec![false; len as usize];
                for r in &ranges {
                    (r.first..=r.last).for_each(|i| have[i as usize] = true);
                }
                prop_assert_eq!(have, want, "{}", header);
            }
        }

        /// One closed range inside the representation comes back as itself.
        #[test]
        fn one_range_round_trips(len in 1u64..u64::MAX, a in any::<u64>(), b in any::<u64>()) {
            let (first, last) = (a.min(b) % len, a.max(b) % len);
            let (first, last) = (first.min(last), first.max(last));
            prop_assert_eq!(
                check_parse(&format!("bytes={first}-{last}"), len),
                RangeRequest::Partial(vec![ByteRange { first, last }])
            );
        }
    }
}
