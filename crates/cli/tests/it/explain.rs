//! `statuslab explain`.

use crate::{check, json, run_ok, statuslab, table_rows};

#[test]
fn explain_504_json_carries_the_table_words() {
    let row = table_rows()
        .into_iter()
        .find(|r| r.code == 504)
        .expect("504 in the table");
    for text in [
        run_ok(&["explain", "504", "--json"]),
        statuslab(&["explain", "504", "--json"]).stdout,
    ] {
        let v = json(&text);
        assert!(v.is_object(), "one match is one object: {v}");
        assert_eq!(v["code"], 504);
        assert_eq!(v["message"], "ServerTimeout");
        assert_eq!(v["message"], row.message.as_str());
        assert_eq!(v["description"], row.description.as_str());
        assert_eq!(v["reason"], "Gateway Timeout");
        assert_eq!(v["source"], "table");
        assert_eq!(v["class"], "server-error");
    }
}

#[test]
fn explain_json_for_every_table_row() {
    check(table_rows(), |row| {
        let v = json(&run_ok(&["explain", &row.code.to_string(), "--json"]));
        if v["code"] != row.code
            || v["message"] != row.message.as_str()
            || v["description"] != row.description.as_str()
        {
            return Err(format!("got {v}"));
        }
        Ok(())
    });
}

#[test]
fn explain_table_rows_as_text() {
    check(table_rows(), |row| {
        let out = run_ok(&["explain", &row.code.to_string()]);
        let first = out.lines().next().unwrap_or_default();
        if !first.starts_with(&format!("{} {}", row.code, row.message)) {
            return Err(format!("first line {first:?}"));
        }
        if !out.contains(&row.description) {
            return Err("description missing".into());
        }
        Ok(())
    });
}

#[test]
fn explain_succeeds_and_prints_the_message() {
    check(
        [
            ("200", "200 OK"),
            ("418", "418 (Unused)"),
            ("504", "504 ServerTimeout"),
            ("299", "299 Successful"),
        ],
        |&(q, head)| {
            let o = statuslab(&["explain", q]);
            if o.code != Some(0) {
                return Err(format!("exit {:?}, stderr {:?}", o.code, o.stderr));
            }
            if !o.stdout.starts_with(head) {
                return Err(format!("stdout {:?}", o.stdout));
            }
            if !o.stderr.is_empty() {
                Err(format!("stderr {:?}", o.stderr))
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn explain_by_message_and_words() {
    check(
        [
            (&["explain", "NotFound"][..], "404 NotFound"),
            (&["explain", "notfound"][..], "404 NotFound"),
            (&["explain", "not", "found"][..], "404 NotFound"),
            (&["explain", "Gateway Timeout"][..], "504 ServerTimeout"),
            (&["explain", "too", "many"][..], "429 TooManyRequests"),
            (&["explain", "too many"][..], "429 TooManyRequests"),
        ],
        |&(args, head)| {
            let o = statuslab(args);
            if o.code != Some(0) || !o.stdout.starts_with(head) || !o.stderr.is_empty() {
                return Err(format!("{o:?}"));
            }
            let inproc = run_ok(args);
            if inproc != o.stdout {
                Err("in-process output differs from the binary's".into())
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn explain_timeout_lists_several_codes() {
    let o = statuslab(&["explain", "timeout"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    let listed: Vec<u16> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(listed.len() >= 2, "several codes: {}", o.stdout);
    assert!(
        listed.contains(&408) && listed.contains(&504),
        "408 and 504: {}",
        o.stdout
    );
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "ascending: {listed:?}"
    );

    let v = json(&run_ok(&["explain", "timeout", "--json"]));
    let codes: Vec<u64> = v
        .as_array()
        .expect("several matches are an array")
        .iter()
        .filter_map(|i| i["code"].as_u64())
        .collect();
    let listed: Vec<u64> = listed.into_iter().map(u64::from).collect();
    assert_eq!(codes, listed, "JSON and text list the same codes");
}

#[test]
fn explain_shows_table_and_rfc_where_they_differ() {
    let out = run_ok(&["explain", "503"]);
    assert!(out.contains("Service Unavailable"), "{out}");
    assert!(
        out.contains("Do not repeat the request without modifications."),
        "{out}"
    );
    assert!(out.contains("RFC advice:"), "{out}");
    assert!(out.contains("Table vs RFC (advice)"), "{out}");
    assert!(out.contains("Retry-After: optional"), "{out}");
}
