//! httpbin's `/digest-auth/{qop}/{user}/{passwd}[/{algorithm}[/{stale_after}]]`: HTTP Digest
//! authentication (RFC 7616) with MD5 or SHA-256, `qop` `auth`, `auth-int` or both.
//!
//! Stateless: the nonce carries its issue time; `stale_after` is the number of times one nonce
//! may be used (the client's `nc`), after which the answer is 401 with `stale=true` and a fresh
//! nonce. The response is compared in constant time.

use crate::problem::Problem;
use crate::wire::reply::Reply;
use crate::wire::request::Request;
use http::header::{self, HeaderValue};
use md5::Md5;
use percent_encoding::percent_decode_str;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq as _;

const REALM: &str = "statuslab";

/// The hash a challenge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" | "SHA256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hex(self, data: &[u8]) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(data).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The `qop` values a route offers.
fn qops(qop: &str) -> Result<Vec<&'static str>, Problem> {
    let mut out = Vec::new();
    for q in qop.split(',') {
        match q.trim() {
            "auth" => out.push("auth"),
            "auth-int" => out.push("auth-int"),
            other => {
                return Err(Problem::new(
                    400,
                    format!("qop {other:?}: expected auth, auth-int or auth,auth-int"),
                ));
            }
        }
    }
    Ok(out)
}

/// The route's answer.
pub(crate) fn answer(
    req: &Request,
    qop: &str,
    user: &str,
    passwd: &str,
    algorithm: Option<&str>,
    stale_after: Option<&str>,
) -> Result<Reply, Problem> {
    // A client may percent-encode the comma of `auth,auth-int`, as it does any reserved byte.
    let offered = qops(&percent_decode_str(qop).decode_utf8_lossy())?;
    let algorithm = match algorithm {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(a).ok_or_else(|| {
            Problem::new(400, format!("algorithm {a:?}: expected MD5 or SHA-256"))
        })?,
    };
    let stale_after = match stale_after {
        None | Some("never") => None,
        Some(s) => Some(s.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Problem::new(
                400,
                format!("stale_after {s:?}: a number of uses (1 or more) or never"),
            )
        })?),
    };
    let user = percent_decode_str(user).decode_utf8_lossy();
    let passwd = percent_decode_str(passwd).decode_utf8_lossy();
    let Some(given) = req
        .header(header::AUTHORIZATION)
        .and_then(|v| {
            v.strip_prefix("Digest ")
                .or_else(|| v.strip_prefix("digest "))
        })
        .map(params)
    else {
        return Err(challenge(
            &offered,
            algorithm,
            false,
            "Digest credentials are required",
        ));
    };
    let field = |k: &str| given.get(k).map(String::as_str).unwrap_or("");
    if let Some(limit) = stale_after {
        let nc = u64::from_str_radix(field("nc"), 16).unwrap_or(0);
        if nc > limit {
            return Err(challenge(
                &offered,
                algorithm,
                true,
                "the nonce is stale: it was used more often than stale_after allows",
            ));
        }
    }
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    let qop_used = field("qop");
    let ok = Algorithm::parse(if field("algorithm").is_empty() {
        "MD5"
    } else {
        field("algorithm")
    }) == Some(algorithm)
        && field("realm") == REALM
        && (field("uri") == target || field("uri") == req.uri.path())
        && (qop_used.is_empty() || offered.contains(&qop_used))
        && {
            let ha1 = algorithm.hex(format!("{user}:{REALM}:{passwd}").as_bytes());
            let ha2 = if qop_used == "auth-int" {
                let body = algorithm.hex(&req.body);
                algorithm.hex(format!("{}:{}:{body}", req.method, field("uri")).as_bytes())
            } else {
                algorithm.hex(format!("{}:{}", req.method, field("uri")).as_bytes())
            };
            let expected = if qop_used.is_empty() {
                algorithm.hex(format!("{ha1}:{}:{ha2}", field("nonce")).as_bytes())
            } else {
                algorithm.hex(
                    format!(
                        "{ha1}:{}:{}:{}:{qop_used}:{ha2}",
                        field("nonce"),
                        field("nc"),
                        field("cnonce")
                    )
                    .as_bytes(),
                )
            };
            let same_user: bool = field("username").as_bytes().ct_eq(user.as_bytes()).into();
            let same_response: bool = field("response")
                .to_ascii_lowercase()
                .as_bytes()
                .ct_eq(expected.as_bytes())
                .into();
            same_user & same_response
        };
    if ok {
        return Ok(Reply::json(
            200,
            json!({ "authenticated": true, "user": user }).to_string(),
        ));
    }
    Err(challenge(
        &offered,
        algorithm,
        false,
        "the Digest credentials are wrong",
    ))
}

/// 401 with a fresh challenge.
fn challenge(offered: &[&str], algorithm: Algorithm, stale: bool, detail: &'static str) -> Problem {
    let nonce = format!(
        "{:x}{:024x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        fastrand::u128(..) >> 32
    );
    let opaque = format!("{:032x}", fastrand::u128(..));
    let value = format!(
        "Digest realm=\"{REALM}\", qop=\"{}\", nonce=\"{nonce}\", opaque=\"{opaque}\", algorithm={}, stale={}",
        offered.join(", "),
        algorithm.name(),
        if stale { "TRUE" } else { "FALSE" }
    );
    let mut p = Problem::new(401, detail);
    if let Ok(v) = HeaderValue::from_str(&value) {
        p = p.with_header(header::WWW_AUTHENTICATE, v);
    }
    p
}

/// The parameters of a Digest `Authorization` value (`name=token` or `name="quoted"`).
fn params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(name, value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parameters_parse() {
        let p = params(
            r#"username="u", realm="statuslab", nonce="n", uri="/x?a=1,2", algorithm=MD5, qop=auth, nc=00000001, cnonce="c\"q", response="abc""#,
        );
        assert_eq!(p["username"], "u");
        assert_eq!(p["uri"], "/x?a=1,2");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["cnonce"], "c\"q");
        assert_eq!(p["response"], "abc");
    }

    /// RFC 7616 §3.9.1's example, MD5 and SHA-256.
    #[test]
    fn rfc_7616_examples() {
        let ha1 = Algorithm::Md5.hex(b"Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = Algorithm::Md5.hex(b"GET:/dir/index.html");
        let r = Algorithm::Md5.hex(
            format!("{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}").as_bytes(),
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
        let ha1 = Algorithm::Sha256.hex(b"Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = Algorithm::Sha256.hex(b"GET:/dir/index.html");
        let r = Algorithm::Sha256.hex(
            format!("{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}").as_bytes(),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }
}
