//! Configuration paths of `statuslab serve` as a process: `--token-file`, `STATUSLAB_TOKENS`,
//! and TLS from certificate and key files (`--tls-cert`/`--tls-key` and their variables),
//! checked with the system's curl.

use crate::live::{Conn, Served};
use crate::serve::refused;
use std::process::Command;

/// What the bearer token `secret` (or none) gets on a read of /resources, a write of a
/// resource and a maintenance switch.
fn scope_statuses(served: &Served, secret: Option<&str>) -> [u16; 3] {
    let bearer = secret.map(|s| format!("Bearer {s}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    // A fresh connection each: a refusal before the content is read closes the connection.
    let status = |method: &str, target: &str, body: &[u8]| {
        Conn::open(served.addr)
            .expect("connect")
            .request(method, target, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
            .status
    };
    let read = status("GET", "/resources", b"");
    let write = status("PUT", "/resources/doc", b"content");
    let admin = status("PUT", "/admin/maintenance", b"");
    if admin == 204 {
        // Back off, so that the next checks are not answered 503.
        assert_eq!(status("DELETE", "/admin/maintenance", b""), 204);
    }
    [read, write, admin]
}

/// What each kind of token may do: read gets 403 on a write, write 403 on maintenance, admin
/// everything; no token or an unknown one gets 401. (A PUT that creates answers 201, one that
/// replaces 204.)
fn check_scopes(served: &Served, read: &str, write: &str, admin: &str) {
    assert_eq!(scope_statuses(served, None), [401, 401, 401], "no token");
    assert_eq!(
        scope_statuses(served, Some("not-a-token")),
        [401, 401, 401],
        "an unknown token"
    );
    assert_eq!(
        scope_statuses(served, Some(read)),
        [200, 403, 403],
        "read token"
    );
    let [r, w, a] = scope_statuses(served, Some(write));
    assert_eq!((r, a), (200, 403), "write token");
    assert!(w == 201 || w == 204, "write token: PUT answered {w}");
    let [r, w, a] = scope_statuses(served, Some(admin));
    assert_eq!((r, w, a), (200, 204, 204), "admin token");
}

/// `--token-file`: one SECRET:SCOPE per line, comments and blank lines skipped, surrounding
/// spaces trimmed; it adds to `--token`.
#[test]
fn token_file_grants_each_token_its_scope() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# statuslab tokens\nreader-tf:read\n\n   writer-tf:write  \n# admin-commented:admin\n",
    )
    .expect("write the token file");
    let file = file.to_str().expect("UTF-8 temp path");
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-access-log",
            "--token-file",
            file,
            "--token",
            "admin-flag:admin",
        ],
        &[],
    );
    check_scopes(&served, "reader-tf", "writer-tf", "admin-flag");
    // A commented-out line grants nothing.
    assert_eq!(scope_statuses(&served, Some("admin-commented"))[0], 401);
    drop(served);

    // The same file from STATUSLAB_TOKEN_FILE.
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-access-log",
        ],
        &[("STATUSLAB_TOKEN_FILE", file)],
    );
    assert_eq!(scope_statuses(&served, Some("reader-tf")), [200, 403, 403]);
}

/// A token file that is missing or has a bad line: exit 2 and one error line naming the file
/// (and the line), never the secret on it.
#[test]
fn a_missing_or_bad_token_file_exits_2_with_one_error() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let missing = dir.path().join("no-such-tokens");
    let missing = missing.to_str().expect("UTF-8 temp path").to_owned();
    let bad = dir.path().join("bad-tokens");
    std::fs::write(&bad, "fine-tf:read\nhidden-tf-secret:superuser\n").expect("write");
    let bad = bad.to_str().expect("UTF-8 temp path").to_owned();
    let args = |file: &str| {
        vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--store".to_owned(),
            "memory".to_owned(),
            "--token-file".to_owned(),
            file.to_owned(),
        ]
    };
    crate::check(
        [
            (args(&missing), "--token-file"),
            (args(&missing), missing.as_str()),
            (args(&bad), "line 2"),
            (args(&bad), "expected read, write or admin"),
        ],
        |(args, names)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            refused(&args, &[], 2, names)
        },
    );
    let out = crate::live::command()
        .arg("serve")
        .args(args(&bad))
        .output()
        .expect("run statuslab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("hidden-tf-secret"),
        "the error echoes the secret: {stderr}"
    );
}

/// `STATUSLAB_TOKENS`: a comma-separated list of SECRET:SCOPE, spaces around items allowed.
#[test]
fn statuslab_tokens_takes_a_comma_separated_list() {
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-access-log",
        ],
        &[(
            "STATUSLAB_TOKENS",
            "reader-env:read, writer-env:write,admin-env:admin",
        )],
    );
    check_scopes(&served, "reader-env", "writer-env", "admin-env");
}

/// Runs curl with `args`; its exit code and stdout.
fn curl(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl is required (scripts/test-deps.sh installs it): {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--tls-cert`/`--tls-key` with PEM files made here (a self-signed certificate for
/// 127.0.0.1): curl trusting that certificate gets HTTPS answers over HTTP/2 (ALPN) and
/// HTTP/1.1; curl without it refuses the certificate, so TLS really is in use. The same from
/// `STATUSLAB_TLS_CERT`/`STATUSLAB_TLS_KEY`.
#[test]
fn tls_certificate_and_key_files_serve_https() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let (cert, key) = (
        cert.to_str().expect("UTF-8 temp path"),
        key.to_str().expect("UTF-8 temp path"),
    );
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory",
        "--no-access-log",
    ];
    let by_flags = Served::start(
        &[&base[..], &["--tls-cert", cert, "--tls-key", key]].concat(),
        &[],
    );
    let by_env = Served::start(
        &base,
        &[("STATUSLAB_TLS_CERT", cert), ("STATUSLAB_TLS_KEY", key)],
    );
    for served in [&by_flags, &by_env] {
        assert_eq!(served.scheme, "https", "{}", served.log());
        let url = format!("https://{}/status/201", served.addr);
        let show = "%{http_code} %{http_version} %{ssl_verify_result}";
        let (code, out, err) = curl(&["--cacert", cert, "-o", "/dev/null", "-w", show, &url]);
        assert_eq!(code, Some(0), "curl --cacert {url}: {err}");
        assert_eq!(out, "201 2 0", "HTTP/2 by ALPN, certificate verified");
        let (code, out, err) = curl(&[
            "--http1.1",
            "--cacert",
            cert,
            "-o",
            "/dev/null",
            "-w",
            show,
            &url,
        ]);
        assert_eq!(code, Some(0), "curl --http1.1 --cacert {url}: {err}");
        assert_eq!(out, "201 1.1 0");
        // Not trusted without the certificate: curl's exit 60 (peer certificate).
        let (code, _, err) = curl(&["-o", "/dev/null", &url]);
        assert_eq!(code, Some(60), "curl without --cacert: {err}");
        // Plain HTTP on the TLS port is not served: it gets a 400 saying so.
        let plain = format!("http://{}/status/201", served.addr);
        let (code, out, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &plain]);
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "400"),
            "plain HTTP on the TLS port"
        );
    }
}

/// `--tls-self-signed` writes its certificate (PEM, never the key) to `tls/cert.pem` in
/// `--data-dir`, whatever the store, or to `--tls-cert-out`, and logs the path and SHA-256
/// fingerprint at start (an event of its own with `--log-format json`); curl trusting that
/// file verifies the server.
#[test]
fn self_signed_certificate_is_written_and_logged() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("UTF-8 temp path");
    let base = [
        "--listen",
        "127.0.0.1:0",
        "--no-access-log",
        "--tls-self-signed",
    ];
    let json = Served::start(
        &[
            &base[..],
            &[
                "--store",
                "memory",
                "--data-dir",
                data_arg,
                "--log-format",
                "json",
            ],
        ]
        .concat(),
        &[],
    );
    let pem = data.join("tls").join("cert.pem");
    let text = std::fs::read_to_string(&pem).expect("the certificate is in the data folder");
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
    assert!(!text.contains("PRIVATE KEY"));
    let log = json.log();
    let event: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["sha256"].is_string())
        .unwrap_or_else(|| panic!("no certificate event in the JSON log:\n{log}"));
    assert_eq!(event["certificate"], pem.display().to_string(), "{event}");
    let sha256 = event["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha256.len(), 32 * 3 - 1, "{sha256}");
    assert!(
        sha256
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()))
    );
    let url = format!("https://localhost:{}/status/201", json.addr.port());
    let show = "%{http_code} %{ssl_verify_result}";
    let cacert = pem.to_str().expect("UTF-8 temp path");
    let (code, out, err) = curl(&["--cacert", cacert, "-o", "/dev/null", "-w", show, &url]);
    assert_eq!((code, out.as_str()), (Some(0), "201 0"), "{err}");

    let elsewhere = dir.path().join("elsewhere.pem");
    let out_arg = elsewhere.to_str().expect("UTF-8 temp path");
    let text_log = Served::start(
        &[
            &base[..],
            &[
                "--store",
                "memory",
                "--data-dir",
                data_arg,
                "--tls-cert-out",
                out_arg,
            ],
        ]
        .concat(),
        &[],
    );
    let written = std::fs::read_to_string(&elsewhere).expect("--tls-cert-out");
    assert_ne!(written, text, "a new certificate each start");
    let log = text_log.log();
    assert!(log.contains(out_arg) && log.contains("sha256"), "{log}");
}
