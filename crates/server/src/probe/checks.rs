//! The checks: what each one sends, what the table and RFC 9110 expect, and the verdicts.
//!
//! The run goes in three steps: a baseline (GET, OPTIONS and an unknown method on the target,
//! at once), one range request (whether the target supports ranges decides what the other
//! range checks can say), then everything else, `concurrency` at a time. The writes run in
//! order among themselves, on a scratch resource beside the target that the probe deletes.

use super::dress;
use super::transport::{Client, Ended, Failed, Got, Raw, Req, Seen, Stop, Target};
use super::{Against, Check, Error, Options, Other, Report, Summary, Verdict};
use bytes::Bytes;
use futures_util::StreamExt as _;
use statuslab_catalog::Status;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Always (safe: GET, HEAD, OPTIONS, one unknown method).
    Always,
    /// With `--allow-writes`.
    Writes,
    /// With `--framing`.
    Framing,
    /// With `--slow`.
    Slow,
}

/// A check in the catalog of checks.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// Its id (`--only`, `--skip`, the report).
    pub id: &'static str,
    /// The status code it is about.
    pub code: u16,
    /// What it sends and expects, in a few words.
    pub title: &'static str,
    /// The RFC section(s) it tests.
    pub rfc: &'static str,
    /// When it runs.
    pub needs: Needs,
    /// Whether it exists only on HTTP/1.1 (raw bytes the HTTP/2 framing cannot carry).
    pub http1_only: bool,
}

const fn info(
    id: &'static str,
    code: u16,
    title: &'static str,
    rfc: &'static str,
    needs: Needs,
    http1_only: bool,
) -> CheckInfo {
    CheckInfo {
        id,
        code,
        title,
        rfc,
        needs,
        http1_only,
    }
}

/// Every check but the routes' (`route-CODE`, one per `--route`), in report order.
pub static CHECKS: &[CheckInfo] = &[
    info(
        "get",
        200,
        "GET the target: 200 with its representation (the baseline)",
        "RFC 9110 §9.3.1, §15.3.1",
        Needs::Always,
        false,
    ),
    info(
        "head",
        200,
        "HEAD: the GET's status and header fields, no content",
        "RFC 9110 §9.3.2",
        Needs::Always,
        false,
    ),
    info(
        "options",
        204,
        "OPTIONS: 204 (table) or 2xx (RFC) with Allow",
        "RFC 9110 §9.3.7",
        Needs::Always,
        false,
    ),
    info(
        "unknown-method",
        501,
        "an unknown method: 501",
        "RFC 9110 §9.1, §15.6.2",
        Needs::Always,
        false,
    ),
    info(
        "method-not-allowed",
        405,
        "a method the target does not allow: 405 with Allow",
        "RFC 9110 §15.5.6",
        Needs::Always,
        false,
    ),
    info(
        "if-none-match",
        304,
        "If-None-Match with the current ETag: 304, no content, the validators",
        "RFC 9110 §13.1.2, §15.4.5",
        Needs::Always,
        false,
    ),
    info(
        "if-match",
        412,
        "If-Match with another tag: 412",
        "RFC 9110 §13.1.1, §15.5.13",
        Needs::Always,
        false,
    ),
    info(
        "if-modified-since",
        304,
        "If-Modified-Since with the Last-Modified date: 304",
        "RFC 9110 §13.1.3, §15.4.5",
        Needs::Always,
        false,
    ),
    info(
        "if-unmodified-since",
        412,
        "If-Unmodified-Since a date in the past: 412",
        "RFC 9110 §13.1.4, §15.5.13",
        Needs::Always,
        false,
    ),
    info(
        "range",
        206,
        "Range: 206 with a correct Content-Range and exactly those bytes",
        "RFC 9110 §14.2, §14.4, §15.3.7",
        Needs::Always,
        false,
    ),
    info(
        "multi-range",
        206,
        "two ranges: 206 multipart/byteranges, each part right",
        "RFC 9110 §14.6, §15.3.7.2",
        Needs::Always,
        false,
    ),
    info(
        "range-unsatisfiable",
        416,
        "a range past the end: 416 with Content-Range: bytes */N",
        "RFC 9110 §15.5.17, §14.4",
        Needs::Always,
        false,
    ),
    info(
        "if-range",
        200,
        "If-Range with a stale validator: 200 with the whole representation",
        "RFC 9110 §13.1.5",
        Needs::Always,
        false,
    ),
    info(
        "expect-continue",
        100,
        "Expect: 100-continue: an interim 100 or a final answer, never a hang",
        "RFC 9110 §10.1.1, §15.2.1",
        Needs::Always,
        false,
    ),
    info(
        "expect-unknown",
        417,
        "Expect: an unknown expectation: 417",
        "RFC 9110 §10.1.1, §15.5.18",
        Needs::Always,
        false,
    ),
    info(
        "uri-too-long",
        414,
        "a 70 kB request target: 414",
        "RFC 9110 §4.1, §15.5.15",
        Needs::Always,
        false,
    ),
    info(
        "header-flood",
        431,
        "2,000 header fields: 431",
        "RFC 6585 §5",
        Needs::Always,
        false,
    ),
    info(
        "http-version",
        505,
        "an HTTP/1.2 request line: 505 (table)",
        "RFC 9110 §15.6.6, RFC 9112 §2.3",
        Needs::Always,
        true,
    ),
    info(
        "missing-host",
        400,
        "HTTP/1.1 without Host: 400",
        "RFC 9112 §3.2",
        Needs::Always,
        true,
    ),
    info(
        "put-create",
        201,
        "PUT a new scratch resource: 201",
        "RFC 9110 §9.3.4, §15.3.2",
        Needs::Writes,
        false,
    ),
    info(
        "put-if-none-match",
        412,
        "PUT with If-None-Match: * on it: 412",
        "RFC 9110 §13.1.2, §15.5.13",
        Needs::Writes,
        false,
    ),
    info(
        "put-if-match",
        412,
        "PUT with If-Match and a stale tag: 412",
        "RFC 9110 §13.1.1, §15.5.13",
        Needs::Writes,
        false,
    ),
    info(
        "delete",
        204,
        "DELETE it: 200, 202 or 204 (204 without content)",
        "RFC 9110 §9.3.5",
        Needs::Writes,
        false,
    ),
    info(
        "after-delete",
        410,
        "GET it after the DELETE: 404 or 410",
        "RFC 9110 §15.5.5, §15.5.11",
        Needs::Writes,
        false,
    ),
    info(
        "framing-cl-conflict",
        400,
        "two different Content-Lengths, then a canary: 400 and close",
        "RFC 9112 §6.3",
        Needs::Framing,
        true,
    ),
    info(
        "framing-te-cl",
        400,
        "Transfer-Encoding with Content-Length, then a canary: 400 and close",
        "RFC 9112 §6.1, §6.3",
        Needs::Framing,
        true,
    ),
    info(
        "framing-chunk-nonhex",
        400,
        "a chunk size that is not hex, then a canary: 400 and close",
        "RFC 9112 §7.1",
        Needs::Framing,
        true,
    ),
    info(
        "framing-chunk-overflow",
        400,
        "a chunk size past 64 bits, then a canary: 400 and close",
        "RFC 9112 §7.1",
        Needs::Framing,
        true,
    ),
    info(
        "stalled-head",
        408,
        "a head that stops half-way: 408, then the close",
        "RFC 9110 §15.5.9",
        Needs::Slow,
        true,
    ),
];

/// The method no server implements.
const UNKNOWN_METHOD: &str = "STATUSLABPROBE";
/// How long the probe waits for `100 Continue` before sending the content anyway.
const CONTINUE_WAIT: Duration = Duration::from_secs(2);
/// A date before any representation the probe will meet was modified.
const LONG_AGO: &str = "Sat, 01 Jan 2000 00:00:00 GMT";
/// An entity tag no server has given out.
const STALE_TAG: &str = "\"statuslab-probe-stale\"";
/// Bytes of the long request target (HTTP/1.1; HTTP/2 stays under the URI type's 64 KiB).
const LONG_TARGET: usize = 70_000;
const LONG_TARGET_H2: usize = 64_000;
/// Header fields in the flood.
const FLOOD: usize = 2_000;
/// The content of the probe's uploads.
const SCRATCH_BODY: &str = "statuslab probe: a scratch resource, deleted by the probe\n";

/// A check's verdicts by both authorities, with what was seen.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) table: (Verdict, String),
    pub(super) rfc: (Verdict, String),
    pub(super) observed: String,
    pub(super) request: String,
    pub(super) response: String,
}

impl Outcome {
    /// The same verdict and expectation by the table and the RFC.
    pub(super) fn same(
        verdict: Verdict,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Outcome {
        let expected = expected.into();
        Outcome {
            table: (verdict, expected.clone()),
            rfc: (verdict, expected),
            observed: observed.into(),
            request: String::new(),
            response: String::new(),
        }
    }

    /// Different verdicts or expectations.
    pub(super) fn split(
        table: (Verdict, String),
        rfc: (Verdict, String),
        observed: impl Into<String>,
    ) -> Outcome {
        Outcome {
            table,
            rfc,
            observed: observed.into(),
            request: String::new(),
            response: String::new(),
        }
    }

    /// With the request and response texts of `seen`.
    pub(super) fn seen(self, seen: &Seen) -> Outcome {
        self.texts(&seen.request, &seen.response)
    }

    /// With these request and response texts.
    pub(super) fn texts(mut self, request: &str, response: &str) -> Outcome {
        self.request = request.to_owned();
        self.response = response.to_owned();
        self
    }

    fn skip(expected: &str, why: impl Into<String>) -> Outcome {
        Outcome::same(Verdict::Skip, expected, why)
    }
}

/// The verdict for an exchange that brought no answer.
pub(super) fn no_answer(expected: &str, f: &Failed) -> Outcome {
    let (verdict, observed) = match f.stop {
        Stop::TimedOut => (Verdict::Inconclusive, f.why.clone()),
        Stop::Connect => (Verdict::Inconclusive, format!("no connection: {}", f.why)),
        Stop::NotSent => (Verdict::Inconclusive, f.why.clone()),
        Stop::Closed => (
            Verdict::Fail,
            "the server closed the connection without answering".to_owned(),
        ),
        Stop::Invalid => (Verdict::Fail, format!("an invalid answer: {}", f.why)),
        Stop::Reset => (Verdict::Fail, f.why.clone()),
    };
    Outcome::same(verdict, expected, observed).texts(&f.request, &f.response)
}

fn pass_if(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::Fail }
}

/// Header fields as `Name: value; …` for `observed`, the missing ones as `no Name`.
pub(super) fn fields(seen: &Seen, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| match seen.header_all(n) {
            Some(v) => format!("{n}: {}", clip(&v, 80)),
            None => format!("no {n}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Header fields that are present, as `Name: value; …`.
pub(super) fn present(seen: &Seen, names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|n| seen.header_all(n).map(|v| format!("{n}: {}", clip(&v, 80))))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Content where there should be none: de-framed content and stray bytes after the head.
pub(super) fn content_len(seen: &Seen) -> usize {
    seen.body.len() + seen.stray.len()
}

/// The comma-separated tokens of a list field (`Allow`), upper-cased.
fn tokens(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|t| t.trim().to_ascii_uppercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// What the baseline found out about the target.
struct Cx<'a> {
    client: &'a Client,
    opts: &'a Options,
    target: &'a Target,
    /// The GET, when it answered 200.
    base: Option<Seen>,
    /// Why there is no baseline.
    no_base: String,
    /// The methods OPTIONS listed in `Allow`.
    allow: Option<Vec<String>>,
    /// A 405 the target gave during the baseline, and to which method.
    seen405: Option<(String, Seen)>,
    /// Whether the target honours `Range` (from the `range` check), or why not known.
    ranges: Result<(), String>,
}

impl Cx<'_> {
    fn base(&self) -> Result<&Seen, String> {
        self.base.as_ref().ok_or_else(|| self.no_base.clone())
    }
}

/// Runs the checks `opts` asks for.
pub(super) async fn run(opts: &Options) -> Result<Report, Error> {
    if opts.concurrency == 0 {
        return Err(Error::Usage("--concurrency must be at least 1".into()));
    }
    if opts.timeout.is_zero() {
        return Err(Error::Usage("--timeout must be longer than 0".into()));
    }
    let target = Target::parse(&opts.url).map_err(Error::Usage)?;
    for (name, value) in &opts.headers {
        http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Usage(format!("--header {name:?}: not a header name")))?;
        http::HeaderValue::from_str(value).map_err(|_| {
            Error::Usage(format!(
                "--header {name}: the value has characters a header cannot carry"
            ))
        })?;
    }
    let route_ids = route_ids(&opts.routes);
    let mut known: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
    known.extend(route_ids.iter().map(String::as_str));
    for pattern in opts.only.iter().chain(&opts.skip) {
        if !known.iter().any(|id| matches(pattern, id)) {
            return Err(Error::Usage(format!(
                "no check is called {pattern:?}; the checks are: {}",
                known.join(", ")
            )));
        }
    }
    let wants = |id: &str| {
        (opts.only.is_empty() || opts.only.iter().any(|p| matches(p, id)))
            && !opts.skip.iter().any(|p| matches(p, id))
    };
    let client = Client::new(
        target.clone(),
        opts.http2,
        opts.insecure,
        opts.timeout,
        opts.headers.clone(),
    )
    .map_err(Error::Usage)?;
    client.reachable().await.map_err(Error::Unreachable)?;

    let mut done: HashMap<String, Outcome> = HashMap::new();
    let mut cx = Cx {
        client: &client,
        opts,
        target: &target,
        base: None,
        no_base: "the baseline GET was not run".into(),
        allow: None,
        seen405: None,
        ranges: Err("the range check was not run".into()),
    };
    let statics: Vec<&CheckInfo> = CHECKS.iter().filter(|c| wants(c.id)).collect();
    if !statics.is_empty() {
        let wanted: Vec<&str> = statics.iter().map(|c| c.id).collect();
        baseline(&mut cx, &wanted, &mut done).await;
        if statics.iter().any(|c| {
            matches!(
                c.id,
                "range" | "multi-range" | "range-unsatisfiable" | "if-range"
            )
        }) {
            let outcome = range(&mut cx).await;
            done.insert("range".into(), outcome);
        }
    }

    type Job<'a> = Pin<Box<dyn Future<Output = Vec<(String, Outcome)>> + Send + 'a>>;
    let mut jobs: Vec<Job<'_>> = Vec::new();
    let cx = &cx;
    let mut writes = false;
    for c in &statics {
        if done.contains_key(c.id) {
            continue;
        }
        if let Some(why) = not_applicable(c, opts) {
            done.insert(c.id.into(), Outcome::skip(c.title, why));
            continue;
        }
        if c.needs == Needs::Writes {
            writes = true;
            continue;
        }
        let id = c.id;
        jobs.push(Box::pin(
            async move { vec![(id.to_owned(), one(cx, id).await)] },
        ));
    }
    if writes {
        let wanted: Vec<&'static str> = statics
            .iter()
            .filter(|c| c.needs == Needs::Writes)
            .map(|c| c.id)
            .collect();
        jobs.push(Box::pin(async move { write_checks(cx, &wanted).await }));
    }
    for (route, id) in opts.routes.iter().zip(&route_ids) {
        if !wants(id) {
            continue;
        }
        let id = id.clone();
        jobs.push(Box::pin(async move {
            vec![(id, dress::check(cx.client, route, opts.http2).await)]
        }));
    }
    let results: Vec<Vec<(String, Outcome)>> = futures_util::stream::iter(jobs)
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    for (id, outcome) in results.into_iter().flatten() {
        done.insert(id, outcome);
    }

    let mut checks = Vec::new();
    for c in &statics {
        if let Some(outcome) = done.remove(c.id) {
            checks.push(assemble(
                c.id.to_owned(),
                c.code,
                c.title.to_owned(),
                c.rfc.to_owned(),
                outcome,
                opts.against,
            ));
        }
    }
    for (route, id) in opts.routes.iter().zip(&route_ids) {
        if let Some(outcome) = done.remove(id) {
            checks.push(assemble(
                id.clone(),
                route.code,
                format!("the dress of {} on {}", route.code, route.path),
                dress::rfc_of(route.code),
                outcome,
                opts.against,
            ));
        }
    }
    let mut summary = Summary::default();
    for c in &checks {
        match c.verdict {
            Verdict::Pass => summary.pass += 1,
            Verdict::Fail => summary.fail += 1,
            Verdict::Skip => summary.skip += 1,
            Verdict::Inconclusive => summary.inconclusive += 1,
        }
    }
    Ok(Report {
        target: opts.url.clone(),
        against: opts.against,
        protocol: if opts.http2 { "HTTP/2" } else { "HTTP/1.1" }.to_owned(),
        checks,
        summary,
    })
}

/// `route-CODE`, with `-2`, `-3`, … for a code given again.
fn route_ids(routes: &[super::Route]) -> Vec<String> {
    let mut seen: HashMap<u16, usize> = HashMap::new();
    routes
        .iter()
        .map(|r| {
            let n = seen.entry(r.code).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("route-{}", r.code)
            } else {
                format!("route-{}-{}", r.code, n)
            }
        })
        .collect()
}

/// Whether `id` matches a pattern: the id itself, or a prefix followed by `*`.
fn matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

/// Why a check does not run with these options.
fn not_applicable(c: &CheckInfo, opts: &Options) -> Option<String> {
    match c.needs {
        Needs::Writes if !opts.allow_writes => {
            return Some("not run: needs --allow-writes".into());
        }
        Needs::Framing if !opts.framing => return Some("not run: needs --framing".into()),
        Needs::Slow if !opts.slow => return Some("not run: needs --slow".into()),
        _ => {}
    }
    if c.http1_only && opts.http2 {
        return Some("HTTP/1.1 only: --http2 probes HTTP/2".into());
    }
    None
}

fn assemble(
    id: String,
    code: u16,
    title: String,
    rfc: String,
    outcome: Outcome,
    against: Against,
) -> Check {
    let (mine, theirs, other) = match against {
        Against::Table => (outcome.table, outcome.rfc, Against::Rfc),
        Against::Rfc => (outcome.rfc, outcome.table, Against::Table),
    };
    let differs = mine != theirs;
    Check {
        id,
        code,
        verdict: mine.0,
        expected: mine.1,
        observed: outcome.observed,
        request: outcome.request,
        response: outcome.response,
        title,
        table_row: Status::new(code)
            .ok()
            .and_then(|s| s.table_row())
            .map(|r| format!("{} {}", r.code, r.message)),
        rfc,
        other: differs.then_some(Other {
            against: other,
            verdict: theirs.0,
            expected: theirs.1,
        }),
    }
}

/// The checks that compare with the baseline GET.
const NEED_BASE: &[&str] = &[
    "get",
    "head",
    "if-none-match",
    "if-match",
    "if-modified-since",
    "if-unmodified-since",
    "range",
    "multi-range",
    "range-unsatisfiable",
    "if-range",
];

/// GET, OPTIONS and the unknown method at once (each only if a `wanted` check needs it):
/// their checks, and what the others need.
async fn baseline(cx: &mut Cx<'_>, wanted: &[&str], done: &mut HashMap<String, Outcome>) {
    let path = cx.target.path.as_str();
    let needs = |ids: &[&str]| wanted.iter().any(|w| ids.contains(w));
    let send = |method: &'static str, needed: bool| {
        let client = cx.client;
        async move {
            if needed {
                Some(client.send(&Req::new(method, path)).await)
            } else {
                None
            }
        }
    };
    let (get, options, unknown) = tokio::join!(
        send("GET", needs(NEED_BASE)),
        send("OPTIONS", needs(&["options", "method-not-allowed"])),
        send(
            UNKNOWN_METHOD,
            needs(&["unknown-method", "method-not-allowed"])
        ),
    );
    if let Some(get) = &get {
        let (outcome, base) = judge_get(get);
        done.insert("get".into(), outcome);
        match base {
            Ok(seen) => cx.base = Some(seen),
            Err(why) => cx.no_base = why,
        }
    }
    if let Some(options) = &options {
        done.insert("options".into(), judge_options(options));
    }
    if let Some(unknown) = &unknown {
        done.insert("unknown-method".into(), judge_unknown(unknown));
    }
    if let Some(Got::Seen(s)) = &options {
        if s.status / 100 == 2 {
            cx.allow = s.header_all("allow").map(|a| tokens(&a));
        }
        if s.status == 405 {
            cx.seen405 = Some(("OPTIONS".into(), (**s).clone()));
        }
    }
    if cx.seen405.is_none()
        && let Some(Got::Seen(s)) = &unknown
        && s.status == 405
    {
        cx.seen405 = Some((UNKNOWN_METHOD.into(), (**s).clone()));
    }
}

fn judge_get(got: &Got) -> (Outcome, Result<Seen, String>) {
    let expected = "200 with the target's representation (the other checks' baseline)";
    let s = match got {
        Got::Failed(f) => {
            return (
                no_answer(expected, f),
                Err(format!("the baseline GET got no answer: {}", f.why)),
            );
        }
        Got::Seen(s) => s,
    };
    let observed = format!(
        "{}, {} bytes; {}",
        s.status,
        s.body.len(),
        fields(
            s,
            &["Content-Type", "ETag", "Last-Modified", "Accept-Ranges"]
        )
    );
    if !s.stray.is_empty() {
        let why = format!(
            "{} bytes after the content its framing announced",
            s.stray.len()
        );
        return (
            Outcome::same(Verdict::Fail, expected, format!("{observed}; {why}")).seen(s),
            Err(why),
        );
    }
    if s.status == 200 {
        return (
            Outcome::same(Verdict::Pass, expected, observed).seen(s),
            Ok((**s).clone()),
        );
    }
    let why = format!(
        "the target answered GET with {}: the probe needs a URL whose GET answers 200 (credentials go in --header)",
        s.status
    );
    (
        Outcome::same(
            Verdict::Inconclusive,
            expected,
            format!("{observed}; {why}"),
        )
        .seen(s),
        Err(why),
    )
}

fn judge_options(got: &Got) -> Outcome {
    let table =
        "204 with Allow (the table: 204 \"is returned in response to an HTTP OPTIONS request\")";
    let rfc = "2xx with Allow (RFC 9110 §9.3.7: Allow SHOULD be sent; a 200 without content needs Content-Length: 0)";
    let s = match got {
        Got::Failed(f) => {
            let o = no_answer(table, f);
            return Outcome::split(o.table, (o.rfc.0, rfc.into()), o.observed)
                .texts(&f.request, &f.response);
        }
        Got::Seen(s) => s,
    };
    let allow = s.header_all("allow");
    let mut issues = Vec::new();
    if allow.is_none() {
        issues.push("no Allow".to_owned());
    }
    if s.status == 204 {
        issues.extend(dress::no_content_issues(s, 204));
    }
    let mut rfc_issues = issues.clone();
    if s.status == 200
        && s.headers.get("content-length").is_none()
        && s.headers.get("transfer-encoding").is_none()
        && s.version != "HTTP/2"
    {
        rfc_issues.push("a 200 without Content-Length (RFC 9110 §9.3.7: Content-Length: 0 when there is no content)".into());
    }
    let observed = format!(
        "{}; {}{}",
        s.status,
        fields(s, &["Allow", "Content-Length"]),
        if issues.is_empty() && rfc_issues.is_empty() {
            String::new()
        } else {
            let mut all = rfc_issues.clone();
            all.retain(|i| i != "no Allow");
            if all.is_empty() {
                String::new()
            } else {
                format!("; {}", all.join("; "))
            }
        }
    );
    Outcome::split(
        (pass_if(s.status == 204 && issues.is_empty()), table.into()),
        (
            pass_if(s.status / 100 == 2 && rfc_issues.is_empty()),
            rfc.into(),
        ),
        observed,
    )
    .seen(s)
}

fn judge_unknown(got: &Got) -> Outcome {
    let expected = format!(
        "501 for the unknown method {UNKNOWN_METHOD} (RFC 9110 §9.1: an unrecognized method SHOULD get 501; 405 is for known methods the target does not allow)"
    );
    match got {
        Got::Failed(f) => no_answer(&expected, f),
        Got::Seen(s) => Outcome::same(pass_if(s.status == 501), expected, {
            let allow = present(s, &["Allow"]);
            if allow.is_empty() {
                format!("{}", s.status)
            } else {
                format!("{}; {allow}", s.status)
            }
        })
        .seen(s),
    }
}

/// Runs one check of the third step.
async fn one(cx: &Cx<'_>, id: &str) -> Outcome {
    match id {
        "head" => head(cx).await,
        "method-not-allowed" => method_not_allowed(cx).await,
        "if-none-match" => if_none_match(cx).await,
        "if-match" => if_match(cx).await,
        "if-modified-since" => if_modified_since(cx).await,
        "if-unmodified-since" => if_unmodified_since(cx).await,
        "multi-range" => multi_range(cx).await,
        "range-unsatisfiable" => range_unsatisfiable(cx).await,
        "if-range" => if_range(cx).await,
        "expect-continue" => expect_continue(cx).await,
        "expect-unknown" => expect_unknown(cx).await,
        "uri-too-long" => uri_too_long(cx).await,
        "header-flood" => header_flood(cx).await,
        "http-version" => http_version(cx).await,
        "missing-host" => missing_host(cx).await,
        "framing-cl-conflict" => {
            framing(
                cx,
                "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                true,
            )
            .await
        }
        "framing-te-cl" => {
            framing(
                cx,
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                true,
            )
            .await
        }
        "framing-chunk-nonhex" => {
            framing(
                cx,
                "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
                false,
            )
            .await
        }
        "framing-chunk-overflow" => {
            framing(
                cx,
                "Transfer-Encoding: chunked\r\n\r\n10000000000000000005\r\nhello\r\n0\r\n\r\n",
                false,
            )
            .await
        }
        "stalled-head" => stalled_head(cx).await,
        other => Outcome::same(Verdict::Skip, "", format!("no such check {other}")),
    }
}

async fn head(cx: &Cx<'_>) -> Outcome {
    let expected = "the GET's status and header fields (Content-Type, ETag, Last-Modified, Content-Length when sent), and no content";
    let base = match cx.base() {
        Ok(b) => b,
        Err(why) => return Outcome::skip(expected, format!("no baseline: {why}")),
    };
    let got = cx.client.send(&Req::new("HEAD", &cx.target.path)).await;
    let s = match &got {
        Got::Failed(f) => return no_answer(expected, f),
        Got::Seen(s) => s,
    };
    let mut issues = Vec::new();
    if s.status != base.status {
        issues.push(format!("{} where GET got {}", s.status, base.status));
    }
    if content_len(s) > 0 {
        issues.push(format!(
            "{} bytes of content after the head",
            content_len(s)
        ));
    }
    for name in ["content-type", "etag", "last-modified"] {
        let (g, h) = (base.header(name), s.header(name));
        if g != h {
            issues.push(format!(
                "{name}: {} where GET sent {}",
                h.unwrap_or("(none)"),
                g.unwrap_or("(none)")
            ));
        }
    }
    if let Some(len) = s.header("content-length")
        && len.trim() != base.body.len().to_string()
    {
        issues.push(format!(
            "Content-Length: {len} where GET's content is {} bytes",
            base.body.len()
        ));
    }
    let observed = if issues.is_empty() {
        format!(
            "{}; no content; {}",
            s.status,
            fields(
                s,
                &["Content-Type", "ETag", "Last-Modified", "Content-Length"]
            )
        )
    } else {
        issues.join("; ")
    };
    Outcome::same(pass_if(issues.is_empty()), expected, observed).seen(s)
}

async fn method_not_allowed(cx: &Cx<'_>) -> Outcome {
    let expected = "405 with Allow, the methods the target supports (RFC 9110 §15.5.6: MUST)";
    if let Some((method, s)) = &cx.seen405 {
        let allow = s.header_all("allow");
        let observed = format!(
            "{method} got 405 with {}",
            allow.map_or("no Allow".to_owned(), |a| format!("Allow: {a}"))
        );
        return Outcome::same(pass_if(s.headers.contains_key("allow")), expected, observed).seen(s);
    }
    if !cx.opts.allow_writes {
        return Outcome::skip(
            expected,
            "no 405 seen; with --allow-writes the probe sends a method the target's Allow excludes",
        );
    }
    let Some(allow) = &cx.allow else {
        return Outcome::skip(
            expected,
            "OPTIONS listed no Allow, so the probe cannot pick a method the target refuses without risking a write",
        );
    };
    let Some(method) = ["POST", "PUT", "DELETE", "PATCH"]
        .into_iter()
        .find(|m| !allow.iter().any(|a| a == m))
    else {
        return Outcome::skip(
            expected,
            "the target's Allow lists POST, PUT, DELETE and PATCH",
        );
    };
    let got = cx
        .client
        .send(&Req::new(method, &cx.target.path).body(Bytes::new()))
        .await;
    let s = match &got {
        Got::Failed(f) => return no_answer(expected, f),
        Got::Seen(s) => s,
    };
    let allow_now = s.header_all("allow");
    let observed = format!(
        "{method} (not in OPTIONS's Allow) got {} with {}",
        s.status,
        allow_now
            .as_deref()
            .map_or("no Allow".to_owned(), |a| format!("Allow: {a}"))
    );
    let ok = s.status == 405
        && allow_now
            .as_deref()
            .is_some_and(|a| !tokens(a).iter().any(|t| t == method));
    Outcome::same(pass_if(ok), expected, observed).seen(s)
}

/// Fields a 304 must carry when the 200 carries them (RFC 9110 §15.4.5).
const NOT_MODIFIED_FIELDS: &[&str] = &[
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
];

/// Judges a 304 against the baseline 200.
fn judge_304(base: &Seen, s: &Seen, expected: &str, ignored: &str) -> Outcome {
    let mut issues = Vec::new();
    if s.status != 304 {
        issues.push(if s.status == 200 {
            format!("200: {ignored}")
        } else {
            format!("{} instead of 304", s.status)
        });
    } else {
        if content_len(s) > 0 {
            issues.push(format!(
                "{} bytes of content on a 304 (RFC 9110 §15.4.5: none)",
                content_len(s)
            ));
        }
        for name in NOT_MODIFIED_FIELDS {
            if base.headers.contains_key(*name) && !s.headers.contains_key(*name) {
                issues.push(format!("no {name}, which the 200 carries"));
            }
        }
        if let (Some(a), Some(b)) = (base.header("etag"), s.header("etag"))
            && a != b
        {
            issues.push(format!("ETag {b} where the 200 carries {a}"));
        }
    }
    let observed = if issues.is_empty() {
        format!(
            "304; no content; {}",
            fields(s, &["ETag", "Last-Modified", "Date"])
        )
    } else {
        issues.join("; ")
    };
    Outcome::same(pass_if(issues.is_empty()), expected, observed).seen(s)
}

async fn if_none_match(cx: &Cx<'_>) -> Outcome {
    let expected = "304 without content, with the same ETag (and Cache-Control, Content-Location, Date, Expires, Vary when a 200 carries them)";
    let base = match cx.base() {
        Ok(b) => b,
        Err(why) => return Outcome::skip(expected, format!("no baseline: {why}")),
    };
    let Some(etag) = base.header("etag") else {
        return Outcome::skip(expected, "the target sends no ETag");
    };
    let req = Req::new("GET", &cx.target.path).header("If-None-Match", etag);
    match &cx.client.send(&req).await {
        Got::Failed(f) => no_answer(expected, f),
        Got::Seen(s) => judge_304(
            base,
            s,
            expected,
            "If-None-Match with the current tag was ignored",
        ),
    }
}

async fn if_match(cx: &Cx<'_>) -> Outcome {
    let expected =
        "412: the tag does not match, so the method must not be performed (RFC 9110 §13.1.1)";
    let base = match cx.base() {
        Ok(b) => b,
        Err(why) => return Outcome::skip(expected, format!("no baseline: {why}")),
    };
    if base.header("etag").is_none() {
        return Outcome::skip(expected, "the target sends no ETag");
    }
    let req = Req::new("GET", &cx.target.path).header("If-Match", STALE_TAG);
    match &cx.client.send(&req).await {
        Got::Failed(f) => no_answer(expected, f),
        Got::Seen(s) => Outcome::same(
            pass_if(s.status == 412),
            expected,
            if s.status == 200 {
                format!("200: If-Match: {STALE_TAG} was ignored")
            } else {
                format!("{}", s.status)
            },
        )
        .seen(s),
    }
}

async fn if_modified_since(cx: &Cx<'_>) -> Outcome {
    let expected =
        "304 without content: not modified since its own Last-Modified date (RFC 9110 §13.1.3)";
    let base = match cx.base() {
        Ok(b) => b,
        Err(why) => return Outcome::skip(expected, format!("no baseline: {why}")),
    };
    let Some(modified) = base.header("last-modified") else {
        return Outcome::skip(expected, "the target sends no Last-Modified");
    };
    if httpdate::parse_http_date(modified).is_err() {
        return Outcome::same(
            Verdict::Fail,
            expected,
            format!("Last-Modified {modified:?} is not an HTTP-date (RFC 9110 §5.6.7)"),
        )
        .seen(base);
    }
    let req = Req::new("GET", &cx.target.path).header("If-Modified-Since", modified);
    match &cx.client.send(&req).await {
        Got::Failed(f) => no_answer(expected, f),
        Got::Seen(s) => judge_304(base, s, expected, "If-Modified-Since was ignored"),
    }
}

async fn if_unmodified_since(cx: &Cx<'_>) -> Outcome {
    let expected = format!(
        "412: modified after {LONG_AGO}, so the method must not be performed (RFC 9110 §13.1.4)"
    );
    let base = match cx.base() {
        Ok(b) => b,
        Err(why) => return Outcome::skip(&expected, format!("no baseline: {why}")),
    };
    let Some(modified) = base.header("last-modified") else {
        return Outcome::skip(&expected, "the target sends no Last-Modified");
    };
    let (Ok(then), Ok(modified)) = (
        httpdate::parse_http_date(LONG_AGO),
        httpdate::parse_http_date(modified),
    ) else {
        return Outcome::skip(
            &expected,
            format!("Last-Modified {modified:?} is not an HTTP-date"),
        );
    };
    if modified <= then {
        return Outcome::skip(
            &expected,
            format!("the target was last modified before {LONG_AGO}"),
        );
    }
    let req = Req::new("GET", &cx.target.path).header("If-Unmodified-Since", LONG_AGO);
    match &cx.client.send(&req).await {
        Got::Failed(f) => no_answer(&expected, f),
        Got::Seen(s) => Outcome::same(
            pass_if(s.status == 412),
            expected,
            if s.status == 200 {
                "200: If-Unmodified-Since was ignored".to_owned()
            } else {
                format!("{}", s.status)
            },
        )
        .seen(s),
    }
}

/// A parsed `Content-Range: bytes first-last/complete`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, complete) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    if first > last {
        return None;
    }
    let complete = if complete == "*" {
        None
    } else {
        Some(complete.parse().ok()?)
    };
    Some((first, last, complete))
}

/// The baseline's representation, for the range checks; or why they cannot run.
fn representation<'a>(cx: &'a Cx<'_>, expected: &str) -> Result<&'a Seen, Box<Outcome>> {
    let base = cx
        .base()
        .map_err(|why| Box::new(Outcome::skip(expected, format!("no baseline: {why}"))))?;
    if base.body.len() < 2 {
        return Err(Box::new(Outcome::skip(
            expected,
            format!(
                "the representation is {} bytes: too small for ranges",
                base.body.len()
            ),
        )));
    }
    Ok(base)
}

async fn range(cx: &mut Cx<'_>) -> Outcome {
    let expected_short = "206 with Content-Range: bytes first-last/length and exactly those bytes";
    let base = match representation(cx, expected_short) {
        Ok(b) => b.clone(),
        Err(o) => {
            cx.ranges = Err(o.observed.clone());
            return *o;
        }
    };
    let len = base.body.len() as u64;
    let first = len / 4;
    let last = (len / 2).saturating_sub(1).max(first);
    let expected = format!(
        "206 with Content-Range: bytes {first}-{last}/{len} and exactly those {} bytes",
        last - first + 1
    );
    let req = Req::new("GET", &cx.target.path).header("Range", format!("bytes={first}-{last}"));
    let got = cx.client.send(&req).await;
    let s = match &got {
        Got::Failed(f) => {
            cx.ranges = Err(format!("the range request got no answer: {}", f.why));
            return no_answer(&expected, f);
        }
        Got::Seen(s) => s,
    };
    if let (Some(now), Some(then)) = (s.header("etag"), base.header("etag"))
        && now != then
    {
        cx.ranges = Err("the representation changed between requests".into());
        return Outcome::same(
            Verdict::Inconclusive,
            expected,
            "the ETag changed between the GET and the range request: the representation is not stable",
        )
        .seen(s);
    }
    match s.status {
        206 => {
            cx.ranges = Ok(());
            let mut issues = Vec::new();
            let cr = s.header("content-range");
            match cr.and_then(parse_content_range) {
                None => issues.push(format!(
                    "Content-Range {} (expected bytes {first}-{last}/{len})",
                    cr.map_or("missing".to_owned(), |v| format!("{v:?}"))
                )),
                Some((a, b, n)) => {
                    if (a, b) != (first, last) || n.is_some_and(|n| n != len) {
                        issues.push(format!(
                            "Content-Range {:?} (expected bytes {first}-{last}/{len})",
                            cr.unwrap_or("")
                        ));
                    }
                }
            }
            let want = &base.body[first as usize..=last as usize];
            if s.body[..] != *want {
                issues.push(format!(
                    "the {} bytes are not bytes {first}-{last} of the representation",
                    s.body.len()
                ));
            }
            if !s.stray.is_empty() {
                issues.push(format!("{} bytes after the content", s.stray.len()));
            }
            for name in [
                "etag",
                "date",
                "cache-control",
                "expires",
                "content-location",
                "vary",
            ] {
                if base.headers.contains_key(name) && !s.headers.contains_key(name) {
                    issues.push(format!(
                        "no {name}, which the 200 carries (RFC 9110 §15.3.7)"
                    ));
                }
            }
            let observed = if issues.is_empty() {
                format!(
                    "206; {}; the right {} bytes",
                    fields(s, &["Content-Range"]),
                    s.body.len()
                )
            } else {
                issues.join("; ")
            };
            Outcome::same(pass_if(issues.is_empty()), expected, observed).seen(s)
        }
        200 => {
            let advertised = [base.header("accept-ranges"), s.header("accept-ranges")]
                .into_iter()
                .flatten()
                .any(|v| tokens(v).iter().any(|t| t == "BYTES"));
            cx.ranges = Err("the target ignores Range".into());
            if advertised {
                Outcome::same(
                    Verdict::Fail,
                    expected,
                    "200 with the whole representation, although it advertises Accept-Ranges: bytes",
                )
                .seen(s)
            } else {
                Outcome::same(
                    Verdict::Inconclusive,
                    expected,
                    "200 with the whole representation: the target ignores Range (RFC 9110 §14.2 allows it)",
                )
                .seen(s)
            }
        }
        other => {
            cx.ranges = Err(format!("the range request got {other}"));
            Outcome::same(Verdict::Fail, expected, format!("{other}")).seen(s)
        }
    }
}

/// The range checks that depend on the target honouring `Range`.
fn ranged<'a>(cx: &'a Cx<'_>, expected: &str) -> Result<&'a Seen, Box<Outcome>> {
    let base = representation(cx, expected)?;
    if let Err(why) = &cx.ranges {
        return Err(Box::new(Outcome::skip(
            expected,
            format!("needs a target that honours Range: {why}"),
        )));
    }
    Ok(base)
}

async fn multi_range(cx: &Cx<'_>) -> Outcome {
    let expected_short =
        "206 multipart/byteranges with one part per range, each with its Content-Range and bytes";
    let base = match ranged(cx, expected_short) {
        Ok(b) => b,
        Err(o) => return *o,
    };
    let len = base.body.len() as u64;
    if len < 40 {
        return Outcome::skip(
            expected_short,
            format!("the representation is {len} bytes: too small for two distant ranges"),
        );
    }
    let ranges = [(0u64, 9u64), (len - 10, len - 1)];
    let expected = format!(
        "206 multipart/byteranges with two parts, bytes 0-9/{len} and {}-{}/{len}, each with exactly its bytes",
        len - 10,
        len - 1
    );
    let req = Req::new("GET", &cx.target.path)
        .header("Range", format!("bytes=0-9,{}-{}", len - 10, len - 1));
    let got = cx.client.send(&req).await;
    let s = match &got {
        Got::Failed(f) => return no_answer(&expected, f),
        Got::Seen(s) => (**s).clone(),
    };
    match s.status {
        206 => {
            let ctype = s.header("content-type").unwrap_or("");
            let Some(boundary) = boundary(ctype) else {
                if let Some((a, b, _)) = s.header("content-range").and_then(parse_content_range)
                    && a == 0
                    && b == len - 1
                {
                    return Outcome::same(
                        Verdict::Inconclusive,
                        expected,
                        "one part covering both ranges: coalesced (RFC 9110 §14.6 allows it)",
                    )
                    .seen(&s);
                }
                return Outcome::same(
                    Verdict::Fail,
                    expected,
                    format!(
                        "206 with Content-Type {ctype:?}, not multipart/byteranges; {}",
                        fields(&s, &["Content-Range"])
                    ),
                )
                .seen(&s);
            };
            match parts(&s.body, &boundary) {
                Err(why) => Outcome::same(Verdict::Fail, expected, why).seen(&s),
                Ok(parts) => {
                    let mut issues = Vec::new();
                    for (a, b) in ranges {
                        let found = parts.iter().find(|p| p.0 == a && p.1 == b);
                        match found {
                            None => issues.push(format!("no part for bytes {a}-{b}")),
                            Some(p) => {
                                if p.2.is_some_and(|n| n != len) {
                                    issues.push(format!("part {a}-{b} names the length {:?}", p.2));
                                }
                                if p.3[..] != base.body[a as usize..=b as usize] {
                                    issues.push(format!("part {a}-{b} holds other bytes"));
                                }
                            }
                        }
                    }
                    if parts.len() != 2 {
                        issues.push(format!("{} parts", parts.len()));
                    }
                    let observed = if issues.is_empty() {
                        format!("206 multipart/byteranges; parts {}", parts.iter().map(|p| format!("{}-{}", p.0, p.1)).collect::<Vec<_>>().join(", "))
                    } else {
                        issues.join("; ")
                    };
                    Outcome::same(pass_if(issues.is_empty()), expected, observed).seen(&s)
                }
            }
        }
        200 => Outcome::same(
            Verdict::Inconclusive,
            expected,
            "200 with the whole representation: the target answers multi-range requests in full (RFC 9110 §14.2 allows it)",
        )
        .seen(&s),
        other => Outcome::same(Verdict::Fail, expected, format!("{other}")).seen(&s),
    }
}

/// The `boundary` parameter of a `multipart/byteranges` media type.
fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// One part of a `multipart/byteranges` body: first, last, complete length, data.
type Part = (u64, u64, Option<u64>, Bytes);

/// Parses a `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1): each part's
/// `Content-Range` gives its length, so the data is taken exactly.
fn parts(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)
        .ok_or_else(|| format!("no boundary {delimiter:?} in the content"))?;
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a boundary line does not end in CRLF".into());
        }
        at += 2;
        let end = find(body, b"\r\n\r\n", at).ok_or("a part has no end of its header fields")?;
        let head = String::from_utf8_lossy(&body[at..end]).into_owned();
        at = end + 4;
        let range = head
            .split("\r\n")
            .find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-range")
                    .then(|| v.trim().to_owned())
            })
            .ok_or("a part has no Content-Range")?;
        let (a, b, n) = parse_content_range(&range)
            .ok_or_else(|| format!("a part's Content-Range {range:?} is malformed"))?;
        let len = (b - a + 1) as usize;
        if body.len() < at + len {
            return Err(format!("the part {a}-{b} is cut short"));
        }
        parts.push((a, b, n, body.slice(at..at + len)));
        at += len;
        if !body[at..].starts_with(b"\r\n") || !body[at + 2..].starts_with(delimiter.as_bytes()) {
            return Err(format!(
                "the part {a}-{b} is not followed by CRLF and the boundary"
            ));
        }
        at += 2;
        if parts.len() > 100 {
            return Err("more than 100 parts".into());
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

async fn range_unsatisfiable(cx: &Cx<'_>) -> Outcome {
    let expected_short = "416 with Content-Range: bytes */length";
    let base = match ranged(cx, expected_short) {
        Ok(b) => b,
        Err(o) => return *o,
    };
    let len = base.body.len();
    let expected = format!(
        "416 with Content-Range: bytes */{len} (RFC 9110 §15.5.17: SHOULD name the current length)"
    );
    let req = Req::new("GET", &cx.target.path).header("Range", format!("bytes={len}-"));
    let got = cx.client.send(&req).await;
    let s = match &got {
        Got::Failed(f) => return no_answer(&expected, f),
        Got::Seen(s) => s,
    };
    match s.status {
        416 => {
            let cr = s.header("content-range");
            let ok = cr.is_some_and(|v| v.trim() == format!("bytes */{len}"));
            Outcome::same(
                pass_if(ok),
                expected,
                format!("416; {}", fields(s, &["Content-Range"])),
            )
            .seen(s)
        }
        200 => Outcome::same(
            Verdict::Inconclusive,
            expected,
            "200 with the whole representation: the target ignores an unsatisfiable Range (RFC 9110 §14.2 allows it)",
        )
        .seen(s),
        other => Outcome::same(Verdict::Fail, expected, format!("{other}")).seen(s),
    }
}

async fn if_range(cx: &Cx<'_>) -> Outcome {
    let expected = "200 with the whole representation: If-Range does not match, so Range is ignored (RFC 9110 §13.1.5)";
    let base = match ranged(cx, expected) {
        Ok(b) => b,
        Err(o) => return *o,
    };
    let validator = if base.header("etag").is_some() {
        STALE_TAG
    } else if base.header("last-modified").is_some() {
        LONG_AGO
    } else {
        return Outcome::skip(expected, "the target sends neither ETag nor Last-Modified");
    };
    let req = Req::new("GET", &cx.target.path)
        .header("Range", "bytes=0-0")
        .header("If-Range", validator);
    let got = cx.client.send(&req).await;
    let s = match &got {
        Got::Failed(f) => return no_answer(expected, f),
        Got::Seen(s) => s,
    };
    let observed = match s.status {
        200 if s.body == base.body => "200 with the whole representation".to_owned(),
        200 => format!(
            "200 with {} bytes, not the {}-byte representation",
            s.body.len(),
            base.body.len()
        ),
        206 => format!("206: the range was sent although If-Range: {validator} does not match"),
        other => format!("{other}"),
    };
    Outcome::same(
        pass_if(s.status == 200 && s.body == base.body),
        expected,
        observed,
    )
    .seen(s)
}

async fn expect_continue(cx: &Cx<'_>) -> Outcome {
    let wait = CONTINUE_WAIT.min(cx.opts.timeout);
    let expected = format!(
        "an interim 100 Continue, or a final answer, before the content is sent (RFC 9110 §10.1.1: MUST); the probe waits {}",
        humantime::format_duration(wait)
    );
    let mut req = Req::new("GET", &cx.target.path)
        .header("Expect", "100-continue")
        .body(&b"statuslab probe: Expect: 100-continue\n"[..]);
    req.expect_wait = Some(wait);
    match &cx.client.send(&req).await {
        Got::Failed(f) if f.waited || f.stop == Stop::TimedOut => Outcome::same(
            Verdict::Fail,
            expected,
            format!("a hang: {}", f.why),
        )
        .texts(&f.request, &f.response),
        Got::Failed(f) => no_answer(&expected, f),
        Got::Seen(s) if s.waited => Outcome::same(
            Verdict::Fail,
            expected,
            format!(
                "nothing within {}: the server waited for the content without 100 Continue (it answered {} once the content came)",
                humantime::format_duration(wait),
                s.status
            ),
        )
        .seen(s),
        Got::Seen(s) if s.early => Outcome::same(
            Verdict::Pass,
            expected,
            format!("a final {} before the content", s.status),
        )
        .seen(s),
        Got::Seen(s) => Outcome::same(
            Verdict::Pass,
            expected,
            format!(
                "{}, then {}",
                s.interim
                    .iter()
                    .map(|(c, _)| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                s.status
            ),
        )
        .seen(s),
    }
}

async fn expect_unknown(cx: &Cx<'_>) -> Outcome {
    let table =
        "417 (the table: the server fails to meet the requirements of the Expect header field)";
    let rfc = "417, or the expectation ignored (RFC 9110 §10.1.1: a server MAY answer 417)";
    let req = Req::new("GET", &cx.target.path).header("Expect", "statuslab-probe");
    match &cx.client.send(&req).await {
        Got::Failed(f) => {
            let o = no_answer(table, f);
            Outcome::split(o.table, (o.rfc.0, rfc.into()), o.observed)
                .texts(&f.request, &f.response)
        }
        Got::Seen(s) => Outcome::split(
            (pass_if(s.status == 417), table.into()),
            (Verdict::Pass, rfc.into()),
            if s.status == 417 {
                "417".to_owned()
            } else {
                format!("{}: the expectation was ignored", s.status)
            },
        )
        .seen(s),
    }
}

async fn uri_too_long(cx: &Cx<'_>) -> Outcome {
    let n = if cx.opts.http2 {
        LONG_TARGET_H2
    } else {
        LONG_TARGET
    };
    let expected = if cx.opts.http2 {
        format!(
            "414 for a {n}-byte target (RFC 9110 §4.1: MUST), or 431 when the whole header block is over the server's limit (RFC 9113 §10.5.1)"
        )
    } else {
        format!("414 for a {n}-byte target (RFC 9110 §4.1: MUST)")
    };
    let sep = if cx.target.path.contains('?') {
        '&'
    } else {
        '?'
    };
    let prefix = format!("{}{sep}statuslab-probe=", cx.target.path);
    let long = format!("{prefix}{}", "x".repeat(n.saturating_sub(prefix.len())));
    let got = cx.client.send(&Req::new("GET", &long)).await;
    let s = match &got {
        Got::Failed(f) if f.stop == Stop::Closed => {
            return Outcome::same(
                Verdict::Fail,
                expected,
                "the server closed the connection without answering (RFC 9110 §4.1: MUST answer 414)",
            )
            .texts(&f.request, &f.response);
        }
        Got::Failed(f) => return no_answer(&expected, f),
        Got::Seen(s) => s,
    };
    let verdict = match s.status {
        414 => Verdict::Pass,
        431 if cx.opts.http2 => Verdict::Pass,
        200..=399 | 404 => Verdict::Inconclusive,
        _ => Verdict::Fail,
    };
    let observed = match verdict {
        Verdict::Inconclusive => format!(
            "{}: the server accepted a {n}-byte target (its limit, if any, is higher)",
            s.status
        ),
        _ => format!("{}", s.status),
    };
    Outcome::same(verdict, expected, observed).seen(s)
}

async fn header_flood(cx: &Cx<'_>) -> Outcome {
    let table = format!(
        "431 for {FLOOD} header fields (the catalog's code for header fields too large: RFC 6585 §5)"
    );
    let rfc = format!(
        "431 for {FLOOD} header fields (RFC 6585 §5), or the generic 400 (RFC 9110 §15.5.1)"
    );
    let mut req = Req::new("GET", &cx.target.path);
    for i in 0..FLOOD {
        req = req.header(&format!("X-Statuslab-Probe-{i:04}"), "flood");
    }
    let got = cx.client.send(&req).await;
    let s = match &got {
        Got::Failed(f) if f.stop == Stop::Closed => {
            return Outcome::split(
                (Verdict::Fail, table),
                (Verdict::Fail, rfc),
                "the server closed the connection without answering",
            )
            .texts(&f.request, &f.response);
        }
        Got::Failed(f) => {
            let o = no_answer(&table, f);
            return Outcome::split(o.table, (o.rfc.0, rfc), o.observed)
                .texts(&f.request, &f.response);
        }
        Got::Seen(s) => s,
    };
    let (t, r, observed) = match s.status {
        431 => (Verdict::Pass, Verdict::Pass, "431".to_owned()),
        400 => (
            Verdict::Fail,
            Verdict::Pass,
            "400: refused, but 431 would say which limit was hit".to_owned(),
        ),
        200..=399 | 404 => (
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            format!(
                "{}: the server accepted {FLOOD} header fields (its limit, if any, is higher)",
                s.status
            ),
        ),
        other => (Verdict::Fail, Verdict::Fail, format!("{other}")),
    };
    Outcome::split((t, table), (r, rfc), observed).seen(s)
}

/// The status of a raw connection's first response, or what happened instead.
fn first_status(raw: &Raw) -> Result<u16, String> {
    match (raw.responses.first(), &raw.ended) {
        (Some(m), _) => Ok(m.status),
        (None, Ended::Closed) => Err("the server closed the connection without answering".into()),
        (None, Ended::TimedOut) => Err("no answer within the timeout".into()),
        (None, Ended::Invalid(why)) => Err(format!("an invalid answer: {why}")),
        (None, Ended::Connect(why)) => Err(format!("no connection: {why}")),
        (None, Ended::Open) => Err("no answer".into()),
    }
}

async fn http_version(cx: &Cx<'_>) -> Outcome {
    let table = "505 (the table: the server does not support the HTTP protocol version used in the request)";
    let rfc = "an answer as HTTP/1.1 (RFC 9112 §2.3: a higher minor version is processed as the highest the server implements), or 505";
    let bytes = cx.client.raw_bytes(
        &format!("GET {} HTTP/1.2", cx.target.path),
        true,
        "Connection: close\r\n\r\n",
    );
    let raw = cx
        .client
        .raw(&bytes, cx.opts.timeout, Duration::from_millis(200), false)
        .await;
    let (t, r, observed) = match first_status(&raw) {
        Ok(505) => (Verdict::Pass, Verdict::Pass, "505".to_owned()),
        Ok(400) => (Verdict::Fail, Verdict::Fail, "400".to_owned()),
        Ok(code) if raw.responses[0].minor > 1 => (
            Verdict::Fail,
            Verdict::Fail,
            format!(
                "{code} with a status line of HTTP/1.{}",
                raw.responses[0].minor
            ),
        ),
        Ok(code) => (
            Verdict::Fail,
            Verdict::Pass,
            format!("{code}: the request was processed as HTTP/1.1"),
        ),
        Err(why) if raw.ended == Ended::TimedOut => {
            (Verdict::Inconclusive, Verdict::Inconclusive, why)
        }
        Err(why) => (Verdict::Fail, Verdict::Fail, why),
    };
    Outcome::split((t, table.into()), (r, rfc.into()), observed).texts(&raw.request, &raw.response)
}

async fn missing_host(cx: &Cx<'_>) -> Outcome {
    let expected =
        "400 (RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host)";
    let bytes = cx.client.raw_bytes(
        &format!("GET {} HTTP/1.1", cx.target.path),
        false,
        "Connection: close\r\n\r\n",
    );
    let raw = cx
        .client
        .raw(&bytes, cx.opts.timeout, Duration::from_millis(200), false)
        .await;
    let (verdict, observed) = match first_status(&raw) {
        Ok(code) => (pass_if(code == 400), format!("{code}")),
        Err(why) if raw.ended == Ended::TimedOut => (Verdict::Inconclusive, why),
        Err(why) => (Verdict::Fail, why),
    };
    Outcome::same(verdict, expected, observed).texts(&raw.request, &raw.response)
}

/// A malformed message followed by a pipelined canary request on the same connection. A
/// server that frames the message strictly answers 400 and closes; one that finds an end
/// for it reads what follows as a new request and answers the canary: a desync.
async fn framing(cx: &Cx<'_>, framing_and_body: &str, length_fields: bool) -> Outcome {
    let expected = if length_fields {
        "400, then the close, and no answer to the pipelined canary (RFC 9112 §6.3: the framing is invalid; MUST answer 400 and close)"
    } else {
        "400 (or another refusal), then the close, and no answer to the pipelined canary (RFC 9112 §7.1: an invalid chunk is an unrecoverable error)"
    };
    let canary = format!(
        "GET {}{}statuslab-probe-canary HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        cx.target.path_only(),
        '?',
        cx.client.host()
    );
    let bytes = cx.client.raw_bytes(
        &format!("GET {} HTTP/1.1", cx.target.path),
        true,
        &format!("{framing_and_body}{canary}"),
    );
    let grace = Duration::from_secs(2).min(cx.opts.timeout);
    let raw = cx.client.raw(&bytes, cx.opts.timeout, grace, false).await;
    let te_cl = framing_and_body.contains("Transfer-Encoding") && length_fields;
    let statuses: Vec<String> = raw.responses.iter().map(|m| m.status.to_string()).collect();
    let (t, r, observed) = match (raw.responses.len(), &raw.ended) {
        (0, Ended::TimedOut) => (
            Verdict::Fail,
            Verdict::Fail,
            format!(
                "no answer within {}: the server is waiting for content whose end it cannot know",
                humantime::format_duration(cx.opts.timeout)
            ),
        ),
        (0, _) => {
            let why = first_status(&raw).err().unwrap_or_default();
            (
                Verdict::Fail,
                Verdict::Fail,
                format!("{why} (no desync, but RFC 9112 asks for a 400)"),
            )
        }
        (1, Ended::Closed) => {
            let code = raw.responses[0].status;
            if code == 400 {
                (
                    Verdict::Pass,
                    Verdict::Pass,
                    "400, then the close; the canary was not answered".to_owned(),
                )
            } else if !length_fields && (400..500).contains(&code) {
                (
                    Verdict::Pass,
                    Verdict::Pass,
                    format!(
                        "{code} (refused before the content was read), then the close; the canary was not answered"
                    ),
                )
            } else if te_cl && code < 400 {
                (
                    Verdict::Fail,
                    Verdict::Pass,
                    format!(
                        "{code}: processed by Transfer-Encoding, then the close (RFC 9112 §6.1 allows it); the canary was not answered"
                    ),
                )
            } else {
                (
                    Verdict::Fail,
                    Verdict::Fail,
                    format!("{code}, then the close; the canary was not answered"),
                )
            }
        }
        (1, Ended::Open) => (
            Verdict::Fail,
            Verdict::Fail,
            format!(
                "{}, but the connection stayed open: the server must close it, since it cannot know where the message ends",
                statuses[0]
            ),
        ),
        (1, Ended::Invalid(why)) => (
            Verdict::Fail,
            Verdict::Fail,
            format!("{}, then invalid bytes: {why}", statuses[0]),
        ),
        (1, _) => (Verdict::Fail, Verdict::Fail, statuses[0].clone()),
        (_, _) => (
            Verdict::Fail,
            Verdict::Fail,
            format!(
                "desync: {} answers ({}): the server read the canary (or the rest of the malformed message) as another request",
                statuses.len(),
                statuses.join(", ")
            ),
        ),
    };
    Outcome::split((t, expected.into()), (r, expected.into()), observed)
        .texts(&raw.request, &raw.response)
}

async fn stalled_head(cx: &Cx<'_>) -> Outcome {
    let wait = cx.opts.slow_wait;
    let table = "408, then the close (the table: the client did not produce a request within the time the server was prepared to wait)";
    let rfc = "408 then the close, or a silent close (RFC 9112 §9.5: a server may close an idle connection; RFC 9110 §15.5.9: 408 SHOULD say so)";
    let bytes = cx
        .client
        .raw_bytes(&format!("GET {} HTTP/1.1", cx.target.path), true, "");
    let grace = Duration::from_secs(2).min(cx.opts.timeout);
    // The whole wait is the check's: the exchange's own timeout must not cut it short.
    let raw = cx.client.raw(&bytes, wait, grace, false).await;
    let (t, r, observed) = match (raw.responses.first(), &raw.ended) {
        (Some(m), ended) if m.status == 408 => {
            let says = m.headers.get("connection").map_or(String::new(), |v| {
                format!(" (Connection: {})", String::from_utf8_lossy(v.as_bytes()))
            });
            if *ended == Ended::Closed {
                (
                    Verdict::Pass,
                    Verdict::Pass,
                    format!("408{says}, then the close"),
                )
            } else {
                (
                    Verdict::Fail,
                    Verdict::Fail,
                    format!("408{says}, but the connection stayed open"),
                )
            }
        }
        (Some(m), _) => (Verdict::Fail, Verdict::Fail, format!("{}", m.status)),
        (None, Ended::Closed) => (
            Verdict::Fail,
            Verdict::Pass,
            "a silent close, no 408".to_owned(),
        ),
        (None, Ended::TimedOut) => (
            Verdict::Inconclusive,
            Verdict::Inconclusive,
            format!(
                "still waiting after {} (--slow-wait)",
                humantime::format_duration(wait)
            ),
        ),
        (None, _) => {
            let why = first_status(&raw).err().unwrap_or_default();
            (Verdict::Fail, Verdict::Fail, why)
        }
    };
    Outcome::split((t, table.into()), (r, rfc.into()), observed).texts(&raw.request, &raw.response)
}

/// PUT, conditional PUTs, DELETE and a GET after it, in that order, on a scratch resource
/// beside the target; the scratch resource is deleted even when `delete` is not wanted.
async fn write_checks(cx: &Cx<'_>, wanted: &[&str]) -> Vec<(String, Outcome)> {
    let base = cx.target.path_only();
    let sep = if base.ends_with('/') { "" } else { "-" };
    let scratch = format!("{base}{sep}statuslab-probe-{:08x}", fastrand::u32(..));
    let mut out = Vec::new();
    let want = |id: &str| wanted.contains(&id);
    let put = |extra: Option<(&str, &str)>| {
        let mut req = Req::new("PUT", &scratch)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(SCRATCH_BODY);
        if let Some((n, v)) = extra {
            req = req.header(n, v);
        }
        req
    };

    let create_expected = format!(
        "201 for a new resource at {scratch} (RFC 9110 §9.3.4: MUST answer 201 when PUT creates)"
    );
    let got = cx.client.send(&put(None)).await;
    let created = matches!(&got, Got::Seen(s) if s.status / 100 == 2);
    if want("put-create") {
        out.push(("put-create".to_owned(), match &got {
            Got::Failed(f) => no_answer(&create_expected, f),
            Got::Seen(s) => {
                let verdict = match s.status {
                    201 => Verdict::Pass,
                    200..=299 => Verdict::Fail,
                    _ => Verdict::Inconclusive,
                };
                let observed = match verdict {
                    Verdict::Inconclusive => format!(
                        "{}: the target refuses PUT beside it; the write checks need a place that accepts PUT",
                        s.status
                    ),
                    _ => format!("{}; {}", s.status, fields(s, &["Location", "ETag"])),
                };
                Outcome::same(verdict, create_expected, observed).seen(s)
            }
        }));
    }
    let not_created = |expected: &str| {
        Outcome::skip(
            expected,
            format!("the scratch resource {scratch} could not be created"),
        )
    };

    let inm_expected = "412: If-None-Match: * and the resource exists (RFC 9110 §13.1.2)";
    if want("put-if-none-match") {
        out.push((
            "put-if-none-match".to_owned(),
            if !created {
                not_created(inm_expected)
            } else {
                match &cx.client.send(&put(Some(("If-None-Match", "*")))).await {
                    Got::Failed(f) => no_answer(inm_expected, f),
                    Got::Seen(s) => Outcome::same(
                        pass_if(s.status == 412),
                        inm_expected,
                        if s.status / 100 == 2 {
                            format!("{}: replaced the resource although it exists", s.status)
                        } else {
                            s.status.to_string()
                        },
                    )
                    .seen(s),
                }
            },
        ));
    }
    let im_expected = "412: If-Match with a tag the resource does not have (RFC 9110 §13.1.1)";
    if want("put-if-match") {
        out.push((
            "put-if-match".to_owned(),
            if !created {
                not_created(im_expected)
            } else {
                match &cx.client.send(&put(Some(("If-Match", STALE_TAG)))).await {
                    Got::Failed(f) => no_answer(im_expected, f),
                    Got::Seen(s) => Outcome::same(
                        pass_if(s.status == 412),
                        im_expected,
                        if s.status / 100 == 2 {
                            format!(
                                "{}: replaced the resource although the tag does not match",
                                s.status
                            )
                        } else {
                            s.status.to_string()
                        },
                    )
                    .seen(s),
                }
            },
        ));
    }

    let delete_expected =
        "200, 202 or 204 (RFC 9110 §9.3.5); a 204 without content or Content-Length";
    let mut deleted = false;
    if created {
        let got = cx.client.send(&Req::new("DELETE", &scratch)).await;
        deleted = matches!(&got, Got::Seen(s) if s.status == 200 || s.status == 204);
        if want("delete") {
            out.push((
                "delete".to_owned(),
                match &got {
                    Got::Failed(f) => no_answer(delete_expected, f),
                    Got::Seen(s) => {
                        let mut issues = Vec::new();
                        if !matches!(s.status, 200 | 202 | 204) {
                            issues.push(s.status.to_string());
                        }
                        if s.status == 204 {
                            issues.extend(dress::no_content_issues(s, 204));
                        }
                        let observed = if issues.is_empty() {
                            s.status.to_string()
                        } else {
                            issues.join("; ")
                        };
                        Outcome::same(pass_if(issues.is_empty()), delete_expected, observed).seen(s)
                    }
                },
            ));
        }
    } else if want("delete") {
        out.push(("delete".to_owned(), not_created(delete_expected)));
    }

    let after_expected = "404 or 410 (table: 410 \"the requested resource has been deleted permanently\"; RFC 9110: 404 when nothing is known)";
    if want("after-delete") {
        out.push((
            "after-delete".to_owned(),
            if !deleted {
                Outcome::skip(
                    after_expected,
                    "the scratch resource was not deleted (or not at once)",
                )
            } else {
                match &cx.client.send(&Req::new("GET", &scratch)).await {
                    Got::Failed(f) => no_answer(after_expected, f),
                    Got::Seen(s) => Outcome::same(
                        pass_if(matches!(s.status, 404 | 410)),
                        after_expected,
                        if s.status == 200 {
                            "200: still there after the DELETE".to_owned()
                        } else {
                            s.status.to_string()
                        },
                    )
                    .seen(s),
                }
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some((0, 9, Some(100)))
        );
        assert_eq!(parse_content_range(" bytes 5-5/*"), Some((5, 5, None)));
        assert_eq!(parse_content_range("bytes 9-0/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn multipart_byteranges() {
        assert_eq!(
            boundary("multipart/byteranges; boundary=\"AB C\"").as_deref(),
            Some("AB C")
        );
        assert_eq!(boundary("text/plain; boundary=x"), None);
        let body = Bytes::from_static(
            b"preamble\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/10\r\n\r\nabc\r\n--B\r\nContent-Range: bytes 8-9/10\r\n\r\nij\r\n--B--\r\n",
        );
        let got = parts(&body, "B").expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].0, got[0].1, got[0].2, &got[0].3[..]),
            (0, 2, Some(10), &b"abc"[..])
        );
        assert_eq!((got[1].0, got[1].1, &got[1].3[..]), (8, 9, &b"ij"[..]));
        // Data that runs past its Content-Range, a missing range, a missing boundary.
        let long =
            Bytes::from_static(b"--B\r\nContent-Range: bytes 0-1/10\r\n\r\nabc\r\n--B--\r\n");
        assert!(parts(&long, "B").is_err());
        let none = Bytes::from_static(b"--B\r\nContent-Type: x\r\n\r\nabc\r\n--B--\r\n");
        assert!(parts(&none, "B").unwrap_err().contains("no Content-Range"));
        assert!(parts(&Bytes::from_static(b"abc"), "B").is_err());
    }

    #[test]
    fn patterns_and_route_ids() {
        assert!(matches("route-*", "route-429"));
        assert!(matches("framing-*", "framing-te-cl"));
        assert!(matches("options", "options"));
        assert!(!matches("option", "options"));
        let routes: Vec<super::super::Route> = ["401=/a", "429=/b", "401=/c"]
            .iter()
            .map(|r| r.parse().expect("a route"))
            .collect();
        assert_eq!(
            route_ids(&routes),
            ["route-401", "route-429", "route-401-2"]
        );
    }

    #[test]
    fn every_check_id_is_unique_and_its_code_registered() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
        for c in CHECKS {
            assert!(
                Status::new(c.code).is_ok_and(|s| !s.reason().is_empty()),
                "{}",
                c.id
            );
            assert!(c.rfc.starts_with("RFC "), "{}", c.id);
        }
    }
}
