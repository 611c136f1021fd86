//! httpbin's authentication routes: `/basic-auth/{user}/{passwd}`, `/hidden-basic-auth/…` and
//! `/bearer`. The path's user and password are percent-decoded, as httpbin does, and compared
//! in constant time.

use crate::edge::auth::{basic_credentials, bearer_token, challenge, credentials_match};
use crate::problem::Problem;
use crate::wire::reply::Reply;
use crate::wire::request::Request;
use http::header::{self, HeaderValue};
use percent_encoding::percent_decode_str;
use serde_json::json;

/// `/basic-auth/{user}/{passwd}`: 200 with those Basic credentials, else 401 with a
/// challenge; `hidden` answers 404 instead of the challenge.
pub(crate) fn basic(
    req: &Request,
    user: &str,
    passwd: &str,
    hidden: bool,
) -> Result<Reply, Problem> {
    let user = percent_decode_str(user).decode_utf8_lossy();
    let passwd = percent_decode_str(passwd).decode_utf8_lossy();
    let given = basic_credentials(req.header(header::AUTHORIZATION));
    if given
        .as_ref()
        .is_some_and(|g| credentials_match(g, &user, &passwd))
    {
        return Ok(Reply::json(
            200,
            json!({ "authenticated": true, "user": user }).to_string(),
        ));
    }
    if hidden {
        return Err(Problem::new(404, "no such resource"));
    }
    let detail = if given.is_some() {
        "the Basic credentials are wrong"
    } else {
        "Basic credentials are required"
    };
    Err(Problem::new(401, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"statuslab\", charset=\"UTF-8\""),
    ))
}

/// `/bearer`: any bearer token passes.
pub(crate) fn bearer(req: &Request) -> Result<Reply, Problem> {
    match bearer_token(req) {
        Some(token) => Ok(Reply::json(
            200,
            json!({ "authenticated": true, "token": token }).to_string(),
        )),
        None => Err(challenge("invalid_request", "a bearer token is required")),
    }
}
