//! The HTTP status-code table as data.
//!
//! statuslab's catalog holds the user's status-code table (`data/status-codes.tsv`, compiled in
//! by the build script) together with what RFC 9110 and the IANA registry say of every code:
//! reason phrase, reference, meaning, the headers and framing the code requires on the wire, and
//! what a client should do next. It has no I/O and no async dependencies.
//!
//! ```
//! use statuslab_catalog::{Advice, Class, Source, Status};
//!
//! let s: Status = "504".parse().unwrap();
//! assert_eq!(s.message(), "ServerTimeout");          // the table's message
//! assert_eq!(s.reason(), "Gateway Timeout");         // the RFC reason phrase
//! assert_eq!(s.class(), Class::ServerError);
//! assert_eq!(s.source(), Source::Table);
//!
//! let s = Status::new(429).unwrap();
//! assert_eq!(s.advice(), Advice::RetryAfter);
//! assert!(s.wire().requires("Retry-After").is_some());
//!
//! // Unregistered codes resolve to their class.
//! let s = Status::new(299).unwrap();
//! assert_eq!(s.source(), Source::Unregistered);
//! assert_eq!(s.class(), Class::Successful);
//! ```

mod entries;
mod status;
mod wire;

pub use status::{Error, Info, Status, all, lookup, table};
pub use wire::{BodyRule, HeaderRule, Need, Wire};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One row of the user's table, exactly as written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableRow {
    /// The status code.
    pub code: u16,
    /// The table's message title (e.g. `NotFound`, `ServerTimeout`).
    pub message: &'static str,
    /// The table's description, paragraphs joined by a space.
    pub description: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/table.rs"));

/// The five classes of RFC 9110 §15, named by the first digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// 1xx: the request was received, continuing process.
    Informational,
    /// 2xx: the request was received, understood and accepted.
    Successful,
    /// 3xx: further action is needed to complete the request.
    Redirection,
    /// 4xx: the request contains bad syntax or cannot be fulfilled.
    ClientError,
    /// 5xx: the server failed to fulfil an apparently valid request.
    ServerError,
}

impl Class {
    /// All classes, in order.
    pub const ALL: [Class; 5] = [
        Class::Informational,
        Class::Successful,
        Class::Redirection,
        Class::ClientError,
        Class::ServerError,
    ];

    /// The class of a code in 100–599, `None` otherwise.
    pub const fn of(code: u16) -> Option<Class> {
        Some(match code {
            100..=199 => Class::Informational,
            200..=299 => Class::Successful,
            300..=399 => Class::Redirection,
            400..=499 => Class::ClientError,
            500..=599 => Class::ServerError,
            _ => return None,
        })
    }

    /// The first digit shared by the class's codes.
    pub const fn digit(self) -> u16 {
        self as u16 + 1
    }

    /// The class's name in RFC 9110 §15.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Informational => "Informational",
            Class::Successful => "Successful",
            Class::Redirection => "Redirection",
            Class::ClientError => "Client Error",
            Class::ServerError => "Server Error",
        }
    }

    /// What RFC 9110 §15 says a code of this class means.
    pub const fn meaning(self) -> &'static str {
        match self {
            Class::Informational => "The request was received, continuing process.",
            Class::Successful => "The request was successfully received, understood, and accepted.",
            Class::Redirection => {
                "Further action needs to be taken in order to complete the request."
            }
            Class::ClientError => "The request contains bad syntax or cannot be fulfilled.",
            Class::ServerError => "The server failed to fulfill an apparently valid request.",
        }
    }

    /// The advice for a code of this class that the catalog knows nothing more about
    /// (RFC 9110 §15: treat an unrecognised code as the class's x00 code).
    pub const fn advice(self) -> Advice {
        match self {
            Class::Informational => Advice::Wait,
            Class::Successful => Advice::Done,
            Class::Redirection => Advice::Choose,
            Class::ClientError => Advice::DoNotRepeat,
            Class::ServerError => Advice::RetryIdempotent,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}xx", self.digit())
    }
}

impl std::str::FromStr for Class {
    type Err = Error;

    /// Parses `4xx`, `4XX`, `4`, or a class name such as `client-error`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        let by_digit = match t.as_str() {
            "1" | "1xx" => Some(Class::Informational),
            "2" | "2xx" => Some(Class::Successful),
            "3" | "3xx" => Some(Class::Redirection),
            "4" | "4xx" => Some(Class::ClientError),
            "5" | "5xx" => Some(Class::ServerError),
            _ => None,
        };
        by_digit
            .or_else(|| {
                let words = t.replace(['-', '_'], " ");
                Class::ALL
                    .into_iter()
                    .find(|c| c.name().to_ascii_lowercase() == words)
            })
            .ok_or_else(|| Error::BadClass(s.to_owned()))
    }
}

/// Where a code's entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// One of the table's rows: message and description are the table's.
    Table,
    /// In the IANA HTTP Status Code Registry but not in the table: message is the RFC reason.
    Registry,
    /// Neither: only the class is known.
    Unregistered,
}

/// What a client should do next on receiving a code.
///
/// Where the table gives guidance ("should not repeat the request without modifications",
/// "may repeat … at any later time", "repeat requests after the time specified in the
/// Retry-After header") that guidance is the code's advice; elsewhere it comes from the RFCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Advice {
    /// Send the rest of the request (the body after `Expect: 100-continue`).
    Continue,
    /// Speak the protocol named in `Upgrade` on this connection.
    SwitchProtocol,
    /// An interim answer: keep waiting for the final response.
    Wait,
    /// Success: use the response.
    Done,
    /// Accepted, not finished: poll the status monitor (`Location`), after `Retry-After` if given.
    Poll,
    /// Repeat the request at the URI in `Location`.
    FollowLocation,
    /// Retrieve the URI in `Location` with GET.
    SeeOther,
    /// Choose one of the listed alternatives (or the preferred one in `Location`).
    Choose,
    /// Use the cached representation: it is still valid.
    UseCached,
    /// Deprecated: the resource should be reached through the proxy in `Location`; clients refuse.
    UseProxy,
    /// The code is unused; treat it as its class's x00 code.
    Unused,
    /// Repeat the request with (new) credentials for the `WWW-Authenticate` challenge.
    Authenticate,
    /// Repeat the request with credentials for the proxy's `Proxy-Authenticate` challenge.
    ProxyAuthenticate,
    /// Do not repeat the request without modifications.
    DoNotRepeat,
    /// The request may be repeated without modifications at any later time.
    RepeatLater,
    /// Repeat the request after the time in `Retry-After` (without one, do not repeat it unchanged).
    RetryAfter,
    /// Repeat the request over the protocol named in `Upgrade`.
    Upgrade,
    /// Repeat the request on another connection, to a server authoritative for the target.
    RepeatElsewhere,
    /// A server-side failure: idempotent requests may be retried with backoff.
    RetryIdempotent,
    /// The table's 504: the answer reaches the client only if the request carries a timeout
    /// parameter; send one (or a larger one) and retry idempotent requests.
    RetryWithTimeout,
}

impl Advice {
    /// The advice's name, as serialized (`do-not-repeat`).
    pub const fn name(self) -> &'static str {
        match self {
            Advice::Continue => "continue",
            Advice::SwitchProtocol => "switch-protocol",
            Advice::Wait => "wait",
            Advice::Done => "done",
            Advice::Poll => "poll",
            Advice::FollowLocation => "follow-location",
            Advice::SeeOther => "see-other",
            Advice::Choose => "choose",
            Advice::UseCached => "use-cached",
            Advice::UseProxy => "use-proxy",
            Advice::Unused => "unused",
            Advice::Authenticate => "authenticate",
            Advice::ProxyAuthenticate => "proxy-authenticate",
            Advice::DoNotRepeat => "do-not-repeat",
            Advice::RepeatLater => "repeat-later",
            Advice::RetryAfter => "retry-after",
            Advice::Upgrade => "upgrade",
            Advice::RepeatElsewhere => "repeat-elsewhere",
            Advice::RetryIdempotent => "retry-idempotent",
            Advice::RetryWithTimeout => "retry-with-timeout",
        }
    }

    /// One sentence for a person.
    pub const fn summary(self) -> &'static str {
        match self {
            Advice::Continue => {
                "Send the rest of the request (the body after Expect: 100-continue)."
            }
            Advice::SwitchProtocol => "Speak the protocol named in Upgrade on this connection.",
            Advice::Wait => "Interim response: keep waiting for the final response.",
            Advice::Done => "Success: use the response.",
            Advice::Poll => {
                "Not finished yet: poll the status monitor in Location, after Retry-After if given."
            }
            Advice::FollowLocation => "Repeat the request at the URI in Location.",
            Advice::SeeOther => "Retrieve the URI in Location with GET.",
            Advice::Choose => "Choose one of the alternatives (Location names the preferred one).",
            Advice::UseCached => "Use the cached representation: it is still valid.",
            Advice::UseProxy => {
                "Deprecated: would repeat through the proxy in Location; clients refuse for security."
            }
            Advice::Unused => "Unused code: treat it as its class's x00 code.",
            Advice::Authenticate => {
                "Repeat the request with credentials that answer the WWW-Authenticate challenge."
            }
            Advice::ProxyAuthenticate => {
                "Repeat the request with Proxy-Authorization answering the Proxy-Authenticate challenge."
            }
            Advice::DoNotRepeat => "Do not repeat the request without modifications.",
            Advice::RepeatLater => {
                "The request may be repeated without modifications at any later time."
            }
            Advice::RetryAfter => {
                "Repeat the request after the time in Retry-After; without Retry-After, do not repeat it unchanged."
            }
            Advice::Upgrade => "Repeat the request over the protocol named in Upgrade.",
            Advice::RepeatElsewhere => {
                "Repeat the request on a new connection, to a server authoritative for the target."
            }
            Advice::RetryIdempotent => {
                "Server-side failure: an idempotent request may be retried with backoff."
            }
            Advice::RetryWithTimeout => {
                "The answer reaches the client only if the request carries a timeout parameter: send one (or a larger one); idempotent requests may be retried."
            }
        }
    }

    /// Whether the same request, unchanged, may be sent again.
    pub const fn may_repeat_unchanged(self) -> bool {
        matches!(
            self,
            Advice::RepeatLater
                | Advice::RetryAfter
                | Advice::RetryIdempotent
                | Advice::RetryWithTimeout
                | Advice::RepeatElsewhere
                | Advice::Poll
        )
    }
}

/// A document and section that defines a code, e.g. RFC 9110 §15.5.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The document, e.g. `RFC 9110`.
    pub doc: &'static str,
    /// The section within it, e.g. `15.5.5`.
    pub section: &'static str,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} §{}", self.doc, self.section)
    }
}

/// Which aspect of a code the table and the RFC see differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aspect {
    /// The message or reason phrase.
    Reason,
    /// The description of when the code arises.
    Description,
    /// What the code means.
    Meaning,
    /// What the client should do.
    Advice,
    /// Whether the code is in force, deprecated or unused.
    Status,
}

impl Aspect {
    /// The aspect's name, as serialized.
    pub const fn name(self) -> &'static str {
        match self {
            Aspect::Reason => "reason",
            Aspect::Description => "description",
            Aspect::Meaning => "meaning",
            Aspect::Advice => "advice",
            Aspect::Status => "status",
        }
    }
}

/// A point where the table and the RFC disagree; the catalog keeps both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs.
    pub aspect: Aspect,
    /// The table's words.
    pub table: &'static str,
    /// The RFC's words.
    pub rfc: &'static str,
    /// What the difference means and which one statuslab follows where.
    pub note: &'static str,
}
