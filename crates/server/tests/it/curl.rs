//! The system `curl` against the real server, as a user would run it. curl is a required test
//! dependency (scripts/test-deps.sh installs it): without it these tests fail, never skip.

use crate::support::TestServer;
use std::time::Duration;

/// What one curl run produced.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `curl` with `args` (plus `--max-time`, so a hanging exchange fails instead of
/// blocking), asynchronously so the in-process server keeps serving.
async fn curl(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("curl")
            .args(["--max-time", "15"])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl finishes")
    .unwrap_or_else(|e| {
        panic!("cannot run the system curl ({e}); it is required: run scripts/test-deps.sh")
    });
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, Some(0), "curl {args:?} failed: {run:#?}");
    run
}

/// The header lines of the final response in `curl -i` output (after any interim ones).
fn last_head(stdout: &str) -> Vec<&str> {
    let heads: Vec<&str> = stdout.split("\r\n\r\n").collect();
    let last = heads
        .iter()
        .rev()
        .find(|h| h.starts_with("HTTP/"))
        .unwrap_or_else(|| panic!("no response head in {stdout:?}"));
    last.split("\r\n").collect()
}

#[tokio::test]
async fn curl_i_status_429_shows_retry_after() {
    let server = TestServer::start().await;
    let run = curl(&["-sS", "-i", &server.url("/status/429")]).await;
    let head = last_head(&run.stdout);
    assert_eq!(head[0], "HTTP/1.1 429 Too Many Requests", "{}", run.stdout);
    assert!(
        head.contains(&"Retry-After: 1"),
        "curl -i shows Retry-After:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("429 TooManyRequests"),
        "the body carries the table's message"
    );
}

#[tokio::test]
async fn curl_upload_sees_100_continue() {
    let server = TestServer::start().await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("statuslab-upload-{}.bin", std::process::id()));
    std::fs::write(&file, vec![b'u'; 64 * 1024]).expect("write the upload file");
    let path = file.to_str().expect("a UTF-8 path");
    let run = curl(&[
        "-sS",
        "-v",
        "-T",
        path,
        // Explicit, so the test does not depend on curl's size threshold for adding it.
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "5",
        &server.url("/status/201"),
    ])
    .await;
    let _ = std::fs::remove_file(&file);
    let err = &run.stderr;
    assert!(err.contains("> Expect: 100-continue"), "{err}");
    let cont = err
        .find("< HTTP/1.1 100 Continue")
        .unwrap_or_else(|| panic!("no 100 Continue:\n{err}"));
    let created = err
        .find("< HTTP/1.1 201 Created")
        .unwrap_or_else(|| panic!("no 201:\n{err}"));
    assert!(
        cont < created,
        "100 Continue comes before the final response"
    );
    assert!(run.stdout.contains("201 Created"), "{}", run.stdout);
}

#[tokio::test]
async fn curl_http2_prior_knowledge() {
    let server = TestServer::start().await;
    let run = curl(&[
        "-sS",
        "-i",
        "--http2-prior-knowledge",
        &server.url("/status/503"),
    ])
    .await;
    let head = last_head(&run.stdout);
    assert_eq!(head[0].trim_end(), "HTTP/2 503", "{}", run.stdout);
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("retry-after: 1")),
        "{}",
        run.stdout
    );
    let run = curl(&[
        "-sS",
        "-i",
        "--http2-prior-knowledge",
        &server.url("/status/103"),
    ])
    .await;
    assert!(
        run.stdout.starts_with("HTTP/2 103"),
        "curl shows the early hints: {}",
        run.stdout
    );
    assert_eq!(last_head(&run.stdout)[0].trim_end(), "HTTP/2 200");
}

#[tokio::test]
async fn curl_head_and_interim_and_bodyless() {
    let server = TestServer::start().await;
    let get = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        &server.url("/status/404"),
    ])
    .await;
    let run = curl(&["-sS", "-I", &server.url("/status/404")]).await;
    let head = last_head(&run.stdout);
    assert_eq!(head[0], "HTTP/1.1 404 Not Found");
    assert!(
        head.contains(&format!("Content-Length: {}", get.stdout).as_str()),
        "HEAD's Content-Length is GET's body length {}:\n{}",
        get.stdout,
        run.stdout
    );

    let run = curl(&["-sS", "-i", &server.url("/status/100")]).await;
    assert!(
        run.stdout.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{}",
        run.stdout
    );
    assert_eq!(last_head(&run.stdout)[0], "HTTP/1.1 200 OK");

    for code in ["204", "304", "205"] {
        // curl would hang (and hit --max-time) if a bodyless reply were framed wrongly.
        let run = curl(&[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            &server.url(&format!("/status/{code}")),
        ])
        .await;
        assert_eq!(run.stdout, format!("{code} 0"));
    }
}

#[tokio::test]
async fn curl_follows_redirects_and_negotiates() {
    let server = TestServer::start().await;
    let run = curl(&[
        "-sS",
        "-L",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_redirects}",
        &server.url("/status/302"),
    ])
    .await;
    assert_eq!(run.stdout, "200 1");
    let run = curl(&[
        "-sS",
        "-H",
        "Accept: application/problem+json",
        &server.url("/status/504"),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("problem+json");
    assert_eq!(v["title"], "ServerTimeout");
    assert_eq!(v["status"], 504);
    let run = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PROPFIND",
        &server.url("/status/200"),
    ])
    .await;
    assert_eq!(run.stdout, "501");
}
