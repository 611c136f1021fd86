//! The httpbin / go-httpbin drop-in: which handler each of their routes runs. The routes
//! themselves are rows of the route table (routes/mod.rs), grouped; the handlers live one
//! family per file (`echo`, `formats`, `redirects`, `cookies`, `caching`, `streams`,
//! `digest`). docs/COMPATIBILITY.md compares them with httpbin and go-httpbin.

use super::caching;
use super::cookies;
use super::digest;
use super::echo::{self, Shape};
use super::formats::{self, Coding};
use super::redirects::{self, Chain};
use super::streams;
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::wire::reply::Reply;
use crate::wire::request::Request;

/// One httpbin route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bin {
    /// `/get`, `/post`, `/put`, `/patch`, `/delete`.
    Method,
    /// `/anything`, `/anything/{path}`.
    Anything,
    /// `/headers`.
    Headers,
    /// `/ip`.
    Ip,
    /// `/user-agent`.
    UserAgent,
    /// `/uuid`.
    Uuid,
    /// `/dump/request`.
    Dump,
    /// `/delay/{n}`.
    Delay,
    /// `/drip`.
    Drip,
    /// `/stream/{n}`.
    Stream,
    /// `/stream-bytes/{n}`.
    StreamBytes,
    /// `/bytes/{n}`.
    Bytes,
    /// `/range/{n}`.
    Range,
    /// `/links/{n}`.
    LinksStart,
    /// `/links/{n}/{offset}`.
    Links,
    /// `/sse`.
    Sse,
    /// `/trailers`.
    Trailers,
    /// `/unstable`.
    Unstable,
    /// `/redirect/{n}`.
    Redirect,
    /// `/relative-redirect/{n}`.
    RelativeRedirect,
    /// `/absolute-redirect/{n}`.
    AbsoluteRedirect,
    /// `/redirect-to`.
    RedirectTo,
    /// `/cookies`.
    Cookies,
    /// `/cookies/set`.
    CookiesSet,
    /// `/cookies/set/{name}/{value}`.
    CookieSet,
    /// `/cookies/delete`.
    CookiesDelete,
    /// `/json`.
    Json,
    /// `/html`.
    Html,
    /// `/xml`.
    Xml,
    /// `/robots.txt`.
    Robots,
    /// `/deny`.
    Deny,
    /// `/encoding/utf8`.
    Utf8,
    /// `/image`.
    Image,
    /// `/image/{kind}`.
    ImageKind,
    /// `/gzip`, `/deflate`, `/brotli`, `/zstd`.
    Encoded(Coding),
    /// `/base64/{value}`.
    Base64,
    /// `/cache`.
    Cache,
    /// `/cache/{n}`.
    CacheFor,
    /// `/etag/{etag}`.
    Etag,
    /// `/response-headers`.
    ResponseHeaders,
    /// `/digest-auth/{qop}/{user}/{passwd}[/{algorithm}[/{stale_after}]]`.
    DigestAuth,
}

/// Runs the handler of `bin`; `param` gives the route's path parameters by name.
pub(crate) async fn handle(
    ctx: &Ctx,
    req: &Request,
    bin: Bin,
    param: impl Fn(&str) -> Option<String>,
) -> Result<Reply, Problem> {
    let p = |name: &str| param(name).unwrap_or_default();
    match bin {
        Bin::Method => echo::answer(
            ctx,
            req,
            if req.method == http::Method::GET || req.method == http::Method::HEAD {
                Shape::Get
            } else {
                Shape::Body
            },
        ),
        Bin::Anything => echo::answer(ctx, req, Shape::Anything),
        Bin::Headers => Ok(echo::headers_reply(req)),
        Bin::Ip => Ok(echo::ip(req)),
        Bin::UserAgent => Ok(echo::user_agent(req)),
        Bin::Uuid => Ok(echo::uuid()),
        Bin::Dump => Ok(echo::dump(req)),
        Bin::Delay => streams::delay(ctx, req, &p("n")).await,
        Bin::Drip => streams::drip(ctx, req).await,
        Bin::Stream => streams::stream(ctx, req, &p("n")),
        Bin::StreamBytes => streams::stream_bytes(ctx, req, &p("n")),
        Bin::Bytes => streams::bytes(ctx, req, &p("n")),
        Bin::Range => streams::range(ctx, req, &p("n")),
        Bin::LinksStart => streams::links_start(&p("n")),
        Bin::Links => streams::links(&p("n"), &p("offset")),
        Bin::Sse => streams::sse(ctx, req).await,
        Bin::Trailers => streams::trailers(ctx, req),
        Bin::Unstable => streams::unstable(req),
        Bin::Redirect => redirects::chain(ctx, req, &p("n"), Chain::Either),
        Bin::RelativeRedirect => redirects::chain(ctx, req, &p("n"), Chain::Relative),
        Bin::AbsoluteRedirect => redirects::chain(ctx, req, &p("n"), Chain::Absolute),
        Bin::RedirectTo => redirects::redirect_to(ctx, req),
        Bin::Cookies => Ok(cookies::show(req)),
        Bin::CookiesSet => cookies::set_query(req),
        Bin::CookieSet => cookies::set_path(&p("name"), &p("value")),
        Bin::CookiesDelete => cookies::delete(req),
        Bin::Json => Ok(formats::json_doc()),
        Bin::Html => Ok(formats::html()),
        Bin::Xml => Ok(formats::xml()),
        Bin::Robots => Ok(formats::robots()),
        Bin::Deny => Ok(formats::deny()),
        Bin::Utf8 => Ok(formats::utf8()),
        Bin::Image => formats::image(req),
        Bin::ImageKind => formats::image_kind(&p("kind")),
        Bin::Encoded(coding) => formats::encoded(req, coding),
        Bin::Base64 => formats::base64(&p("value")),
        Bin::Cache => caching::cache(ctx, req),
        Bin::CacheFor => caching::cache_for(ctx, req, &p("n")),
        Bin::Etag => caching::etag(ctx, req, &p("etag")),
        Bin::ResponseHeaders => caching::response_headers(req),
        Bin::DigestAuth => digest::answer(
            req,
            &p("qop"),
            &p("user"),
            &p("passwd"),
            param("algorithm").as_deref(),
            param("stale_after").as_deref(),
        ),
    }
}
