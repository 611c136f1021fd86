//! `/resources`: stored bytes with their type, where 201, 204, 304, 404, 406, 409, 410, 412,
//! 413, 415, 416, 422 and 206 arise from real state and real requests.

use crate::app::{App, status};
use crate::negotiate;
use crate::range::{self, RangeRequest};
use crate::reply::Reply;
use crate::request::Request;
use crate::store::precondition::Validators;
use crate::store::{
    ConditionOutcome, Conditions, DeleteOutcome, EntityTag, Lookup, NewResource, Resource,
    ResourceMeta, TagList, WriteMode, WriteOutcome,
};
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

fn conditions(app: &App, req: &Request) -> Result<Conditions, Box<Reply>> {
    Conditions::from_headers(&req.headers).map_err(|e| Box::new(app.error(req, 400, &e)))
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
pub(crate) async fn collection(app: &App, req: &Request) -> Reply {
    if req.method != Method::POST {
        return match app.store.list_resources(LIST_LIMIT).await {
            Ok(list) => app.json(
                200,
                serde_json::to_vec(&json!({ "resources": list })).expect("serializes"),
            ),
            Err(e) => app.store_failed(req, e),
        };
    }
    let name = match req.header("slug") {
        Some(slug) => {
            let decoded = percent_encoding::percent_decode_str(slug.trim())
                .decode_utf8_lossy()
                .into_owned();
            match valid_name("Slug", &decoded) {
                Ok(n) => n.to_owned(),
                Err(e) => return app.error(req, 400, &e),
            }
        }
        None => format!("{:016x}", fastrand::u64(..)),
    };
    let conds = match conditions(app, req) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let new = NewResource {
        content_type: content_type(req),
        body: req.body.clone(),
    };
    match app
        .store
        .write_resource(&name, new, WriteMode::CreateOnly, conds)
        .await
    {
        Ok(WriteOutcome::Exists) => {
            let detail = format!(
                "a resource named {name:?} already exists; PUT /resources/{name} replaces it"
            );
            app.error(req, 409, &detail)
                .with_header(header::LOCATION, location(&name))
        }
        Ok(outcome) => written(app, req, &name, outcome),
        Err(e) => app.store_failed(req, e),
    }
}

/// `/resources/{name}`.
pub(crate) async fn item(app: &App, req: &Request, name: &str) -> Reply {
    let name = match valid_name("resource name", name) {
        Ok(n) => n,
        Err(e) => return app.error(req, 400, &e),
    };
    let conds = match conditions(app, req) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match req.method {
        Method::GET | Method::HEAD => read(app, req, name, &conds).await,
        Method::PUT => {
            let new = NewResource {
                content_type: content_type(req),
                body: req.body.clone(),
            };
            match app
                .store
                .write_resource(name, new, WriteMode::Upsert, conds)
                .await
            {
                Ok(outcome) => written(app, req, name, outcome),
                Err(e) => app.store_failed(req, e),
            }
        }
        Method::PATCH => patch(app, req, name, conds).await,
        Method::DELETE => match app.store.delete_resource(name, conds).await {
            Ok(DeleteOutcome::Deleted) => Reply::new(status(204)),
            Ok(DeleteOutcome::PreconditionFailed) => precondition_failed(app, req),
            Ok(DeleteOutcome::NotFound(lookup)) => absent(app, req, name, &lookup),
            Err(e) => app.store_failed(req, e),
        },
        _ => app.error(req, 405, "method not allowed"),
    }
}

fn precondition_failed(app: &App, req: &Request) -> Reply {
    app.error(req, 412, "a precondition (If-Match, If-None-Match, If-Unmodified-Since) does not hold for the current resource")
}

fn absent(app: &App, req: &Request, name: &str, lookup: &Lookup) -> Reply {
    match lookup {
        Lookup::Gone => app.error(req, 410, &format!("resource {name:?} was deleted")),
        _ => app.error(req, 404, &format!("there is no resource {name:?}")),
    }
}

/// Maps a write's outcome to its answer.
fn written(app: &App, req: &Request, name: &str, outcome: WriteOutcome) -> Reply {
    match outcome {
        WriteOutcome::Created(meta) => {
            let mut r = app
                .json(201, meta_json(&meta))
                .with_header(header::LOCATION, location(name));
            validators(&mut r, &meta);
            r
        }
        WriteOutcome::Replaced(meta) => {
            let mut r = Reply::new(status(204));
            validators(&mut r, &meta);
            r
        }
        WriteOutcome::PreconditionFailed => precondition_failed(app, req),
        WriteOutcome::Exists => app.error(
            req,
            409,
            &format!("a resource named {name:?} already exists"),
        ),
        WriteOutcome::NotFound(lookup) => absent(app, req, name, &lookup),
        WriteOutcome::QuotaFull { used, limit } => {
            let detail = format!(
                "the store is full ({used} of {limit} bytes, --max-store-bytes); delete resources or retry later"
            );
            app.error(req, 413, &detail).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(app.cfg.store_full_retry_after),
            )
        }
        WriteOutcome::TooManyKeys => {
            let detail = format!(
                "the store holds its maximum number of resources ({}, --max-keys)",
                app.cfg.limits.max_keys
            );
            app.error(req, 507, &detail).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(app.cfg.store_full_retry_after),
            )
        }
    }
}

async fn read(app: &App, req: &Request, name: &str, conds: &Conditions) -> Reply {
    let resource = match app.store.resource(name).await {
        Ok(Lookup::Found(r)) => r,
        Ok(other) => return absent(app, req, name, &other),
        Err(e) => return app.store_failed(req, e),
    };
    let meta = &resource.meta;
    let current = Validators {
        etag: &meta.etag,
        modified: meta.modified,
    };
    match conds.evaluate(Some(current), true) {
        ConditionOutcome::NotModified => {
            let mut r = Reply::new(status(304));
            validators(&mut r, meta);
            return r;
        }
        ConditionOutcome::Failed => return precondition_failed(app, req),
        ConditionOutcome::Proceed => {}
    }
    if !negotiate::accepts(req.headers.get(header::ACCEPT), &meta.content_type) {
        let detail = format!(
            "the resource is {}, which the Accept header does not admit",
            meta.content_type
        );
        return app.error(req, 406, &detail);
    }
    let mut reply = ranged(req, &resource);
    validators(&mut reply, meta);
    reply
        .headers
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    reply
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
        RangeRequest::Full => Reply::new(status(200)).with_body(ct, resource.body.clone()),
        RangeRequest::Unsatisfiable => {
            let mut r = Reply::new(status(416));
            r.headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&range::unsatisfied(len)).expect("ascii"),
            );
            r
        }
        RangeRequest::Partial(ranges) => {
            let mut r = Reply::new(status(206));
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

fn is_json_type(ct: &str) -> bool {
    let bare = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    bare == "application/json" || bare.ends_with("+json")
}

/// 415 unless a PATCH carries a merge patch (decided from the head, before the content).
pub(crate) fn patch_type_refusal(app: &App, req: &Request) -> Option<Reply> {
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
        return Some(app.error(req, 415, &detail).with_header(
            HeaderName::from_static("accept-patch"),
            HeaderValue::from_static(MERGE_PATCH),
        ));
    }
    None
}

async fn patch(app: &App, req: &Request, name: &str, conds: Conditions) -> Reply {
    if let Some(refused) = patch_type_refusal(app, req) {
        return refused;
    }
    let patch: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return app.error(req, 400, &format!("the patch is not valid JSON: {e}")),
    };
    for _ in 0..PATCH_ATTEMPTS {
        let resource = match app.store.resource(name).await {
            Ok(Lookup::Found(r)) => r,
            Ok(other) => return absent(app, req, name, &other),
            Err(e) => return app.store_failed(req, e),
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
            return precondition_failed(app, req);
        }
        let mut doc: Value = match (
            is_json_type(&meta.content_type),
            serde_json::from_slice(&resource.body),
        ) {
            (true, Ok(v)) => v,
            _ => {
                let detail = format!(
                    "a merge patch applies to a JSON document; {name:?} is {} and not JSON",
                    meta.content_type
                );
                return app.error(req, 422, &detail);
            }
        };
        merge(&mut doc, &patch);
        let body = Bytes::from(serde_json::to_vec(&doc).expect("JSON serializes"));
        if body.len() > app.cfg.max_body {
            return app.error(
                req,
                413,
                &format!(
                    "the patched document would exceed {} bytes (--max-body)",
                    app.cfg.max_body
                ),
            );
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
        match app
            .store
            .write_resource(name, new, WriteMode::ReplaceOnly, exact)
            .await
        {
            Ok(WriteOutcome::Replaced(meta)) => {
                let mut r = Reply::new(status(200)).with_body(
                    HeaderValue::from_str(&meta.content_type)
                        .unwrap_or(HeaderValue::from_static("application/json")),
                    body,
                );
                validators(&mut r, &meta);
                return r;
            }
            Ok(WriteOutcome::PreconditionFailed) => continue,
            Ok(other) => return written(app, req, name, other),
            Err(e) => return app.store_failed(req, e),
        }
    }
    app.error(
        req,
        409,
        "the resource kept changing while the patch was applied; retry",
    )
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
