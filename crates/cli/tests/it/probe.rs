//! `statuslab probe` as a process, against a `statuslab serve` process: the table, `--json`,
//! `--junit`, exit codes 0/1/2, colour rules and the `STATUSLAB_PROBE_*` variables.

use crate::live::{self, Served, fetch};
use crate::{Outcome, json};
use std::process::Stdio;

/// A server with a stored resource to probe.
fn served() -> (Served, String) {
    let served = Served::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--header-timeout",
            "1s",
        ],
        &[],
    );
    let r = fetch(
        served.addr,
        "PUT",
        "/resources/doc",
        b"a resource for the probe to look at\n"
            .repeat(40)
            .as_slice(),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = format!("http://{}/resources/doc", served.addr);
    (served, url)
}

/// Runs `statuslab probe ARGS` with the environment variables `envs`.
fn probe(args: &[&str], envs: &[(&str, &str)]) -> Outcome {
    let out = live::command()
        .arg("probe")
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run statuslab probe");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

const ROUTES: &[&str] = &[
    "--route",
    "401=/status/401",
    "--route",
    "429=/status/429",
    "--route",
    "301=/status/301",
    "--route",
    "204=/status/204",
    "--route",
    "503=/status/503",
];

#[test]
fn a_faithful_server_passes_with_exit_0_and_a_json_and_junit_report() {
    let (_served, url) = served();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let junit = dir.path().join("probe.xml");
    let mut args = vec![
        url.as_str(),
        "--json",
        "--allow-writes",
        "--framing",
        "--slow",
        "--junit",
        junit.to_str().expect("UTF-8 path"),
    ];
    args.extend_from_slice(ROUTES);
    let o = probe(&args, &[]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(o.stderr.is_empty(), "{o:?}");
    let report = json(&o.stdout);
    assert_eq!(report["target"], url.as_str());
    assert_eq!(report["against"], "table");
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 30, "{}", o.stdout);
    for c in checks {
        for key in [
            "id", "code", "verdict", "expected", "observed", "request", "response",
        ] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
        assert!(c["code"].is_u64(), "{c}");
        assert_eq!(c["verdict"], "pass", "{c}");
    }
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "route-429" && c["code"] == 429)
    );
    let summary = &report["summary"];
    assert_eq!(
        summary["pass"].as_u64(),
        Some(checks.len() as u64),
        "{summary}"
    );
    for key in ["fail", "skip", "inconclusive"] {
        assert_eq!(summary[key], 0, "{summary}");
    }

    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(&format!("tests=\"{}\" failures=\"0\"", checks.len())),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), checks.len(), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn a_failed_check_exits_1_with_a_table_naming_it() {
    let (_served, url) = served();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let junit = dir.path().join("probe.xml");
    // /status/200 is not a 204: the route check fails.
    let o = probe(
        &[
            &url,
            "--route",
            "204=/status/200",
            "--only",
            "route-*,options",
            "--junit",
            junit.to_str().expect("UTF-8 path"),
        ],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(o.code, Some(1), "{o:?}");
    assert!(o.stderr.contains("1 of 2 checks failed"), "{o:?}");
    let out = &o.stdout;
    assert!(out.contains("CODE  CHECK"), "{out}");
    assert!(
        out.contains("EXPECTED") && out.contains("OBSERVED"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.contains("route-204"))
        .unwrap_or_else(|| panic!("no route-204 row in {out}"));
    assert!(
        row.contains("fail") && row.contains("answered 200, not 204"),
        "{row}"
    );
    assert!(
        out.contains("Failures:") && out.contains("GET /status/200 HTTP/1.1"),
        "{out}"
    );
    assert!(
        out.contains("1 pass, 1 fail, 0 skip, 0 inconclusive"),
        "{out}"
    );
    // No colour off a terminal.
    assert!(!out.contains('\x1b'), "{out:?}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
}

#[test]
fn against_rfc_by_flag_or_variable_shows_where_the_table_differs() {
    let (_served, url) = served();
    for (args, envs) in [
        (vec![url.as_str(), "--against", "rfc"], vec![]),
        (vec![url.as_str()], vec![("STATUSLAB_PROBE_AGAINST", "rfc")]),
    ] {
        let mut args = args;
        args.extend_from_slice(&["--json", "--only", "options,route-429"]);
        args.extend_from_slice(&["--route", "429=/status/429"]);
        let o = probe(&args, &envs);
        assert_eq!(o.code, Some(0), "{o:?}");
        let report = json(&o.stdout);
        assert_eq!(report["against"], "rfc", "{}", o.stdout);
        let options = &report["checks"][0];
        assert_eq!(options["id"], "options");
        assert!(
            options["expected"].as_str().unwrap_or("").contains("2xx"),
            "{options}"
        );
        assert_eq!(options["other"]["against"], "table", "{options}");
        assert!(
            options["other"]["expected"]
                .as_str()
                .unwrap_or("")
                .contains("204"),
            "{options}"
        );
    }
}

#[test]
fn usage_errors_and_unreachable_targets_exit_2() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let unreachable = format!("http://{free}/");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![unreachable.as_str()], "cannot be reached"),
        (vec!["ftp://example.com/x"], "http://"),
        (vec!["http://127.0.0.1:9/", "--route", "999=/x"], "999"),
        (vec!["http://127.0.0.1:9/", "--route", "401"], "CODE=PATH"),
        (
            vec!["http://127.0.0.1:9/", "--only", "nonsense"],
            "no check is called",
        ),
        (
            vec!["http://127.0.0.1:9/", "--header", "nocolon"],
            "Name: value",
        ),
        (
            vec!["http://127.0.0.1:9/", "--timeout", "0s"],
            "longer than 0",
        ),
        (vec!["http://127.0.0.1:9/", "--against", "iso"], "iso"),
    ];
    for (args, says) in cases {
        let o = probe(&args, &[]);
        assert_eq!(o.code, Some(2), "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(says),
            "{args:?}: {says:?} not in {:?}",
            o.stderr
        );
        assert!(o.stdout.is_empty(), "{args:?}: {o:?}");
    }
}

#[test]
fn help_documents_every_flag() {
    let o = probe(&["--help"], &[]);
    assert_eq!(o.code, Some(0), "{o:?}");
    for flag in [
        "--route",
        "--against",
        "--json",
        "--junit",
        "--http2",
        "--header",
        "--only",
        "--skip",
        "--allow-writes",
        "--framing",
        "--slow",
        "--concurrency",
        "--timeout",
        "--slow-wait",
        "--insecure",
        "STATUSLAB_PROBE_TIMEOUT",
        "Exit status",
    ] {
        assert!(o.stdout.contains(flag), "{flag} in {}", o.stdout);
    }
}
