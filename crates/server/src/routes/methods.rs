//! The methods statuslab implements, as route method lists use them.

use http::Method;

/// Every method statuslab implements; any other gets 501. TRACE and QUERY are implemented by
/// the echoes only ([`ECHO`]): every other route answers them 405 with `Allow` (RFC 9110
/// §15.5.6), as it does any implemented method it does not allow.
pub(crate) const IMPLEMENTED: &[Method] = ECHO;
/// The methods of read-only routes.
pub(crate) const READ: &[Method] = &[Method::GET, Method::HEAD, Method::OPTIONS];
/// The methods of routes that answer any method (a code on demand, a relay): every implemented
/// one but TRACE and QUERY.
pub(crate) const ANY: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];
/// The methods of the echoes (`/anything`, `/dump/request`): all of [`ANY`], and TRACE (the
/// request reflected, RFC 9110 §9.3.8; httpbin's `/anything` takes it too) and QUERY (a safe
/// request with content).
pub(crate) const ECHO: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::QUERY,
];

/// `Allow` of `OPTIONS *`: every implemented method.
pub(crate) const ALLOW_ALL: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, QUERY";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_all_lists_every_implemented_method_and_any_is_echo_but_trace_and_query() {
        let names: Vec<&str> = IMPLEMENTED.iter().map(Method::as_str).collect();
        assert_eq!(ALLOW_ALL, names.join(", "));
        let rest: Vec<&Method> = ECHO
            .iter()
            .filter(|m| **m != Method::TRACE && **m != Method::QUERY)
            .collect();
        assert_eq!(rest, ANY.iter().collect::<Vec<_>>());
    }
}
