//! Every code in 100–599 resolves: table rows, the rest of the IANA registry, and unregistered
//! codes that fall back to their class.

use crate::{check, same};
use statuslab_catalog::{Advice, Class, Source, Status};

/// Registry codes the table omits.
const IANA_NOT_IN_TABLE: [u16; 22] = [
    102, 103, 200, 207, 208, 226, 307, 308, 418, 421, 423, 424, 425, 426, 428, 431, 451, 506, 507,
    508, 510, 511,
];

#[test]
fn every_code_has_consistent_info() {
    check(100..=599u16, |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        let i = s.info();
        same("info.code", &i.code, &n)?;
        same("info.class", &i.class, &s.class())?;
        same("info.source", &i.source, &s.source())?;
        same("info.advice_summary", i.advice_summary, i.advice.summary())?;
        same(
            "reason nonempty iff registered",
            &!s.reason().is_empty(),
            &(s.source() != Source::Unregistered),
        )?;
        same(
            "reference iff registered",
            &s.reference().is_some(),
            &(s.source() != Source::Unregistered),
        )?;
        if s.message().is_empty() || s.description().is_empty() || s.meaning().is_empty() {
            return Err("empty message, description or meaning".into());
        }
        if s.wire_reason().contains(['(', ')']) {
            return Err(format!("wire reason {:?} has brackets", s.wire_reason()));
        }
        same("is_informational", &s.is_informational(), &(n < 200))
    });
}

#[test]
fn all_lists_exactly_the_registered_codes() {
    let all: Vec<u16> = statuslab_catalog::all().map(|s| s.code()).collect();
    check(100..=599u16, |&n| {
        let registered =
            Status::new(n).map_err(|e| e.to_string())?.source() != Source::Unregistered;
        same("listed in all()", &all.contains(&n), &registered)
    });
}

#[test]
fn iana_codes_outside_the_table_are_registry() {
    check(IANA_NOT_IN_TABLE, |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        same("source", &s.source(), &Source::Registry)?;
        same("message is the reason", s.message(), s.reason())?;
        same("description is the meaning", s.description(), s.meaning())?;
        same("no table row", &s.table_row(), &None)
    });
}

#[test]
fn known_registry_entries() {
    check(
        [
            (200, "OK", Advice::Done),
            (307, "Temporary Redirect", Advice::FollowLocation),
            (308, "Permanent Redirect", Advice::FollowLocation),
            (421, "Misdirected Request", Advice::RepeatElsewhere),
            (426, "Upgrade Required", Advice::Upgrade),
            (451, "Unavailable For Legal Reasons", Advice::DoNotRepeat),
            (511, "Network Authentication Required", Advice::Authenticate),
        ],
        |&(n, reason, advice)| {
            let s = Status::new(n).map_err(|e| e.to_string())?;
            same("source", &s.source(), &Source::Registry)?;
            same("message", s.message(), reason)?;
            same("reason", s.reason(), reason)?;
            same("advice", &s.advice(), &advice)
        },
    );
}

#[test]
fn unused_codes() {
    check(100..=599u16, |&n| {
        let s = Status::new(n).map_err(|e| e.to_string())?;
        same("unused", &s.is_unused(), &matches!(n, 306 | 418))?;
        same("info.unused", &s.info().unused, &s.is_unused())
    });
    let teapot = Status::new(418).unwrap();
    assert_eq!(teapot.source(), Source::Registry);
    assert_eq!(teapot.advice(), Advice::Unused);
    assert_eq!(teapot.reason(), "(Unused)");
    assert_eq!(teapot.wire_reason(), "Unused");
    let s306 = Status::new(306).unwrap();
    assert_eq!(s306.source(), Source::Table);
    assert_eq!(s306.message(), "Unused");
    assert_eq!(s306.wire_reason(), "Unused");
}

#[test]
fn unregistered_codes_resolve_to_their_class() {
    check(
        [
            109, 150, 199, 209, 250, 299, 309, 350, 399, 419, 450, 499, 509, 512, 550, 599,
        ],
        |&n| {
            let s = Status::new(n).map_err(|e| e.to_string())?;
            let c = s.class();
            same("class", &Some(c), &Class::of(n))?;
            same("source", &s.source(), &Source::Unregistered)?;
            same("message", s.message(), c.name())?;
            same("description", s.description(), c.meaning())?;
            same("meaning", s.meaning(), c.meaning())?;
            same("advice", &s.advice(), &c.advice())?;
            same("rfc_advice", &s.rfc_advice(), &c.advice())?;
            same("reason", s.reason(), "")?;
            same("reference", &s.reference(), &None)?;
            same("differences", &s.differences().len(), &0)?;
            same("headers", &s.wire().headers.len(), &0)
        },
    );
}

#[test]
fn class_advice_for_unregistered() {
    check(
        [
            (199, Advice::Wait),
            (299, Advice::Done),
            (399, Advice::Choose),
            (499, Advice::DoNotRepeat),
            (599, Advice::RetryIdempotent),
        ],
        |&(n, advice)| {
            same(
                "advice",
                &Status::new(n).map_err(|e| e.to_string())?.advice(),
                &advice,
            )
        },
    );
}
