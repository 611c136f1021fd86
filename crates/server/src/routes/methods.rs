//! The methods statuslab implements, as route method lists use them.

use http::Method;

/// Every method statuslab implements; any other gets 501.
pub(crate) const IMPLEMENTED: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];
/// The methods of read-only routes.
pub(crate) const READ: &[Method] = &[Method::GET, Method::HEAD, Method::OPTIONS];
/// The methods of routes that answer any method.
pub(crate) const ANY: &[Method] = IMPLEMENTED;
