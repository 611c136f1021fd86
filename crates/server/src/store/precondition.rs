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
