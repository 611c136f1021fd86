//! Finding codes by number, message, reason phrase or words.

use crate::{check, same};
use statuslab_catalog::{Error, Status, lookup};

fn codes(q: &str) -> Result<Vec<u16>, Error> {
    lookup(q).map(|v| v.into_iter().map(Status::code).collect())
}

#[test]
fn exact_lookups() {
    check(
        [
            ("404", vec![404]),
            (" 404 ", vec![404]),
            ("NotFound", vec![404]),
            ("notfound", vec![404]),
            ("not found", vec![404]),
            ("NOT-FOUND", vec![404]),
            ("Gateway Timeout", vec![504]),
            ("ServerTimeout", vec![504]),
            ("TooManyRequests", vec![429]),
            ("OK", vec![200]),
            ("Request Entity Too Large", vec![413]),
            ("Content Too Large", vec![413]),
        ],
        |(q, want)| same("codes", &codes(q), &Ok(want.clone())),
    );
}

#[test]
fn every_message_and_reason_finds_its_code() {
    check(statuslab_catalog::all(), |s| {
        for q in [s.message(), s.reason()] {
            let found = codes(q).map_err(|e| format!("{q:?}: {e}"))?;
            if !found.contains(&s.code()) {
                return Err(format!("{q:?} found {found:?}"));
            }
        }
        Ok(())
    });
}

#[test]
fn word_lookups() {
    check(
        [
            ("too many", vec![429]),
            ("timeout", vec![408, 504]),
            ("proxy", vec![305, 407]),
        ],
        |(q, must)| {
            let found = codes(q).map_err(|e| e.to_string())?;
            if found.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("not ascending: {found:?}"));
            }
            match must.iter().find(|c| !found.contains(c)) {
                Some(c) => Err(format!("{c} missing from {found:?}")),
                None => Ok(()),
            }
        },
    );
    assert!(
        codes("timeout").unwrap().len() >= 2,
        "timeout matches several codes"
    );
}

/// Word search lists every code whose message, reason phrase, description or meaning holds all
/// the words, not only those whose message or reason does.
#[test]
fn word_lookups_list_every_match() {
    check(
        [
            // 502's description speaks of a proxy; 305 and 407 name one.
            ("proxy", vec![305, 407, 502]),
            // 401's meaning speaks of authentication; 407 and 511 name it.
            ("authentication", vec![401, 407, 511]),
            ("too large", vec![413, 414, 431]),
            ("too many", vec![429]),
            ("timeout", vec![408, 504]),
            // A word matches the start of a word of the text: cached.
            ("cache", vec![304]),
        ],
        |(q, must)| {
            let found = codes(q).map_err(|e| e.to_string())?;
            match must.iter().find(|c| !found.contains(c)) {
                Some(c) => Err(format!("{c} missing from {found:?}")),
                None => Ok(()),
            }
        },
    );
    // Every code the search lists holds every word somewhere.
    check(["proxy", "too large", "authentication", "retry"], |q| {
        for s in codes(q).map_err(|e| e.to_string())? {
            let s = Status::new(s).expect("a code");
            let text = format!(
                "{} {} {} {} {}",
                s.message(),
                s.reason(),
                s.description(),
                s.meaning(),
                s.message().to_ascii_lowercase()
            )
            .to_ascii_lowercase();
            if let Some(w) = q.split_whitespace().find(|w| !text.contains(w)) {
                return Err(format!("{} lacks {w:?}", s.code()));
            }
        }
        Ok(())
    });
}

#[test]
fn failed_lookups() {
    check(
        [
            ("zzzz", Err(Error::NoMatch("zzzz".into()))),
            ("", Err(Error::NoMatch(String::new()))),
            ("  --  ", Err(Error::NoMatch("  --  ".into()))),
            ("999", Err(Error::OutOfRange(999))),
            ("99", Err(Error::OutOfRange(99))),
            ("600", Err(Error::OutOfRange(600))),
        ],
        |(q, want)| same("lookup", &codes(q), want),
    );
}
