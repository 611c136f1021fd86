//! One table-driven test over every code 100–599: status line, the headers the catalog's wire
//! rules require or expect, and framing, for GET and HEAD over raw HTTP/1.1. Expectations are
//! derived from `statuslab_catalog` (`Status::wire()`), not restated per code.

use crate::support::{ANY, Conn, Exchange, Framing, Response, TestServer, ensure, request};
use statuslab_catalog::{BodyRule, Need, Status};

/// Checks one final response against the catalog's wire rules for `s`.
fn check_final(s: Status, method: &str, host: &str, r: &Response) -> Result<(), String> {
    let code = s.code();
    let head = || format!("\n{}", r.head);
    ensure(r.version == "HTTP/1.1", || {
        format!("version {}{}", r.version, head())
    })?;
    ensure(r.status == code, || {
        format!("status {} != {code}{}", r.status, head())
    })?;
    ensure(r.reason == s.wire_reason(), || {
        format!(
            "reason {:?} != RFC phrase {:?}{}",
            r.reason,
            s.wire_reason(),
            head()
        )
    })?;
    ensure(r.has("date"), || format!("no Date{}", head()))?;
    ensure(r.header("access-control-allow-origin") == Some("*"), || {
        format!("no Access-Control-Allow-Origin: *{}", head())
    })?;
    let exposed = r.tokens("access-control-expose-headers");
    for h in ["Retry-After", "Location", "Content-Range"] {
        ensure(exposed.iter().any(|e| e.eq_ignore_ascii_case(h)), || {
            format!("Access-Control-Expose-Headers lacks {h}{}", head())
        })?;
    }

    // Every header the code requires or expects, with a faithful value.
    for rule in s.wire().headers {
        if rule.need == Need::Optional {
            continue;
        }
        let Some(value) = r.header(rule.name) else {
            return Err(format!(
                "missing {} ({:?}: {}){}",
                rule.name,
                rule.need,
                rule.when,
                head()
            ));
        };
        let value_ok = match rule.name {
            "Location" if code == 305 => value == format!("http://{host}/"),
            "Location" => value.starts_with('/') && !value.starts_with("//"),
            "WWW-Authenticate" => {
                let all = r.all("www-authenticate");
                all.len() >= 2
                    && all.iter().any(|v| v.starts_with("Basic "))
                    && all.iter().any(|v| v.starts_with("Bearer "))
            }
            "Proxy-Authenticate" => value.starts_with("Basic "),
            "Allow" => {
                let want: Vec<String> = ANY
                    .iter()
                    .filter(|m| **m != method)
                    .map(|m| (*m).to_owned())
                    .collect();
                r.tokens("allow") == want
            }
            "Content-Range" if code == 416 => value == "bytes */1024",
            "Content-Range" => value == "bytes 0-99/1024",
            "Retry-After" => value == "1",
            "Upgrade" => value.eq_ignore_ascii_case("websocket"),
            "Connection" if code == 408 => value.eq_ignore_ascii_case("close"),
            "Connection" => r
                .tokens("connection")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("upgrade")),
            "ETag" => value.starts_with('"') && value.ends_with('"'),
            _ => !value.is_empty(),
        };
        ensure(value_ok, || {
            format!("{}: {value:?} is not a faithful value{}", rule.name, head())
        })?;
    }
    // Beyond the catalog's Need::Required/Expected: the issue's own list.
    if matches!(code, 413 | 429 | 503) {
        ensure(r.header("retry-after") == Some("1"), || {
            format!("Retry-After is not the documented default 1{}", head())
        })?;
    }
    if code == 304 {
        ensure(r.has("last-modified"), || {
            format!("304 dropped Last-Modified{}", head())
        })?;
    }
    if code == 300 {
        ensure(
            r.all("link")
                .iter()
                .filter(|l| l.contains("rel=\"alternate\""))
                .count()
                >= 2,
            || format!("300 lists no alternatives in Link{}", head()),
        )?;
    }

    // Framing.
    ensure(!r.has("transfer-encoding"), || {
        format!("Transfer-Encoding on a fixed reply{}", head())
    })?;
    let is_head = method == "HEAD";
    match s.wire().body {
        BodyRule::Forbidden => {
            ensure(!r.has("content-length"), || {
                format!("Content-Length on {code}{}", head())
            })?;
            ensure(r.body.is_empty(), || {
                format!("{code} carried content{}", head())
            })?;
        }
        BodyRule::Empty => {
            ensure(r.header("content-length") == Some("0"), || {
                format!("{code} must say Content-Length: 0{}", head())
            })?;
            ensure(r.body.is_empty(), || {
                format!("{code} carried content{}", head())
            })?;
        }
        BodyRule::Allowed => {
            let cl: usize = r
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no valid Content-Length{}", head()))?;
            ensure(cl > 0, || format!("empty body{}", head()))?;
            ensure(r.has("content-type"), || {
                format!("no Content-Type{}", head())
            })?;
            if is_head {
                ensure(r.body.is_empty(), || {
                    format!("HEAD carried content{}", head())
                })?;
                ensure(r.framing == Framing::None, || {
                    "HEAD read content".to_owned()
                })?;
            } else if code == 206 {
                ensure(r.body == crate::support::representation()[..100], || {
                    format!(
                        "206 body is not bytes 0-99 of the representation: {:?}",
                        r.text()
                    )
                })?;
            } else {
                ensure(r.body.len() == cl, || {
                    format!("{} bytes, Content-Length {cl}", r.body.len())
                })?;
                ensure(
                    r.header("content-type") == Some("application/problem+json"),
                    || format!("Accept: application/problem+json not honoured{}", head()),
                )?;
                let v: serde_json::Value = serde_json::from_slice(&r.body)
                    .map_err(|e| format!("problem body is not JSON: {e}"))?;
                ensure(v["status"] == code, || {
                    format!("problem status {}", v["status"])
                })?;
                ensure(v["title"] == s.message(), || {
                    format!(
                        "problem title {} != table message {:?}",
                        v["title"],
                        s.message()
                    )
                })?;
                ensure(v["detail"] == s.description(), || {
                    format!("problem detail {} != table description", v["detail"])
                })?;
            }
        }
    }
    Ok(())
}

/// Checks the whole exchange for `/status/{code}`.
fn check_exchange(code: u16, method: &str, host: &str, ex: &Exchange) -> Result<(), String> {
    let s = Status::new(code).expect("100-599");
    if code == 101 {
        // Only a real protocol switch sends 101; a plain request is told to upgrade.
        ensure(ex.interim.is_empty(), || "interim before 426".to_owned())?;
        ensure(ex.status == 426, || {
            format!("101 without Upgrade gave {}\n{}", ex.status, ex.head)
        })?;
        ensure(ex.header("upgrade") == Some("websocket"), || {
            format!("426 without Upgrade\n{}", ex.head)
        })?;
        return Ok(());
    }
    if s.is_informational() {
        let [interim] = ex.interim.as_slice() else {
            return Err(format!(
                "{} interim responses, want exactly one",
                ex.interim.len()
            ));
        };
        ensure(interim.status == code, || {
            format!("interim {} != {code}", interim.status)
        })?;
        ensure(interim.reason == s.wire_reason(), || {
            format!("interim reason {:?}", interim.reason)
        })?;
        ensure(
            !interim.has("content-length") && !interim.has("transfer-encoding"),
            || format!("framing headers on an interim response\n{}", interim.head),
        )?;
        for rule in s.wire().headers {
            if rule.need != Need::Optional {
                ensure(interim.has(rule.name), || {
                    format!("interim {code} lacks {}\n{}", rule.name, interim.head)
                })?;
            }
        }
        // Then the final response: 200 unless ?then= asks for another.
        return check_final(Status::new(200).expect("200"), method, host, &ex.last)
            .map_err(|e| format!("final after {code}: {e}"));
    }
    ensure(ex.interim.is_empty(), || {
        format!("{} unexpected interim responses", ex.interim.len())
    })?;
    check_final(s, method, host, &ex.last)
}

#[tokio::test]
async fn every_code_100_to_599_in_full_dress_get_and_head() {
    let server = TestServer::start().await;
    let host = server.host();
    let accept = [("Accept", "application/problem+json")];
    let mut conn = server.connect().await;
    let mut results: Vec<(u16, &str, Result<(), String>)> = Vec::new();
    for code in 100..=599u16 {
        let mut get: Option<Exchange> = None;
        for method in ["GET", "HEAD"] {
            let target = format!("/status/{code}");
            conn.send(&request(method, &target, &host, &accept, b""))
                .await;
            let ex = conn.read_exchange(method == "HEAD").await;
            let mut outcome = check_exchange(code, method, &host, &ex);
            if code == 408 {
                // 408 says Connection: close and means it.
                conn.expect_eof().await;
                conn = server.connect().await;
            }
            if method == "HEAD"
                && let (Ok(()), Some(g)) = (&outcome, &get)
            {
                outcome = same_head_as_get(code, g, &ex);
            }
            get = Some(ex);
            results.push((code, method, outcome));
        }
    }
    // Anything left over (stray content after a bodyless reply) would corrupt this exchange.
    conn.send(&request("GET", "/health", &host, &[], b"")).await;
    let last = conn.read_exchange(false).await;
    assert_eq!(
        last.status, 200,
        "the connection is still in step after 1000 exchanges"
    );
    assert!(
        conn.pending().is_empty(),
        "stray bytes: {:?}",
        conn.pending()
    );
    assert_eq!(results.len(), 1000);
    crate::support::check(results, |(_, _, outcome)| outcome.clone());
}

/// HEAD answers with the headers GET would (Content-Length included; `Allow` on 405 names the
/// other methods, so it differs by the request's own method) and no content.
fn same_head_as_get(code: u16, get: &Exchange, head: &Exchange) -> Result<(), String> {
    let strip = |r: &Response| {
        r.comparable_headers()
            .into_iter()
            .filter(|(n, _)| !(code == 405 && n == "allow"))
            .collect::<Vec<_>>()
    };
    ensure(strip(&get.last) == strip(&head.last), || {
        format!(
            "HEAD headers differ from GET:\nGET:\n{}\nHEAD:\n{}",
            get.head, head.head
        )
    })?;
    ensure(get.interim.len() == head.interim.len(), || {
        "interim responses differ".to_owned()
    })
}

/// The status line carries the RFC reason phrase, the body the table's own text: the test
/// above compares with the catalog; these pin the catalog's values so that test cannot pass
/// on a catalog that merely agrees with itself.
#[tokio::test]
async fn status_line_has_rfc_reason_body_has_table_text() {
    let server = TestServer::start().await;
    let cases = [
        (504, "Gateway Timeout", "ServerTimeout"),
        (413, "Content Too Large", "Request Entity Too Large"),
        (429, "Too Many Requests", "TooManyRequests"),
        (404, "Not Found", "NotFound"),
        (306, "Unused", "Unused"),
        (418, "Unused", "(Unused)"),
    ];
    for (code, reason, message) in cases {
        let r = server
            .get(
                &format!("/status/{code}"),
                &[("Accept", "application/problem+json")],
            )
            .await;
        assert_eq!(
            r.head.lines().next().unwrap_or(""),
            format!("HTTP/1.1 {code} {reason}"),
            "status line of {code}"
        );
        assert_eq!(r.json()["title"], message, "problem title of {code}");
    }
    // 306 is sent as is, its body saying the code is no longer used.
    let r = server.get("/status/306", &[]).await;
    assert_eq!(r.status, 306);
    assert!(
        r.text().contains("no longer used"),
        "306 body: {}",
        r.text()
    );
    // An unregistered code: an empty reason phrase, but the separating space is still sent.
    let mut conn: Conn = server.connect().await;
    conn.send(&request("GET", "/status/599", &server.host(), &[], b""))
        .await;
    let r = conn.read_response(false).await;
    assert!(r.head.starts_with("HTTP/1.1 599 \r\n"), "{:?}", r.head);
}
