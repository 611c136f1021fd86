//! `/resources`: stored bytes with their type, where 201, 204, 304, 404, 406, 409, 410, 412,
//! 413, 415, 416, 422 and 206 arise from real state and real requests.

use crate::content::negotiate;
use crate::content::params::is_json;
use crate::content::range::{self, RangeRequest};
use crate::ctx::Ctx;
use crate::problem::{FIXED_LIMIT, Problem};
use crate::store::precondition::Validators;
use crate::store::{
    ConditionOutcome, Conditions, DeleteOutcome, EntityTag, Lookup, NewResource, Resource,
    ResourceMeta, TagList, WriteMode, WriteOutcome,
};
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// Longest resource name.
pub(crate) const MAX_NAME: usize = 128;
/// Most resources listed by `GET /resources`.
const LIST_LIMIT: usize = 1000;
/// Attempts to apply a merge patch when concurrent writers keep changing the resource.
const PATCH_ATTEMPTS: usize = 5;
const MERGE_PATCH: &str = "application/merge-patch+json";

/// Checks a name or key: 1–128 of `A-Z a-z 0-9 . _ ~ -`, not `.` or `..`.
pub(crate) fn valid_name<'a>(what: &str, s: &'a str) -> Result<&'a str, String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{what} {s:?} is invalid: use 1-{MAX_NAME} characters from A-Z a-z 0-9 . _ ~ -"
        ))
    }
}

fn location(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/resources/{name}")).expect("valid names are header-safe")
}

fn validators(reply: &mut Reply, meta: &ResourceMeta) {
    if let Ok(v) = HeaderValue::from_str(&meta.etag) {
        reply.headers.insert(header::ETAG, v);
    }
    let modified = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.modified);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        reply.headers.insert(header::LAST_MODIFIED, v);
    }
}

fn conditions(req: &Request) -> Result<Conditions, Problem> {
    Conditions::from_headers(&req.headers).map_err(|e| Problem::new(400, e))
}

fn content_type(req: &Request) -> String {
    req.header(header::CONTENT_TYPE)
        .unwrap_or("application/octet-stream")
        .trim()
        .to_owned()
}

fn meta_json(meta: &ResourceMeta) -> Bytes {
    Bytes::from(serde_json::to_vec(meta).expect("metadata serializes"))
}

/// `GET /resources` lists; `POST /resources` creates with the name from `Slug` (or a new one).
pub(crate) async fn collection(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    if req.method != Method::POST {
        let list = ctx.store.list_resources(LIST_LIMIT).await?;
        return Ok(Reply::json(
            200,
            serde_json::to_vec(&json!({ "resources": list })).expect("serializes"),
        ));
    }
    let name = match req.header("slug") {
        Some(slug) => {
            let decoded = percent_encoding::percent_decode_str(slug.trim())
                .decode_utf8_lossy()
                .into_owned();
            valid_name("Slug", &decoded)
                .map_err(|e| Problem::new(400, e))?
                .to_owned()
        }
        None => format!("{:016x}", fastrand::u64(..)),
    };
    let conds = conditions(req)?;
    let new = NewResource {
        content_type: content_type(req),
        body: req.body.clone(),
    };
    match ctx
        .store
        .write_resource(&name, new, WriteMode::CreateOnly, conds)
        .await?
    {
        WriteOutcome::Exists => {
            let detail = format!(
                "a resource named {name:?} already exists; PUT /resources/{name} replaces it"
            );
            Err(Problem::new(409, detail).with_header(header::LOCATION, location(&name)))
        }
        outcome => written(ctx, &name, outcome),
    }
}

/// `/resources/{name}`.
pub(crate) async fn item(ctx: &Ctx, req: &Request, name: &str) -> Result<Reply, Problem> {
    let name = valid_name("resource name", name).map_err(|e| Problem::new(400, e))?;
    let conds = conditions(req)?;
    match req.method {
        Method::GET | Method::HEAD => read(ctx, req, name, &conds).await,
        Method::PUT => {
            let new = NewResource {
                content_type: content_type(req),
                body: req.body.clone(),
            };
            let outcome = ctx
                .store
                .write_resource(name, new, WriteMode::Upsert, conds)
                .await?;
            written(ctx, name, outcome)
        }
        Method::PATCH => patch(ctx, req, name, conds).await,
        Method::DELETE => match ctx.store.delete_resource(name, conds).await? {
            DeleteOutcome::Deleted => Ok(Reply::new(known(204))),
            DeleteOutcome::PreconditionFailed => Err(precondition_failed()),
            DeleteOutcome::NotFound(lookup) => Err(absent(name, &lookup)),
        },
        _ => Err(Problem::new(405, "method not allowed")),
    }
}

fn precondition_failed() -> Problem {
    Problem::new(
        412,
        "a precondition (If-Match, If-None-Match, If-Unmodified-Since) does not hold for the current resource",
    )
}

fn absent(name: &str, lookup: &Lookup) -> Problem {
    match lookup {
        Lookup::Gone => Problem::new(410, format!("resource {name:?} was deleted")),
        _ => Problem::new(404, format!("there is no resource {name:?}")),
    }
}

/// Maps a write's outcome to its answer.
fn written(ctx: &Ctx, name: &str, outcome: WriteOutcome) -> Result<Reply, Problem> {
    match outcome {
        WriteOutcome::Created(meta) => {
            let mut r =
                Reply::json(201, meta_json(&meta)).with_header(header::LOCATION, location(name));
            validators(&mut r, &meta);
            Ok(r)
        }
        WriteOutcome::Replaced(meta) => {
            let mut r = Reply::new(known(204));
            validators(&mut r, &meta);
            Ok(r)
        }
        WriteOutcome::PreconditionFailed => Err(precondition_failed()),
        WriteOutcome::Exists => Err(Problem::new(
            409,
            format!("a resource named {name:?} already exists"),
        )),
        WriteOutcome::NotFound(lookup) => Err(absent(name, &lookup)),
        WriteOutcome::QuotaFull { used, limit } => {
            let detail = format!(
                "the store is full ({used} of {limit} bytes, --max-store-bytes); delete resources or retry later"
            );
            Err(Problem::new(413, detail).retry_later())
        }
        WriteOutcome::TooManyKeys => {
            let detail = format!(
                "the store holds its maximum number of resources ({}, --max-keys)",
                ctx.cfg.limits.max_keys
            );
            Err(Problem::new(507, detail).retry_later())
        }
    }
}

async fn read(ctx: &Ctx, req: &Request, name: &str, conds: &Conditions) -> Result<Reply, Problem> {
    let resource = match ctx.store.resource(name).await? {
        Lookup::Found(r) => r,
        other => return Err(absent(name, &other)),
    };
    let meta = &resource.meta;
    let current = Validators {
        etag: &meta.etag,
        modified: meta.modified,
    };
    match conds.evaluate(Some(current), true) {
        ConditionOutcome::NotModified => {
            let mut r = Reply::new(known(304));
            validators(&mut r, meta);
            return Ok(r);
        }
        ConditionOutcome::Failed => return Err(precondition_failed()),
        ConditionOutcome::Proceed => {}
    }
    if !negotiate::accepts(req.headers.get(header::ACCEPT), &meta.content_type) {
        let detail = format!(
            "the resource is {}, which the Accept header does not admit",
            meta.content_type
        );
        return Err(Problem::new(406, detail));
    }
    let mut reply = ranged(req, &resource);
    validators(&mut reply, meta);
    let h = &mut reply.headers;
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Stored bytes are whatever a client uploaded: a browser must neither sniff them into
    // something executable nor run stored HTML or SVG with this origin's rights.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(reply)
}

/// Whether `If-Range` (if any) still names the current representation (RFC 9110 §13.1.5).
fn if_range_holds(req: &Request, meta: &ResourceMeta) -> bool {
    let Some(v) = req.header(header::IF_RANGE) else {
        return true;
    };
    if let (Some(tag), Some(cur)) = (EntityTag::parse(v), EntityTag::parse(&meta.etag)) {
        return tag.strong_eq(&cur);
    }
    httpdate::parse_http_date(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|d| d.as_secs() == meta.modified)
}

fn ranged(req: &Request, resource: &Resource) -> Reply {
    let meta = &resource.meta;
    let ct = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let len = resource.body.len() as u64;
    let asked = req
        .header(header::RANGE)
        .filter(|_| req.method == Method::GET && if_range_holds(req, meta));
    match asked.map_or(RangeRequest::Full, |r| range::parse(r, len)) {
        RangeRequest::Full => Reply::new(known(200)).with_body(ct, resource.body.clone()),
        RangeRequest::Unsatisfiable => {
            let mut r = Reply::new(known(416));
            r.headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&range::unsatisfied(len)).expect("ascii"),
            );
            r
        }
        RangeRequest::Partial(ranges) => {
            let mut r = Reply::new(known(206));
            if let [one] = ranges.as_slice() {
                r.headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&range::content_range(*one, len)).expect("ascii"),
                );
                r = r.with_body(
                    ct,
                    resource.body.slice(one.first as usize..=one.last as usize),
                );
            } else {
                let multipart = format!("multipart/byteranges; boundary={}", range::BOUNDARY);
                r = r.with_body(
                    HeaderValue::from_str(&multipart).expect("ascii"),
                    range::multipart(&resource.body, &meta.content_type, &ranges),
                );
            }
            r
        }
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// 415 unless a PATCH carries a merge patch (decided from the head, before the content).
pub(crate) fn patch_type_check(req: &Request) -> Result<(), Problem> {
    let ct = req.header(header::CONTENT_TYPE).unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(MERGE_PATCH)
    {
        let detail = format!(
            "PATCH takes {MERGE_PATCH}, not {:?}",
            if ct.is_empty() { "no Content-Type" } else { ct }
        );
        return Err(Problem::new(415, detail).with_header(
            HeaderName::from_static("accept-patch"),
            HeaderValue::from_static(MERGE_PATCH),
        ));
    }
    Ok(())
}

async fn patch(ctx: &Ctx, req: &Request, name: &str, conds: Conditions) -> Result<Reply, Problem> {
    patch_type_check(req)?;
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Problem::new(400, format!("the patch is not valid JSON: {e}")))?;
    for _ in 0..PATCH_ATTEMPTS {
        let resource = match ctx.store.resource(name).await? {
            Lookup::Found(r) => r,
            other => return Err(absent(name, &other)),
        };
        let meta = &resource.meta;
        if conds.evaluate(
            Some(Validators {
                etag: &meta.etag,
                modified: meta.modified,
            }),
            false,
        ) != ConditionOutcome::Proceed
        {
            return Err(precondition_failed());
        }
        let mut doc: Value = match (
            is_json(&meta.content_type),
            serde_json::from_slice(&resource.body),
        ) {
            (true, Ok(v)) => v,
            _ => {
                let detail = format!(
                    "a merge patch applies to a JSON document; {name:?} is {} and not JSON",
                    meta.content_type
                );
                return Err(Problem::new(422, detail));
            }
        };
        merge(&mut doc, &patch);
        let body = Bytes::from(serde_json::to_vec(&doc).expect("JSON serializes"));
        if body.len() > ctx.cfg.max_body {
            return Err(Problem::new(
                413,
                format!(
                    "the patched document would exceed {} bytes (--max-body)",
                    ctx.cfg.max_body
                ),
            )
            .advice(FIXED_LIMIT));
        }
        // Replace only the version just read: a concurrent writer makes this attempt fail and
        // the patch is applied again to the new version.
        let exact = Conditions {
            if_match: Some(TagList::Tags(vec![
                EntityTag::parse(&meta.etag).expect("stored tags parse"),
            ])),
            ..Conditions::default()
        };
        let new = NewResource {
            content_type: meta.content_type.clone(),
            body: body.clone(),
        };
        match ctx
            .store
            .write_resource(name, new, WriteMode::ReplaceOnly, exact)
            .await?
        {
            WriteOutcome::Replaced(meta) => {
                let mut r = Reply::new(known(200)).with_body(
                    HeaderValue::from_str(&meta.content_type)
                        .unwrap_or(HeaderValue::from_static("application/json")),
                    body,
                );
                validators(&mut r, &meta);
                return Ok(r);
            }
            WriteOutcome::PreconditionFailed => continue,
            other => return written(ctx, name, other),
        }
    }
    Err(Problem::new(
        409,
        "the resource kept changing while the patch was applied; retry",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
        ];
        for (mut target, patch, want) in cases {
            merge(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("n", "report-2026.json").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(valid_name("n", bad).is_err(), "{bad:?}");
        }
    }
}

/// Properties of JSON merge patch, shared by the property tests below and the `merge_patch`
/// fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any target and patch (RFC 7386): no panic; a patch that is not an object replaces
    /// the target; an object patch removes its null members, sets the rest (merging objects)
    /// and leaves the target's other members alone; `{}` leaves an object as it was; and
    /// applying the same patch twice changes nothing more.
    pub(crate) fn check_merge(target: &Value, patch: &Value) {
        let mut once = target.clone();
        merge(&mut once, patch);
        let mut twice = once.clone();
        merge(&mut twice, patch);
        assert_eq!(twice, once, "merging {patch} twice");
        let Value::Object(p) = patch else {
            assert_eq!(&once, patch);
            return;
        };
        let t = once.as_object().expect("an object patch gives an object");
        for (k, v) in p {
            match v {
                Value::Null => assert!(!t.contains_key(k)),
                Value::Object(_) => assert!(t[k].is_object()),
                v => assert_eq!(&t[k], v),
            }
        }
        if let Value::Object(before) = target {
            for (k, v) in before.iter().filter(|(k, _)| !p.contains_key(*k)) {
                assert_eq!(t.get(k), Some(v));
            }
            let mut same = target.clone();
            merge(&mut same, &json!({}));
            assert_eq!(&same, target);
        }
    }

    #[cfg(test)]
    use proptest::prelude::*;

    /// Any JSON value, a few levels deep, with keys from a small set so patches meet targets.
    #[cfg(test)]
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            "[a-c]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-d]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[cfg(test)]
    proptest! {
        #[test]
        fn merge_patch_laws(target in value(), patch in value()) {
            check_merge(&target, &patch);
        }
    }
}
