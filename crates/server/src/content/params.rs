//! Parameters people type into URLs and bodies: durations and media types, parsed in one place.

use std::time::Duration;

/// What a bare number means in a duration parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bare {
    /// `250` is 250 ms (`sleep=`, `timeout=`).
    Millis,
    /// `60` is 60 s (a rate-limit period).
    Secs,
}

/// Parses `name=s`: a bare number in the unit `bare` names, or a duration with a unit
/// (`250ms`, `2s`, `1m`), at most `max` (named by `flag` in the error).
pub(crate) fn duration(
    name: &str,
    s: &str,
    bare: Bare,
    max: Duration,
    flag: &str,
) -> Result<Duration, String> {
    let s = s.trim();
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = s.parse().map_err(|_| format!("{name}={s} is too large"))?;
        match bare {
            Bare::Millis => Duration::from_millis(n),
            Bare::Secs => Duration::from_secs(n),
        }
    } else {
        humantime::parse_duration(s).map_err(|_| {
            let number = match bare {
                Bare::Millis => "milliseconds",
                Bare::Secs => "seconds",
            };
            format!("{name}={s:?}: expected {number} or a duration such as 500ms, 2s or 1m")
        })?
    };
    if d > max {
        return Err(format!(
            "{name}={s} exceeds the maximum of {} ({flag})",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// Whether a `Content-Type` value names JSON (`application/json` or a `+json` type).
pub(crate) fn is_json(content_type: &str) -> bool {
    let bare = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    bare == "application/json" || bare.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let max = Duration::from_secs(60);
        let ms = |s| duration("sleep", s, Bare::Millis, max, "--max-delay");
        assert_eq!(ms("250").unwrap(), Duration::from_millis(250));
        assert_eq!(ms("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(ms("2s").unwrap(), Duration::from_secs(2));
        assert!(ms("61s").unwrap_err().contains("--max-delay"));
        assert!(ms("-1").is_err());
        assert!(ms("soon").is_err());
        assert!(ms("99999999999999999999999").is_err());
        let secs = duration("period", "60", Bare::Secs, max, "24 h").unwrap();
        assert_eq!(secs, Duration::from_secs(60));
    }

    #[test]
    fn json_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
    }
}

/// Properties of duration parameters, shared by the property tests below and the `params`
/// fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any text and maximum, in either bare unit: no panic; an accepted duration is at
    /// most the maximum and reads back from its own rendering; a refusal names the parameter.
    pub(crate) fn check_duration(s: &str, max: Duration) {
        for bare in [Bare::Millis, Bare::Secs] {
            match duration("sleep", s, bare, max, "--max-delay") {
                Ok(d) => {
                    assert!(d <= max, "{s:?} gave {d:?} over {max:?}");
                    let again = humantime::format_duration(d).to_string();
                    assert_eq!(duration("sleep", &again, bare, max, "--max-delay"), Ok(d));
                }
                Err(e) => assert!(e.starts_with("sleep="), "{e}"),
            }
        }
    }

    #[cfg(test)]
    use proptest::prelude::*;

    #[cfg(test)]
    proptest! {
        #[test]
        fn any_text_is_bounded(
            s in prop_oneof![
                ".{0,24}",
                "[0-9]{0,24}",
                " ?[0-9]{1,8}(ns|us|ms|s|m|h|d|w|M|y|x)?( [0-9]{1,4}(ms|s|m))? ?",
            ],
            max_ms in prop_oneof![0u64..100_000, any::<u64>()],
        ) {
            check_duration(&s, Duration::from_millis(max_ms));
        }

        /// A bare number is milliseconds or seconds as asked; with a unit it means what the
        /// unit says; either is refused past the maximum.
        #[test]
        fn numbers_and_units(n in 0u64..10_000_000, max_ms in 0u64..10_000_000, ows in "[ \t]{0,2}") {
            let max = Duration::from_millis(max_ms);
            let ms = duration("sleep", &format!("{ows}{n}{ows}"), Bare::Millis, max, "f");
            let secs = duration("period", &format!("{n}"), Bare::Secs, max, "f");
            let unit = duration("sleep", &format!("{n}ms"), Bare::Secs, max, "f");
            let want_ms = Duration::from_millis(n);
            prop_assert_eq!(ms.ok(), (want_ms <= max).then_some(want_ms));
            prop_assert_eq!(unit.ok(), (want_ms <= max).then_some(want_ms));
            let want_secs = Duration::from_secs(n);
            prop_assert_eq!(secs.ok(), (want_secs <= max).then_some(want_secs));
        }
    }
}
