//! The probe against nginx: a static file and a few `return` locations, on a loopback port.
//! The verdicts below are what nginx 1.22 really does (recorded from a run, then asserted),
//! by the table and by RFC 9110; docs/PROBE.md explains them.
//!
//! Without nginx the test is skipped, unless `CI` is set: then it fails, loudly.

use statuslab_server::probe::{self, Options, Route, Verdict};
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use Verdict::{Fail, Inconclusive, Pass, Skip};

/// Each check, its verdict by the table and by RFC 9110.
const NGINX: &[(&str, Verdict, Verdict)] = &[
    ("get", Pass, Pass),
    ("head", Pass, Pass),
    // 405 Not Allowed, without Allow: nginx's static module knows GET, HEAD and POST only.
    ("options", Fail, Fail),
    // 405 for a method nginx does not know, not 501.
    ("unknown-method", Fail, Fail),
    // ... and that 405 carries no Allow.
    ("method-not-allowed", Fail, Fail),
    ("if-none-match", Pass, Pass),
    ("if-match", Pass, Pass),
    ("if-modified-since", Pass, Pass),
    ("if-unmodified-since", Pass, Pass),
    ("range", Pass, Pass),
    ("multi-range", Pass, Pass),
    ("range-unsatisfiable", Pass, Pass),
    ("if-range", Pass, Pass),
    // nginx sends 100 Continue as it starts reading the content.
    ("expect-continue", Pass, Pass),
    // Expect: foo is ignored: the table wants 417, the RFC allows ignoring it.
    ("expect-unknown", Fail, Pass),
    ("uri-too-long", Pass, Pass),
    // 400 "Request Header Or Cookie Too Large" instead of 431.
    ("header-flood", Fail, Pass),
    // HTTP/1.2 is served as HTTP/1.1 (RFC 9112 §2.3), not refused with 505.
    ("http-version", Fail, Pass),
    ("missing-host", Pass, Pass),
    // PUT on a static location: 405, so the write checks cannot go on.
    ("put-create", Inconclusive, Inconclusive),
    ("put-if-none-match", Skip, Skip),
    ("put-if-match", Skip, Skip),
    ("delete", Skip, Skip),
    ("after-delete", Skip, Skip),
    ("framing-cl-conflict", Pass, Pass),
    ("framing-te-cl", Pass, Pass),
    ("framing-chunk-nonhex", Pass, Pass),
    ("framing-chunk-overflow", Pass, Pass),
    // client_header_timeout closes the connection without a 408.
    ("stalled-head", Fail, Pass),
    // `return CODE;` sends the bare code: no challenge, no Allow, no Content-Range, no
    // Retry-After.
    ("route-204", Pass, Pass),
    ("route-301", Pass, Pass),
    ("route-304", Pass, Pass),
    ("route-401", Fail, Fail),
    ("route-405", Fail, Fail),
    ("route-413", Inconclusive, Inconclusive),
    ("route-416", Fail, Fail),
    ("route-429", Fail, Pass),
    ("route-503", Pass, Pass),
];

const RETURNS: &[u16] = &[204, 301, 304, 401, 405, 413, 416, 429, 503];

fn nginx_binary() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/nginx");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nginx"))
            .find(|p| p.is_file())
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// An nginx on a loopback port, killed (one process: `master_process off`) when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    prefix: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log")).unwrap_or_default()
    }
}

fn config(prefix: &Path, port: u16) -> String {
    let p = prefix.display();
    let returns: String = RETURNS
        .iter()
        .map(|c| {
            if *c == 301 {
                format!("        location = /e{c} {{ return {c} /doc.txt; }}\n")
            } else {
                format!("        location = /e{c} {{ return {c}; }}\n")
            }
        })
        .collect();
    format!(
        "worker_processes 1;
master_process off;
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    client_header_timeout 2s;
    types {{ text/plain txt; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {p}/html;
{returns}    }}
}}
"
    )
}

fn start(binary: &Path) -> Nginx {
    let mut last = String::new();
    for _ in 0..5 {
        let prefix = tempfile::TempDir::new().expect("a temporary directory");
        let p = prefix.path();
        std::fs::create_dir_all(p.join("html")).expect("html");
        std::fs::create_dir_all(p.join("tmp")).expect("tmp");
        let mut doc = std::fs::File::create(p.join("html/doc.txt")).expect("doc.txt");
        for i in 0..100 {
            writeln!(doc, "statuslab probe target, line {i:04}").expect("write doc.txt");
        }
        // A free port, released for nginx (a race with another process is retried).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::write(p.join("nginx.conf"), config(p, port)).expect("nginx.conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(p)
            .arg("-c")
            .arg(p.join("nginx.conf"))
            .arg("-e")
            .arg(p.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut nginx = Nginx {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            prefix,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = nginx.child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(&nginx.addr, Duration::from_millis(200)).is_ok() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last = nginx.error_log();
    }
    panic!("nginx did not start; its error log:\n{last}");
}

#[tokio::test]
async fn the_probe_finds_what_nginx_really_does() {
    let Some(binary) = nginx_binary() else {
        assert!(
            !in_ci(),
            "nginx is required in CI (CI is set) and is missing: install it (scripts/test-deps.sh does)"
        );
        eprintln!(
            "nginx is not installed: the probe's nginx test is skipped (it is required when CI is set)"
        );
        return;
    };
    let nginx = tokio::task::spawn_blocking(move || start(&binary))
        .await
        .expect("starting nginx");
    let mut opts = Options::new(format!("http://{}/doc.txt", nginx.addr));
    opts.routes = RETURNS
        .iter()
        .map(|c| Route {
            code: *c,
            path: format!("/e{c}"),
        })
        .collect();
    opts.allow_writes = true;
    opts.framing = true;
    opts.slow = true;
    opts.slow_wait = Duration::from_secs(15);
    opts.timeout = Duration::from_secs(5);
    let report = probe::run(&opts)
        .await
        .expect("the probe runs against nginx");
    let all: String = report
        .checks
        .iter()
        .map(|c| {
            format!(
                "  {:<24} {:<12} {:<12} {}\n",
                c.id,
                c.verdict.name(),
                c.other.as_ref().map_or(c.verdict, |o| o.verdict).name(),
                c.observed
            )
        })
        .collect();
    let mut wrong = Vec::new();
    for (id, table, rfc) in NGINX {
        let Some(c) = report.check(id) else {
            wrong.push(format!("{id}: not in the report"));
            continue;
        };
        let by_rfc = c.other.as_ref().map_or(c.verdict, |o| o.verdict);
        if (c.verdict, by_rfc) != (*table, *rfc) {
            wrong.push(format!(
                "{id}: {} by the table and {} by the RFC, recorded {} and {}",
                c.verdict.name(),
                by_rfc.name(),
                table.name(),
                rfc.name()
            ));
        }
    }
    assert_eq!(report.checks.len(), NGINX.len(), "{all}");
    assert!(
        wrong.is_empty(),
        "{}\n\nthe whole report:\n{all}\nnginx's error log:\n{}",
        wrong.join("\n"),
        nginx.error_log()
    );
}
