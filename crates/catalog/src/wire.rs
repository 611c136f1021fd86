//! What a code requires of a response on the wire.

use serde::{Deserialize, Serialize};

/// A response's wire requirements: its framing and the header fields it must or should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Wire {
    /// Whether the response may carry content.
    pub body: BodyRule,
    /// The header fields the code calls for.
    pub headers: &'static [HeaderRule],
}

impl Wire {
    /// The rule for `name` (case-insensitive), if the code names that header.
    pub fn header(&self, name: &str) -> Option<&'static HeaderRule> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The rule for `name` if the code requires or expects that header (not if merely optional).
    pub fn requires(&self, name: &str) -> Option<&'static HeaderRule> {
        self.header(name).filter(|h| h.need != Need::Optional)
    }
}

/// Whether a response may carry content (RFC 9110 §6.4.1, RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyRule {
    /// No content and no framing for it: 1xx and 204 carry neither content nor
    /// `Content-Length`; 304 carries no content.
    Forbidden,
    /// The server sends no content (205: `Content-Length: 0` or none).
    Empty,
    /// Content allowed.
    Allowed,
}

impl BodyRule {
    /// Whether a body may be sent.
    pub const fn allows_body(self) -> bool {
        matches!(self, BodyRule::Allowed)
    }
}

/// How strongly a code calls for a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    /// The RFC says MUST (or the code is meaningless without it).
    Required,
    /// The RFC says SHOULD, or the table asks for it.
    Expected,
    /// The RFC says MAY, or only under a condition.
    Optional,
}

/// A header a code calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeaderRule {
    /// The header's name, e.g. `Retry-After`.
    pub name: &'static str,
    /// How strongly it is called for.
    pub need: Need,
    /// What it carries or when it is sent.
    pub when: &'static str,
}
