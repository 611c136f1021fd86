//! Conditional requests (RFC 9110 §13): parsing the precondition headers and evaluating them,
//! in the order §13.2.2 prescribes, against a resource's current validators.

use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};

/// An entity tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityTag {
    /// `W/` prefix.
    pub weak: bool,
    /// The opaque tag, without quotes.
    pub tag: String,
}

impl EntityTag {
    /// Parses one `"tag"` or `W/"tag"`.
    pub fn parse(s: &str) -> Option<EntityTag> {
        let s = s.trim();
        let (weak, rest) = match s.strip_prefix("W/") {
            Some(r) => (true, r),
            None => (false, s),
        };
        let tag = rest.strip_prefix('"')?.strip_suffix('"')?;
        if tag.contains('"') {
            return None;
        }
        Some(EntityTag {
            weak,
            tag: tag.to_owned(),
        })
    }

    /// Strong comparison: both strong and equal (RFC 9110 §8.8.3.2).
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// Weak comparison: equal tags, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.tag == other.tag
    }
}

/// `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagList {
    /// `*`: any current representation.
    Any,
    /// The listed tags.
    Tags(Vec<EntityTag>),
}

impl TagList {
    fn parse(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<TagList>, String> {
        let mut tags = Vec::new();
        let mut any = false;
        let mut seen = false;
        for v in headers.get_all(&name) {
            seen = true;
            let v = v.to_str().map_err(|_| format!("{name} is not text"))?;
            for part in split_tags(v) {
                if part == "*" {
                    any = true;
                } else {
                    tags.push(
                        EntityTag::parse(part)
                            .ok_or_else(|| format!("{name}: {part:?} is not an entity tag"))?,
                    );
                }
            }
        }
        Ok(match (seen, any) {
            (false, _) => None,
            (true, true) => Some(TagList::Any),
            (true, false) => Some(TagList::Tags(tags)),
        })
    }
}

/// Splits a list of entity tags on commas outside quotes.
fn split_tags(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// The preconditions a request carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<TagList>,
    /// `If-None-Match`.
    pub if_none_match: Option<TagList>,
    /// `If-Modified-Since`, seconds since the epoch.
    pub if_modified_since: Option<u64>,
    /// `If-Unmodified-Since`, seconds since the epoch.
    pub if_unmodified_since: Option<u64>,
}

/// What evaluating preconditions decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Perform the method.
    Proceed,
    /// 304 (GET/HEAD only).
    NotModified,
    /// 412.
    Failed,
}

/// A resource's validators, for evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// Its strong entity tag, with quotes.
    pub etag: &'a str,
    /// Last modification, seconds.
    pub modified: u64,
}

impl Conditions {
    /// Reads the precondition headers. Malformed entity tags are an error (400); malformed
    /// dates are ignored, as RFC 9110 §13.1.3 says.
    pub fn from_headers(h: &HeaderMap) -> Result<Conditions, String> {
        let date = |name: header::HeaderName| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| httpdate::parse_http_date(s).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        Ok(Conditions {
            if_match: TagList::parse(h, header::IF_MATCH)?,
            if_none_match: TagList::parse(h, header::IF_NONE_MATCH)?,
            if_modified_since: date(header::IF_MODIFIED_SINCE),
            if_unmodified_since: date(header::IF_UNMODIFIED_SINCE),
        })
    }

    /// Whether any precondition is present.
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }

    /// Evaluates against the current representation (`None`: there is none), for a safe
    /// method (`read`: GET/HEAD) or a write. RFC 9110 §13.2.2.
    pub fn evaluate(&self, current: Option<Validators<'_>>, read: bool) -> Outcome {
        let current_tag = current.and_then(|v| EntityTag::parse(v.etag));
        // 1. If-Match.
        if let Some(list) = &self.if_match {
            let ok = match (list, &current_tag) {
                (TagList::Any, _) => current.is_some(),
                (TagList::Tags(tags), Some(cur)) => tags.iter().any(|t| t.strong_eq(cur)),
                (TagList::Tags(_), None) => false,
            };
            if !ok {
                return Outcome::Failed;
            }
        } else if let (Some(since), Some(cur)) = (self.if_unmodified_since, current) {
            // 2. If-Unmodified-Since, only without If-Match.
            if cur.modified > since {
                return Outcome::Failed;
            }
        }
        // 3. If-None-Match.
        if let Some(list) = &self.if_none_match {
            let matched = match (list, &current_tag) {
                (TagList::Any, _) => current.is_some(),
                (TagList::Tags(tags), Some(cur)) => tags.iter().any(|t| t.weak_eq(cur)),
                (TagList::Tags(_), None) => false,
            };
            if matched {
                return if read {
                    Outcome::NotModified
                } else {
                    Outcome::Failed
                };
            }
        } else if let (true, Some(since), Some(cur)) = (read, self.if_modified_since, current) {
            // 4. If-Modified-Since, only for GET/HEAD without If-None-Match.
            if cur.modified <= since {
                return Outcome::NotModified;
            }
        }
        Outcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn conds(pairs: &[(&'static str, &'static str)]) -> Conditions {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        Conditions::from_headers(&h).unwrap()
    }

    const CUR: Validators<'static> = Validators {
        etag: "\"v1\"",
        modified: 1_000,
    };

    /// Request headers, current validators, whether the method is a read, and the outcome.
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Option<Validators<'a>>,
        bool,
        Outcome,
    );

    #[test]
    fn rfc9110_order() {
        let cases: &[Case<'_>] = &[
            (&[], Some(CUR), true, Outcome::Proceed),
            (
                &[("if-match", "\"v1\"")],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
            (
                &[("if-match", "\"v0\", \"v1\"")],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
            (&[("if-match", "\"v2\"")], Some(CUR), false, Outcome::Failed),
            (
                &[("if-match", "W/\"v1\"")],
                Some(CUR),
                false,
                Outcome::Failed,
            ),
            (&[("if-match", "*")], None, false, Outcome::Failed),
            (&[("if-match", "*")], Some(CUR), false, Outcome::Proceed),
            (&[("if-none-match", "*")], Some(CUR), false, Outcome::Failed),
            (&[("if-none-match", "*")], None, false, Outcome::Proceed),
            (
                &[("if-none-match", "W/\"v1\"")],
                Some(CUR),
                true,
                Outcome::NotModified,
            ),
            (
                &[("if-none-match", "\"v2\"")],
                Some(CUR),
                true,
                Outcome::Proceed,
            ),
            (
                &[("if-modified-since", "Thu, 01 Jan 1970 00:16:40 GMT")],
                Some(CUR),
                true,
                Outcome::NotModified,
            ),
            (
                &[("if-modified-since", "Thu, 01 Jan 1970 00:16:39 GMT")],
                Some(CUR),
                true,
                Outcome::Proceed,
            ),
            (
                &[("if-modified-since", "Thu, 01 Jan 1970 00:16:40 GMT")],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
            (
                &[("if-unmodified-since", "Thu, 01 Jan 1970 00:16:39 GMT")],
                Some(CUR),
                false,
                Outcome::Failed,
            ),
            (
                &[("if-unmodified-since", "Thu, 01 Jan 1970 00:16:40 GMT")],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
            // If-Match takes precedence over If-Unmodified-Since.
            (
                &[
                    ("if-match", "\"v1\""),
                    ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:01 GMT"),
                ],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
            // If-None-Match takes precedence over If-Modified-Since.
            (
                &[
                    ("if-none-match", "\"v2\""),
                    ("if-modified-since", "Thu, 01 Jan 1970 00:16:40 GMT"),
                ],
                Some(CUR),
                true,
                Outcome::Proceed,
            ),
            // Malformed dates are ignored.
            (
                &[("if-unmodified-since", "yesterday")],
                Some(CUR),
                false,
                Outcome::Proceed,
            ),
        ];
        for (headers, cur, read, want) in cases {
            assert_eq!(
                conds(headers).evaluate(*cur, *read),
                *want,
                "{headers:?} read={read}"
            );
        }
    }

    #[test]
    fn malformed_tags_are_errors() {
        let mut h = HeaderMap::new();
        h.insert("if-match", HeaderValue::from_static("v1"));
        assert!(Conditions::from_headers(&h).is_err());
    }
}

/// Properties of precondition parsing and evaluation, shared by the property tests below and
/// the `conditions` fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// Renders a tag as it appears in a header.
    fn render(t: &EntityTag) -> String {
        format!("{}\"{}\"", if t.weak { "W/" } else { "" }, t.tag)
    }

    /// For any `If-*` fields and any current validators: no panic; a parsed tag renders and
    /// parses back to itself; and evaluation keeps RFC 9110 §13.2.2: no condition proceeds,
    /// a write is never answered 304, `If-Match` fails without a current representation and
    /// proceeds for its own strong tag, `If-None-Match: *` stops a read (304) or a write (412)
    /// of an existing representation.
    pub(crate) fn check_conditions(headers: &HeaderMap, etag: &str, modified: u64) {
        let _ = EntityTag::parse(etag);
        let Ok(conds) = Conditions::from_headers(headers) else {
            return;
        };
        for list in [&conds.if_match, &conds.if_none_match]
            .into_iter()
            .flatten()
        {
            if let TagList::Tags(tags) = list {
                for t in tags {
                    assert_eq!(EntityTag::parse(&render(t)).as_ref(), Some(t));
                }
            }
        }
        let current = Validators { etag, modified };
        for read in [true, false] {
            for cur in [None, Some(current)] {
                let outcome = conds.evaluate(cur, read);
                if conds.is_empty() {
                    assert_eq!(outcome, Outcome::Proceed);
                }
                if !read {
                    assert_ne!(outcome, Outcome::NotModified);
                }
                if conds.if_match.is_some() && cur.is_none() {
                    assert_eq!(outcome, Outcome::Failed);
                }
            }
        }
        if let Some(own) = EntityTag::parse(etag).filter(|t| !t.weak) {
            let only_match = Conditions {
                if_match: Some(TagList::Tags(vec![own])),
                ..Conditions::default()
            };
            assert_eq!(only_match.evaluate(Some(current), false), Outcome::Proceed);
        }
        if conds.if_match.is_none()
            && conds.if_unmodified_since.is_none()
            && conds.if_none_match == Some(TagList::Any)
        {
            assert_eq!(conds.evaluate(Some(current), true), Outcome::NotModified);
            assert_eq!(conds.evaluate(Some(current), false), Outcome::Failed);
        }
    }

    #[cfg(test)]
    use http::HeaderValue;
    #[cfg(test)]
    use proptest::collection::vec;
    #[cfg(test)]
    use proptest::prelude::*;

    /// Characters of an opaque tag (RFC 9110 §8.8.3: `%x21 / %x23-7E`), commas included.
    #[cfg(test)]
    const ETAGC: &str = "[!#-~]{0,12}";

    #[cfg(test)]
    fn tag() -> impl Strategy<Value = EntityTag> {
        (any::<bool>(), ETAGC).prop_map(|(weak, tag)| EntityTag { weak, tag })
    }

    #[cfg(test)]
    fn tag_list() -> impl Strategy<Value = Option<TagList>> {
        proptest::option::of(prop_oneof![
            Just(TagList::Any),
            vec(tag(), 0..4).prop_map(TagList::Tags),
        ])
    }

    /// Seconds that an HTTP date can carry (up to 9999-12-31).
    #[cfg(test)]
    fn date() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(0u64..253_402_300_800)
    }

    #[cfg(test)]
    fn field_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..24),
            "[ W/\"*,a-c]{0,24}".prop_map(String::into_bytes),
            vec(tag(), 0..4).prop_map(|ts| ts
                .iter()
                .map(render)
                .collect::<Vec<_>>()
                .join(", ")
                .into_bytes()),
            Just(b"Thu, 01 Jan 1970 00:16:40 GMT".to_vec()),
        ]
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn tags_round_trip(t in tag(), ows in "[ \t]{0,2}") {
            prop_assert_eq!(EntityTag::parse(&format!("{ows}{}{ows}", render(&t))), Some(t));
        }

        #[test]
        fn any_tag_text(s in prop_oneof![".{0,16}", "(W/)?\"[ -~]{0,8}\"?"]) {
            if let Some(t) = EntityTag::parse(&s) {
                prop_assert_eq!(EntityTag::parse(&render(&t)), Some(t));
            }
        }

        /// Conditions rendered as header fields (one field or split over two, `*` as `*`,
        /// dates as HTTP dates) parse back to themselves.
        #[test]
        fn conditions_round_trip(
            if_match in tag_list(),
            if_none_match in tag_list(),
            if_modified_since in date(),
            if_unmodified_since in date(),
            split in any::<bool>(),
        ) {
            let want = Conditions { if_match, if_none_match, if_modified_since, if_unmodified_since };
            let mut h = HeaderMap::new();
            for (name, list) in [(header::IF_MATCH, &want.if_match), (header::IF_NONE_MATCH, &want.if_none_match)] {
                match list {
                    None => {}
                    Some(TagList::Any) => {
                        h.append(name, HeaderValue::from_static("*"));
                    }
                    Some(TagList::Tags(tags)) => {
                        let rendered: Vec<String> = tags.iter().map(render).collect();
                        let at = if split { rendered.len() / 2 } else { 0 };
                        for part in [&rendered[..at], &rendered[at..]] {
                            if !part.is_empty() || (at == 0 && rendered.is_empty()) {
                                h.append(name.clone(), HeaderValue::from_str(&part.join(", ")).unwrap());
                            }
                        }
                    }
                }
            }
            for (name, secs) in [(header::IF_MODIFIED_SINCE, want.if_modified_since), (header::IF_UNMODIFIED_SINCE, want.if_unmodified_since)] {
                if let Some(secs) = secs {
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
                    h.insert(name, HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap());
                }
            }
            prop_assert_eq!(Conditions::from_headers(&h), Ok(want));
            check_conditions(&h, "\"v1\"", 1_000);
        }

        #[test]
        fn any_fields_and_validators(
            fields in vec((prop::sample::select(vec![
                header::IF_MATCH, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::IF_UNMODIFIED_SINCE,
            ]), field_value()), 0..5),
            etag in prop_oneof![".{0,12}", tag().prop_map(|t| render(&t))],
            modified in prop_oneof![0u64..2_000, any::<u64>()],
        ) {
            let mut h = HeaderMap::new();
            for (name, value) in fields {
                if let Ok(v) = HeaderValue::from_bytes(&value) {
                    h.append(name, v);
                }
            }
            check_conditions(&h, &etag, modified);
        }
    }
}
