//! httpbin's format and encoding routes: `/json`, `/html`, `/xml`, `/robots.txt`, `/deny`,
//! `/encoding/utf8`, `/image` (by `Accept`), `/image/{kind}`, `/gzip`, `/deflate`,
//! `/brotli`, `/zstd` and `/base64/{value}`. The documents and images are statuslab's own,
//! in httpbin's shapes (the JSON slideshow's keys, a tiny valid image of each type).

use super::echo;
use crate::problem::Problem;
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use base64::Engine as _;
use http::header::{self, HeaderValue};
use percent_encoding::percent_decode_str;
use serde_json::json;
use std::io::Write as _;

/// A 200 with static content of a type.
fn fixed(content_type: &'static str, body: &'static [u8]) -> Reply {
    Reply::new(known(200)).with_body(HeaderValue::from_static(content_type), body)
}

const SLIDESHOW: &str = r#"{
  "slideshow": {
    "author": "statuslab",
    "date": "2025-01-01",
    "slides": [
      {
        "title": "Every status code",
        "type": "all"
      },
      {
        "items": [
          "Why <em>statuslab</em> is great",
          "Who <em>uses</em> statuslab"
        ],
        "title": "Overview",
        "type": "all"
      }
    ],
    "title": "Sample Slide Show"
  }
}
"#;

const XML: &str = r#"<?xml version='1.0' encoding='us-ascii'?>

<!--  A SAMPLE set of slides  -->

<slideshow
    title="Sample Slide Show"
    date="2025-01-01"
    author="statuslab"
    >

    <!-- TITLE SLIDE -->
    <slide type="all">
      <title>Every status code</title>
    </slide>

    <!-- OVERVIEW -->
    <slide type="all">
        <title>Overview</title>
        <item>Why <em>statuslab</em> is great</item>
        <item/>
        <item>Who <em>uses</em> statuslab</item>
    </slide>

</slideshow>
"#;

const HTML: &str = "<!DOCTYPE html>
<html>
  <head>
  </head>
  <body>
      <h1>Herman Melville - Moby-Dick</h1>

      <div>
        <p>
          Call me Ishmael. Some years ago - never mind how long precisely - having little or no
          money in my purse, and nothing particular to interest me on shore, I thought I would
          sail about a little and see the watery part of the world. It is a way I have of driving
          off the spleen, and regulating the circulation.
        </p>
      </div>
  </body>
</html>
";

const ROBOTS: &str = "User-agent: *\nDisallow: /deny\n";

const DENY: &str = "
          .-''''''-.
        .' _      _ '.
       /   O      O   \\
      :                :
      |                |
      :       __       :
       \\  .-\"`  `\"-.  /
        '.          .'
          '-......-'
     YOU SHOULDN'T BE HERE
";

const UTF8: &str = "<!DOCTYPE html>
<html>
<head><meta charset=\"utf-8\"><title>UTF-8 encoded sample</title></head>
<body>
<h1>Unicode Demo</h1>
<p>Mathematics: ∮ E⋅da = Q,  n → ∞, ∑ f(i) = ∏ g(i), ∀x∈ℝ: ⌈x⌉ = −⌊−x⌋</p>
<p>Greek: Σὲ γνωρίζω ἀπὸ τὴν κόψη</p>
<p>Russian: Зарегистрируйтесь сейчас</p>
<p>Japanese: いろはにほへと ちりぬるを</p>
<p>Arabic: مرحبا بالعالم</p>
<p>Emoji: 🚦 ✅ ❌ ⏳</p>
<p>Box drawing: ┌─┬─┐ │ │ │ └─┴─┘</p>
</body>
</html>
";

/// `/json`.
pub(crate) fn json_doc() -> Reply {
    fixed("application/json", SLIDESHOW.as_bytes())
}

/// `/html`.
pub(crate) fn html() -> Reply {
    fixed("text/html; charset=utf-8", HTML.as_bytes())
}

/// `/xml`.
pub(crate) fn xml() -> Reply {
    fixed("application/xml", XML.as_bytes())
}

/// `/robots.txt`.
pub(crate) fn robots() -> Reply {
    fixed("text/plain", ROBOTS.as_bytes())
}

/// `/deny`: what robots.txt denies.
pub(crate) fn deny() -> Reply {
    fixed("text/plain", DENY.as_bytes())
}

/// `/encoding/utf8`.
pub(crate) fn utf8() -> Reply {
    fixed("text/html; charset=utf-8", UTF8.as_bytes())
}

/// The images, each a tiny valid file of its type (16×16).
const IMAGES: &[(&str, &str, &[u8])] = &[
    ("webp", "image/webp", include_bytes!("images/image.webp")),
    ("svg", "image/svg+xml", include_bytes!("images/image.svg")),
    ("jpeg", "image/jpeg", include_bytes!("images/image.jpeg")),
    ("png", "image/png", include_bytes!("images/image.png")),
];

/// `/image/{kind}`: `png`, `jpeg`, `webp` or `svg`.
pub(crate) fn image_kind(kind: &str) -> Result<Reply, Problem> {
    IMAGES
        .iter()
        .find(|(name, _, _)| *name == kind)
        .map(|(_, ct, bytes)| fixed(ct, bytes))
        .ok_or_else(|| {
            Problem::new(
                404,
                format!("no image of kind {kind:?}: png, jpeg, webp or svg"),
            )
        })
}

/// `/image`: by `Accept`, in httpbin's order (webp, svg, jpeg, then png for `image/png`,
/// `image/*`, `*/*` or no `Accept`); another `Accept` gets 406.
pub(crate) fn image(req: &Request) -> Result<Reply, Problem> {
    let accept = req
        .header(header::ACCEPT)
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = if accept.contains("image/webp") {
        "webp"
    } else if accept.contains("image/svg+xml") {
        "svg"
    } else if accept.contains("image/jpeg") {
        "jpeg"
    } else if accept.trim().is_empty()
        || accept.contains("image/png")
        || accept.contains("image/*")
        || accept.contains("*/*")
    {
        "png"
    } else {
        return Err(Problem::new(
            406,
            "Accept names no image type statuslab has: image/webp, image/svg+xml, image/jpeg, image/png",
        ));
    };
    let mut reply = image_kind(kind)?;
    reply
        .headers
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(reply)
}

/// A content coding of httpbin's `/gzip`, `/deflate`, `/brotli` and statuslab's `/zstd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// RFC 1952.
    Gzip,
    /// RFC 1950 (zlib), as HTTP's `deflate` means.
    Deflate,
    /// RFC 7932.
    Brotli,
    /// RFC 8878.
    Zstd,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// The flag httpbin puts in the JSON (`"gzipped": true`).
    fn flag(self) -> &'static str {
        match self {
            Coding::Gzip => "gzipped",
            Coding::Deflate => "deflated",
            Coding::Brotli => "brotli",
            Coding::Zstd => "zstd",
        }
    }

    fn encode(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data)?;
                e.finish()
            }
            Coding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data)?;
                e.finish()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(data)?;
                }
                Ok(out)
            }
            Coding::Zstd => zstd::encode_all(data, 3),
        }
    }
}

/// `/gzip`, `/deflate`, `/brotli`, `/zstd`: httpbin's echo (`headers`, `method`, `origin`)
/// with the coding's flag, encoded whatever `Accept-Encoding` says (as httpbin does).
pub(crate) fn encoded(req: &Request, coding: Coding) -> Result<Reply, Problem> {
    let body = json!({
        coding.flag(): true,
        "headers": echo::headers(req),
        "method": req.method.as_str(),
        "origin": echo::origin(req),
    });
    let mut text = serde_json::to_vec_pretty(&body).expect("JSON values serialize");
    text.push(b'\n');
    let bytes = coding.encode(&text).map_err(Problem::internal)?;
    Ok(Reply::json(200, bytes)
        .with_header(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.token()),
        )
        .with_header(header::VARY, HeaderValue::from_static("Accept-Encoding")))
}

/// `/base64/{value}`: the value decoded (URL-safe or standard alphabet, padding optional).
pub(crate) fn base64(value: &str) -> Result<Reply, Problem> {
    let value = percent_decode_str(value).decode_utf8_lossy();
    let trimmed = value.trim_end_matches('=');
    let cfg = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    let url = base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg);
    let std = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg);
    let decoded = url
        .decode(trimmed)
        .or_else(|_| std.decode(trimmed))
        .map_err(|e| Problem::new(400, format!("{value:?} is not base64: {e}")))?;
    Ok(Reply::new(known(200)).with_body(
        HeaderValue::from_static("text/html; charset=utf-8"),
        decoded,
    ))
}

/// The JSON slideshow, for tests.
#[cfg(test)]
fn slideshow() -> serde_json::Value {
    serde_json::from_str(SLIDESHOW).expect("the slideshow is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn documents_have_httpbins_shapes() {
        let s = slideshow();
        assert_eq!(s["slideshow"]["title"], "Sample Slide Show");
        assert_eq!(s["slideshow"]["slides"].as_array().map(Vec::len), Some(2));
        assert!(XML.starts_with("<?xml"));
        assert!(ROBOTS.contains("Disallow: /deny"));
    }

    #[test]
    fn images_carry_their_magic_numbers() {
        let magic = |kind: &str| IMAGES.iter().find(|i| i.0 == kind).expect("kind").2;
        assert!(magic("png").starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(magic("jpeg").starts_with(b"\xff\xd8\xff"));
        assert!(magic("jpeg").ends_with(b"\xff\xd9"));
        let webp = magic("webp");
        assert!(webp.starts_with(b"RIFF") && &webp[8..12] == b"WEBP");
        let riff_len = u32::from_le_bytes(webp[4..8].try_into().expect("4 bytes")) as usize;
        assert_eq!(riff_len + 8, webp.len());
        assert!(magic("svg").starts_with(b"<svg"));
    }

    #[test]
    fn codings_round_trip() {
        let data = b"statuslab statuslab statuslab";
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&Coding::Gzip.encode(data).expect("gzip")[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, data);
        out.clear();
        flate2::read::ZlibDecoder::new(&Coding::Deflate.encode(data).expect("zlib")[..])
            .read_to_end(&mut out)
            .expect("inflate");
        assert_eq!(out, data);
        out.clear();
        brotli::Decompressor::new(&Coding::Brotli.encode(data).expect("br")[..], 4096)
            .read_to_end(&mut out)
            .expect("unbrotli");
        assert_eq!(out, data);
        let z = zstd::decode_all(&Coding::Zstd.encode(data).expect("zstd")[..]).expect("unzstd");
        assert_eq!(z, data);
    }

    #[test]
    fn base64_accepts_both_alphabets() {
        for v in ["aGVsbG8gd29ybGQ=", "aGVsbG8gd29ybGQ", "aGVsbG8gd29ybGQ%3D"] {
            let r = base64(v).expect("decodes");
            assert_eq!(r.body.len(), 11, "{v}");
        }
        assert!(base64("!!!").is_err());
    }
}
