//! Proactive content negotiation (RFC 9110 §12.5.1) over the formats statuslab can write.

use http::HeaderValue;

/// A body format a reply can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`: one line.
    Text,
    /// `application/json`.
    Json,
    /// `application/problem+json` (RFC 9457).
    Problem,
    /// `text/html`.
    Html,
}

impl Format {
    /// In the server's order of preference when the client ranks several equally.
    pub const ALL: [Format; 4] = [Format::Text, Format::Json, Format::Problem, Format::Html];

    /// The media type.
    pub const fn media_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain",
            Format::Json => "application/json",
            Format::Problem => "application/problem+json",
            Format::Html => "text/html",
        }
    }

    /// The `Content-Type` value, with charset where it applies.
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Problem => "application/problem+json",
            Format::Html => "text/html; charset=utf-8",
        })
    }

    /// The `format` query option's names: `text`, `json`, `problem`, `html`.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "text" | "txt" | "plain" => Format::Text,
            "json" => Format::Json,
            "problem" | "problem+json" => Format::Problem,
            "html" => Format::Html,
            _ => return None,
        })
    }

    /// Chooses a format for an `Accept` header. No header (or `*/*`) gives `default`;
    /// `None` means nothing acceptable can be produced (406).
    pub fn negotiate(accept: Option<&HeaderValue>, default: Format) -> Option<Format> {
        let Some(accept) = accept
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.trim().is_empty())
        else {
            return Some(default);
        };
        let mut best: Option<(u16, u8, Format)> = None; // (q, specificity, format)
        for format in std::iter::once(default).chain(Format::ALL) {
            let (ty, sub) = format.media_type().split_once('/').unwrap_or(("", ""));
            // The most specific matching range decides the quality of this format.
            let mut found: Option<(u8, u16)> = None;
            for range in accept.split(',') {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim();
                let Some((rt, rs)) = media.split_once('/') else {
                    continue;
                };
                let specificity = match (rt.trim(), rs.trim()) {
                    ("*", "*") => 1,
                    (t, "*") if t.eq_ignore_ascii_case(ty) => 2,
                    (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(sub) => 3,
                    _ => continue,
                };
                let q = quality(parts);
                if found.is_none_or(|(s, _)| specificity > s) {
                    found = Some((specificity, q));
                }
            }
            if let Some((specificity, q)) = found
                && q > 0
                && best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && specificity > bs))
            {
                best = Some((q, specificity, format));
            }
        }
        best.map(|(_, _, f)| f)
    }
}

/// Whether `accept` admits `media_type` (`type/subtype`, parameters ignored) with q > 0.
/// No `Accept` admits everything.
pub(crate) fn accepts(accept: Option<&HeaderValue>, media_type: &str) -> bool {
    let Some(accept) = accept
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
    else {
        return true;
    };
    let bare = media_type.split(';').next().unwrap_or("").trim();
    let (ty, sub) = bare.split_once('/').unwrap_or((bare, ""));
    let mut best: Option<(u8, u16)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((rt, rs)) = parts.next().unwrap_or("").trim().split_once('/') else {
            continue;
        };
        let specificity = match (rt.trim(), rs.trim()) {
            ("*", "*") => 1,
            (t, "*") if t.eq_ignore_ascii_case(ty) => 2,
            (t, s) if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(sub) => 3,
            _ => continue,
        };
        let q = quality(parts);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0)
}

/// The quality a media range's parameters give it, in thousandths: its first well-formed `q`
/// (the name is case-insensitive), else 1.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> u16 {
    params
        .filter_map(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
        })
        .find_map(parse_q)
        .unwrap_or(1000)
}

/// Parses a qvalue (`0`, `0.5`, `1.000`) into thousandths.
fn parse_q(s: &str) -> Option<u16> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    let q = whole + thousandths;
    (q <= 1000).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str) -> Option<Format> {
        Format::negotiate(Some(&HeaderValue::from_str(accept).unwrap()), Format::Text)
    }

    #[test]
    fn negotiation() {
        let cases: &[(&str, Option<Format>)] = &[
            ("", Some(Format::Text)),
            ("*/*", Some(Format::Text)),
            ("application/json", Some(Format::Json)),
            ("application/problem+json", Some(Format::Problem)),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(Format::Html),
            ),
            ("application/*", Some(Format::Json)),
            ("text/*;q=0.5, application/json", Some(Format::Json)),
            (
                "application/json;q=0.2, text/html;q=0.9",
                Some(Format::Html),
            ),
            ("image/png", None),
            ("text/plain;q=0, */*;q=0", None),
            ("*/*;q=0.1, text/plain;q=0", Some(Format::Json)),
            ("text/plain;q=1.5", Some(Format::Text)),
            ("garbage", None),
        ];
        for (accept, want) in cases {
            assert_eq!(pick(accept), *want, "Accept: {accept}");
        }
    }

    #[test]
    fn admits() {
        let a = |s: &'static str| HeaderValue::from_static(s);
        assert!(accepts(None, "image/png"));
        assert!(accepts(Some(&a("*/*")), "image/png"));
        assert!(accepts(Some(&a("image/*")), "image/png; x=y"));
        assert!(!accepts(Some(&a("text/html")), "image/png"));
        assert!(!accepts(Some(&a("image/png;q=0, */*")), "image/png"));
        assert!(accepts(
            Some(&a("image/png;q=0.1, text/*;q=0")),
            "image/png"
        ));
    }

    /// Found by `props::negotiation_agrees_with_accepts`: `accepts` read `q=` but not `Q=`.
    #[test]
    fn quality_names_are_case_insensitive() {
        let v = HeaderValue::from_static("*/*;Q=0");
        assert_eq!(Format::negotiate(Some(&v), Format::Text), None);
        assert!(!accepts(Some(&v), "text/plain"));
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.001"), Some(1));
        assert_eq!(parse_q("1.1"), None);
        assert_eq!(parse_q("2"), None);
        assert_eq!(parse_q("0.1234"), None);
    }
}

/// Properties of content negotiation, shared by the property tests below and the
/// `header_values` fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any `Accept` value: no panic; the chosen format is one `accepts` admits, and when
    /// nothing is chosen (406) `accepts` admits none of the formats either.
    pub(crate) fn check_accept(accept: &[u8]) {
        let Ok(v) = HeaderValue::from_bytes(accept) else {
            return;
        };
        for default in Format::ALL {
            match Format::negotiate(Some(&v), default) {
                Some(f) => assert!(
                    accepts(Some(&v), f.media_type()),
                    "{v:?} chose {f:?}, which it does not accept"
                ),
                None => {
                    for f in Format::ALL {
                        assert!(
                            !accepts(Some(&v), f.media_type()),
                            "{v:?} chose nothing but accepts {f:?}"
                        );
                    }
                }
            }
        }
        let _ = accepts(Some(&v), "image/png");
    }

    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    /// A media range with parameters, from pieces that matter to negotiation.
    #[cfg(test)]
    fn media_range() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "*/*",
                "text/*",
                "application/*",
                "text/plain",
                "TEXT/HTML",
                "application/json",
                "application/problem+json",
                "image/png",
                "text",
                "*/json",
            ]),
            vec(
                prop::sample::select(vec![
                    "q=0", "q=1", "q=0.5", "Q=0", "Q=0.25", "q=1.5", "q=", "q=0.0001", "level=1",
                    " q = 0",
                ]),
                0..3,
            ),
        )
            .prop_map(|(range, params)| {
                std::iter::once(range)
                    .chain(params)
                    .collect::<Vec<_>>()
                    .join(";")
            })
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn negotiation_agrees_with_accepts(ranges in vec(media_range(), 0..4), ows in "[ ]{0,1}") {
            check_accept(ranges.join(&format!(",{ows}")).as_bytes());
        }

        #[test]
        fn any_accept(accept in prop_oneof![vec(any::<u8>(), 0..32), "[a-z*/;=,. 0-9q+]{0,32}".prop_map(String::into_bytes)]) {
            check_accept(&accept);
        }

        /// No (or a blank) `Accept` gives the default; one of our media types alone gives
        /// its format.
        #[test]
        fn plain_choices(default in prop::sample::select(Format::ALL.to_vec()), f in prop::sample::select(Format::ALL.to_vec()), blank in "[ \t]{0,2}") {
            prop_assert_eq!(Format::negotiate(None, default), Some(default));
            let blank = HeaderValue::from_str(&blank).unwrap();
            prop_assert_eq!(Format::negotiate(Some(&blank), default), Some(default));
            let only = HeaderValue::from_static(f.media_type());
            prop_assert_eq!(Format::negotiate(Some(&only), default), Some(f));
            prop_assert!(accepts(Some(&only), f.media_type()));
        }

        #[test]
        fn parse_q_is_thousandths(q in 0u16..=1000) {
            let text = format!("{}.{:03}", q / 1000, q % 1000);
            prop_assert_eq!(parse_q(&text), Some(q));
        }
    }
}
