//! `?transform=…`: what the gateway may do to an upstream's 200 before answering 203.
//!
//! - `minify`: JSON without insignificant whitespace (members, order and number text kept);
//! - `fields:a,b.c`: only those members (dotted paths go into objects, and through arrays
//!   into each element);
//! - `uppercase`: text in upper case.
//!
//! The JSON transforms work on the bytes of validated JSON, so member order, duplicate names
//! and number spellings survive exactly.

use bytes::Bytes;
use std::collections::BTreeMap;

/// Transforms one request may chain.
pub(crate) const MAX_TRANSFORMS: usize = 8;
/// Field paths one `fields:` transform may name.
const MAX_FIELDS: usize = 64;

/// One transformation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transform {
    /// Compact JSON.
    Minify,
    /// Keep only these members.
    Fields(Fields),
    /// Upper-case text.
    Uppercase,
}

/// A tree of member names: a member with `whole` is kept entirely, otherwise only its own
/// listed members are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields(BTreeMap<String, Field>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Field {
    whole: bool,
    sub: Fields,
}

impl Fields {
    fn insert(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let field = self.0.entry((*first).to_owned()).or_default();
        if field.whole {
            return;
        }
        if rest.is_empty() {
            field.whole = true;
            field.sub = Fields::default();
        } else {
            field.sub.insert(rest);
        }
    }
}

impl std::str::FromStr for Transform {
    type Err = String;
    fn from_str(s: &str) -> Result<Transform, String> {
        let s = s.trim();
        match s {
            "minify" => return Ok(Transform::Minify),
            "uppercase" => return Ok(Transform::Uppercase),
            _ => {}
        }
        let Some(list) = s.strip_prefix("fields:") else {
            return Err(format!(
                "transform={s:?}: expected minify, uppercase or fields:NAME,NAME.SUB"
            ));
        };
        let mut fields = Fields::default();
        let paths: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if paths.is_empty() {
            return Err("transform=fields: names no fields (e.g. fields:id,owner.name)".to_owned());
        }
        if paths.len() > MAX_FIELDS {
            return Err(format!(
                "transform=fields: names more than {MAX_FIELDS} fields"
            ));
        }
        for p in paths {
            let parts: Vec<&str> = p.split('.').collect();
            if parts.iter().any(|x| x.is_empty()) {
                return Err(format!("transform=fields: {p:?} has an empty name"));
            }
            fields.insert(&parts);
        }
        Ok(Transform::Fields(fields))
    }
}

impl Transform {
    /// Applies the transform to an upstream's content.
    pub(crate) fn apply(&self, body: &[u8]) -> Result<Bytes, String> {
        match self {
            Transform::Minify => {
                validate(body)?;
                let mut out = Vec::with_capacity(body.len());
                minify_into(body, &mut out);
                Ok(out.into())
            }
            Transform::Fields(fields) => {
                validate(body)?;
                let mut out = Vec::with_capacity(body.len() / 2);
                let start = ws(body, 0);
                if !filter(body, start, fields, &mut out) {
                    return Err(
                        "the JSON is not an object or an array, so it has no fields".to_owned()
                    );
                }
                Ok(out.into())
            }
            Transform::Uppercase => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| "the content is not UTF-8 text".to_owned())?;
                Ok(text.to_uppercase().into())
            }
        }
    }

    /// The transform's name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transform::Minify => "minify",
            Transform::Fields(_) => "fields",
            Transform::Uppercase => "uppercase",
        }
    }
}

fn validate(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| format!("the content is not JSON ({e})"))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of the first non-whitespace byte at or after `i`.
fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Copies validated JSON without whitespace outside strings.
fn minify_into(b: &[u8], out: &mut Vec<u8>) {
    let (mut in_string, mut escaped) = (false, false);
    for &c in b {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if !is_ws(c) {
            in_string = c == b'"';
            out.push(c);
        }
    }
}

// The scanners below run only over JSON that `validate` accepted, so every string, object
// and array they enter is closed; `get` keeps them panic-free even so.

/// The index just past the string starting at `i` (`b[i] == '"'`).
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while let Some(&c) = b.get(j) {
        match c {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The index just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b']' | b'}') && !is_ws(b[j]) {
                j += 1;
            }
            j
        }
    }
}

/// Writes the value at `i` filtered by `fields`; `false` (and nothing written) for a scalar,
/// which has no fields to keep.
fn filter(b: &[u8], i: usize, fields: &Fields, out: &mut Vec<u8>) -> bool {
    match b.get(i) {
        Some(b'{') => {
            out.push(b'{');
            let mut first = true;
            let mut j = ws(b, i + 1);
            while b.get(j) == Some(&b'"') {
                let key_end = string_end(b, j);
                let key: String = serde_json::from_slice(&b[j..key_end]).unwrap_or_default();
                let colon = ws(b, key_end);
                let v = ws(b, colon + 1);
                let v_end = value_end(b, v);
                if let Some(field) = fields.0.get(&key) {
                    let mark = out.len();
                    if !first {
                        out.push(b',');
                    }
                    out.extend_from_slice(&b[j..key_end]);
                    out.push(b':');
                    let kept = if field.whole {
                        minify_into(&b[v..v_end], out);
                        true
                    } else {
                        filter(b, v, &field.sub, out)
                    };
                    if kept {
                        first = false;
                    } else {
                        out.truncate(mark);
                    }
                }
                let next = ws(b, v_end);
                if b.get(next) != Some(&b',') {
                    break;
                }
                j = ws(b, next + 1);
            }
            out.push(b'}');
            true
        }
        Some(b'[') => {
            out.push(b'[');
            let mut first = true;
            let mut j = ws(b, i + 1);
            while j < b.len() && b[j] != b']' {
                let end = value_end(b, j);
                let mark = out.len();
                if !first {
                    out.push(b',');
                }
                if filter(b, j, fields, out) {
                    first = false;
                } else {
                    out.truncate(mark);
                }
                let next = ws(b, end);
                if b.get(next) != Some(&b',') {
                    break;
                }
                j = ws(b, next + 1);
            }
            out.push(b']');
            true
        }
        _ => false,
    }
}

/// Applies a chain of transforms.
pub(crate) fn apply_all(transforms: &[Transform], body: Bytes) -> Result<Bytes, String> {
    transforms.iter().try_fold(body, |body, t| {
        t.apply(&body)
            .map_err(|e| format!("transform={}: {e}", t.name()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: &str, body: &str) -> Result<String, String> {
        let t: Transform = spec.parse()?;
        t.apply(body.as_bytes())
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn minify_keeps_order_and_strings() {
        let body = "{ \"z\" : 1.50 ,\n \"a\" : [ 1 , 2 ],\t\"s\": \"a b \\\" { \" }\n";
        assert_eq!(
            run("minify", body).unwrap(),
            r#"{"z":1.50,"a":[1,2],"s":"a b \" { "}"#
        );
        assert!(run("minify", "not json").unwrap_err().contains("not JSON"));
        assert!(
            run("minify", "{\"a\":1} x")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn fields_filter() {
        let body = r#"{ "id": 7, "name": "x", "owner": {"name": "ann", "mail": "a@b"},
                       "items": [ {"id": 1, "p": 2}, 3, {"p": 4} ], "s": "id" }"#;
        assert_eq!(run("fields:id", body).unwrap(), r#"{"id":7}"#);
        assert_eq!(
            run("fields:owner.name,id", body).unwrap(),
            r#"{"id":7,"owner":{"name":"ann"}}"#
        );
        assert_eq!(
            run("fields:items.id", body).unwrap(),
            r#"{"items":[{"id":1},{}]}"#
        );
        assert_eq!(
            run("fields:owner,owner.name", body).unwrap(),
            r#"{"owner":{"name":"ann","mail":"a@b"}}"#
        );
        assert_eq!(run("fields:name.first", body).unwrap(), "{}");
        assert_eq!(run("fields:missing", body).unwrap(), "{}");
        assert_eq!(
            run("fields:a", r#"[{"a":1,"b":2},{"b":3}]"#).unwrap(),
            r#"[{"a":1},{}]"#
        );
        assert_eq!(
            run("fields:é", r#"{"\u00e9":1,"x":2}"#).unwrap(),
            r#"{"\u00e9":1}"#
        );
        assert_eq!(run("fields:a", r#"{}"#).unwrap(), "{}");
        assert_eq!(run("fields:a", r#"[]"#).unwrap(), "[]");
        assert!(run("fields:a", "5").unwrap_err().contains("not an object"));
        assert!(run("fields:a", "{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn specs() {
        assert!("fields:".parse::<Transform>().is_err());
        assert!("fields:a..b".parse::<Transform>().is_err());
        assert!(
            "gzip"
                .parse::<Transform>()
                .unwrap_err()
                .contains("expected minify")
        );
        assert_eq!(run("uppercase", "straße").unwrap(), "STRASSE");
        assert!(Transform::Uppercase.apply(&[0xff]).is_err());
    }

    #[test]
    fn chains() {
        let t = vec![Transform::Minify, Transform::Uppercase];
        assert_eq!(
            &apply_all(&t, Bytes::from_static(b"{ \"a\": \"b\" }")).unwrap()[..],
            b"{\"A\":\"B\"}"
        );
        let e = apply_all(&t, Bytes::from_static(b"x")).unwrap_err();
        assert!(e.starts_with("transform=minify"));
    }
}
