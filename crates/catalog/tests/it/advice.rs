//! Client advice (the table's guidance as data) and the points where the table and RFC differ.

use crate::{check, same};
use statuslab_catalog::{Advice, Aspect, Status};

fn status(n: u16) -> Result<Status, String> {
    Status::new(n).map_err(|e| e.to_string())
}

fn aspects(s: Status) -> Vec<Aspect> {
    s.differences().iter().map(|d| d.aspect).collect()
}

#[test]
fn advice_per_code() {
    check(
        [
            (400, Advice::DoNotRepeat, Advice::DoNotRepeat),
            (403, Advice::DoNotRepeat, Advice::DoNotRepeat),
            (404, Advice::DoNotRepeat, Advice::DoNotRepeat),
            (405, Advice::DoNotRepeat, Advice::DoNotRepeat),
            (408, Advice::RepeatLater, Advice::RepeatLater),
            (429, Advice::RetryAfter, Advice::RetryAfter),
            (413, Advice::RetryAfter, Advice::DoNotRepeat),
            (503, Advice::DoNotRepeat, Advice::RetryAfter),
            (401, Advice::Authenticate, Advice::Authenticate),
            (407, Advice::ProxyAuthenticate, Advice::ProxyAuthenticate),
            (200, Advice::Done, Advice::Done),
            (303, Advice::SeeOther, Advice::SeeOther),
            (304, Advice::UseCached, Advice::UseCached),
            (305, Advice::UseProxy, Advice::UseProxy),
            (306, Advice::Unused, Advice::Unused),
        ],
        |&(n, advice, rfc)| {
            let s = status(n)?;
            same("advice", &s.advice(), &advice)?;
            same("rfc_advice", &s.rfc_advice(), &rfc)?;
            same("info.advice", &s.info().advice, &advice)?;
            same("info.rfc_advice", &s.info().rfc_advice, &rfc)
        },
    );
}

/// Where the table's description gives client guidance, the advice is that guidance.
#[test]
fn table_guidance_is_the_advice() {
    check(statuslab_catalog::table(), |row| {
        let s = status(row.code)?;
        let d = row.description;
        let want = if d.contains("should not repeat the request without modifications") {
            Some(Advice::DoNotRepeat)
        } else if d.contains("may repeat the request without modifications at any later time") {
            Some(Advice::RepeatLater)
        } else if d.contains("Retry-After") {
            Some(Advice::RetryAfter)
        } else {
            None
        };
        match want {
            Some(a) => same("advice", &s.advice(), &a),
            None => Ok(()),
        }
    });
}

#[test]
fn may_repeat_unchanged() {
    check(
        [
            (Advice::DoNotRepeat, false),
            (Advice::RepeatLater, true),
            (Advice::RetryAfter, true),
            (Advice::RetryIdempotent, true),
            (Advice::Done, false),
            (Advice::Authenticate, false),
        ],
        |&(a, want)| same("may_repeat_unchanged", &a.may_repeat_unchanged(), &want),
    );
}

#[test]
fn advice_summaries_and_names() {
    check(statuslab_catalog::all(), |s| {
        let a = s.advice();
        if a.summary().is_empty() || a.name().is_empty() {
            return Err("empty summary or name".into());
        }
        let json = serde_json::to_string(&a).map_err(|e| e.to_string())?;
        same(
            "name is the serialized form",
            &json,
            &format!("\"{}\"", a.name()),
        )
    });
}

#[test]
fn differences_per_code() {
    check(
        [
            (504, vec![Aspect::Reason, Aspect::Meaning]),
            (503, vec![Aspect::Reason, Aspect::Advice]),
            (413, vec![Aspect::Reason, Aspect::Advice]),
            (414, vec![Aspect::Reason]),
            (305, vec![Aspect::Status]),
            (306, vec![Aspect::Reason]),
            (204, vec![Aspect::Reason, Aspect::Description]),
            (200, vec![]),
        ],
        |(n, want)| same("aspects", &aspects(status(*n)?), want),
    );
}

#[test]
fn gateway_timeout_keeps_both_words() {
    let s = Status::new(504).unwrap();
    assert_eq!(s.message(), "ServerTimeout");
    assert_eq!(s.reason(), "Gateway Timeout");
    assert_eq!(s.wire_reason(), "Gateway Timeout");
    let reason = s
        .differences()
        .iter()
        .find(|d| d.aspect == Aspect::Reason)
        .expect("a Reason difference");
    assert_eq!(
        (reason.table, reason.rfc),
        ("ServerTimeout", "Gateway Timeout")
    );
    let meaning = s
        .differences()
        .iter()
        .find(|d| d.aspect == Aspect::Meaning)
        .expect("a Meaning difference");
    assert!(meaning.table.contains("timeout parameter"), "{meaning:?}");
}

#[test]
fn service_unavailable_advice_difference() {
    let s = Status::new(503).unwrap();
    assert_eq!(s.advice(), Advice::DoNotRepeat);
    assert_eq!(s.rfc_advice(), Advice::RetryAfter);
    let d = s
        .differences()
        .iter()
        .find(|d| d.aspect == Aspect::Advice)
        .expect("an Advice difference");
    assert!(d.table.contains("should not repeat"), "{d:?}");
    assert!(d.rfc.contains("Retry-After"), "{d:?}");
}

/// A Reason difference records the table's message and the RFC's reason exactly.
#[test]
fn reason_differences_quote_both_sides() {
    check(statuslab_catalog::all(), |s| {
        for d in s.differences() {
            if d.table.is_empty() || d.rfc.is_empty() || d.note.is_empty() {
                return Err(format!("empty side in {d:?}"));
            }
            if d.aspect == Aspect::Reason {
                same("table side", d.table, s.message())?;
                same("rfc side", d.rfc, s.reason())?;
            }
        }
        Ok(())
    });
    check([413u16, 414, 306, 504], |&n| {
        let s = status(n)?;
        let d = s
            .differences()
            .iter()
            .find(|d| d.aspect == Aspect::Reason)
            .ok_or("no Reason difference")?;
        if d.table == d.rfc {
            Err(format!("sides equal: {d:?}"))
        } else {
            Ok(())
        }
    });
}

/// Every table message that is not the RFC reason is recorded as a Reason difference.
#[test]
fn every_renamed_table_code_has_a_reason_difference() {
    check(statuslab_catalog::table(), |row| {
        let s = status(row.code)?;
        let differs = s.message() != s.reason();
        let recorded = s.differences().iter().any(|d| d.aspect == Aspect::Reason);
        same("Reason difference recorded", &recorded, &differs)
    });
}
