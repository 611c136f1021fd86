//! The route checks: does an endpoint that should answer CODE wear that code's dress — the
//! status, the header fields the catalog's wire rules call for (where RFC 9110 makes one
//! optional, the RFC verdict says so), valid values in them, and the framing the code
//! requires (no content on 1xx, 204, 205 and 304; no `Content-Length` on 1xx and 204).

use super::Route;
use super::Verdict;
use super::checks::{Outcome, clip, content_len, no_answer, present};
use super::transport::{Client, Got, Req, Seen};
use statuslab_catalog::{Need, Status};

/// Header fields RFC 9110 (or the RFC defining the code) makes optional where the catalog
/// (for the table) expects them.
const RFC_OPTIONAL: &[(u16, &str, &str)] = &[
    (
        103,
        "Link",
        "RFC 8297 §2: Link is what 103 is for, but not required",
    ),
    (
        201,
        "Location",
        "RFC 9110 §15.3.2: without Location the target URI names the new resource",
    ),
    (429, "Retry-After", "RFC 6585 §4: MAY"),
];

/// The RFC section a route check tests: the code's own.
pub(super) fn rfc_of(code: u16) -> String {
    let own = Status::new(code)
        .ok()
        .and_then(|s| s.reference())
        .map_or_else(|| "RFC 9110 §15".to_owned(), |r| r.to_string());
    match code {
        100..=199 | 204 => format!("{own}, RFC 9110 §8.6, RFC 9112 §6.1"),
        304 => format!("{own}, RFC 9112 §6.3"),
        _ => own,
    }
}

/// Content and framing a bodyless answer must not have.
pub(super) fn no_content_issues(seen: &Seen, code: u16) -> Vec<String> {
    let mut issues = Vec::new();
    if matches!(code, 100..=199 | 204) {
        if let Some(v) = seen.header("content-length") {
            issues.push(format!(
                "Content-Length: {v} on a {code} (RFC 9110 §8.6: MUST NOT)"
            ));
        }
        if seen.headers.contains_key("transfer-encoding") {
            issues.push(format!(
                "Transfer-Encoding on a {code} (RFC 9112 §6.1: MUST NOT)"
            ));
        }
    }
    if content_len(seen) > 0 {
        issues.push(format!(
            "{} bytes of content after the {code} head",
            content_len(seen)
        ));
    }
    issues
}

/// Requests `route` and judges the answer's dress.
pub(super) async fn check(client: &Client, route: &Route, http2: bool) -> Outcome {
    let code = route.code;
    let Ok(status) = Status::new(code) else {
        return Outcome::same(Verdict::Skip, "", format!("{code} is not a status code"));
    };
    let (table, rfc) = expectations(status, http2);
    if code == 101 && http2 {
        return Outcome::split(
            (Verdict::Skip, table),
            (Verdict::Skip, rfc),
            "HTTP/2 has no 101 (RFC 9113 §8.6): a route for 101 is checked over HTTP/1.1",
        );
    }
    let req = match code {
        // A real upgrade request: a 101 answers only that.
        101 => Req::new("GET", &route.path)
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "c3RhdHVzbGFiIHByb2JlIQ==")
            .keep_alive(),
        // Whether the server closes by itself is part of 408's dress.
        408 => Req::new("GET", &route.path).keep_alive(),
        _ => Req::new("GET", &route.path),
    };
    let got = client.send(&req).await;
    let s = match &got {
        Got::Failed(f) => {
            let o = no_answer(&table, f);
            return Outcome::split(o.table, (o.rfc.0, rfc), o.observed)
                .texts(&f.request, &f.response);
        }
        Got::Seen(s) => s,
    };
    judge(status, s, http2, table, rfc)
}

/// What the table (the catalog's wire rules) and the RFC expect of `status`'s answer.
fn expectations(status: Status, http2: bool) -> (String, String) {
    let code = status.code();
    let mut table_fields = Vec::new();
    let mut rfc_fields = Vec::new();
    for rule in status.wire().headers {
        if rule.need == Need::Optional || skipped(code, rule.name, http2) {
            continue;
        }
        table_fields.push(rule.name);
        if !RFC_OPTIONAL
            .iter()
            .any(|(c, n, _)| *c == code && *n == rule.name)
        {
            rfc_fields.push(rule.name);
        }
    }
    let framing = match code {
        100..=199 if code != 101 => {
            format!("an interim {code} (no Content-Length, no content) before the final answer")
        }
        204 => "no content and no Content-Length".to_owned(),
        205 | 304 => "no content".to_owned(),
        _ => String::new(),
    };
    let build = |fields: &[&str], note: &str| {
        let mut parts = vec![code.to_string()];
        if !fields.is_empty() {
            parts.push(format!("with {}", fields.join(", ")));
        }
        let mut text = parts.join(" ");
        if !framing.is_empty() {
            text.push_str(&format!("; {framing}"));
        }
        if !note.is_empty() {
            text.push_str(&format!(" ({note})"));
        }
        text
    };
    let (table_note, rfc_note) = match code {
        429 => (
            "the table: repeat after the time in Retry-After",
            "RFC 6585 §4: Retry-After MAY be sent; valid if sent",
        ),
        503 => (
            "the table: the client should not repeat the request without modifications; a Retry-After is not needed, but valid if sent",
            "RFC 9110 §15.6.4: Retry-After MAY be sent; valid if sent",
        ),
        413 => (
            "Retry-After when the condition is temporary, as the table says",
            "RFC 9110 §15.5.14: Retry-After SHOULD be sent when temporary",
        ),
        408 if !http2 => (
            "and the connection closed",
            "RFC 9110 §15.5.9: the server closes the connection",
        ),
        201 => ("", "RFC 9110 §15.3.2: Location optional; valid if sent"),
        304 => (
            "the validators a 200 would carry cannot be judged without the 200",
            "the validators a 200 would carry cannot be judged without the 200",
        ),
        _ => ("", ""),
    };
    (
        build(&table_fields, table_note),
        build(&rfc_fields, rfc_note),
    )
}

/// Fields the probe cannot or need not judge on this protocol.
fn skipped(code: u16, name: &str, http2: bool) -> bool {
    // HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2), Upgrade among them.
    (http2 && (name == "Connection" || name == "Upgrade"))
        // Whether a 200 would carry an ETag is unknown to a route check.
        || (code == 304 && name == "ETag")
}

fn judge(status: Status, s: &Seen, http2: bool, table: String, rfc: String) -> Outcome {
    let code = status.code();
    // Issues both authorities see, issues only the table sees, and what cannot be decided.
    let mut both: Vec<String> = Vec::new();
    let mut table_only: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let informational = (100..200).contains(&code) && code != 101;
    let mut shown: Vec<&str> = Vec::new();
    if informational {
        let interim: Vec<&(u16, http::HeaderMap)> =
            s.interim.iter().filter(|(c, _)| *c == code).collect();
        if interim.is_empty() {
            both.push(format!(
                "no interim {code}: the answer was {}{}",
                s.status,
                if s.interim.is_empty() {
                    String::new()
                } else {
                    format!(
                        " after {}",
                        s.interim
                            .iter()
                            .map(|(c, _)| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ));
        }
        for (_, headers) in interim {
            if let Some(v) = headers.get("content-length") {
                both.push(format!(
                    "Content-Length: {} on the interim {code} (RFC 9110 §8.6: MUST NOT)",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
            if headers.contains_key("transfer-encoding") {
                both.push(format!(
                    "Transfer-Encoding on the interim {code} (RFC 9112 §6.1: MUST NOT)"
                ));
            }
            if code == 103 && !headers.contains_key("link") {
                table_only.push("no Link on the 103".into());
            }
        }
        if !s.stray.is_empty() {
            both.push(format!("{} bytes after the final answer", s.stray.len()));
        }
    } else if s.status != code {
        both.push(format!("answered {}, not {code}", s.status));
    } else {
        if matches!(code, 204 | 205 | 304) {
            both.extend(no_content_issues(s, code));
        } else if !s.stray.is_empty() {
            both.push(format!(
                "{} bytes after the content its framing announced",
                s.stray.len()
            ));
        }
        for rule in status.wire().headers {
            if rule.need == Need::Optional || skipped(code, rule.name, http2) {
                continue;
            }
            shown.push(rule.name);
            if s.headers.contains_key(rule.name) {
                continue;
            }
            if code == 206
                && rule.name == "Content-Range"
                && s.header("content-type").is_some_and(|t| {
                    t.trim()
                        .to_ascii_lowercase()
                        .starts_with("multipart/byteranges")
                })
            {
                continue;
            }
            let why = format!("no {} ({})", rule.name, rule.when);
            if RFC_OPTIONAL
                .iter()
                .any(|(c, n, _)| *c == code && *n == rule.name)
            {
                table_only.push(why);
            } else {
                both.push(why);
            }
        }
        match code {
            413 | 503 => shown.push("Retry-After"),
            201 => shown.push("Location"),
            _ => {}
        }
        if code == 413 && !s.headers.contains_key("retry-after") {
            unknown.push(
                "no Retry-After: right if the limit is permanent, wrong if it is temporary; the probe cannot tell"
                    .into(),
            );
        }
        both.extend(values(code, s));
        if code == 408 && !http2 && !s.closed {
            both.push("the connection stayed open after the 408".into());
        }
    }
    let mut observed = if informational {
        let codes: Vec<String> = s.interim.iter().map(|(c, _)| c.to_string()).collect();
        format!(
            "{} then {}",
            if codes.is_empty() {
                "no interim response".to_owned()
            } else {
                format!("interim {}", codes.join(", "))
            },
            s.status
        )
    } else {
        shown.dedup();
        // The fields that are there; the missing ones are among the issues below.
        let there = present(s, &shown);
        if there.is_empty() {
            s.status.to_string()
        } else {
            format!("{}; {there}", s.status)
        }
    };
    if code == 408 && !http2 && s.status == 408 {
        observed.push_str(if s.closed {
            "; then the close"
        } else {
            "; the connection stayed open"
        });
    }
    let issues_table: Vec<&String> = both.iter().chain(&table_only).collect();
    if !issues_table.is_empty() {
        observed.push_str(&format!(
            " — {}",
            issues_table
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    } else if !unknown.is_empty() {
        observed.push_str(&format!(" — {}", unknown.join("; ")));
    }
    let verdict = |issues: bool| {
        if issues {
            Verdict::Fail
        } else if !unknown.is_empty() {
            Verdict::Inconclusive
        } else {
            Verdict::Pass
        }
    };
    Outcome::split(
        (verdict(!both.is_empty() || !table_only.is_empty()), table),
        (verdict(!both.is_empty()), rfc),
        observed,
    )
    .seen(s)
}

/// Whether the values of the fields the code is about are well-formed.
fn values(code: u16, s: &Seen) -> Vec<String> {
    let mut issues = Vec::new();
    for v in s.headers.get_all("retry-after") {
        let v = String::from_utf8_lossy(v.as_bytes());
        if !retry_after_ok(&v) {
            issues.push(format!(
                "Retry-After {:?} is neither delay-seconds nor an HTTP-date (RFC 9110 §10.2.3)",
                clip(&v, 60)
            ));
        }
    }
    if matches!(code, 201 | 300..=399) {
        for v in s.headers.get_all("location") {
            let v = String::from_utf8_lossy(v.as_bytes());
            if v.trim().is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
                issues.push(format!(
                    "Location {:?} is not a URI reference (RFC 9110 §10.2.2)",
                    clip(&v, 60)
                ));
            }
        }
        if s.headers.get_all("location").iter().count() > 1 {
            issues.push("more than one Location".into());
        }
    }
    if code == 405 {
        for v in s.headers.get_all("allow") {
            let v = String::from_utf8_lossy(v.as_bytes());
            if !v
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .all(is_token)
            {
                issues.push(format!(
                    "Allow {:?} is not a list of methods (RFC 9110 §10.2.1)",
                    clip(&v, 60)
                ));
            }
        }
    }
    for name in ["www-authenticate", "proxy-authenticate"] {
        for v in s.headers.get_all(name) {
            let v = String::from_utf8_lossy(v.as_bytes());
            let scheme = v.trim().split([' ', ',']).next().unwrap_or("");
            if scheme.is_empty() || !is_token(scheme) {
                issues.push(format!(
                    "{name} {:?} does not start with an auth-scheme (RFC 9110 §11.6.1)",
                    clip(&v, 60)
                ));
            }
        }
    }
    if code == 416
        && let Some(v) = s.header("content-range")
    {
        let ok = v
            .trim()
            .strip_prefix("bytes */")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            issues.push(format!(
                "Content-Range {v:?} is not bytes */length (RFC 9110 §14.4)"
            ));
        }
    }
    if code == 101 && s.status == 101 {
        let upgrade = s.header("connection").is_some_and(|c| {
            c.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
        if s.headers.contains_key("connection") && !upgrade {
            issues.push("Connection does not name upgrade".into());
        }
    }
    issues
}

/// `delay-seconds` or an HTTP-date (RFC 9110 §10.2.3).
fn retry_after_ok(v: &str) -> bool {
    let v = v.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) || httpdate::parse_http_date(v).is_ok()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
