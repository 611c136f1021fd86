//! The page at `/` as people use it: headless Chromium, driven over the DevTools protocol by
//! `tests/clients/page.py`, types into the search field, clicks try-it buttons and reads the
//! panel; the same page without JavaScript still lists every code with working links.

use crate::edge::python;
use crate::support::TestServer;
use serde_json::Value;

fn codes(v: &Value) -> Vec<u64> {
    v["visible"]
        .as_array()
        .unwrap_or_else(|| panic!("no visible rows in {v:#}"))
        .iter()
        .map(|c| c.as_str().and_then(|s| s.parse().ok()).expect("a code"))
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v:#}"))
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// Every registered code, ascending.
fn all_codes() -> Vec<u64> {
    statuslab_catalog::all()
        .map(|s| u64::from(s.code()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_searches_the_page_and_tries_codes() {
    let server = TestServer::start().await;
    let out = python("page.py", &[&server.url("/")]).await;
    let all = all_codes();

    let initial = &out["initial"];
    assert_eq!(codes(initial), all, "{initial:#}");
    assert_eq!(initial["count"], all.len().to_string(), "{initial:#}");
    assert_eq!(
        initial["search"], true,
        "the script reveals the search field"
    );
    assert_eq!(initial["panel"], true, "and the try-it panel");
    assert_eq!(initial["buttons"], all.len() as u64);
    assert_eq!(
        strings(&initial["sections"]),
        ["x1", "x2", "x3", "x4", "x5"]
    );

    // 429: exactly one row, one class.
    let s = &out["search_429"];
    assert_eq!(codes(s), [429], "{s:#}");
    assert_eq!(s["count"], "1", "{s:#}");
    assert_eq!(
        strings(&s["sections"]),
        ["x4"],
        "other classes' headers hide"
    );

    // A digit string matches inside codes.
    let s = &out["search_42"];
    let want: Vec<u64> = all
        .iter()
        .copied()
        .filter(|c| c.to_string().contains("42"))
        .collect();
    assert_eq!(codes(s), want, "{s:#}");
    assert!(codes(s).contains(&421) && codes(s).contains(&429));

    // Words: message, RFC phrase or description, any case.
    let s = &out["search_gateway"];
    let seen = codes(s);
    assert!(seen.contains(&502) && seen.contains(&504), "{s:#}");
    assert!(!seen.contains(&200), "{s:#}");
    assert_eq!(s["count"], seen.len().to_string());
    assert_eq!(strings(&s["sections"]), ["x5"], "{s:#}");

    // Every word must match ("Too LARGE": 413, 414, 431), and "4xx" names a class.
    assert_eq!(codes(&out["search_two_words"]), [413, 414, 431]);
    let s = codes(&out["search_4xx_words"]);
    assert!(
        !s.is_empty() && s.iter().all(|c| (400..500).contains(c)),
        "{s:?}"
    );
    assert!(s.contains(&400) && s.contains(&429), "{s:?}");

    let s = &out["search_nothing"];
    assert_eq!(codes(s), Vec::<u64>::new());
    assert_eq!(s["count"], "0");
    assert_eq!(s["none"], true, "says that nothing matches");
    assert_eq!(strings(&s["sections"]), Vec::<&str>::new());
    assert_eq!(codes(&out["search_cleared"]), all);

    // Try-it on 429: the status, its reason and Retry-After, fetched for real.
    let t = &out["try_429"];
    let panel = t["out"].as_str().expect("panel text");
    assert!(
        panel.starts_with("HTTP/1.1 429 Too Many Requests\n"),
        "{panel}"
    );
    assert!(panel.contains("\nretry-after: "), "{panel}");
    assert!(panel.contains("\"code\":429"), "the body: {panel}");
    assert!(
        t["req"].as_str().unwrap().starts_with("GET /status/429\n"),
        "{t:#}"
    );

    // Codes fetch() cannot show are explained instead.
    for (key, code, words) in [
        ("try_100", "100", "interim"),
        ("try_101", "101", "WebSocket"),
    ] {
        let t = &out[key];
        assert_eq!(t["out"], "", "{t:#}");
        let why = t["why"].as_str().unwrap();
        assert!(
            why.contains(words) && why.contains(&format!("/status/{code}")),
            "{why}"
        );
    }
    let t = &out["try_301"];
    assert!(
        t["why"].as_str().unwrap().contains("followed the 301"),
        "{t:#}"
    );

    // Dress the browser lets a page read: 401's challenge; 204 and 304 without content.
    let panel = out["try_401"]["out"].as_str().unwrap();
    assert!(panel.starts_with("HTTP/1.1 401 Unauthorized\n"), "{panel}");
    assert!(panel.contains("\nwww-authenticate: Basic"), "{panel}");
    for (key, line) in [
        ("try_204", "HTTP/1.1 204 No Content\n"),
        ("try_304", "HTTP/1.1 304 Not Modified\n"),
    ] {
        let panel = out[key]["out"].as_str().unwrap();
        assert!(panel.starts_with(line), "{panel}");
        assert!(panel.ends_with("\n\n"), "no content: {panel:?}");
    }
    // Chromium refuses a 407 from a server that is not its proxy; the panel says why.
    let t = &out["try_407"];
    assert!(
        t["out"].as_str().unwrap().starts_with("fetch() failed"),
        "{t:#}"
    );
    assert!(
        t["why"].as_str().unwrap().contains("configured proxy"),
        "{t:#}"
    );

    // The panel's options reach the request: Accept, retry_after, sleep, method.
    let t = &out["send_503"];
    assert_eq!(
        t["req"]
            .as_str()
            .unwrap()
            .lines()
            .take(2)
            .collect::<Vec<_>>(),
        [
            "GET /status/503?retry_after=7&sleep=50ms",
            "Accept: application/problem+json"
        ],
        "{t:#}"
    );
    let panel = t["out"].as_str().unwrap();
    assert!(
        panel.starts_with("HTTP/1.1 503 Service Unavailable\n"),
        "{panel}"
    );
    assert!(panel.contains("\nretry-after: 7\n"), "{panel}");
    assert!(
        panel.contains("\ncontent-type: application/problem+json\n"),
        "{panel}"
    );
    let t = &out["send_head_404"];
    let panel = t["out"].as_str().unwrap();
    assert!(panel.starts_with("HTTP/1.1 404 Not Found\n"), "{t:#}");
    assert!(panel.ends_with("\n\n"), "HEAD: no body: {panel:?}");

    // The policy admitted the inline script and style; nothing failed.
    assert_eq!(out["after"]["csp"], serde_json::json!([]), "{out:#}");
    assert_eq!(out["exceptions"], serde_json::json!([]), "{out:#}");
    assert_eq!(out["console_errors"], serde_json::json!([]), "{out:#}");

    // Without JavaScript: every row shown, the script-only controls stay hidden.
    let n = &out["no_js"];
    assert_eq!(out["no_js_scripts_ran"], false);
    assert_eq!(codes(n), all, "{n:#}");
    assert_eq!(n["search"], false);
    assert_eq!(n["panel"], false);
    assert_eq!(n["buttons"], 0);
}

/// The raw HTML (what a client without JavaScript gets) holds every code with its links,
/// small, with a policy that admits nothing from elsewhere.
#[tokio::test]
async fn the_raw_page_lists_every_code_and_loads_nothing_else() {
    let server = TestServer::start().await;
    let r = server.get("/", &[]).await;
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.len() < 200 * 1024, "{} bytes", page.len());
    for code in all_codes() {
        for needle in [
            format!("id=\"c{code}\""),
            format!("href=\"/codes/{code}\""),
            format!("href=\"/status/{code}\""),
        ] {
            assert!(page.contains(&needle), "{needle}");
        }
    }
    let csp = r.must("content-security-policy");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.must("x-content-type-options"), "nosniff");
    for link in [
        "href=\"/openapi.json\"",
        "href=\"/codes\"",
        "href=\"/metrics\"",
        "href=\"/sequences/demo/report\"",
        "statuslab probe",
        "href=\"/get\"",
    ] {
        assert!(page.contains(link), "{link}");
    }
}
