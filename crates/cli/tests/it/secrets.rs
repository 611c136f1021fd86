//! Secrets never reach the log, at the most verbose levels and in both formats: bearer tokens
//! (right and wrong), Basic credentials (in headers and in `/basic-auth` paths),
//! `Proxy-Authorization`, and the Redis password (in the URL, in `STATUSLAB_REDIS_PASSWORD`,
//! right and wrong). Each secret holds the marker `SeKrit`, so any piece of one is caught too;
//! the log must also show the requests, so the test cannot pass on an empty log.

use crate::live::{Conn, Served};
use crate::redis::Redis;
use std::time::Duration;

/// In every secret below, and in nothing else statuslab could log.
const MARKER: &str = "SeKrit";
const TOKEN: &str = "tok-SeKrit-1";
const WRONG_TOKEN: &str = "wrong-SeKrit-2";
const BASIC_PASS: &str = "basic-SeKrit-3";
const PATH_PASS: &str = "path-SeKrit-4";
const HIDDEN_PASS: &str = "hidden-SeKrit-5";
const BEARER_ROUTE: &str = "route-SeKrit-6";
const PROXY_PASS: &str = "proxy-SeKrit-7";
const WRONG_PROXY_PASS: &str = "wrongproxy-SeKrit-8";
const REDIS_PASS: &str = "redis-SeKrit-9";
const WRONG_REDIS_PASS: &str = "wrongredis-SeKrit-10";

/// The most verbose filter: debug for everything, trace for statuslab's own targets.
const VERBOSE: &str = "debug,statuslab=trace,statuslab_server=trace";

fn base64(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every string that must not appear in a log: the secrets, and the Basic encodings of them.
fn forbidden() -> Vec<String> {
    let mut all: Vec<String> = [
        TOKEN,
        WRONG_TOKEN,
        BASIC_PASS,
        PATH_PASS,
        HIDDEN_PASS,
        BEARER_ROUTE,
        PROXY_PASS,
        WRONG_PROXY_PASS,
        REDIS_PASS,
        WRONG_REDIS_PASS,
        MARKER,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for pair in [
        format!("user:{BASIC_PASS}"),
        format!("proxyuser:{PROXY_PASS}"),
        format!("proxyuser:{WRONG_PROXY_PASS}"),
    ] {
        all.push(base64(&pair));
    }
    all
}

/// The secrets (and pieces) `log` holds.
fn leaks(log: &str) -> Vec<String> {
    let lower = log.to_ascii_lowercase();
    forbidden()
        .into_iter()
        .filter(|s| lower.contains(&s.to_ascii_lowercase()))
        .collect()
}

/// A request of [`send_credentials`]: method, target, headers, the status it must get.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16);

/// Sends every kind of credential through `served` and checks the answers.
fn send_credentials(served: &Served) {
    let addr = served.addr;
    let mut c = Conn::open(addr).expect("connect");
    let bearer = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {WRONG_TOKEN}");
    let basic = format!("Basic {}", base64(&format!("user:{BASIC_PASS}")));
    let proxy_ok = format!("Basic {}", base64(&format!("proxyuser:{PROXY_PASS}")));
    let proxy_wrong = format!("Basic {}", base64(&format!("proxyuser:{WRONG_PROXY_PASS}")));
    let route_bearer = format!("Bearer {BEARER_ROUTE}");
    let own = format!("http://{addr}/status/200");
    let cases: Vec<Case<'_>> = vec![
        (
            "PUT",
            "/resources/doc".into(),
            vec![("Authorization", &bearer)],
            201,
        ),
        (
            "GET",
            "/resources".into(),
            vec![("Authorization", &bearer)],
            200,
        ),
        (
            "GET",
            "/resources".into(),
            vec![("Authorization", &wrong)],
            401,
        ),
        (
            "PUT",
            "/admin/maintenance".into(),
            vec![("Authorization", &wrong)],
            401,
        ),
        (
            "PUT",
            "/admin/maintenance".into(),
            vec![("Authorization", &bearer)],
            204,
        ),
        (
            "DELETE",
            "/admin/maintenance".into(),
            vec![("Authorization", &bearer)],
            204,
        ),
        (
            "GET",
            format!("/basic-auth/user/{BASIC_PASS}"),
            vec![("Authorization", &basic)],
            200,
        ),
        ("GET", format!("/basic-auth/user/{PATH_PASS}"), vec![], 401),
        (
            "GET",
            format!("/basic-auth/user/{PATH_PASS}"),
            vec![("Authorization", &basic)],
            401,
        ),
        (
            "GET",
            format!("/hidden-basic-auth/user/{HIDDEN_PASS}"),
            vec![],
            404,
        ),
        (
            "GET",
            "/bearer".into(),
            vec![("Authorization", &route_bearer)],
            200,
        ),
        (
            "GET",
            own.clone(),
            vec![("Proxy-Authorization", &proxy_ok)],
            200,
        ),
        (
            "GET",
            own.clone(),
            vec![("Proxy-Authorization", &proxy_wrong)],
            407,
        ),
        ("GET", own, vec![], 407),
    ];
    for (method, target, headers, want) in &cases {
        let body: &[u8] = if *method == "PUT" && target.starts_with("/resources") {
            b"stored"
        } else {
            b""
        };
        let r = c
            .request(method, target, headers, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert_eq!(r.status, *want, "{method} {target} {headers:?}: {r:?}");
        // httpbin's /bearer answers with the token it was sent: that is the route's job.
        assert!(
            target == "/bearer" || !r.text().contains(MARKER),
            "{method} {target}: the answer repeats a secret: {}",
            r.text()
        );
        // 407 closes nothing, but a proxy refusal may: reconnect when the server closed.
        if r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            c = Conn::open(addr).expect("reconnect");
        }
    }
}

/// Stops `served` (SIGTERM, so every log line is written) and returns its whole log.
fn whole_log(mut served: Served) -> String {
    served.terminate();
    let status = served.wait_exit(Duration::from_secs(20));
    let log = served.final_log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM; log:\n{log}"
    );
    log
}

/// The paths of the access-log lines of a text log.
fn logged_text_paths(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("statuslab::access"))
        .filter_map(|l| {
            let rest = &l[l.find("path=")? + 5..];
            Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
        })
        .collect()
}

/// The paths of the access-log events of a JSON log (every line must be JSON).
fn logged_json_paths(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"))
        })
        .filter(|e| e["target"] == "statuslab::access")
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn secrets_never_reach_the_log() {
    let redis = Redis::start_with(vec!["--requirepass".into(), REDIS_PASS.into()]);
    let with_password = format!("redis://:{REDIS_PASS}@127.0.0.1:{}", redis.port);
    let token = format!("{TOKEN}:admin");
    let proxy_user = format!("proxyuser:{PROXY_PASS}");
    for format in ["text", "json"] {
        let prefix = format!("secrets-{format}");
        let served = Served::start(
            &[
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                VERBOSE,
                "--log-format",
                format,
                "--store",
                &with_password,
                "--redis-prefix",
                &prefix,
                "--token",
                &token,
                "--proxy",
                "--proxy-user",
                &proxy_user,
            ],
            &[],
        );
        send_credentials(&served);
        let log = whole_log(served);
        let paths = if format == "json" {
            logged_json_paths(&log)
        } else {
            logged_text_paths(&log)
        };
        // The requests were logged (paths with passwords redacted), so the log was not empty.
        for want in [
            "/resources/doc",
            "/resources",
            "/admin/maintenance",
            "/basic-auth/user/<redacted>",
            "/hidden-basic-auth/user/<redacted>",
            "/bearer",
            "/status/200",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{format}: no access-log line for {want}; paths {paths:?}; log:\n{log}"
            );
        }
        assert!(
            paths.len() >= 14,
            "{format}: {} access-log lines:\n{log}",
            paths.len()
        );
        assert!(
            log.contains("maintenance mode switched"),
            "{format}:\n{log}"
        );
        let leaked = leaks(&log);
        assert!(
            leaked.is_empty(),
            "{format}: the log holds {leaked:?}:\n{log}"
        );
    }

    // A wrong Redis password, from the variable with a URL that has none: start-up warning,
    // 503s and the follower's debug lines, none with the password.
    for format in ["text", "json"] {
        let served = Served::start(
            &[
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                VERBOSE,
                "--log-format",
                format,
                "--store",
                &redis.url(),
                "--redis-prefix",
                "secrets-wrong",
            ],
            &[("STATUSLAB_REDIS_PASSWORD", WRONG_REDIS_PASS)],
        );
        let r = crate::live::fetch(served.addr, "PUT", "/resources/x", b"x");
        assert_eq!(r.status, 503, "{r:?}");
        assert!(!r.text().contains(MARKER), "{}", r.text());
        // The maintenance follower reads the store each second and logs its failure at debug.
        std::thread::sleep(Duration::from_millis(1200));
        let log = whole_log(served);
        let lower = log.to_ascii_lowercase();
        assert!(
            lower.contains("debug") && lower.contains("/resources/x"),
            "{format}: no debug line or no access line:\n{log}"
        );
        assert!(
            lower.contains("auth"),
            "{format}: the log does not say authentication failed:\n{log}"
        );
        let leaked = leaks(&log);
        assert!(
            leaked.is_empty(),
            "{format}: the log holds {leaked:?}:\n{log}"
        );
    }
}
