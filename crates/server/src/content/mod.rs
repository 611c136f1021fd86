//! Representations and the small grammars of request parameters: content negotiation
//! ([`negotiate`]), pre-rendered bodies ([`bodies`]), byte ranges ([`range`]) and durations,
//! limits and media types ([`params`]).

pub(crate) mod bodies;
pub(crate) mod negotiate;
pub(crate) mod params;
pub mod range;
