//! `Status`: a status code with everything the catalog knows about it.

use crate::entries::{ENTRIES, Entry};
use crate::{Advice, BodyRule, Class, Difference, Reference, Source, TABLE_ROWS, TableRow, Wire};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An HTTP status code in 100–599 (RFC 9110 §15: codes outside it are invalid).
///
/// Cheap to copy; every accessor reads static data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(u16);

/// Why a code or query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A number outside 100–599.
    OutOfRange(u64),
    /// Text that is not a three-digit code.
    NotACode(String),
    /// Text that is not a class such as `4xx`.
    BadClass(String),
    /// A query that matches no code.
    NoMatch(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OutOfRange(n) => {
                write!(
                    f,
                    "{n} is not an HTTP status code: codes are 100-599 (RFC 9110 §15)"
                )
            }
            Error::NotACode(s) => write!(
                f,
                "{s:?} is not a status code: expected a number in 100-599"
            ),
            Error::BadClass(s) => write!(
                f,
                "{s:?} is not a status class: expected 1xx, 2xx, 3xx, 4xx or 5xx"
            ),
            Error::NoMatch(s) => write!(f, "no status code matches {s:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl Status {
    /// The code, if it is in 100–599.
    pub const fn new(code: u16) -> Result<Status, Error> {
        if code >= 100 && code <= 599 {
            Ok(Status(code))
        } else {
            Err(Error::OutOfRange(code as u64))
        }
    }

    /// The numeric code.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The code's class, from its first digit.
    pub const fn class(self) -> Class {
        match Class::of(self.0) {
            Some(c) => c,
            None => unreachable!(),
        }
    }

    fn entry(self) -> Option<&'static Entry> {
        ENTRIES
            .binary_search_by_key(&self.0, |e| e.code)
            .ok()
            .map(|i| &ENTRIES[i])
    }

    /// The table's row for this code, if the table has one.
    pub fn table_row(self) -> Option<&'static TableRow> {
        TABLE_ROWS
            .binary_search_by_key(&self.0, |r| r.code)
            .ok()
            .map(|i| &TABLE_ROWS[i])
    }

    /// Whether the code is one of the table's rows, in the registry only, or neither.
    pub fn source(self) -> Source {
        if self.table_row().is_some() {
            Source::Table
        } else if self.entry().is_some() {
            Source::Registry
        } else {
            Source::Unregistered
        }
    }

    /// The table's message (`NotFound`, `ServerTimeout`); for codes outside the table the
    /// RFC reason phrase, and for unregistered codes the class name.
    pub fn message(self) -> &'static str {
        match (self.table_row(), self.entry()) {
            (Some(row), _) => row.message,
            (None, Some(e)) => e.reason,
            (None, None) => self.class().name(),
        }
    }

    /// The table's description; for codes outside the table, the RFC meaning, and for
    /// unregistered codes the class's meaning.
    pub fn description(self) -> &'static str {
        self.table_row()
            .map(|r| r.description)
            .unwrap_or_else(|| self.meaning())
    }

    /// The reason phrase RFC 9110 (or the registry) gives; empty for unregistered codes.
    /// This is what the status line carries.
    pub fn reason(self) -> &'static str {
        self.entry().map_or("", |e| e.reason)
    }

    /// The reason phrase as sent in a status line: the registry's `(Unused)` without brackets.
    pub fn wire_reason(self) -> &'static str {
        self.reason().trim_start_matches('(').trim_end_matches(')')
    }

    /// Where the code is defined.
    pub fn reference(self) -> Option<Reference> {
        self.entry().map(|e| e.reference)
    }

    /// What the RFC says the code means.
    pub fn meaning(self) -> &'static str {
        self.entry()
            .map_or_else(|| self.class().meaning(), |e| e.meaning)
    }

    /// What a client should do next: the table's guidance where it gives one, else the RFC's.
    pub fn advice(self) -> Advice {
        self.entry().map_or_else(
            || self.class().advice(),
            |e| e.table_advice.unwrap_or(e.rfc_advice),
        )
    }

    /// What the RFCs advise, which may differ from the table's guidance (503).
    pub fn rfc_advice(self) -> Advice {
        self.entry()
            .map_or_else(|| self.class().advice(), |e| e.rfc_advice)
    }

    /// Framing and headers the code requires.
    pub fn wire(self) -> Wire {
        match self.entry() {
            Some(e) => Wire {
                body: e.body,
                headers: e.headers,
            },
            None => Wire {
                body: if self.class() == Class::Informational {
                    BodyRule::Forbidden
                } else {
                    BodyRule::Allowed
                },
                headers: &[],
            },
        }
    }

    /// Where the table and the RFC disagree about this code.
    pub fn differences(self) -> &'static [Difference] {
        self.entry().map_or(&[], |e| e.differences)
    }

    /// Whether the registry marks the code unused or reserved (306, 418).
    pub fn is_unused(self) -> bool {
        self.entry().is_some_and(|e| e.unused)
    }

    /// Whether the code is interim (1xx).
    pub const fn is_informational(self) -> bool {
        self.0 < 200
    }

    /// Everything above in one serializable value.
    pub fn info(self) -> Info {
        Info {
            code: self.0,
            class: self.class(),
            source: self.source(),
            message: self.message(),
            description: self.description(),
            reason: self.reason(),
            reference: self.reference(),
            meaning: self.meaning(),
            advice: self.advice(),
            advice_summary: self.advice().summary(),
            rfc_advice: self.rfc_advice(),
            wire: self.wire(),
            differences: self.differences(),
            unused: self.is_unused(),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status({} {})", self.0, self.message())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Status {
    type Err = Error;

    /// Parses a code such as `404`; surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Status, Error> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::NotACode(s.to_owned()));
        }
        match t.parse::<u64>() {
            Ok(n) if n <= u16::MAX as u64 => Status::new(n as u16),
            Ok(n) => Err(Error::OutOfRange(n)),
            // Too many digits for a u64: report the text as given, not a made-up number.
            Err(_) => Err(Error::NotACode(s.to_owned())),
        }
    }
}

impl TryFrom<u16> for Status {
    type Error = Error;
    fn try_from(code: u16) -> Result<Status, Error> {
        Status::new(code)
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.0
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let code = u16::deserialize(d)?;
        Status::new(code).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "http")]
impl From<Status> for http::StatusCode {
    fn from(s: Status) -> http::StatusCode {
        http::StatusCode::from_u16(s.0).expect("100-599 is a valid http::StatusCode")
    }
}

#[cfg(feature = "http")]
impl TryFrom<http::StatusCode> for Status {
    type Error = Error;
    fn try_from(s: http::StatusCode) -> Result<Status, Error> {
        Status::new(s.as_u16())
    }
}

/// Everything the catalog knows about one code, ready to serialize.
///
/// Deserializing reads only `code` and returns the catalog's own entry for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Info {
    /// The numeric code.
    pub code: u16,
    /// Its class.
    pub class: Class,
    /// Table row, registry entry, or unregistered.
    pub source: Source,
    /// The table's message (or the RFC reason outside the table).
    pub message: &'static str,
    /// The table's description (or the RFC meaning outside the table).
    pub description: &'static str,
    /// The RFC reason phrase.
    pub reason: &'static str,
    /// Where the code is defined.
    pub reference: Option<Reference>,
    /// What the RFC says it means.
    pub meaning: &'static str,
    /// What a client should do next (the table's guidance where it gives one).
    pub advice: Advice,
    /// The advice as one sentence.
    pub advice_summary: &'static str,
    /// What the RFCs advise.
    pub rfc_advice: Advice,
    /// Framing and headers on the wire.
    pub wire: Wire,
    /// Where the table and the RFC disagree.
    pub differences: &'static [Difference],
    /// Whether the registry marks the code unused.
    pub unused: bool,
}

impl<'de> Deserialize<'de> for Info {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Info, D::Error> {
        #[derive(Deserialize)]
        struct Code {
            code: u16,
        }
        let c = Code::deserialize(d)?;
        Status::new(c.code)
            .map(Status::info)
            .map_err(serde::de::Error::custom)
    }
}

/// Every registered code (the table's rows, 200 and the rest of the IANA registry), ascending.
pub fn all() -> impl Iterator<Item = Status> {
    ENTRIES.iter().map(|e| Status(e.code))
}

/// The table's rows, exactly as written, in table order.
pub fn table() -> &'static [TableRow] {
    &TABLE_ROWS
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The lowercase words of `text`, with camel case split (`TooManyRequests` gives `too`,
/// `many`, `requests`).
fn words(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 8);
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            spaced.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        spaced.push(if c.is_ascii_alphanumeric() { c } else { ' ' });
    }
    spaced
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Finds codes by number (`404`), by message or reason phrase (`NotFound`, `not found`,
/// case-insensitive), or by words: every code whose message, RFC reason phrase, description or
/// RFC meaning contains all of them (`too large` finds 413, 414 and 431). A word matches a
/// word of the text that starts with it (`cache` finds `cached`), or any part of the message or
/// reason phrase written without spaces (`toomany`). Results are ascending.
pub fn lookup(query: &str) -> Result<Vec<Status>, Error> {
    let q = query.trim();
    if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
        return q.parse::<Status>().map(|s| vec![s]);
    }
    let key = squash(q);
    if key.is_empty() {
        return Err(Error::NoMatch(query.to_owned()));
    }
    let exact: Vec<Status> = all()
        .filter(|s| squash(s.message()) == key || squash(s.reason()) == key)
        .collect();
    if !exact.is_empty() {
        return Ok(exact);
    }
    let wanted: Vec<String> = q
        .split_whitespace()
        .map(squash)
        .filter(|w| !w.is_empty())
        .collect();
    let found: Vec<Status> = all()
        .filter(|&s| {
            let names = format!("{} {}", squash(s.message()), squash(s.reason()));
            let text: Vec<String> = [s.message(), s.reason(), s.description(), s.meaning()]
                .into_iter()
                .flat_map(words)
                .collect();
            wanted.iter().all(|w| {
                names.contains(w.as_str()) || text.iter().any(|t| t.starts_with(w.as_str()))
            })
        })
        .collect();
    if found.is_empty() {
        Err(Error::NoMatch(query.to_owned()))
    } else {
        Ok(found)
    }
}
