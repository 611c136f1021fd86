//! What each code requires on the wire: framing and header fields.

use crate::{check, same};
use statuslab_catalog::{BodyRule, Need, Status};

fn status(n: u16) -> Result<Status, String> {
    Status::new(n).map_err(|e| e.to_string())
}

#[test]
fn body_rules() {
    check(100..=599u16, |&n| {
        let want = match n {
            100..=199 | 204 | 304 => BodyRule::Forbidden,
            205 => BodyRule::Empty,
            _ => BodyRule::Allowed,
        };
        let body = status(n)?.wire().body;
        same("body", &body, &want)?;
        same(
            "allows_body",
            &body.allows_body(),
            &(want == BodyRule::Allowed),
        )
    });
}

#[test]
fn required_and_expected_headers() {
    check(
        [
            (101, "Upgrade", Need::Required),
            (301, "Location", Need::Required),
            (302, "Location", Need::Required),
            (303, "Location", Need::Required),
            (307, "Location", Need::Required),
            (308, "Location", Need::Required),
            (305, "Location", Need::Expected),
            (401, "WWW-Authenticate", Need::Required),
            (405, "Allow", Need::Required),
            (407, "Proxy-Authenticate", Need::Required),
            (206, "Content-Range", Need::Required),
            (426, "Upgrade", Need::Required),
            (429, "Retry-After", Need::Expected),
        ],
        |&(n, name, need)| {
            let w = status(n)?.wire();
            let rule = w.header(name).ok_or(format!("no rule for {name}"))?;
            same("need", &rule.need, &need)?;
            same("requires()", &w.requires(name).map(|r| r.need), &Some(need))?;
            same(
                "case-insensitive",
                &w.header(&name.to_ascii_lowercase()).map(|r| r.name),
                &Some(rule.name),
            )?;
            if rule.when.is_empty() {
                Err("empty `when`".into())
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn range_not_satisfiable_carries_content_range() {
    let w = Status::new(416).unwrap().wire();
    let rule = w
        .requires("Content-Range")
        .expect("416 calls for Content-Range");
    assert!(
        matches!(rule.need, Need::Required | Need::Expected),
        "{rule:?}"
    );
    assert!(
        rule.when.contains("*/"),
        "416's Content-Range is `bytes */N`: {rule:?}"
    );
}

#[test]
fn retry_after_is_optional_on_413_and_503() {
    check([413u16, 503], |&n| {
        let w = status(n)?.wire();
        same(
            "need",
            &w.header("retry-after").map(|r| r.need),
            &Some(Need::Optional),
        )?;
        same("requires()", &w.requires("Retry-After"), &None)
    });
}

#[test]
fn headers_named_only_where_they_belong() {
    check(100..=599u16, |&n| {
        let w = status(n)?.wire();
        let has = |h: &str| w.requires(h).is_some();
        same(
            "Location",
            &has("Location"),
            &matches!(n, 201 | 301 | 302 | 303 | 305 | 307 | 308),
        )?;
        same("WWW-Authenticate", &has("WWW-Authenticate"), &(n == 401))?;
        same(
            "Proxy-Authenticate",
            &has("Proxy-Authenticate"),
            &(n == 407),
        )?;
        same("Allow", &has("Allow"), &(n == 405))?;
        same("Upgrade", &has("Upgrade"), &matches!(n, 101 | 426))?;
        same(
            "Content-Range",
            &has("Content-Range"),
            &matches!(n, 206 | 416),
        )?;
        same(
            "Retry-After",
            &w.header("Retry-After").is_some(),
            &matches!(n, 202 | 413 | 429 | 503),
        )
    });
}

#[test]
fn header_names_are_unique_per_code() {
    check(statuslab_catalog::all(), |s| {
        let hs = s.wire().headers;
        for (i, h) in hs.iter().enumerate() {
            if hs[..i].iter().any(|g| g.name.eq_ignore_ascii_case(h.name)) {
                return Err(format!("{} named twice", h.name));
            }
        }
        Ok(())
    });
}
