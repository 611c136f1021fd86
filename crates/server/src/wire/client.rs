//! statuslab's HTTP/1.1 client, which checks every byte: the gateway's upstream side and the
//! probe's client.
//!
//! The gateway sends one request per connection (`Connection: close`) with [`exchange`]: write
//! the request, then read the response head with httparse and the content by
//! `Content-Length`, by chunks, or until the upstream closes. The probe drives the same
//! pieces one at a time ([`read_head`], then [`read_content`]), so it sees every interim
//! response (100 included), can send raw request bytes in parts, and can look at what follows
//! a response. Every size is bounded (head bytes, header fields, content); whatever is not
//! valid HTTP/1.1 becomes a [`Failure::Invalid`] whose text says what was wrong, which the
//! gateway answers with 502 and the probe reports. Time is bounded by the caller.

use super::framing::{self, ChunkedDecoder, Framing, FramingError, Role, framing as wire_framing};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bounds on what an upstream may send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientLimits {
    /// Bytes in one response head.
    pub(crate) head: usize,
    /// Header fields in one response head.
    pub(crate) headers: usize,
    /// Bytes of content.
    pub(crate) body: usize,
}

/// Interim responses (1xx) accepted before the final one; more is a misbehaving upstream.
const MAX_INTERIM: usize = 16;
/// Bytes in one chunk-size line (with extensions); longer is refused.
const MAX_CHUNK_LINE: usize = 4096;

/// A complete upstream response.
#[derive(Debug)]
pub(crate) struct Response {
    /// The minor version of the upstream's HTTP/1.x.
    pub(crate) minor: u8,
    /// The final status code (200–599, or 1xx never: see `interim`).
    pub(crate) status: u16,
    /// The final response's header fields, as received.
    pub(crate) headers: HeaderMap,
    /// Interim responses (102, 103, …) received before the final one; 100 is not kept.
    pub(crate) interim: Vec<(u16, HeaderMap)>,
    /// The content, de-chunked.
    pub(crate) body: Bytes,
}

/// Why an exchange with an upstream failed (time-outs are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection could be opened.
    Connect(String),
    /// The upstream's answer was not valid HTTP/1.1, too large, or cut short.
    Invalid(String),
}

/// Writes `request` to `io` and reads the response.
pub(crate) async fn exchange<S>(
    mut io: S,
    request: &[u8],
    head_request: bool,
    limits: ClientLimits,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // An upstream may answer (and close) before it has read the whole request: then the
    // write fails, but its answer is still the answer.
    let written = match io.write_all(request).await {
        Ok(()) => io.flush().await,
        Err(e) => Err(e),
    };
    match read_response(&mut io, head_request, limits).await {
        Err(Failure::Invalid(why)) if why == CLOSED_SILENTLY => match written {
            Err(e) => Err(Failure::Invalid(format!(
                "the connection failed while the request was sent ({e}) and no response came"
            ))),
            Ok(()) => Err(Failure::Invalid(why)),
        },
        other => other,
    }
}

const CLOSED_SILENTLY: &str = "the upstream closed the connection without sending a response";

/// Reads one response (after any interim ones) from `io`.
pub(crate) async fn read_response<R>(
    io: &mut R,
    head_request: bool,
    limits: ClientLimits,
) -> Result<Response, Failure>
where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096);
    let mut interim = Vec::new();
    loop {
        let head = read_head(io, &mut buf, limits, interim.is_empty()).await?;
        match head.status {
            101 => {
                return Err(invalid(
                    "the upstream answered 101 Switching Protocols, but no upgrade was asked for",
                ));
            }
            100..=199 => {
                if interim.len() >= MAX_INTERIM {
                    return Err(invalid(format!(
                        "more than {MAX_INTERIM} interim (1xx) responses"
                    )));
                }
                if head.status != 100 {
                    interim.push((head.status, head.headers));
                }
                continue;
            }
            _ => {}
        }
        let body = read_content(io, &mut buf, &head, head_request, limits).await?;
        return Ok(Response {
            minor: head.minor,
            status: head.status,
            headers: head.headers,
            interim,
            body,
        });
    }
}

/// One response head (interim or final), as received.
#[derive(Debug)]
pub(crate) struct Head {
    /// The minor version of the status line's HTTP/1.x.
    pub(crate) minor: u8,
    /// The status code (100–599).
    pub(crate) status: u16,
    /// The header fields, in the order received.
    pub(crate) headers: HeaderMap,
}

/// Reads the content that follows the final response `head` (none after a HEAD request or
/// on 1xx/204/304), by the wire layer's framing rules. Bytes after the content stay in `buf`.
pub(crate) async fn read_content<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    head: &Head,
    head_request: bool,
    limits: ClientLimits,
) -> Result<Bytes, Failure> {
    let no_content = head_request
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304;
    if no_content {
        return Ok(Bytes::new());
    }
    match framing(&head.headers, head.status)? {
        Framing::None => Ok(Bytes::new()),
        Framing::Length(n) => read_length(io, buf, n, limits.body).await,
        Framing::Chunked => read_chunked(io, buf, limits).await,
        Framing::UntilClose => read_until_close(io, buf, limits.body).await,
    }
}

/// Whether a failure is an upstream that closed the connection before sending any byte of
/// a response.
pub(crate) fn closed_silently(failure: &Failure) -> bool {
    matches!(failure, Failure::Invalid(why) if why == CLOSED_SILENTLY)
}

fn invalid(why: impl Into<String>) -> Failure {
    Failure::Invalid(why.into())
}

/// Reads more bytes into `buf`; `Ok(0)` at the end of the stream.
async fn more<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> Result<usize, Failure> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(8192);
    }
    io.read_buf(buf)
        .await
        .map_err(|e| invalid(format!("reading the response failed: {e}")))
}

/// The start of what was received, quoted for a problem detail.
pub(crate) fn preview(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let shown = &line[..line.len().min(60)];
    let mut s = format!("{:?}", String::from_utf8_lossy(shown));
    if line.len() > shown.len() {
        s.push('…');
    }
    s
}

/// Reads one response head (interim or final) into [`Head`]; `first` says whether it is the
/// first of the exchange (a close before it is [`closed_silently`]). Bytes after the head stay
/// in `buf`. A timeout around it loses nothing: what was read stays in `buf`.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    limits: ClientLimits,
    first: bool,
) -> Result<Head, Failure> {
    loop {
        if !buf.is_empty() {
            let mut slots = vec![httparse::EMPTY_HEADER; limits.headers.clamp(1, 1000)];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = convert(&parsed)?;
                    buf.advance(len);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {
                    if buf.len() >= limits.head {
                        return Err(invalid(format!(
                            "the response head is larger than {} bytes (--max-head-bytes)",
                            limits.head
                        )));
                    }
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(invalid(format!(
                        "the response has more than {} header fields (--max-headers)",
                        limits.headers
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "the response head is not valid HTTP/1.1 ({}); it began {}",
                        describe(e),
                        preview(buf)
                    )));
                }
            }
        }
        if more(io, buf).await? == 0 {
            return Err(if buf.is_empty() && first {
                invalid(CLOSED_SILENTLY)
            } else if buf.is_empty() {
                invalid("the upstream closed the connection after an interim response")
            } else {
                invalid(format!(
                    "the upstream closed the connection in the middle of the response head, which began {}",
                    preview(buf)
                ))
            });
        }
    }
}

fn describe(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "malformed header name",
        httparse::Error::HeaderValue => "malformed header value",
        httparse::Error::NewLine => "malformed line ending",
        httparse::Error::Status => "malformed status code",
        httparse::Error::Token => "malformed token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "not an HTTP/1.x status line",
    }
}

fn convert(parsed: &httparse::Response<'_, '_>) -> Result<Head, Failure> {
    let status = parsed.code.unwrap_or(0);
    if !(100..=599).contains(&status) {
        return Err(invalid(format!("status code {status} is outside 100-599")));
    }
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| invalid(format!("malformed header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| invalid(format!("the value of {name} has forbidden characters")))?;
        headers.append(name, value);
    }
    Ok(Head {
        minor: parsed.version.unwrap_or(1),
        status,
        headers,
    })
}

/// The content's framing (RFC 9112 §6.3), by the wire layer's rules. Anything ambiguous is
/// refused rather than guessed: a gateway that guesses differently from the next hop is how
/// responses get smuggled.
fn framing(headers: &HeaderMap, status: u16) -> Result<Framing, Failure> {
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty()
        && codings != ["chunked"]
        && !headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(invalid(format!(
            "the response uses transfer coding {:?}; statuslab decodes only chunked",
            codings.join(", ")
        )));
    }
    let role = Role::Response {
        status,
        head_request: false,
    };
    wire_framing(headers, role).map_err(|e| invalid(format!("the response's {e}")))
}

fn too_large(limit: usize) -> Failure {
    invalid(format!(
        "the response content is larger than {limit} bytes (--max-body)"
    ))
}

async fn read_length<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    n: u64,
    limit: usize,
) -> Result<Bytes, Failure> {
    if n > limit as u64 {
        return Err(too_large(limit));
    }
    let n = n as usize;
    while buf.len() < n {
        if more(io, buf).await? == 0 {
            return Err(invalid(format!(
                "the upstream closed the connection after {} of the {n} content bytes its Content-Length promised",
                buf.len()
            )));
        }
    }
    Ok(buf.split_to(n).freeze())
}

async fn read_until_close<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<Bytes, Failure> {
    loop {
        if buf.len() > limit {
            return Err(too_large(limit));
        }
        if more(io, buf).await? == 0 {
            return Ok(buf.split().freeze());
        }
    }
}

async fn read_chunked<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    limits: ClientLimits,
) -> Result<Bytes, Failure> {
    let mut decoder = ChunkedDecoder::new(framing::Limits {
        max_body: limits.body as u64,
        max_ext_bytes: MAX_CHUNK_LINE,
        max_trailer_bytes: limits.head,
        max_trailer_fields: limits.headers,
    });
    let mut body = BytesMut::new();
    loop {
        let at = preview(buf);
        match decoder.decode(buf, &mut body) {
            Ok(true) => return Ok(body.freeze()),
            Ok(false) => {
                if more(io, buf).await? == 0 {
                    return Err(invalid(
                        "the upstream closed the connection in the middle of a chunk of the content",
                    ));
                }
            }
            Err(FramingError::TooLarge) => return Err(too_large(limits.body)),
            Err(e) => {
                return Err(invalid(format!(
                    "malformed chunked content ({e}) in the chunk-size line or chunk that began {at}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ClientLimits = ClientLimits {
        head: 4096,
        headers: 32,
        body: 64,
    };

    async fn parse(bytes: &[u8]) -> Result<Response, Failure> {
        let mut io = bytes;
        read_response(&mut io, false, LIMITS).await
    }

    async fn invalid_text(bytes: &[u8]) -> String {
        match parse(bytes).await {
            Err(Failure::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn content_length() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhelloEXTRA")
            .await
            .unwrap();
        assert_eq!((r.status, r.minor, &r.body[..]), (200, 1, &b"hello"[..]));
        assert_eq!(r.headers["x-a"], "1");
    }

    #[tokio::test]
    async fn chunked_with_extensions_and_trailers() {
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"Wikipedia");
    }

    #[tokio::test]
    async fn until_close_and_http10() {
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\nall of it").await.unwrap();
        assert_eq!((r.minor, &r.body[..]), (0, &b"all of it"[..]));
    }

    #[tokio::test]
    async fn no_content_codes_and_head() {
        let r = parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n")
            .await
            .unwrap();
        assert!(r.body.is_empty());
        let mut io = &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"[..];
        let r = read_response(&mut io, true, LIMITS).await.unwrap();
        assert!(r.body.is_empty());
    }

    #[tokio::test]
    async fn interim_responses() {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.interim.len(), 1);
        assert_eq!(r.interim[0].0, 103);
    }

    #[tokio::test]
    async fn invalid_responses() {
        assert!(
            invalid_text(b"NOT HTTP\r\n\r\n")
                .await
                .contains("\"NOT HTTP\"")
        );
        assert!(
            invalid_text(b"HTTP/1.1 abc\r\n\r\n")
                .await
                .contains("malformed status code")
        );
        assert!(
            invalid_text(b"HTTP/1.1 999 X\r\n\r\n")
                .await
                .contains("outside 100-599")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n")
                .await
                .contains("not valid HTTP/1.1")
        );
        assert!(
            invalid_text(b"")
                .await
                .contains("without sending a response")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nContent-")
                .await
                .contains("middle of the response head")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
                .await
                .contains("3 of the 9")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
                .await
                .contains("conflicting")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
                .await
                .contains("not a number")
        );
        assert!(
            invalid_text(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .await
            .contains("ambiguous")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
                .await
                .contains("only chunked")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .await
                .contains("chunk-size")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n")
                .await
                .contains("CRLF")
        );
        assert!(
            invalid_text(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
                .await
                .contains("middle of a chunk")
        );
        assert!(
            invalid_text(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
                .await
                .contains("101")
        );
    }

    #[tokio::test]
    async fn bounds() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n{}",
            "x".repeat(65)
        );
        assert!(invalid_text(big.as_bytes()).await.contains("--max-body"));
        let big = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(200));
        assert!(invalid_text(big.as_bytes()).await.contains("--max-body"));
        let big = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n{}\r\n0\r\n\r\n",
            "x".repeat(65)
        );
        assert!(invalid_text(big.as_bytes()).await.contains("--max-body"));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "y".repeat(5000));
        assert!(
            invalid_text(long.as_bytes())
                .await
                .contains("--max-head-bytes")
        );
        let many: String = (0..40).map(|i| format!("X-{i}: 1\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(
            invalid_text(many.as_bytes())
                .await
                .contains("--max-headers")
        );
    }

    #[tokio::test]
    async fn exchange_writes_then_reads() {
        let (client, mut server) = tokio::io::duplex(1024);
        let task = tokio::spawn(async move {
            let mut got = vec![0u8; 18];
            server.read_exact(&mut got).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            got
        });
        let r = exchange(client, b"GET / HTTP/1.1\r\n\r\n", false, LIMITS)
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"ok");
        assert_eq!(task.await.unwrap(), b"GET / HTTP/1.1\r\n\r\n");
    }
}
