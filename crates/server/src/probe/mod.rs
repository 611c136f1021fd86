//! The probe: checks another server's behaviour against the status-code table and RFC 9110,
//! and reports per check (`statuslab probe URL`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), statuslab_server::probe::Error> {
//! use statuslab_server::probe::{self, Options, Verdict};
//! let mut opts = Options::new("http://127.0.0.1:8080/resources/doc");
//! opts.routes.push("429=/status/429".parse().unwrap());
//! let report = probe::run(&opts).await?;
//! for check in &report.checks {
//!     println!("{} {} {:?}: {}", check.code, check.id, check.verdict, check.observed);
//! }
//! assert_eq!(report.summary.fail, 0);
//! # Ok(()) }
//! ```
//!
//! `URL` names a resource on the target: a representation to test methods, `HEAD`,
//! validators and ranges on. Each `--route CODE=PATH` names an endpoint that should answer
//! CODE; the probe requests it and checks the answer's dress (status, the headers the code
//! requires by the catalog's wire rules, framing). Every check has an id, the code it is about,
//! the table row and RFC section it tests, and a verdict: `pass`, `fail`, `skip` or
//! `inconclusive` (with a reason; a missing precondition is never a pass). Where the table and
//! RFC 9110 judge differently, the check carries both ([`Check::other`]).
//!
//! Safe by default: only GET, HEAD, OPTIONS and one unknown method reach the target.
//! [`Options::allow_writes`] adds PUT and DELETE on a scratch resource beside it (and a
//! method its `Allow` excludes); [`Options::framing`] adds malformed framing with a pipelined
//! canary (a desync shows as the canary answered); [`Options::slow`] adds the stalled head.
//!
//! HTTP/1.1 goes through statuslab's own strict client (`wire::client`), so the probe sees
//! exact bytes: interim responses, content on bodyless codes, stray bytes, the close. HTTP/2
//! ([`Options::http2`]) is h2c with prior knowledge for `http://` and h2 by ALPN for `https://`.
//!
//! This module sits beside `gateway`: it uses the wire layer and the catalog, never the
//! server's routes or edge.

mod checks;
mod dress;
mod transport;

use serde::Serialize;
use std::fmt;
use std::time::Duration;

pub use checks::{CHECKS, CheckInfo, Needs};

/// What the probe is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The resource under test (`http://` or `https://`).
    pub url: String,
    /// Endpoints that should answer a given code (`--route 401=/private`).
    pub routes: Vec<Route>,
    /// Judge by the table (default) or by RFC 9110 alone.
    pub against: Against,
    /// HTTP/2 instead of HTTP/1.1: h2c with prior knowledge, or h2 over TLS by ALPN.
    pub http2: bool,
    /// Header fields every request carries (`Authorization`, …), as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Run only these check ids (`route-*`-style prefixes with a trailing `*` allowed).
    pub only: Vec<String>,
    /// Do not run these check ids (same patterns as `only`).
    pub skip: Vec<String>,
    /// Add PUT and DELETE checks on a scratch resource beside the target, and a method the
    /// target's `Allow` excludes.
    pub allow_writes: bool,
    /// Add the malformed-framing checks (conflicting lengths, TE with CL, bad chunk sizes).
    pub framing: bool,
    /// Add the stalled-head check (408).
    pub slow: bool,
    /// Checks run at once.
    pub concurrency: usize,
    /// Time for one exchange.
    pub timeout: Duration,
    /// How long the stalled-head check waits for the server to give up on it.
    pub slow_wait: Duration,
    /// Accept any TLS certificate.
    pub insecure: bool,
}

impl Options {
    /// The defaults for probing `url`: by the table, over HTTP/1.1, safe checks only, 4 at a
    /// time, 10 s per exchange, 90 s for the stalled head.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            routes: Vec::new(),
            against: Against::Table,
            http2: false,
            headers: Vec::new(),
            only: Vec::new(),
            skip: Vec::new(),
            allow_writes: false,
            framing: false,
            slow: false,
            concurrency: 4,
            timeout: Duration::from_secs(10),
            slow_wait: Duration::from_secs(90),
            insecure: false,
        }
    }
}

/// An endpoint that should answer `code`: `CODE=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The code the endpoint should answer.
    pub code: u16,
    /// Its path (and query) on the target.
    pub path: String,
}

impl std::str::FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Route, String> {
        let (code, path) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected CODE=PATH, e.g. 401=/private"))?;
        let code: u16 = code
            .trim()
            .parse()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("{s:?}: {code:?} is not a status code in 100-599"))?;
        let path = path.trim();
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "{s:?}: the path must start with / and hold no spaces or control characters"
            ));
        }
        Ok(Route {
            code,
            path: path.to_owned(),
        })
    }
}

/// The authority a report judges by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Against {
    /// The status-code table (and the catalog's wire rules), e.g. OPTIONS answers 204.
    Table,
    /// RFC 9110 (and RFC 9112, RFC 6585) alone.
    Rfc,
}

impl Against {
    /// `table` or `rfc`.
    pub const fn name(self) -> &'static str {
        match self {
            Against::Table => "table",
            Against::Rfc => "rfc",
        }
    }
}

impl std::str::FromStr for Against {
    type Err = String;
    fn from_str(s: &str) -> Result<Against, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(Against::Table),
            "rfc" => Ok(Against::Rfc),
            other => Err(format!("{other:?}: expected table or rfc")),
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The server did what the authority asks.
    Pass,
    /// It did not.
    Fail,
    /// The check did not run (not asked for, or not applicable); `observed` says why.
    Skip,
    /// The check ran but cannot decide (a precondition is missing); `observed` says why.
    Inconclusive,
}

impl Verdict {
    /// `pass`, `fail`, `skip` or `inconclusive`.
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// What the other authority says, where it judges differently or expects something else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Other {
    /// The other authority.
    pub against: Against,
    /// Its verdict.
    pub verdict: Verdict,
    /// What it expects.
    pub expected: String,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The check's id, e.g. `options`, `route-429`.
    pub id: String,
    /// The status code the check is about.
    pub code: u16,
    /// The verdict by the report's authority.
    pub verdict: Verdict,
    /// What the authority expects.
    pub expected: String,
    /// What the server did (or why the check was skipped or is inconclusive).
    pub observed: String,
    /// The request as sent (abbreviated when long).
    pub request: String,
    /// The response as received (abbreviated when long).
    pub response: String,
    /// What the check tests, in a few words.
    pub title: String,
    /// The table's row for `code` (`"204 NoContent"`), if the table has one.
    pub table_row: Option<String>,
    /// The RFC section(s) the check tests.
    pub rfc: String,
    /// The other authority's judgement, where it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<Other>,
}

/// How many checks had each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks passed.
    pub pass: usize,
    /// Checks failed.
    pub fail: usize,
    /// Checks skipped.
    pub skip: usize,
    /// Checks that could not decide.
    pub inconclusive: usize,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The URL probed.
    pub target: String,
    /// The authority the verdicts follow.
    pub against: Against,
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: String,
    /// Every check, in the catalog's order, then the routes in the order given.
    pub checks: Vec<Check>,
    /// Counts per verdict.
    pub summary: Summary,
}

impl Report {
    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// Why a probe could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The options are wrong (a bad URL, route, header or check id).
    Usage(String),
    /// The target cannot be reached (no connection, TLS or HTTP/2 handshake).
    Unreachable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(why) => f.write_str(why),
            Error::Unreachable(why) => write!(f, "the target cannot be reached: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs every check the options ask for and reports.
pub async fn run(opts: &Options) -> Result<Report, Error> {
    checks::run(opts).await
}
