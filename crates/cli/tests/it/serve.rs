//! `statuslab serve` as a process: graceful SIGTERM, environment variables, the memory store,
//! bad flag values, and the system's curl against it.

use crate::live::{self, Conn, Served, fetch};
use std::time::{Duration, Instant};

/// Shutdown grace given to the SIGTERM test's server.
const GRACE: Duration = Duration::from_secs(5);

fn no_panic(log: &str) -> Result<(), String> {
    let lower = log.to_ascii_lowercase();
    if lower.contains("panicked") || lower.contains("stack backtrace") {
        Err(format!("the server panicked:\n{log}"))
    } else {
        Ok(())
    }
}

/// SIGTERM while a delayed request is in flight: it still gets its 200, an idle keep-alive
/// connection is closed, and the process exits 0 within the grace period.
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_0() {
    finishes_in_flight_requests_then_exits_0("TERM");
}

/// SIGINT (Ctrl-C) the same way as SIGTERM.
#[test]
fn sigint_finishes_in_flight_requests_then_exits_0() {
    finishes_in_flight_requests_then_exits_0("INT");
}

fn finishes_in_flight_requests_then_exits_0(signal: &str) {
    let dir = tempfile::tempdir().expect("temporary data dir");
    let grace = format!("{}s", GRACE.as_secs());
    let mut served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().expect("UTF-8 temp path"),
            "--shutdown-grace",
            &grace,
        ],
        &[],
    );
    // An idle keep-alive connection that has already been served once.
    let mut idle = Conn::open(served.addr).expect("connect");
    let r = idle
        .request("GET", "/health", &[], b"")
        .expect("GET /health");
    assert_eq!(r.status, 200, "{r:?}");

    let mut busy = Conn::open(served.addr).expect("connect");
    busy.send("GET", "/status/200?sleep=700ms", &[], b"")
        .expect("send the delayed request");
    // Let the server read the request and start its sleep before the signal.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    served.signal(signal);

    let r = busy
        .receive(false)
        .unwrap_or_else(|e| panic!("the in-flight request got no answer: {e}"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close")),
        "an answer sent while shutting down carries Connection: close: {r:?}"
    );
    assert!(
        idle.closed_by_server(),
        "the idle keep-alive connection is closed on shutdown"
    );

    // The grace period, plus room for the process to exit on a busy machine.
    let status = served.wait_exit(GRACE + Duration::from_secs(3));
    let log = served.final_log();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running {:?} after SIG{signal} (grace {GRACE:?}); stderr:\n{log}",
            signalled.elapsed()
        )
    });
    eprintln!(
        "SIG{signal} to exit: {:?}, exit {status}",
        signalled.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIG{signal}; stderr:\n{log}"
    );
    no_panic(&log).unwrap();
    // Access logging is on by default: the delayed request was logged.
    assert!(
        log.contains("/status/200"),
        "no access-log line for the delayed request:\n{log}"
    );
}

/// Every flag has a `STATUSLAB_*` variable: the address, the delay cap, the store and the access
/// log here, with no flags at all.
#[test]
fn environment_variables_configure_the_server() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let unused = dir.path().join("not-created");
    let mut served = Served::start(
        &[],
        &[
            ("STATUSLAB_LISTEN", "127.0.0.1:0"),
            ("STATUSLAB_MAX_DELAY", "1s"),
            ("STATUSLAB_STORE", "memory"),
            (
                "STATUSLAB_DATA_DIR",
                unused.to_str().expect("UTF-8 temp path"),
            ),
            ("STATUSLAB_NO_ACCESS_LOG", "true"),
        ],
    );
    assert!(served.addr.ip().is_loopback(), "{}", served.addr);
    assert_ne!(served.addr.port(), 8080, "the OS picked the port");

    // The default cap (60s) would allow 2s; STATUSLAB_MAX_DELAY=1s does not.
    let r = fetch(served.addr, "GET", "/status/200?sleep=2s", b"");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.text().contains("--max-delay"),
        "the 400 names --max-delay: {:?}",
        r.text()
    );
    let r = fetch(served.addr, "GET", "/status/203?sleep=100ms", b"");
    assert_eq!(r.status, 203, "{r:?}");

    // STATUSLAB_STORE=memory: resources work and nothing is written to STATUSLAB_DATA_DIR.
    let r = fetch(
        served.addr,
        "PUT",
        "/resources/env",
        b"from the environment",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert!(
        !unused.exists(),
        "the memory store created {}",
        unused.display()
    );

    served.terminate();
    let status = served.wait_exit(Duration::from_secs(15));
    let log = served.final_log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM; stderr:\n{log}"
    );
    // STATUSLAB_NO_ACCESS_LOG: no line per request.
    assert!(
        !log.contains("/status/203"),
        "an access-log line despite STATUSLAB_NO_ACCESS_LOG:\n{log}"
    );
    no_panic(&log).unwrap();
}

/// `--store memory`: full resource semantics, no files, and nothing survives a restart.
#[test]
fn memory_store_serves_resources_and_keeps_nothing() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let unused = dir.path().join("not-created");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory",
        "--data-dir",
        unused.to_str().expect("UTF-8 temp path"),
        "--no-access-log",
    ];
    let served = Served::start(&args, &[]);
    let mut c = Conn::open(served.addr).expect("connect");
    let ct = [("Content-Type", "text/plain")];
    let r = c.request("PUT", "/resources/m1", &ct, b"one").expect("PUT");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/resources/m1"), "{r:?}");
    let r = c.request("PUT", "/resources/m1", &ct, b"two").expect("PUT");
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.body.is_empty(), "{r:?}");
    let r = c.request("GET", "/resources/m1", &[], b"").expect("GET");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"two", "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain"), "{r:?}");
    assert!(
        !unused.exists(),
        "the memory store created {}",
        unused.display()
    );
    drop(c);
    drop(served);

    let served = Served::start(&args, &[]);
    let r = fetch(served.addr, "GET", "/resources/m1", b"");
    assert_eq!(r.status, 404, "a memory store starts empty: {r:?}");
}

/// `KB`/`MB` are powers of 1000 and `KiB`/`MiB` powers of 1024, on the wire: a body of the
/// limit passes, one byte more gets 413.
#[test]
fn size_units_are_decimal_or_binary_as_written() {
    crate::check(
        [("1KB", 1000usize), ("1KiB", 1024), ("2kb", 2000)],
        |&(size, bytes)| {
            let served = Served::start(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--store",
                    "memory",
                    "--no-access-log",
                    "--max-body",
                    size,
                ],
                &[],
            );
            for (len, want) in [(bytes, 201), (bytes + 1, 413)] {
                let target = format!("/resources/r{len}");
                let r = fetch(served.addr, "PUT", &target, &vec![b'x'; len]);
                if r.status != want {
                    return Err(format!("{len} bytes: {} instead of {want}", r.status));
                }
            }
            Ok(())
        },
    );
}

/// Durations combine units, and --default-retry-after takes seconds or a duration.
#[test]
fn durations_take_units_and_retry_after_takes_seconds() {
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-access-log",
            "--max-delay",
            "1s 500ms",
        ],
        &[("STATUSLAB_DEFAULT_RETRY_AFTER", "2m")],
    );
    let r = fetch(served.addr, "GET", "/status/503", b"");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("120"), "{r:?}");
    let r = fetch(served.addr, "GET", "/status/200?sleep=1600ms", b"");
    assert_eq!(r.status, 400, "past --max-delay 1s 500ms: {r:?}");
    let r = fetch(served.addr, "GET", "/status/200?sleep=100ms", b"");
    assert_eq!(r.status, 200, "{r:?}");
}

/// Filters that are levels or TARGET=LEVEL directives start the server.
#[test]
fn log_filters_that_are_levels_start() {
    crate::check(
        [
            "warn",
            "DEBUG",
            "warn,statuslab_server=debug",
            "info, statuslab_server=warn",
        ],
        |&filter| {
            let served = Served::start(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--store",
                    "memory",
                    "--log-level",
                    filter,
                ],
                &[],
            );
            let r = fetch(served.addr, "GET", "/health", b"");
            if r.status == 200 {
                Ok(())
            } else {
                Err(format!("{r:?}"))
            }
        },
    );
}

/// `--listen` takes what a person types: a port alone (on 127.0.0.1) or a host name, from the
/// flag or from STATUSLAB_LISTEN.
#[test]
fn listen_takes_a_port_or_a_host_name() {
    crate::check(
        [
            (&["--listen", "0"][..], &[][..]),
            (&["--listen", "localhost:0"][..], &[][..]),
            (&[][..], &[("STATUSLAB_LISTEN", "0")][..]),
            (&[][..], &[("STATUSLAB_LISTEN", "localhost:0")][..]),
        ],
        |(args, envs)| {
            let mut all = args.to_vec();
            all.extend(["--store", "memory", "--no-access-log"]);
            let served = Served::start(&all, envs);
            if served.addr.ip() != std::net::Ipv4Addr::LOCALHOST {
                return Err(format!("listening on {}", served.addr));
            }
            let r = fetch(served.addr, "GET", "/health", b"");
            if r.status != 200 {
                return Err(format!("{r:?}"));
            }
            Ok(())
        },
    );
}

/// The on/off variables take what people write in environment files: 1/0, true/false, yes/no,
/// on/off, in any case; an empty value is off.
#[test]
fn switch_variables_take_yes_and_no() {
    const ON: [&str; 5] = ["1", "true", "yes", "on", "TRUE"];
    const OFF: [&str; 6] = ["0", "false", "no", "off", "Off", ""];
    let cases = ON
        .iter()
        .map(|v| (*v, true))
        .chain(OFF.iter().map(|v| (*v, false)));
    crate::check(cases, |&(value, on)| {
        let served = Served::start(
            &["--listen", "127.0.0.1:0", "--store", "memory"],
            &[
                ("STATUSLAB_MAINTENANCE", value),
                ("STATUSLAB_PROXY", value),
                ("STATUSLAB_NO_ACCESS_LOG", value),
            ],
        );
        // STATUSLAB_MAINTENANCE: every route answers 503.
        let r = fetch(served.addr, "GET", "/status/203", b"");
        let want = if on { 503 } else { 203 };
        if r.status != want {
            return Err(format!("maintenance: {} instead of {want}", r.status));
        }
        // STATUSLAB_PROXY: an absolute-form request for another host is refused (403), where
        // without the proxy it is served as an origin request. Maintenance would answer 503.
        if !on {
            let r = fetch(served.addr, "GET", "http://other.invalid/status/200", b"");
            if r.status != 200 {
                return Err(format!("proxy off: {}", r.status));
            }
        }
        // STATUSLAB_NO_ACCESS_LOG: no line for /status/203.
        let logged = (0..20).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            served.log().contains("/status/203")
        });
        if logged == on {
            return Err(format!("access log {logged}:\n{}", served.log()));
        }
        Ok(())
    });
    // The proxy, without maintenance in the way.
    let served = Served::start(
        &["--listen", "127.0.0.1:0", "--store", "memory"],
        &[("STATUSLAB_PROXY", "yes")],
    );
    let r = fetch(served.addr, "GET", "http://other.invalid/status/200", b"");
    assert_eq!(r.status, 403, "STATUSLAB_PROXY=yes: {r:?}");
    // The flags themselves still need no value.
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--maintenance",
            "--no-access-log",
        ],
        &[],
    );
    let r = fetch(served.addr, "GET", "/status/203", b"");
    assert_eq!(r.status, 503, "--maintenance: {r:?}");
}

/// An on/off variable with another value is refused, naming the flag and the variable; a
/// variable that says off does not count as the flag given (no conflict with --tls-cert).
#[test]
fn switch_variables_refuse_other_values() {
    crate::check(
        [
            ("STATUSLAB_MAINTENANCE", "--maintenance"),
            ("STATUSLAB_PROXY", "--proxy"),
            ("STATUSLAB_NO_ACCESS_LOG", "--no-access-log"),
            ("STATUSLAB_TLS_SELF_SIGNED", "--tls-self-signed"),
        ],
        |&(var, flag)| {
            let envs = [(var, "maybe")];
            let args = ["--listen", "127.0.0.1:0", "--store", "memory"];
            refused(&args, &envs, 2, flag)?;
            refused(&args, &envs, 2, var)?;
            refused(&args, &envs, 2, "yes or on")
        },
    );
    let dir = tempfile::tempdir().expect("temporary dir");
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().expect("UTF-8 temp path");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--store",
        "memory",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
    ];
    // Off: the certificate files are what fails (exit 1), not a conflict.
    refused(
        &args,
        &[("STATUSLAB_TLS_SELF_SIGNED", "0")],
        1,
        "missing.pem",
    )
    .unwrap();
    // On: the two ways to get a certificate conflict (exit 2).
    refused(
        &args,
        &[("STATUSLAB_TLS_SELF_SIGNED", "1")],
        2,
        "--tls-self-signed",
    )
    .unwrap();
}

/// Runs `statuslab serve ARGS` to completion (it must not start serving).
pub(crate) fn refused(
    args: &[&str],
    envs: &[(&str, &str)],
    code: i32,
    names: &str,
) -> Result<(), String> {
    let mut cmd = live::command();
    cmd.arg("serve").args(args).envs(envs.iter().copied());
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(Duration::from_secs(20))
        .output()
        .map_err(|e| format!("run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(code) {
        return Err(format!(
            "exit {:?}, want {code}; stderr {stderr:?}",
            out.status.code()
        ));
    }
    if !stdout.is_empty() {
        return Err(format!("stdout {stdout:?}"));
    }
    no_panic(&stderr)?;
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    let [error] = errors.as_slice() else {
        return Err(format!("{} error lines: {stderr:?}", errors.len()));
    };
    if !error.contains(names) {
        return Err(format!("the error does not name {names:?}: {error:?}"));
    }
    if error.contains("months") {
        return Err(format!("humantime's unit list: {error:?}"));
    }
    // Bad input is one line; what the environment refuses may follow other log lines.
    if code == 2 && stderr.lines().count() != 1 {
        return Err(format!("more than one line: {stderr:?}"));
    }
    if stderr.contains("listening on") {
        return Err(format!("it started serving: {stderr:?}"));
    }
    Ok(())
}

/// A bad flag value (or variable) exits 2 with one error naming the flag, and never panics.
#[test]
fn bad_flag_values_exit_2_with_one_error() {
    crate::check(
        [
            (
                &["--max-body", "lots", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--max-body",
            ),
            (&["--listen", "nonsense"][..], &[][..], "--listen"),
            (&["--listen", "127.0.0.1"][..], &[][..], "--listen"),
            (&["--listen", "127.0.0.1:99999"][..], &[][..], "--listen"),
            (
                &["--max-body", "0", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--max-body",
            ),
            (
                &["--max-delay", "forever", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--max-delay",
            ),
            (
                &["--store", "disk", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--store",
            ),
            (
                &["--max-connections", "0", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--max-connections",
            ),
            (
                &["--workers", "0", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--workers",
            ),
            (
                &["--log-format", "xml", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--log-format",
            ),
            (
                &["--log-level", "[[[", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--log-level",
            ),
            (
                &["--listen", "127.0.0.1:0"][..],
                &[("STATUSLAB_MAX_BODY", "lots")][..],
                "--max-body",
            ),
            (&[][..], &[("STATUSLAB_LISTEN", "nonsense")][..], "--listen"),
            // Sizes: the range and the units are named.
            (
                &["--max-body", "0", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "1 byte to 1GiB",
            ),
            (
                &["--max-body", "2GiB", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "1 byte to 1GiB",
            ),
            (
                &["--max-body", "1m", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "1MiB for powers of 1024 or 1MB for powers of 1000",
            ),
            (
                &["--max-uri", "lots", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "KiB, MiB, GiB, TiB (powers of 1024)",
            ),
            // Durations: statuslab's own message naming its units, not humantime's list.
            (
                &["--max-delay", "forever", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "ms, s, m, h or d",
            ),
            (
                &["--job-ttl", "30", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "write 30s for seconds",
            ),
            (
                &["--listen", "127.0.0.1:0"][..],
                &[("STATUSLAB_TOMBSTONE_TTL", "1y")][..],
                "STATUSLAB_TOMBSTONE_TTL",
            ),
            (
                &["--default-retry-after", "soon", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "number of seconds (120) or a duration (2m",
            ),
            // A word that is not a level is refused before anything starts (tracing would take
            // it for a target name and log nothing useful).
            (
                &["--log-level", "nonsense", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "--log-level",
            ),
            (
                &["--log-level", "nonsense", "--listen", "127.0.0.1:0"][..],
                &[][..],
                "off, error, warn, info, debug, trace",
            ),
            (
                &["--listen", "127.0.0.1:0"][..],
                &[("STATUSLAB_LOG", "loud")][..],
                "STATUSLAB_LOG",
            ),
            (
                &[
                    "--log-level",
                    "statuslab_server=loud",
                    "--listen",
                    "127.0.0.1:0",
                ][..],
                &[][..],
                "TARGET=LEVEL",
            ),
            // The message says which forms --listen takes.
            (&["--listen", "nonsense"][..], &[][..], "HOST:PORT"),
            (&["--listen", ":8080"][..], &[][..], "a PORT alone"),
            (&["--listen", "99999"][..], &[][..], "0-65535"),
            (&["--listen", "localhost"][..], &[][..], "IP:PORT"),
        ],
        |(args, envs, names)| {
            // The memory store, so that a value accepted by mistake writes no files.
            let mut all = args.to_vec();
            if !args.contains(&"--store") {
                all.extend(["--store", "memory"]);
            }
            refused(&all, envs, 2, names)
        },
    );
}

/// A bad value from a `STATUSLAB_*` variable names the flag and the variable, on one line; a
/// value the flag hides is not echoed.
#[test]
fn bad_variable_values_name_the_variable() {
    crate::check(
        [
            (
                "STATUSLAB_LOG_FORMAT",
                "xml",
                "--log-format",
                "text or json",
            ),
            ("STATUSLAB_MAX_BODY", "lots", "--max-body", "lots"),
            ("STATUSLAB_TOKENS", "s3cr3t:bogus", "--token", "(hidden)"),
        ],
        |&(var, value, flag, detail)| {
            let envs = [(var, value)];
            refused(
                &["--listen", "127.0.0.1:0", "--store", "memory"],
                &envs,
                2,
                flag,
            )?;
            refused(
                &["--listen", "127.0.0.1:0", "--store", "memory"],
                &envs,
                2,
                var,
            )?;
            refused(
                &["--listen", "127.0.0.1:0", "--store", "memory"],
                &envs,
                2,
                detail,
            )?;
            if detail == "(hidden)" {
                let out = live::command()
                    .args(["serve", "--store", "memory"])
                    .env(var, value)
                    .output()
                    .map_err(|e| e.to_string())?;
                if String::from_utf8_lossy(&out.stderr).contains("s3cr3t") {
                    return Err("the secret is echoed".into());
                }
            }
            Ok(())
        },
    );
}

/// What the environment refuses (an address in use, a data dir that is a file) exits 1 with one
/// error naming it, and never panics.
#[test]
fn unusable_address_or_data_dir_exits_1_with_one_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let taken = taken.local_addr().expect("address").to_string();
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    let file = file.path().to_str().expect("UTF-8 temp path").to_owned();
    crate::check(
        [
            (
                vec!["--listen", taken.as_str(), "--store", "memory"],
                taken.as_str(),
            ),
            (
                vec!["--listen", "127.0.0.1:0", "--data-dir", file.as_str()],
                file.as_str(),
            ),
        ],
        |(args, names)| refused(args, &[], 1, names),
    );
}

/// `curl -i http://ADDR/status/429` shows a 429 with Retry-After.
#[test]
fn curl_sees_retry_after_on_429() {
    match std::process::Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!("curl is required (scripts/test-deps.sh installs it): {other:?}"),
    }
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-access-log",
        ],
        &[],
    );
    let url = format!("http://{}/status/429", served.addr);
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", &url])
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl -i {url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("HTTP/1.1 429"),
        "status line {first:?}:\n{stdout}"
    );
    let head = stdout.split("\r\n\r\n").next().unwrap_or_default();
    let retry_after: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(
        retry_after,
        ["1"],
        "one Retry-After of 1 (the default):\n{stdout}"
    );
    assert!(stdout.contains("Retry-After"), "curl -i output:\n{stdout}");
}

/// Under TLS the start-up line names `https://`; plain HTTP otherwise.
#[test]
fn startup_line_names_the_scheme_served() {
    let plain = live::Served::start(&["--listen", "127.0.0.1:0", "--store", "memory"], &[]);
    assert_eq!(plain.scheme, "http", "{}", plain.log());
    // The certificate is written to the data folder: a temporary one.
    let dir = tempfile::tempdir().expect("temporary dir");
    let tls = live::Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--data-dir",
            dir.path().to_str().expect("UTF-8 temp path"),
            "--tls-self-signed",
        ],
        &[],
    );
    assert_eq!(tls.scheme, "https", "{}", tls.log());
}

/// With `--log-format json` every line of the log is one JSON object: the start-up line, the
/// access log of answered and refused requests (404, 405, 401, 503, malformed requests), the
/// warnings of an unreachable store, debug and trace lines, and the shutdown.
#[test]
fn json_log_is_json_from_the_first_line() {
    // Redis on a port nobody listens on: the store is unreachable, which the log reports.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = format!("redis://127.0.0.1:{closed}");
    let mut served = live::Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--log-format",
            "json",
            "--log-level",
            "debug,statuslab=trace,statuslab_server=trace",
            "--token",
            "json-admin:admin",
        ],
        &[],
    );
    let mut client = live::Conn::open(served.addr).expect("connect");
    let admin = [("Authorization", "Bearer json-admin")];
    for (method, target, headers, want) in [
        ("GET", "/status/204", &[][..], 204),
        ("GET", "/no/such/route", &[][..], 404),
        ("DELETE", "/codes", &[][..], 405),
        ("GET", "/resources", &[][..], 401),
        ("GET", "/resources", &admin[..], 503),
        ("GET", "/status/500", &[][..], 500),
    ] {
        let answer = client
            .request(method, target, headers, b"")
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        assert_eq!(answer.status, want, "{method} {target}: {answer:?}");
    }
    // Malformed requests, answered by the wire layer before any route.
    for (raw, want) in [
        (&b"GET / HTTP/1.2\r\nHost: x\r\n\r\n"[..], "505"),
        (&b"GET / HTTP/1.1\r\n\r\n"[..], "400"),
    ] {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(served.addr).expect("connect");
        s.set_read_timeout(Some(live::IO_TIMEOUT)).expect("timeout");
        s.write_all(raw).expect("write");
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want}")),
            "{:?}: {answer:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // The maintenance follower reads the unreachable store at start and logs that at debug.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.log().contains("\"level\":\"DEBUG\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    served.terminate();
    assert!(served.wait_exit(Duration::from_secs(15)).is_some());
    let log = served.final_log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{log}"));
            assert!(event.is_object(), "{line}");
            assert!(
                event["timestamp"].is_string() && event["level"].is_string(),
                "no timestamp or level: {line}"
            );
            event
        })
        .collect();
    assert!(log.contains("\"statuslab listening\""), "{log}");
    let statuses: Vec<u64> = events
        .iter()
        .filter(|e| e["target"] == "statuslab::access")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    for want in [204, 404, 405, 401, 503, 500] {
        assert!(
            statuses.contains(&want),
            "no access-log event with status {want}: {statuses:?}\n{log}"
        );
    }
    let levels: Vec<&str> = events.iter().filter_map(|e| e["level"].as_str()).collect();
    for want in ["WARN", "DEBUG", "INFO"] {
        assert!(levels.contains(&want), "no {want} event: {levels:?}\n{log}");
    }
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("shutting down"))),
        "no shutdown event:\n{log}"
    );
}

/// `--access-log FILE`: every answered request has its line in the file once the server has
/// shut down cleanly (lines are written in batches, off the request path), in the JSON format
/// with `--log-format json`; the rest of the log stays on standard error.
#[test]
fn access_log_file_gets_every_line_by_shutdown() {
    let dir = tempfile::tempdir().expect("temporary dir");
    let file = dir.path().join("access.log");
    let file_arg = file.to_str().expect("UTF-8 temp path");
    for format in ["text", "json"] {
        let _ = std::fs::remove_file(&file);
        let mut served = Served::start(
            &[
                "--listen",
                "127.0.0.1:0",
                "--store",
                "memory",
                "--access-log",
                file_arg,
                "--log-format",
                format,
            ],
            &[],
        );
        let mut c = Conn::open(served.addr).expect("connect");
        for i in 0..500 {
            let r = c
                .request("GET", &format!("/status/{}", 200 + i % 7), &[], b"")
                .expect("GET");
            assert_eq!(r.status, 200 + i % 7);
        }
        drop(c);
        served.terminate();
        assert_eq!(
            served
                .wait_exit(Duration::from_secs(20))
                .and_then(|s| s.code()),
            Some(0)
        );
        let log = served.final_log();
        assert!(
            !log.contains("statuslab::access"),
            "{format}: access lines on stderr:\n{log}"
        );
        let text = std::fs::read_to_string(&file).expect("the access log file");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 500, "{format}:\n{text}");
        // Each worker thread buffers its own lines, so lines of different workers may reach
        // the file out of order (each carries its time): compare what was logged, not where.
        let mut logged: Vec<String> = lines
            .iter()
            .map(|line| match format {
                "json" => {
                    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
                    assert_eq!(v["target"], "statuslab::access", "{line}");
                    v["path"].as_str().expect("a path").to_owned()
                }
                _ => {
                    assert!(line.contains(" INFO statuslab::access: "), "{line}");
                    let rest = &line[line.find("path=\"").expect("a path") + 6..];
                    rest[..rest.find('"').expect("a quoted path")].to_owned()
                }
            })
            .collect();
        let mut sent: Vec<String> = (0..500)
            .map(|i| format!("/status/{}", 200 + i % 7))
            .collect();
        logged.sort();
        sent.sort();
        assert_eq!(logged, sent, "{format}");
    }
}
