//! Parsing codes and classes: every three-digit number, and text that is not a code.

use crate::{check, same};
use statuslab_catalog::{Class, Error, Status};

#[test]
fn every_valid_code_round_trips_through_text() {
    check(100..=599u16, |&n| {
        let s: Status = n.to_string().parse().map_err(|e: Error| e.to_string())?;
        same("code", &s.code(), &n)?;
        same("class digit", &s.class().digit(), &(n / 100))?;
        same("Class::of", &Class::of(n), &Some(s.class()))?;
        same("display", &s.to_string(), &n.to_string())?;
        same("u16::from", &u16::from(s), &n)?;
        same("try_from", &Status::try_from(n), &Ok(s))
    });
}

#[test]
fn codes_600_to_999_are_out_of_range() {
    check(600..=999u16, |&n| {
        same(
            "parse",
            &n.to_string().parse::<Status>(),
            &Err(Error::OutOfRange(n.into())),
        )?;
        same("new", &Status::new(n), &Err(Error::OutOfRange(n.into())))?;
        same("Class::of", &Class::of(n), &None)
    });
}

#[test]
fn codes_below_100_are_refused() {
    check(0..=99u16, |&n| {
        same(
            "parse",
            &n.to_string().parse::<Status>(),
            &Err(Error::OutOfRange(n.into())),
        )?;
        same("new", &Status::new(n), &Err(Error::OutOfRange(n.into())))
    });
}

#[test]
fn text_that_is_not_a_code_is_refused() {
    check(
        [
            "abc",
            "",
            " ",
            "4o4",
            "-1",
            "+200",
            "2 00",
            "20.0",
            "0x1F4",
            "٤٠٤",
            "99999999999999999999",
            "65536",
            "4294967296",
        ],
        |&s| match s.parse::<Status>() {
            Ok(st) => Err(format!("parsed as {st:?}")),
            Err(e) if e.to_string().is_empty() => Err("empty error message".into()),
            Err(_) => Ok(()),
        },
    );
}

#[test]
fn non_digits_are_not_a_code_and_big_numbers_out_of_range() {
    check(
        [
            ("abc", Err(Error::NotACode("abc".into()))),
            ("", Err(Error::NotACode(String::new()))),
            ("4o4", Err(Error::NotACode("4o4".into()))),
            ("-1", Err(Error::NotACode("-1".into()))),
            (" 404 ", Status::new(404)),
        ],
        |(s, want)| same("parse", &s.parse::<Status>(), want),
    );
    // Too big for any integer type: the error names the text as typed, not a clamped number.
    let huge = "99999999999999999999";
    assert_eq!(huge.parse::<Status>(), Err(Error::NotACode(huge.into())));
    assert!(Error::NotACode(huge.into()).to_string().contains(huge));
    assert_eq!(
        "18446744073709551615".parse::<Status>(),
        Err(Error::OutOfRange(u64::MAX))
    );
    assert!(matches!(
        "65536".parse::<Status>(),
        Err(Error::OutOfRange(65536))
    ));
}

#[test]
fn errors_are_one_line() {
    check(["99", "999", "abc", "", "99999999999999999999"], |&s| {
        let e = s.parse::<Status>().err().ok_or("parsed")?.to_string();
        if e.is_empty() || e.contains('\n') {
            Err(format!("message {e:?}"))
        } else {
            Ok(())
        }
    });
}

#[test]
fn classes_parse_from_digits_and_names() {
    check(
        [
            ("1xx", Class::Informational),
            ("2xx", Class::Successful),
            ("3xx", Class::Redirection),
            ("4xx", Class::ClientError),
            ("4XX", Class::ClientError),
            ("4", Class::ClientError),
            (" 5xx ", Class::ServerError),
            ("client-error", Class::ClientError),
            ("Client Error", Class::ClientError),
            ("server_error", Class::ServerError),
            ("informational", Class::Informational),
        ],
        |(s, want)| same("class", &s.parse::<Class>(), &Ok(*want)),
    );
}

#[test]
fn bad_classes_are_refused() {
    check(
        ["7xx", "0xx", "6xx", "", "xx", "44xx", "client", "4xxx"],
        |&s| {
            same(
                "class",
                &s.parse::<Class>(),
                &Err(Error::BadClass(s.to_owned())),
            )
        },
    );
}

#[test]
fn class_display_and_digit_agree() {
    check(Class::ALL, |&c| {
        same("display", &c.to_string(), &format!("{}xx", c.digit()))?;
        same("reparse", &c.to_string().parse::<Class>(), &Ok(c))?;
        same("Class::of(x00)", &Class::of(c.digit() * 100), &Some(c))
    });
}
