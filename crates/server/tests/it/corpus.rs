//! A generated corpus of malformed and ambiguous HTTP/1.1 requests: the evidence that holds the
//! connection layer's framing. Every case is generated here (no checked-in blob), from a fixed
//! list of spellings multiplied by the contexts they can appear in (method, where the field sits
//! in the head, what precedes a chunk), and is sent with a pipelined **canary** request behind
//! it in the same write:
//!
//! ```text
//! GET /status/299?canary=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n
//! ```
//!
//! Each case goes out twice on fresh connections: whole (one write) and dribbled (one byte per
//! write for a fixed subset, a few bytes per write from a seeded generator for the rest). For
//! both, the only acceptable outcomes are
//!
//! - (a) one 4xx/5xx answer, then the server closes the connection; or
//! - (b) exactly one answer for the case, then the canary's 299, then the close the canary
//!   asked for;
//!
//! never a hang (a bounded read per case), never an answer to the request hidden inside the
//! case's content (`GET /status/288`, placed where a lenient reading of the framing would
//! execute it), never bytes that do not parse as responses, and never a different outcome for
//! the two segmentations. Cases whose answer the RFCs fix (a field the server must refuse, a
//! request it must serve) also say which of (a) and (b) it must be.
//!
//! The test runs every case, then fails once, listing each failing case with its bytes and
//! both outcomes, and a per-family summary.

use crate::support::TestServer;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The pipelined request behind every case; `Connection: close` makes the server end the
/// exchange, so an outcome is complete at EOF.
pub(crate) const CANARY: &[u8] =
    b"GET /status/299?canary=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
pub(crate) const CANARY_CODE: u16 = 299;
/// The request hidden inside cases' content: its answer must never appear.
pub(crate) const SMUGGLED: &[u8] = b"GET /status/288 HTTP/1.1\r\nHost: x\r\n\r\n";
pub(crate) const SMUGGLED_CODE: u16 = 288;
/// The corpus may not shrink below this many distinct cases.
const MIN_CASES: usize = 1500;
/// How long one sending of one case may take, writes and reads together.
const CASE_DEADLINE: Duration = Duration::from_secs(8);
/// The server's header, body and idle timeouts: incomplete cases end in 408 (or a close) fast.
const SERVER_TIMEOUT: Duration = Duration::from_secs(4);
/// Cases in flight at once.
const CONCURRENCY: usize = 64;
/// One case in this many (among the short ones) is dribbled one byte per write.
const BYTE_BY_BYTE_EVERY: usize = 5;
/// Cases (with the canary) up to this length may be dribbled one byte per write.
const BYTE_BY_BYTE_MAX: usize = 1024;
/// The fixed seed of the dribbling splits.
const SEED: u64 = 0x5747_4c41_4253_0001;

/// What a case's answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// (a): a 4xx/5xx, then the close (the framing cannot be trusted).
    Reject,
    /// A 4xx/5xx for the case; the framing is clear, so the connection may close (a) or go
    /// on to the canary (b).
    Error,
    /// Like `Error`, with this code.
    Code(u16),
    /// (b): the case is served and the canary after it.
    Accept,
    /// (a) or (b): the RFCs allow either.
    Either,
}

/// One generated request.
struct Case {
    family: &'static str,
    label: String,
    bytes: Vec<u8>,
    want: Want,
}

/// Where a mutated field sits in the head.
#[derive(Debug, Clone, Copy)]
enum Pos {
    /// Before `Host`.
    First,
    /// Right after `Host`.
    AfterHost,
    /// Between two ordinary fields, after `Host`.
    Between,
}

const POSITIONS: [Pos; 3] = [Pos::First, Pos::AfterHost, Pos::Between];

/// Collects cases.
#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    fn add(&mut self, family: &'static str, label: String, bytes: Vec<u8>, want: Want) {
        self.cases.push(Case {
            family,
            label,
            bytes,
            want,
        });
    }
}

/// A request head: the request line, the field lines (each without its CRLF), the empty line.
fn head(line: &[u8], fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = line.to_vec();
    out.extend_from_slice(b"\r\n");
    for f in fields {
        out.extend_from_slice(f);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `Host: x` and the mutated `lines`, arranged as `pos` says.
fn place(pos: Pos, lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let host = b"Host: x".to_vec();
    let mut out = Vec::new();
    match pos {
        Pos::First => {
            out.extend(lines.iter().cloned());
            out.push(host);
        }
        Pos::AfterHost => {
            out.push(host);
            out.extend(lines.iter().cloned());
        }
        Pos::Between => {
            out.push(host);
            out.push(b"X-A: 1".to_vec());
            out.extend(lines.iter().cloned());
            out.push(b"X-B: 2".to_vec());
        }
    }
    out
}

fn field(name: &[u8], value: &[u8]) -> Vec<u8> {
    cat(&[name, b": ", value])
}

/// Bytes as an escaped literal (`\r\n`, `\xff`).
pub(crate) fn esc(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

/// `esc`, shortened in the middle for long cases.
pub(crate) fn esc_short(b: &[u8]) -> String {
    if b.len() <= 400 {
        return esc(b);
    }
    format!(
        "{}…[{} bytes in all]…{}",
        esc(&b[..240]),
        b.len(),
        esc(&b[b.len() - 100..])
    )
}

/// A valid one-chunk chunked body: `5\r\nhello\r\n0\r\n\r\n`.
const CHUNKED_HELLO: &[u8] = b"5\r\nhello\r\n0\r\n\r\n";

// ---- the generators ------------------------------------------------------------------------

/// `Content-Length` spellings, lists and duplicates. A value that must be refused carries
/// `hello` and then the smuggled request: read leniently as 5, the smuggled request runs.
fn content_length(c: &mut Corpus) {
    use Want::*;
    let cl = |v: &[u8]| field(b"Content-Length", v);
    // (field lines, want, length a server that accepts must read)
    let mut variants: Vec<(Vec<Vec<u8>>, Want, usize)> = Vec::new();
    let singles: &[(&[u8], Want, usize)] = &[
        (b"5", Accept, 5),
        (b"0", Accept, 0),
        (b"05", Either, 5),
        (b"005", Either, 5),
        (b"0000000000000000005", Either, 5),
        (b"00000000000000000005", Either, 5),
        (b" 5 ", Either, 5),
        (b"5\t", Either, 5),
        (b"\t5", Either, 5),
        (b"5,5", Either, 5),
        (b"5, 5", Either, 5),
        (b"5 ,5", Either, 5),
        (b"5,", Either, 5),
        (b",5", Either, 5),
        (b"5,,5", Either, 5),
        (b"+5", Reject, 0),
        (b"+0", Reject, 0),
        (b"-1", Reject, 0),
        (b"-5", Reject, 0),
        (b"-0", Reject, 0),
        (b"0x5", Reject, 0),
        (b"0X5", Reject, 0),
        (b"0x05", Reject, 0),
        (b"5 5", Reject, 0),
        (b"5, 6", Reject, 0),
        (b"6, 5", Reject, 0),
        (b"5,6", Reject, 0),
        (b"0,5", Reject, 0),
        (b"5,0", Reject, 0),
        (b"5;", Reject, 0),
        (b"5;x=1", Reject, 0),
        (b"5.0", Reject, 0),
        (b"5.", Reject, 0),
        (b"1e1", Reject, 0),
        (b"5a", Reject, 0),
        (b"a5", Reject, 0),
        (b"five", Reject, 0),
        (b"\"5\"", Reject, 0),
        (b"", Reject, 0),
        (b"99999999999999999999", Reject, 0),
        (b"18446744073709551615", Reject, 0),
        (b"18446744073709551616", Reject, 0),
        (b"18446744073709551621", Reject, 0),
        (b"\xd9\xa5", Reject, 0),
        (b"\xef\xbc\x95", Reject, 0),
        (b"5\x0b", Reject, 0),
        (b"\x0b5", Reject, 0),
        (b"5\x0c", Reject, 0),
        (b"5\xff", Reject, 0),
    ];
    for &(v, want, n) in singles {
        variants.push((vec![cl(v)], want, n));
    }
    let spellings: &[(&[u8], Want, usize)] = &[
        (b"Content-Length:5", Accept, 5),
        (b"content-length: 5", Accept, 5),
        (b"CONTENT-LENGTH: 5", Accept, 5),
    ];
    for &(line, want, n) in spellings {
        variants.push((vec![line.to_vec()], want, n));
    }
    let doubles: &[(&[u8], &[u8], Want, usize)] = &[
        (b"5", b"5", Either, 5),
        (b"5", b"05", Either, 5),
        (b"5", b"5,5", Either, 5),
        (b"5", b"6", Reject, 0),
        (b"6", b"5", Reject, 0),
        (b"0", b"5", Reject, 0),
        (b"5", b"0", Reject, 0),
        (b"5", b"", Reject, 0),
        (b"", b"5", Reject, 0),
        (b"5", b"+5", Reject, 0),
        (b"5", b"0x5", Reject, 0),
    ];
    for &(a, b, want, n) in doubles {
        variants.push((vec![cl(a), cl(b)], want, n));
    }
    for (lines, want, n) in &variants {
        let body = if *want == Reject {
            cat(&[b"hello", SMUGGLED])
        } else {
            b"hello"[..*n].to_vec()
        };
        for method in ["POST", "PUT", "PATCH"] {
            for pos in POSITIONS {
                let line = format!("{method} /status/200 HTTP/1.1");
                let bytes = cat(&[&head(line.as_bytes(), &place(pos, lines)), &body]);
                let shown: Vec<String> = lines.iter().map(|l| esc(l)).collect();
                c.add(
                    "content-length",
                    format!("{} | {method} {pos:?}", shown.join(" + ")),
                    bytes,
                    *want,
                );
            }
        }
    }
}

/// `Transfer-Encoding` spellings, lists, duplicates and order; with `Content-Length`; on
/// HTTP/1.0. A value that must be refused carries an empty chunked body and then the smuggled
/// request: read as chunked, the smuggled request runs; read as no content, `0` is a request
/// line.
fn transfer_encoding(c: &mut Corpus) {
    use Want::*;
    let te = |v: &[u8]| field(b"Transfer-Encoding", v);
    let mut variants: Vec<(Vec<Vec<u8>>, Want)> = Vec::new();
    let singles: &[(&[u8], Want)] = &[
        (b"chunked", Accept),
        (b"Chunked", Accept),
        (b"CHUNKED", Accept),
        (b"cHuNkEd", Accept),
        (b" chunked", Accept),
        (b"chunked ", Accept),
        (b"\tchunked", Accept),
        (b"gzip, chunked", Either),
        (b"gzip,chunked", Either),
        (b"deflate, chunked", Either),
        (b"identity, chunked", Either),
        (b"x-custom, chunked", Either),
        (b", chunked", Either),
        (b"chunked,", Either),
        (b"chunked;", Either),
        (b"chunked;q=1", Either),
        (b"chunked, gzip", Reject),
        (b"chunked,gzip", Reject),
        (b"chunked, identity", Reject),
        (b"chunked, chunked", Reject),
        (b"chunked,chunked", Reject),
        (b"gzip", Reject),
        (b"identity", Reject),
        (b"deflate", Reject),
        (b"", Reject),
        (b"xchunked", Reject),
        (b"chunkedx", Reject),
        (b"chunk", Reject),
        (b"chunked\x0b", Reject),
        (b"\x0bchunked", Reject),
        (b"chunked\x0c", Reject),
        (b"chunked\x01", Reject),
        (b"\xffchunked", Reject),
        (b"chunked\xff", Reject),
        (b"chunk\xffed", Reject),
        (b"\xc2\xa0chunked", Reject),
        (b"\"chunked\"", Reject),
        (b"ch unked", Reject),
        (b"chunked chunked", Reject),
        (b"chunked\\", Reject),
    ];
    for &(v, want) in singles {
        variants.push((vec![te(v)], want));
    }
    let spellings: &[(&[u8], Want)] = &[
        (b"transfer-encoding: chunked", Accept),
        (b"TRANSFER-ENCODING: chunked", Accept),
        (b"Transfer-Encoding:chunked", Accept),
    ];
    for &(line, want) in spellings {
        variants.push((vec![line.to_vec()], want));
    }
    let doubles: &[(&[u8], &[u8], Want)] = &[
        (b"gzip", b"chunked", Either),
        (b"identity", b"chunked", Either),
        (b"", b"chunked", Either),
        (b"chunked", b"", Either),
        (b"xchunked", b"chunked", Either),
        (b"chunked", b"chunked", Reject),
        (b"chunked", b"gzip", Reject),
        (b"chunked", b"identity", Reject),
        (b"\xffgzip", b"chunked", Reject),
        (b"chunked", b"\xffgzip", Reject),
        (b"chunked", b"chunked\x0b", Reject),
        (b"\xffchunked", b"gzip", Reject),
    ];
    for &(a, b, want) in doubles {
        variants.push((vec![te(a), te(b)], want));
    }
    for (lines, want) in &variants {
        let body = if *want == Reject {
            cat(&[b"0\r\n\r\n", SMUGGLED])
        } else {
            CHUNKED_HELLO.to_vec()
        };
        for method in ["POST", "PUT"] {
            for pos in POSITIONS {
                let line = format!("{method} /status/200 HTTP/1.1");
                let bytes = cat(&[&head(line.as_bytes(), &place(pos, lines)), &body]);
                let shown: Vec<String> = lines.iter().map(|l| esc(l)).collect();
                c.add(
                    "transfer-encoding",
                    format!("{} | {method} {pos:?}", shown.join(" + ")),
                    bytes,
                    *want,
                );
            }
        }
    }

    // Transfer-Encoding with Content-Length, in either order: always refused.
    let body = cat(&[b"0\r\n\r\n", SMUGGLED]);
    let whole_len = body.len().to_string();
    let tes: &[&[u8]] = &[
        b"chunked",
        b"Chunked",
        b" chunked",
        b"gzip, chunked",
        b"\xffchunked",
        b"chunked, gzip",
    ];
    for &t in tes {
        for l in ["5", "0", whole_len.as_str()] {
            for te_first in [true, false] {
                let lines = if te_first {
                    vec![te(t), field(b"Content-Length", l.as_bytes())]
                } else {
                    vec![field(b"Content-Length", l.as_bytes()), te(t)]
                };
                for method in ["POST", "PUT"] {
                    for pos in [Pos::First, Pos::AfterHost] {
                        let line = format!("{method} /status/200 HTTP/1.1");
                        let bytes = cat(&[&head(line.as_bytes(), &place(pos, &lines)), &body]);
                        let shown: Vec<String> = lines.iter().map(|l| esc(l)).collect();
                        c.add(
                            "te+cl",
                            format!("{} | {method} {pos:?}", shown.join(" + ")),
                            bytes,
                            Reject,
                        );
                    }
                }
            }
        }
    }

    // Transfer-Encoding on HTTP/1.0 (kept alive, so a wrong acceptance shows).
    for &t in &[&b"chunked"[..], b"Chunked", b" chunked", b"gzip, chunked"] {
        for with_cl in [false, true] {
            for pos in POSITIONS {
                let mut lines = vec![b"Connection: keep-alive".to_vec(), te(t)];
                if with_cl {
                    lines.push(field(b"Content-Length", b"5"));
                }
                let bytes = cat(&[
                    &head(b"POST /status/200 HTTP/1.0", &place(pos, &lines)),
                    &body,
                ]);
                c.add(
                    "te-http1.0",
                    format!(
                        "HTTP/1.0 {}{} | {pos:?}",
                        esc(&te(t)),
                        if with_cl { " + CL 5" } else { "" }
                    ),
                    bytes,
                    Reject,
                );
            }
        }
    }
}

/// The head of a chunked upload.
fn chunked_head(method: &str) -> Vec<u8> {
    let line = format!("{method} /status/200 HTTP/1.1");
    head(
        line.as_bytes(),
        &[b"Host: x".to_vec(), b"Transfer-Encoding: chunked".to_vec()],
    )
}

/// Chunks that may precede the case's chunk-size line.
const PREFIXES: [&[u8]; 3] = [b"", b"5\r\nhello\r\n", b"10\r\n0123456789abcdef\r\n"];

/// Chunk-size lines. A line that must be refused is followed by `hello`, an empty last chunk
/// and the smuggled request: read as size 5 or as size 0 (then `hello` and `0` as trailer
/// lines), the smuggled request runs.
fn chunk_size(c: &mut Corpus) {
    use Want::*;
    let mut lines: Vec<(Vec<u8>, Want, &[u8])> = Vec::new();
    let valid: &[(&[u8], Want, &[u8])] = &[
        (b"5\r\n", Accept, b"hello"),
        (b"05\r\n", Accept, b"hello"),
        (b"a\r\n", Accept, b"helloworld"),
        (b"A\r\n", Accept, b"helloworld"),
        (b"5;x\r\n", Accept, b"hello"),
        (b"5;x=y\r\n", Accept, b"hello"),
        (b"5;x=\"y\"\r\n", Accept, b"hello"),
        (b"5;x=\"a;b\"\r\n", Accept, b"hello"),
        (b"5;x=\"a\\\"b\"\r\n", Accept, b"hello"),
        (b"5;x=y;z\r\n", Accept, b"hello"),
        (b"5;x=y;z=\"w\"\r\n", Accept, b"hello"),
        (b"5 ;x\r\n", Either, b"hello"),
        (b"5; x\r\n", Either, b"hello"),
        (b"5;x = y\r\n", Either, b"hello"),
        (b"5\t;x\r\n", Either, b"hello"),
        (b"00000000000000005\r\n", Either, b"hello"),
        (b"000000000000000000005\r\n", Either, b"hello"),
    ];
    for &(l, w, d) in valid {
        lines.push((l.to_vec(), w, d));
    }
    // 5,000 bytes of extensions: allowed or refused, but the same whatever the segmentation.
    lines.push((cat(&[b"5;", &b"e".repeat(5000), b"\r\n"]), Either, b"hello"));
    lines.push((
        cat(&[b"5", &b";e=v".repeat(1250), b"\r\n"]),
        Either,
        b"hello",
    ));
    let invalid: &[&[u8]] = &[
        b"\r\n",
        b" \r\n",
        b"\t\r\n",
        b"  \r\n",
        b";\r\n",
        b";x\r\n",
        b";x=y\r\n",
        b" ;x\r\n",
        b"0x5\r\n",
        b"0X5\r\n",
        b"x5\r\n",
        b"5 x\r\n",
        b"5x\r\n",
        b"5g\r\n",
        b"g\r\n",
        b"-5\r\n",
        b"-0\r\n",
        b"+5\r\n",
        b" 5\r\n",
        b"  5\r\n",
        b"\t5\r\n",
        b"5 \r\n",
        b"5\t\r\n",
        b"5  \r\n",
        b"5 5\r\n",
        b"ffffffffffffffff\r\n",
        b"fffffffffffffff0\r\n",
        b"8000000000000000\r\n",
        b"7fffffffffffffff\r\n",
        b"10000000000000005\r\n",
        b"fffffffffffffffff\r\n",
        b"5\n",
        b"5;x\n",
        b"\n",
        b"5\r",
        b"\r",
        b"5\r\r\n",
        b"5\n\r\n",
        b"5;\x00\r\n",
        b"5;\x01\r\n",
        b"5;\x7f\r\n",
        b"5;x\x00y\r\n",
        b"5;\xff\r\n",
        b"5;x=\xff\r\n",
        b"5;x y\r\n",
        b"5;x=y z\r\n",
        b"5;x=\"y\r\n",
        b"5;x=\"y\\\"\r\n",
        b"5;x=y\"\r\n",
        b"5;=y\r\n",
        b"5;x=\r\n",
        b"5;x==y\r\n",
        b"5;;\r\n",
        b"5;(x)\r\n",
        b"5;x=(y)\r\n",
        b"5;x\x0b\r\n",
        b"5;x\ty\r\n",
        b"5;x=\"a\rb\"\r\n",
        b"5\x00\r\n",
        b"\x005\r\n",
        b"5\x0b\r\n",
    ];
    for &l in invalid {
        lines.push((l.to_vec(), Reject, b""));
    }
    // An extension larger than 16 KiB.
    lines.push((cat(&[b"5;", &b"x".repeat(17 * 1024), b"\r\n"]), Reject, b""));
    for (line, want, data) in &lines {
        let tail = if *want == Reject {
            cat(&[b"hello\r\n0\r\n\r\n", SMUGGLED])
        } else {
            cat(&[data, b"\r\n0\r\n\r\n"])
        };
        for prefix in PREFIXES {
            for method in ["POST", "PUT"] {
                let bytes = cat(&[&chunked_head(method), prefix, line, &tail]);
                c.add(
                    "chunk-size",
                    format!(
                        "size line {} after {:?} | {method}",
                        esc_short(line),
                        esc(prefix)
                    ),
                    bytes,
                    *want,
                );
            }
        }
    }
}

/// Chunk data not followed by CRLF, and a last chunk not ended properly; then the smuggled
/// request, which a decoder that does not check the delimiters would run.
fn chunk_data(c: &mut Corpus) {
    let bodies: &[&[u8]] = &[
        b"5\r\nhelloXX\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r0\r\n\r\n",
        b"5\r\nhello0\r\n\r\n",
        b"5\r\nhello \r\n0\r\n\r\n",
        b"5\r\nhell\r\n0\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\n\r\n0\r\n\r\n",
        b"5\r\nhello\r\r\n0\r\n\r\n",
        b"5\r\nhello\x00\r\n0\r\n\r\n",
        b"5\r\nhello",
        b"5\r\nhello\r\n0\r\n\r",
        b"5\r\nhello\r\n0\r\n\n\n",
        b"6\r\nhello\r\n0\r\n\r\n",
    ];
    for &b in bodies {
        for prefix in [&b""[..], b"1\r\nA\r\n"] {
            for method in ["POST", "PUT"] {
                let bytes = cat(&[&chunked_head(method), prefix, b, SMUGGLED]);
                c.add(
                    "chunk-data",
                    format!("{}{} | {method}", esc(prefix), esc(b)),
                    bytes,
                    Want::Reject,
                );
            }
        }
    }
}

/// Trailer sections: valid, malformed, with bare LF, and larger than 8 KiB in small lines. The
/// canary follows directly: a decoder that skips to the next CRLF swallows it.
fn trailers(c: &mut Corpus) {
    use Want::*;
    let big = |lines: usize| -> Vec<u8> {
        let mut t = Vec::new();
        for i in 0..lines {
            // 58 bytes of field line plus CRLF: 60 bytes a line.
            let mut l = format!("X-T{i:04}: ").into_bytes();
            l.resize(58, b'v');
            t.extend_from_slice(&l);
            t.extend_from_slice(b"\r\n");
        }
        t.extend_from_slice(b"\r\n");
        t
    };
    let mut sections: Vec<(Vec<u8>, Want)> = vec![
        (b"\r\n".to_vec(), Accept),
        (b"X: a\r\n\r\n".to_vec(), Accept),
        (b"X: a\r\nY: b\r\n\r\n".to_vec(), Accept),
        (b"X:a\r\n\r\n".to_vec(), Accept),
        (b"X: \r\n\r\n".to_vec(), Accept),
        (cat(&[b"X-Long: ", &b"a".repeat(1000), b"\r\n\r\n"]), Accept),
        (b"X: \xff\r\n\r\n".to_vec(), Either),
        (b"Content-Length: 5\r\n\r\n".to_vec(), Either),
        (b"Transfer-Encoding: chunked\r\n\r\n".to_vec(), Either),
        (b"Host: y\r\n\r\n".to_vec(), Either),
        (b"X: a\r\n b\r\n\r\n".to_vec(), Either),
        (b"X: a\r\n\tb\r\n\r\n".to_vec(), Either),
        (b"X: a\n\n".to_vec(), Either),
        (b"X: a\r\n\n".to_vec(), Either),
        (b"X: a\n\r\n".to_vec(), Either),
        (b"\n".to_vec(), Either),
        (big(120), Either),
        (b"X a\r\n\r\n".to_vec(), Reject),
        (b"X\r\n\r\n".to_vec(), Reject),
        (b"X: a\rY: b\r\n\r\n".to_vec(), Either),
        (b"X: a\r\r\n\r\n".to_vec(), Either),
        (b": a\r\n\r\n".to_vec(), Reject),
        (b"X : a\r\n\r\n".to_vec(), Reject),
        (b"X\x00: a\r\n\r\n".to_vec(), Reject),
        (b"X: a\x00\r\n\r\n".to_vec(), Either),
        (b"X\xff: a\r\n\r\n".to_vec(), Reject),
        (b" X: a\r\n\r\n".to_vec(), Reject),
        (cat(&[SMUGGLED]), Reject),
        (big(200), Reject),
        (cat(&[b"X-Huge: ", &b"a".repeat(9000), b"\r\n\r\n"]), Reject),
    ];
    // A last chunk with an extension, then a valid section.
    sections.push((b"\r\n".to_vec(), Accept));
    for (i, (section, want)) in sections.iter().enumerate() {
        let last: &[u8] = if i + 1 == sections.len() {
            b"0;x=y\r\n"
        } else {
            b"0\r\n"
        };
        for prefix in [&b""[..], b"5\r\nhello\r\n"] {
            for method in ["POST", "PUT"] {
                let bytes = cat(&[&chunked_head(method), prefix, last, section]);
                c.add(
                    "trailers",
                    format!(
                        "{}{}{} | {method}",
                        esc(prefix),
                        esc(last),
                        esc_short(section)
                    ),
                    bytes,
                    *want,
                );
            }
        }
    }
}

/// The shapes a head-level case is tried with: no content, `Content-Length`, chunked.
fn with_bodies(
    c: &mut Corpus,
    family: &'static str,
    label: &str,
    line: &[u8],
    fields: &[Vec<u8>],
    want: Want,
) {
    c.add(
        family,
        format!("{label} | no content"),
        head(line, fields),
        want,
    );
    let mut cl = fields.to_vec();
    cl.push(b"Content-Length: 5".to_vec());
    c.add(
        family,
        format!("{label} | Content-Length"),
        cat(&[&head(line, &cl), b"hello"]),
        want,
    );
    let mut te = fields.to_vec();
    te.push(b"Transfer-Encoding: chunked".to_vec());
    c.add(
        family,
        format!("{label} | chunked"),
        cat(&[&head(line, &te), CHUNKED_HELLO]),
        want,
    );
}

/// Line endings and obs-fold in the head.
fn line_endings(c: &mut Corpus) {
    use Want::*;
    // Raw heads (without content): the line and field section as sent.
    let heads: &[(&[u8], Want)] = &[
        (b"POST /status/200 HTTP/1.1\nHost: x\n", Either),
        (b"POST /status/200 HTTP/1.1\r\nHost: x\n", Either),
        (b"POST /status/200 HTTP/1.1\nHost: x\r\n", Either),
        (b"POST /status/200 HTTP/1.1\r\nHost: x\r\nX: a\n", Either),
        (b"\r\nPOST /status/200 HTTP/1.1\r\nHost: x\r\n", Either),
        (
            b"POST /status/200 HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n",
            Either,
        ),
        (
            b"POST /status/200 HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n",
            Either,
        ),
        (
            b"POST /status/200 HTTP/1.1\r\nX: a\r\n b\r\nHost: x\r\n",
            Either,
        ),
        // A bare CR is invalid, or read as SP (RFC 9112 §2.2): never a line end.
        (
            b"POST /status/200 HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n",
            Either,
        ),
        (
            b"POST /status/200 HTTP/1.1\r\nHost: x\r\nX: a\r\r\n",
            Either,
        ),
        (b"POST /status/200 HTTP/1.1\rHost: x\r\n", Reject),
        (b"POST /status/200 HTTP/1.1\r\nHost: x\rX: y\r\n", Error),
        (b"POST /status/200 HTTP/1.1\r\nHost: x\r\n\rX: a\r\n", Error),
        // A fold of Host makes it `x y`; a first field line that starts with whitespace is
        // refused or ignored (RFC 9112 §2.2), and then Host is missing.
        (b"POST /status/200 HTTP/1.1\r\nHost: x\r\n y\r\n", Error),
        (b"POST /status/200 HTTP/1.1\r\n Host: x\r\n", Error),
        (b"POST /status/200 HTTP/1.1\r\n\tHost: x\r\n", Error),
    ];
    for &(h, want) in heads {
        // `h` ends with its last field line's terminator; the empty line matches its style.
        let end: &[u8] = if h.ends_with(b"\r\n") { b"\r\n" } else { b"\n" };
        let label = esc(h);
        c.add(
            "line-endings",
            format!("{label} | no content"),
            cat(&[h, end]),
            want,
        );
        c.add(
            "line-endings",
            format!("{label} | Content-Length"),
            cat(&[h, b"Content-Length: 5\r\n", end, b"hello"]),
            want,
        );
        c.add(
            "line-endings",
            format!("{label} | chunked"),
            cat(&[h, b"Transfer-Encoding: chunked\r\n", end, CHUNKED_HELLO]),
            want,
        );
    }
    // Folded framing fields. Unfolded (obs-fold read as SP) some are valid, and then the
    // content is exactly what they say; the others must be refused, and carry the smuggled
    // request where a lenient reading would run it.
    let folded: &[(&[u8], &[u8], Want)] = &[
        (b"Content-Length:\r\n 5", b"hello", Either),
        (b"Content-Length: 5\r\n\t", b"hello", Either),
        (b"Transfer-Encoding:\r\n chunked", CHUNKED_HELLO, Either),
        (b"Content-Length: 5\r\n 5", b"hello", Reject),
        (b"Content-Length: 5\r\n 6", b"hello", Reject),
        (b"Transfer-Encoding: gzip\r\n chunked", b"0\r\n\r\n", Reject),
        (
            b"Transfer-Encoding: chunked\r\n ,gzip",
            b"0\r\n\r\n",
            Reject,
        ),
    ];
    for &(f, body, want) in folded {
        for pos in POSITIONS {
            let mut bytes = cat(&[
                &head(b"POST /status/200 HTTP/1.1", &place(pos, &[f.to_vec()])),
                body,
            ]);
            if want == Reject {
                bytes.extend_from_slice(SMUGGLED);
            }
            c.add(
                "line-endings",
                format!("folded {} | {pos:?}", esc(f)),
                bytes,
                want,
            );
        }
    }
}

/// Request-line variants, each with no content, `Content-Length` and chunked content.
fn request_line(c: &mut Corpus) {
    use Want::*;
    let long = |n: usize| -> Vec<u8> {
        let mut t = b"POST /status/200?pad=".to_vec();
        t.resize(n + 5, b'a');
        t.extend_from_slice(b" HTTP/1.1");
        t
    };
    let lines: Vec<(Vec<u8>, Want)> = vec![
        (b"POST  /status/200 HTTP/1.1".to_vec(), Either),
        (b"POST /status/200  HTTP/1.1".to_vec(), Either),
        (b"POST\t/status/200\tHTTP/1.1".to_vec(), Either),
        (b"POST /status/200\tHTTP/1.1".to_vec(), Either),
        (b"POST /status/200 HTTP/1.1 ".to_vec(), Either),
        (b"POST http://x/status/200 HTTP/1.1".to_vec(), Accept),
        (b"POST http://x:80/status/200 HTTP/1.1".to_vec(), Accept),
        (b"POST HTTP://X/status/200 HTTP/1.1".to_vec(), Either),
        (b"POST https://x/status/200 HTTP/1.1".to_vec(), Either),
        (b"POST //status/200 HTTP/1.1".to_vec(), Either),
        (b"POST /status/200?a=b#frag HTTP/1.1".to_vec(), Either),
        (b"POST /status/\xc3\xa9 HTTP/1.1".to_vec(), Either),
        (b"OPTIONS * HTTP/1.1".to_vec(), Accept),
        (long(8000), Accept),
        (b"post /status/200 HTTP/1.1".to_vec(), Error),
        (b"Post /status/200 HTTP/1.1".to_vec(), Error),
        (b"POST /status/200 HTTP/1.2".to_vec(), Code(505)),
        (b"POST /status/200 HTTP/2.0".to_vec(), Code(505)),
        (b"POST /status/200 HTTP/3.0".to_vec(), Code(505)),
        (b"POST /status/200 HTTP/1.1x".to_vec(), Reject),
        (b"POST /status/200 HTTP/1.10".to_vec(), Reject),
        (b"POST /status/200 HTTP/11".to_vec(), Reject),
        (b"POST /status/200 HTTP/1".to_vec(), Reject),
        (b"POST /status/200 HTTP/".to_vec(), Reject),
        (b"POST /status/200 http/1.1".to_vec(), Reject),
        (b"POST /status/200 HTTP/1.1\x0b".to_vec(), Reject),
        (b"POST /status/200".to_vec(), Reject),
        (b"POST /status/200 ".to_vec(), Reject),
        (b"POST".to_vec(), Reject),
        (b" POST /status/200 HTTP/1.1".to_vec(), Reject),
        (b"POST /sta tus/200 HTTP/1.1".to_vec(), Reject),
        (b"POST /status/\x7f200 HTTP/1.1".to_vec(), Reject),
        (b"POST /status/200\x0b HTTP/1.1".to_vec(), Reject),
        (b"POST status/200 HTTP/1.1".to_vec(), Reject),
        (b"GET * HTTP/1.1".to_vec(), Error),
        (b"POST * HTTP/1.1".to_vec(), Error),
        (b"PO ST /status/200 HTTP/1.1".to_vec(), Reject),
        (b"P(ST /status/200 HTTP/1.1".to_vec(), Reject),
        (long(9000), Code(414)),
        (long(70_000), Code(414)),
    ];
    for (line, want) in &lines {
        with_bodies(
            c,
            "request-line",
            &esc_short(line),
            line,
            &[b"Host: x".to_vec()],
            *want,
        );
    }
}

/// Host variants on HTTP/1.1 (no content, `Content-Length`, chunked) and on HTTP/1.0 kept
/// alive.
fn host(c: &mut Corpus) {
    use Want::*;
    let hosts: &[(&[&[u8]], Want)] = &[
        (&[], Code(400)),
        (&[b"x", b"x"], Code(400)),
        (&[b"x", b"y"], Code(400)),
        (&[b"x", b""], Code(400)),
        (&[b""], Either),
        (&[b"x, y"], Code(400)),
        (&[b"x,y"], Code(400)),
        (&[b"x y"], Code(400)),
        (&[b"u@x"], Code(400)),
        (&[b"u:p@x"], Code(400)),
        (&[b"x/y"], Code(400)),
        (&[b"x?y"], Code(400)),
        (&[b"x#y"], Code(400)),
        (&[b"x\\y"], Code(400)),
        (&[b"x\"y"], Code(400)),
        (&[b"x\ty"], Code(400)),
        (&[b"x:abc"], Code(400)),
        (&[b"x:-1"], Code(400)),
        (&[b"x:80:80"], Code(400)),
        (&[b"[::1"], Code(400)),
        (&[b"::1"], Code(400)),
        (&[b"http://x"], Code(400)),
        (&[b"\xffx"], Code(400)),
        (&[b"\xc3\xa4.example"], Code(400)),
        (&[b"[::1]:80"], Accept),
        (&[b"[::1]"], Accept),
        (&[b"127.0.0.1:80"], Accept),
        (&[b"x:80"], Accept),
        (&[b"X.Example"], Accept),
        (&[b"x:"], Either),
        (&[b"x:99999"], Either),
        (&[b"x%20y"], Either),
    ];
    for &(values, want) in hosts {
        let fields: Vec<Vec<u8>> = values.iter().map(|v| field(b"Host", v)).collect();
        let shown = if values.is_empty() {
            "no Host".to_owned()
        } else {
            let v: Vec<String> = fields.iter().map(|f| esc(f)).collect();
            v.join(" + ")
        };
        with_bodies(
            c,
            "host",
            &shown,
            b"POST /status/200 HTTP/1.1",
            &fields,
            want,
        );
        // HTTP/1.0 needs no Host, but one that is there must be valid.
        let want10 = if values.is_empty() { Accept } else { want };
        let mut f10 = fields.clone();
        f10.push(b"Connection: keep-alive".to_vec());
        c.add(
            "host",
            format!("HTTP/1.0 {shown} | no content"),
            head(b"GET /status/200 HTTP/1.0", &f10),
            want10,
        );
    }
}

/// Field names with spaces, colons and bytes that are not token characters.
fn field_names(c: &mut Corpus) {
    use Want::*;
    let names: &[(&[u8], Want)] = &[
        (b"X:A: 1", Accept),
        (b"X-A!#$%&'*+.^_`|~: 1", Accept),
        (b"X A: 1", Error),
        (b"X : 1", Error),
        (b"X\t: 1", Error),
        (b": 1", Error),
        (b"X\"A: 1", Error),
        (b"X(A: 1", Error),
        (b"X@A: 1", Error),
        (b"X,A: 1", Error),
        (b"X/A: 1", Error),
        (b"X[A]: 1", Error),
        (b"X{A}: 1", Error),
        (b"X=A: 1", Error),
        (b"X;A: 1", Error),
        (b"X\xff: 1", Error),
        (b"\xc3\xa4: 1", Error),
        (b"X\x7f: 1", Error),
        (b"X\x01: 1", Error),
        (b"X\x0b: 1", Error),
        (b"Xyz", Error),
    ];
    for &(line, want) in names {
        for pos in [Pos::AfterHost, Pos::First] {
            with_bodies(
                c,
                "field-name",
                &format!("{} {pos:?}", esc(line)),
                b"POST /status/200 HTTP/1.1",
                &place(pos, &[line.to_vec()]),
                want,
            );
        }
    }
    let long_name = cat(&[&b"X".repeat(9000), b": 1"]);
    with_bodies(
        c,
        "field-name",
        "9000-byte name",
        b"POST /status/200 HTTP/1.1",
        &place(Pos::AfterHost, &[long_name]),
        Either,
    );
    // Framing fields whose names are almost right: a server that trims or folds them frames
    // the message differently, and the smuggled request runs.
    let framing: &[(&[u8], &[u8])] = &[
        (b"Content-Length : 5", b"hello"),
        (b"Content-Length\t: 5", b"hello"),
        (b" Content-Length: 5", b"hello"),
        (b"Content-Length\x0b: 5", b"hello"),
        (b"Transfer-Encoding : chunked", b"0\r\n\r\n"),
        (b"Transfer-Encoding\t: chunked", b"0\r\n\r\n"),
        (b" Transfer-Encoding: chunked", b"0\r\n\r\n"),
        (b"Transfer-Encoding\x0b: chunked", b"0\r\n\r\n"),
    ];
    for &(line, body) in framing {
        for pos in POSITIONS {
            let bytes = cat(&[
                &head(b"POST /status/200 HTTP/1.1", &place(pos, &[line.to_vec()])),
                body,
                SMUGGLED,
            ]);
            c.add(
                "field-name",
                format!("{} | {pos:?}", esc(line)),
                bytes,
                Reject,
            );
        }
    }
    // Look-alike names are other fields: no content. A server that maps `_` to `-` reads the
    // canary as content.
    for line in [
        &b"Content_Length: 5"[..],
        b"Transfer_Encoding: chunked",
        b"Content-Length_: 5",
        b"Transfer-Encoding-: chunked",
    ] {
        for pos in POSITIONS {
            let bytes = head(b"POST /status/200 HTTP/1.1", &place(pos, &[line.to_vec()]));
            c.add(
                "field-name",
                format!("{} | {pos:?}", esc(line)),
                bytes,
                Accept,
            );
        }
    }
}

/// NUL bytes in every part of a request (chunk data is opaque: NUL there is fine).
fn nul(c: &mut Corpus) {
    use Want::*;
    // A NUL in a field value is refused or read as SP (RFC 9110 §5.5); anywhere else in the
    // head it is refused.
    type Head<'a> = (&'a [u8], &'a [&'a [u8]], Want);
    let heads: &[Head<'_>] = &[
        (b"\x00POST /status/200 HTTP/1.1", &[b"Host: x"], Reject),
        (b"POST\x00 /status/200 HTTP/1.1", &[b"Host: x"], Reject),
        (b"POST /status/200\x00 HTTP/1.1", &[b"Host: x"], Reject),
        (b"POST /status/\x00200 HTTP/1.1", &[b"Host: x"], Reject),
        (b"POST /status/200 HTTP/1.1\x00", &[b"Host: x"], Reject),
        (
            b"POST /status/200 HTTP/1.1",
            &[b"Host: x", b"X\x00: a"],
            Reject,
        ),
        (b"POST /status/200 HTTP/1.1", &[b"Host: x", b"\x00"], Reject),
        (b"POST /status/200 HTTP/1.1", &[b"\x00Host: x"], Reject),
        (b"POST /status/200 HTTP/1.1", &[b"Host: x\x00"], Either),
        (
            b"POST /status/200 HTTP/1.1",
            &[b"Host: x", b"X: a\x00b"],
            Either,
        ),
        (b"POST /status/200 HTTP/1.1", &[b"Host: x\x00y"], Code(400)),
    ];
    for &(line, fields, want) in heads {
        let fields: Vec<Vec<u8>> = fields.iter().map(|f| f.to_vec()).collect();
        let shown: Vec<String> = fields.iter().map(|f| esc(f)).collect();
        with_bodies(
            c,
            "nul",
            &format!("{} + {}", esc(line), shown.join(" + ")),
            line,
            &fields,
            want,
        );
    }
    // Read as SP, these NULs leave a valid length or coding, and the content is exactly that;
    // a server must refuse them or frame the content as the SP reading says.
    let framing: &[(&[u8], &[u8])] = &[
        (b"Content-Length: 5\x00", b"hello"),
        (b"Content-Length: \x005", b"hello"),
        (b"Transfer-Encoding: chunked\x00", CHUNKED_HELLO),
        (b"Transfer-Encoding: \x00chunked", CHUNKED_HELLO),
    ];
    for &(f, body) in framing {
        for pos in POSITIONS {
            let bytes = cat(&[
                &head(b"POST /status/200 HTTP/1.1", &place(pos, &[f.to_vec()])),
                body,
            ]);
            c.add("nul", format!("{} | {pos:?}", esc(f)), bytes, Either);
        }
    }
    // Read as SP, these are no valid length or coding: refused, or the smuggled request runs.
    let broken: &[(&[u8], &[u8])] = &[
        (b"Content-Length: 5\x006", b"hello"),
        (b"Transfer-Encoding: chunked\x00gzip", b"0\r\n\r\n"),
    ];
    for &(f, body) in broken {
        for pos in POSITIONS {
            let bytes = cat(&[
                &head(b"POST /status/200 HTTP/1.1", &place(pos, &[f.to_vec()])),
                body,
                SMUGGLED,
            ]);
            c.add("nul", format!("{} | {pos:?}", esc(f)), bytes, Reject);
        }
    }
    for method in ["POST", "PUT"] {
        c.add(
            "nul",
            format!("NUL in chunk data | {method}"),
            cat(&[&chunked_head(method), b"5\r\nh\x00llo\r\n0\r\n\r\n"]),
            Accept,
        );
        c.add(
            "nul",
            format!("NUL in Content-Length content | {method}"),
            cat(&[
                &head(
                    format!("{method} /status/200 HTTP/1.1").as_bytes(),
                    &[b"Host: x".to_vec(), b"Content-Length: 5".to_vec()],
                ),
                b"h\x00llo",
            ]),
            Accept,
        );
        c.add(
            "nul",
            format!("NUL in a trailer name | {method}"),
            cat(&[&chunked_head(method), b"0\r\nX\x00: a\r\n\r\n"]),
            Reject,
        );
    }
}

fn generate() -> Vec<Case> {
    let mut c = Corpus::default();
    content_length(&mut c);
    transfer_encoding(&mut c);
    chunk_size(&mut c);
    chunk_data(&mut c);
    trailers(&mut c);
    line_endings(&mut c);
    request_line(&mut c);
    host(&mut c);
    field_names(&mut c);
    nul(&mut c);
    c.cases
}

// ---- sending and judging --------------------------------------------------------------------

/// How a case's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segmentation {
    /// One write.
    Whole,
    /// One byte per write.
    ByteByByte,
    /// Pieces of 1..=max bytes, from a seeded generator.
    Pieces { seed: u64, max: usize },
    /// Pieces of `size` bytes with a pause after each, so the server reads them one by one.
    Paced { size: usize, pause: Duration },
}

/// A small fixed-seed generator (splitmix64): the same splits on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn pieces(bytes: &[u8], seg: Segmentation) -> Vec<&[u8]> {
    match seg {
        Segmentation::Whole => vec![bytes],
        Segmentation::ByteByByte => bytes.chunks(1).collect(),
        Segmentation::Paced { size, .. } => bytes.chunks(size).collect(),
        Segmentation::Pieces { seed, max } => {
            let mut rng = Rng(seed);
            let mut out = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = (1 + (rng.next() % max as u64) as usize).min(rest.len());
                let (a, b) = rest.split_at(n);
                out.push(a);
                rest = b;
            }
            out
        }
    }
}

/// How the exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The server closed the connection (FIN).
    Closed,
    /// The connection was reset (counts as closed).
    Reset,
    /// Still open when the case's deadline passed.
    Open,
}

/// What one sending of a case produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Status codes of the complete responses, interim ones included, in order.
    pub(crate) statuses: Vec<u16>,
    pub(crate) end: End,
    /// Bytes after the last complete response that do not parse as one.
    pub(crate) garbage: Option<String>,
}

impl Outcome {
    pub(crate) fn closed(&self) -> bool {
        self.end != End::Open
    }

    /// What must not depend on the segmentation.
    pub(crate) fn key(&self) -> (Vec<u16>, bool, bool) {
        (self.statuses.clone(), self.closed(), self.garbage.is_some())
    }

    pub(crate) fn show(&self) -> String {
        let end = match self.end {
            End::Closed => "closed",
            End::Reset => "reset",
            End::Open => "still open at the deadline",
        };
        match &self.garbage {
            Some(g) => format!("{:?} then {end}; unparseable: {g}", self.statuses),
            None => format!("{:?} then {end}", self.statuses),
        }
    }
}

/// Sends `bytes` on a new connection as `seg` says, reading at the same time, until the server
/// closes or `limit` passes.
pub(crate) async fn send(
    addr: SocketAddr,
    bytes: Arc<Vec<u8>>,
    seg: Segmentation,
    limit: Duration,
) -> Outcome {
    let deadline = Instant::now() + limit;
    let stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        other => {
            return Outcome {
                statuses: Vec::new(),
                end: End::Open,
                garbage: Some(format!("could not connect: {other:?}")),
            };
        }
    };
    stream.set_nodelay(true).expect("nodelay");
    let (mut rd, mut wr) = stream.into_split();
    let writer = async {
        let _ = timeout_at(deadline, async {
            for piece in pieces(&bytes, seg) {
                if wr.write_all(piece).await.is_err() {
                    break;
                }
                match seg {
                    Segmentation::Whole => {}
                    Segmentation::Paced { pause, .. } => tokio::time::sleep(pause).await,
                    _ => tokio::task::yield_now().await,
                }
            }
        })
        .await;
    };
    let reader = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let end = loop {
            match timeout_at(deadline, rd.read(&mut chunk)).await {
                Ok(Ok(0)) => break End::Closed,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(_)) => break End::Reset,
                Err(_) => break End::Open,
            }
        };
        (buf, end)
    };
    // The write half stays open (no FIN) until reading is done: a half-close would change
    // what the server does with an incomplete case.
    let ((), (buf, end)) = tokio::join!(writer, reader);
    drop(wr);
    let (statuses, garbage) = parse_responses(&buf);
    Outcome {
        statuses,
        end,
        garbage,
    }
}

/// Splits the received bytes into responses; returns their status codes and whatever is left
/// that is not a complete response.
fn parse_responses(mut buf: &[u8]) -> (Vec<u16>, Option<String>) {
    let mut statuses = Vec::new();
    while !buf.is_empty() {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (statuses, Some(esc_short(buf)));
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let code = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
            [v, code, ..] if v.starts_with("HTTP/1.") && code.len() == 3 => code.parse::<u16>(),
            _ => return (statuses, Some(esc_short(buf))),
        };
        let Ok(code) = code else {
            return (statuses, Some(esc_short(buf)));
        };
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for l in lines {
            let Some((n, v)) = l.split_once(':') else {
                return (statuses, Some(esc_short(buf)));
            };
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            } else if n.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.trim().eq_ignore_ascii_case("chunked");
            }
        }
        let rest = &buf[end + 4..];
        statuses.push(code);
        if (100..200).contains(&code) || code == 204 || code == 304 {
            buf = rest;
        } else if chunked {
            match skip_chunked(rest) {
                Some(n) => buf = &rest[n..],
                None => {
                    return (
                        statuses,
                        Some(format!("truncated chunked content of {code}")),
                    );
                }
            }
        } else if let Some(n) = length {
            if rest.len() < n {
                return (statuses, Some(format!("truncated content of {code}")));
            }
            buf = &rest[n..];
        } else {
            // Delimited by the close.
            buf = &[];
        }
    }
    (statuses, None)
}

/// The length of a complete chunked body at the start of `b`.
fn skip_chunked(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            loop {
                let e = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
                let empty = e == at;
                at = e + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        at += size + 2;
        if at > b.len() {
            return None;
        }
    }
}

/// Everything wrong with one outcome of a case.
fn judge(want: Want, o: &Outcome) -> Vec<String> {
    let mut why = Vec::new();
    if o.statuses.contains(&SMUGGLED_CODE) {
        why.push("answered the request smuggled in the case (288)".to_owned());
    }
    if o.garbage.is_some() {
        why.push("bytes that are not a response".to_owned());
    }
    if o.end == End::Open {
        why.push(format!("hang: no close within {CASE_DEADLINE:?}"));
    }
    let refused = o.statuses.len() == 1 && o.statuses[0] >= 400 && o.closed();
    let served = o.statuses.len() == 2
        && o.statuses[0] != SMUGGLED_CODE
        && o.statuses[1] == CANARY_CODE
        && o.closed();
    let error = (refused || served) && o.statuses[0] >= 400;
    let ok = match want {
        Want::Reject => refused,
        Want::Error => error,
        Want::Code(c) => error && o.statuses[0] == c,
        Want::Accept => served,
        Want::Either => refused || served,
    };
    if !ok {
        why.push(match want {
            Want::Reject => "want a 4xx/5xx and the close".to_owned(),
            Want::Error => "want a 4xx/5xx (then the close or the canary's 299)".to_owned(),
            Want::Code(c) => format!("want {c} (then the close or the canary's 299)"),
            Want::Accept => "want the case served, then the canary's 299".to_owned(),
            Want::Either => {
                "want a 4xx/5xx and the close, or one answer then the canary's 299".to_owned()
            }
        });
    }
    why
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_corpus_is_refused_or_served_exactly_never_smuggled() {
    let cases = generate();
    let distinct: HashSet<&[u8]> = cases.iter().map(|c| c.bytes.as_slice()).collect();
    assert!(
        distinct.len() >= MIN_CASES,
        "the corpus shrank: {} distinct cases ({} generated), at least {MIN_CASES} expected",
        distinct.len(),
        cases.len()
    );
    let server = TestServer::start_with(|cfg| {
        cfg.header_timeout = SERVER_TIMEOUT;
        cfg.body_timeout = SERVER_TIMEOUT;
        cfg.idle_timeout = SERVER_TIMEOUT;
    })
    .await;
    let addr = server.addr;
    let started = std::time::Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut byte_by_byte = 0usize;
    let mut tasks = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let bytes = Arc::new(cat(&[&case.bytes, CANARY]));
        let dribble = if i % BYTE_BY_BYTE_EVERY == 0 && bytes.len() <= BYTE_BY_BYTE_MAX {
            byte_by_byte += 1;
            Segmentation::ByteByByte
        } else {
            // A few bytes per write; long cases in proportionally larger pieces, so no case
            // needs more than a few hundred writes.
            Segmentation::Pieces {
                seed: SEED ^ (i as u64).wrapping_mul(0x100_0000_01b3),
                max: (bytes.len() / 64).max(7),
            }
        };
        let permits = Arc::clone(&permits);
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let whole = send(addr, Arc::clone(&bytes), Segmentation::Whole, CASE_DEADLINE).await;
            let dribbled = send(addr, bytes, dribble, CASE_DEADLINE).await;
            (whole, dribbled, dribble)
        }));
    }
    let mut failures = Vec::new();
    let mut by_family: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (case, task) in cases.iter().zip(tasks) {
        let (whole, dribbled, seg) = task.await.expect("a case task does not panic");
        let mut why = judge(case.want, &whole);
        for w in judge(case.want, &dribbled) {
            if !why.contains(&w) {
                why.push(format!("{w} (dribbled only)"));
            }
        }
        if whole.key() != dribbled.key() {
            why.push("the outcome depends on the segmentation".to_owned());
        }
        let entry = by_family.entry(case.family).or_default();
        entry.1 += 1;
        if !why.is_empty() {
            entry.0 += 1;
            let seg = match seg {
                Segmentation::ByteByByte => "byte by byte".to_owned(),
                Segmentation::Pieces { max, .. } => format!("pieces of 1..={max} bytes"),
                other => format!("{other:?}"),
            };
            failures.push(format!(
                "  [{}] {} (want {:?})\n    whole:    {}\n    dribbled: {} ({seg})\n    why:      {}\n    bytes:    b\"{}\"",
                case.family,
                case.label,
                case.want,
                whole.show(),
                dribbled.show(),
                why.join("; "),
                esc_short(&case.bytes)
            ));
        }
    }
    let summary: Vec<String> = by_family
        .iter()
        .map(|(f, (bad, all))| format!("  {f:<18} {bad:>5} of {all:>5} failed"))
        .collect();
    println!(
        "framing corpus: {} cases, {} sendings ({byte_by_byte} dribbled byte by byte), {:.1?}\n{}",
        cases.len(),
        cases.len() * 2,
        started.elapsed(),
        summary.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed ({byte_by_byte} dribbled byte by byte, {:.1?}):\n{}\n{}",
        failures.len(),
        cases.len(),
        started.elapsed(),
        summary.join("\n"),
        failures.join("\n")
    );
}
