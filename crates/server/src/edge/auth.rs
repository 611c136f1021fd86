//! 401 and 403 from real credentials: server-wide bearer tokens with scopes guarding
//! resources, jobs and admin, and the credential parsing every Basic or Bearer check shares.
//! Every comparison of a secret runs in constant time (over SHA-256 digests, so lengths do
//! not leak either), and secrets never reach the log.

use crate::config::Scope;
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::request::Request;
use base64::Engine as _;
use http::header::{self, HeaderValue};
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

/// Whether `given` (`user`, `password`) matches the expected pair; both parts are always
/// compared, in constant time.
pub(crate) fn credentials_match(given: &(String, String), user: &str, password: &str) -> bool {
    let user_ok = secret_eq(given.0.as_bytes(), user.as_bytes());
    let pass_ok = secret_eq(given.1.as_bytes(), password.as_bytes());
    user_ok & pass_ok
}

/// 401 with a Bearer challenge carrying an RFC 6750 error code.
pub(crate) fn challenge(error: &str, description: &'static str) -> Problem {
    let value = format!(
        "Bearer realm=\"statuslab\", error=\"{error}\", error_description=\"{description}\""
    );
    Problem::new(401, description).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&value).expect("ascii"),
    )
}

/// Checks the server-wide tokens: `Ok` lets the request through. Without configured tokens
/// everything passes except `Scope::Admin`, which then has nobody to grant it.
pub(crate) fn require(ctx: &Ctx, req: &Request, needed: Scope) -> Result<(), Problem> {
    if ctx.cfg.tokens.is_empty() {
        if needed == Scope::Admin {
            return Err(Problem::new(
                403,
                "admin routes need an admin token: start statuslab with --token SECRET:admin",
            ));
        }
        return Ok(());
    }
    let Some(given) = bearer_token(req) else {
        return Err(challenge(
            "invalid_token",
            "this route needs a bearer token",
        ));
    };
    // Compare against every token, without stopping at the first match.
    let mut granted: Option<Scope> = None;
    for t in &ctx.cfg.tokens {
        if secret_eq(given.as_bytes(), t.secret.as_bytes()) {
            granted = granted.max(Some(t.scope));
        }
    }
    match granted {
        None => Err(challenge("invalid_token", "the bearer token is not valid")),
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
            Err(Problem::new(403, detail).with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&value).expect("ascii"),
            ))
        }
        Some(_) => Ok(()),
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

/// Properties of credential parsing, shared by the property tests below and the
/// `header_values` fuzz target (through the `fuzzing` module in lib.rs).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod props {
    use super::*;

    /// For any `Authorization` value: no panic; Basic credentials have a user without a colon
    /// and encode back to credentials that parse as themselves; a Bearer token is non-empty,
    /// without surrounding whitespace, and reads back as itself.
    pub(crate) fn check_authorization(value: &str) {
        if let Some((user, password)) = basic_credentials(Some(value)) {
            assert!(!user.contains(':'));
            let again = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            assert_eq!(basic_credentials(Some(&again)), Some((user, password)));
        }
        let Ok(v) = HeaderValue::from_str(value) else {
            return;
        };
        let mut req = Request {
            method: http::Method::GET,
            uri: http::Uri::from_static("/"),
            version: http::Version::HTTP_11,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        req.headers.insert(header::AUTHORIZATION, v);
        if let Some(token) = bearer_token(&req).map(str::to_owned) {
            assert!(!token.is_empty() && token.trim() == token);
            req.headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}")).expect("was a header value"),
            );
            assert_eq!(bearer_token(&req), Some(token.as_str()));
        }
    }

    #[cfg(test)]
    use proptest::prelude::*;

    #[cfg(test)]
    proptest! {
        #[test]
        fn basic_credentials_round_trip(
            user in "[^:]{0,12}",
            password in ".{0,12}",
            scheme in prop::sample::select(vec!["Basic", "basic", "BASIC"]),
            ows in "[ \t]{0,2}",
        ) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let value = format!("{ows}{scheme} {ows}{encoded}{ows}");
            prop_assert_eq!(basic_credentials(Some(&value)), Some((user, password)));
            check_authorization(&value);
        }

        #[test]
        fn bearer_tokens_round_trip(
            token in "[A-Za-z0-9._~+/-]{1,24}=*",
            scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER"]),
            ows in "[ \t]{0,2}",
        ) {
            let value = format!("{ows}{scheme} {ows}{token}{ows}");
            check_authorization(&value);
            let mut req = Request {
                method: http::Method::GET,
                uri: http::Uri::from_static("/"),
                version: http::Version::HTTP_11,
                headers: http::HeaderMap::new(),
                body: bytes::Bytes::new(),
                peer: std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
            };
            req.headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            prop_assert_eq!(bearer_token(&req), Some(token.as_str()));
            prop_assert_eq!(basic_credentials(Some(&value)), None);
        }

        #[test]
        fn any_authorization(value in prop_oneof![".{0,32}", "(Basic|Bearer) [A-Za-z0-9+/= :]{0,24}"]) {
            check_authorization(&value);
        }
    }
}
