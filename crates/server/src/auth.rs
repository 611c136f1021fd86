//! 401 and 403 from real credentials: httpbin's `/basic-auth`, `/hidden-basic-auth` and
//! `/bearer`, and server-wide bearer tokens with scopes guarding resources, jobs and admin.
//! Every comparison of a secret runs in constant time (over SHA-256 digests, so lengths do
//! not leak either), and secrets never reach the log.

use crate::app::App;
use crate::config::Scope;
use crate::reply::Reply;
use crate::request::Request;
use base64::Engine as _;
use http::header::{self, HeaderValue};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Constant-time equality of two secrets.
pub(crate) fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// The `user:password` of `Authorization: Basic …` (or `Proxy-Authorization`).
pub(crate) fn basic_credentials(value: Option<&str>) -> Option<(String, String)> {
    let v = value?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The token of `Authorization: Bearer …`.
pub(crate) fn bearer_token(req: &Request) -> Option<&str> {
    let v = req.header(header::AUTHORIZATION)?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// httpbin's `/basic-auth/{user}/{passwd}`; `hidden` answers 404 instead of a challenge.
pub(crate) fn basic(app: &App, req: &Request, user: &str, passwd: &str, hidden: bool) -> Reply {
    let given = basic_credentials(req.header(header::AUTHORIZATION));
    let ok = given.as_ref().is_some_and(|(u, p)| {
        // Evaluate both comparisons, whatever the first says.
        let user_ok = secret_eq(u.as_bytes(), user.as_bytes());
        let pass_ok = secret_eq(p.as_bytes(), passwd.as_bytes());
        user_ok & pass_ok
    });
    if ok {
        return app.json(
            200,
            json!({ "authenticated": true, "user": user }).to_string(),
        );
    }
    if hidden {
        return app.error(req, 404, "no such resource");
    }
    let detail = if given.is_some() {
        "the Basic credentials are wrong"
    } else {
        "Basic credentials are required"
    };
    app.error(req, 401, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"statuslab\", charset=\"UTF-8\""),
    )
}

/// httpbin's `/bearer`: any bearer token passes.
pub(crate) fn bearer(app: &App, req: &Request) -> Reply {
    match bearer_token(req) {
        Some(token) => app.json(
            200,
            json!({ "authenticated": true, "token": token }).to_string(),
        ),
        None => challenge(app, req, "invalid_request", "a bearer token is required"),
    }
}

/// 401 with a Bearer challenge carrying an RFC 6750 error code.
fn challenge(app: &App, req: &Request, error: &str, description: &str) -> Reply {
    let value = format!(
        "Bearer realm=\"statuslab\", error=\"{error}\", error_description=\"{description}\""
    );
    app.error(req, 401, description).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).expect("ascii"),
    )
}

/// Checks the server-wide tokens: `None` lets the request through. Without configured tokens
/// everything passes except `Scope::Admin`, which then has nobody to grant it.
pub(crate) fn require(app: &App, req: &Request, needed: Scope) -> Option<Reply> {
    if app.cfg.tokens.is_empty() {
        if needed == Scope::Admin {
            return Some(app.error(
                req,
                403,
                "admin routes need an admin token: start statuslab with --token SECRET:admin",
            ));
        }
        return None;
    }
    let Some(given) = bearer_token(req) else {
        return Some(challenge(
            app,
            req,
            "invalid_token",
            "this route needs a bearer token",
        ));
    };
    // Compare against every token, without stopping at the first match.
    let mut granted: Option<Scope> = None;
    for t in &app.cfg.tokens {
        if secret_eq(given.as_bytes(), t.secret.as_bytes()) {
            granted = granted.max(Some(t.scope));
        }
    }
    match granted {
        None => Some(challenge(
            app,
            req,
            "invalid_token",
            "the bearer token is not valid",
        )),
        Some(scope) if scope < needed => {
            let name = match needed {
                Scope::Read => "read",
                Scope::Write => "write",
                Scope::Admin => "admin",
            };
            let value = format!(
                "Bearer realm=\"statuslab\", error=\"insufficient_scope\", scope=\"{name}\""
            );
            let detail = format!("the token's scope does not allow this; it needs {name}");
            Some(app.error(req, 403, &detail).with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&value).expect("ascii"),
            ))
        }
        Some(_) => None,
    }
}

/// The scope a method needs on guarded routes.
pub(crate) fn scope_for(method: &http::Method) -> Scope {
    if method.is_safe() {
        Scope::Read
    } else {
        Scope::Write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ann:pa:ss")
        );
        assert_eq!(
            basic_credentials(Some(&v)),
            Some(("ann".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(basic_credentials(Some("Bearer x")), None);
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
        assert_eq!(basic_credentials(None), None);
    }

    #[test]
    fn secrets() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
    }
}
