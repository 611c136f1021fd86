//! `statuslab probe URL`: checks another server against the table and RFC 9110, prints a
//! table (or JSON), optionally writes JUnit XML, and exits 0 (nothing failed), 1 (a check
//! failed) or 2 (bad arguments, or the target cannot be reached).

use crate::Failure;
use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use statuslab_server::probe::{self, Against, Check, Options, Report, Route, Verdict};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const AFTER_HELP: &str = "\
URL names a resource on the target: the probe GETs it, compares HEAD, sends conditional and
range requests, OPTIONS, one unknown method, Expect, a 70 kB target, a header flood, HTTP/1.2
and a request without Host. Each --route CODE=PATH names an endpoint that should answer CODE;
the probe checks that answer's dress (status, the headers the code requires, framing).

Safe by default: only GET, HEAD, OPTIONS and one unknown method reach the target.
  --allow-writes  PUT, conditional PUTs and DELETE on a scratch resource beside URL
                  (URL-statuslab-probe-XXXXXXXX, deleted again), and a method Allow excludes
  --framing       conflicting Content-Lengths, Transfer-Encoding with Content-Length, bad chunk
                  sizes, each followed by a pipelined canary request (an answer to it = desync)
  --slow          a head that stops half-way: 408 and the close (waits up to --slow-wait)

Verdicts: pass, fail, skip (not run, with the reason), inconclusive (a precondition is
missing, e.g. no ETag). Where the table and RFC 9110 judge differently, both are shown.
Exit status: 0 nothing failed, 1 a check failed, 2 bad arguments or target unreachable.

Examples:
  statuslab probe http://localhost:8080/resources/doc
  statuslab probe https://api.example.com/items/1 --header 'Authorization: Bearer TOKEN' \\
      --route 401=/private --route 429=/limited --route 301=/old
  statuslab probe http://localhost:8080/resources/doc --allow-writes --framing --slow --json
  statuslab probe http://localhost:8080/resources/doc --http2 --against rfc --junit probe.xml
  statuslab probe http://localhost:8080/resources/doc --only 'route-*,options'";

/// Which authority the verdicts follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgainstArg {
    /// The status-code table and the catalog's wire rules (OPTIONS → 204, 429 needs Retry-After).
    Table,
    /// RFC 9110 (with RFC 9112 and RFC 6585) alone.
    Rfc,
}

/// Arguments of `statuslab probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The resource to probe: an http:// or https:// URL whose GET answers 200.
    pub url: String,
    /// An endpoint that should answer CODE, e.g. 401=/private (repeatable).
    #[arg(long = "route", value_name = "CODE=PATH", value_parser = parse_route)]
    pub routes: Vec<Route>,
    /// Judge by the table (default) or by RFC 9110 alone.
    #[arg(long, value_enum, env = "STATUSLAB_PROBE_AGAINST", default_value_t = AgainstArg::Table)]
    pub against: AgainstArg,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Probe over HTTP/2: h2c with prior knowledge for http://, h2 by ALPN for https://.
    #[arg(long)]
    pub http2: bool,
    /// A header field every request carries, 'Name: value' (repeatable; STATUSLAB_PROBE_HEADERS
    /// takes one per line).
    #[arg(long = "header", value_name = "'Name: value'", env = "STATUSLAB_PROBE_HEADERS", value_delimiter = '\n', hide_env_values = true, value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Run only these checks: ids or prefixes ending in * (comma-separated, repeatable).
    #[arg(long, value_name = "ID,..", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Do not run these checks: ids or prefixes ending in * (comma-separated, repeatable).
    #[arg(long, value_name = "ID,..", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Add PUT, conditional PUT and DELETE checks on a scratch resource beside URL.
    #[arg(long)]
    pub allow_writes: bool,
    /// Add the malformed-framing checks (HTTP/1.1): the server must answer 400 and close.
    #[arg(long)]
    pub framing: bool,
    /// Add the stalled-head check (HTTP/1.1): the server must answer 408 and close.
    #[arg(long)]
    pub slow: bool,
    /// Checks run at once.
    #[arg(long, env = "STATUSLAB_PROBE_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Time for one exchange (connect, request, answer), e.g. 10s, 500ms.
    #[arg(long, env = "STATUSLAB_PROBE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long --slow waits for the server to give up on the stalled head.
    #[arg(long, env = "STATUSLAB_PROBE_SLOW_WAIT", default_value = "90s", value_parser = parse_duration)]
    pub slow_wait: Duration,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long, env = "STATUSLAB_PROBE_INSECURE")]
    pub insecure: bool,
}

fn parse_route(s: &str) -> Result<Route, String> {
    s.parse()
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(format!("{s:?}: {name:?} is not a header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// A positive duration, in the units `serve` takes (`500ms`, `10s`, `1m`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::serve_cmd::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be longer than 0"));
    }
    Ok(d)
}

impl ProbeArgs {
    /// The library's options.
    pub fn options(&self) -> Options {
        Options {
            url: self.url.clone(),
            routes: self.routes.clone(),
            against: match self.against {
                AgainstArg::Table => Against::Table,
                AgainstArg::Rfc => Against::Rfc,
            },
            http2: self.http2,
            headers: self.headers.clone(),
            only: self.only.iter().map(|s| s.trim().to_owned()).collect(),
            skip: self.skip.iter().map(|s| s.trim().to_owned()).collect(),
            allow_writes: self.allow_writes,
            framing: self.framing,
            slow: self.slow,
            concurrency: usize::from(self.concurrency),
            timeout: self.timeout,
            slow_wait: self.slow_wait,
            insecure: self.insecure,
        }
    }
}

/// Runs the probe and reports: exit 1 (a `Runtime` failure) when a check failed.
pub(crate) fn probe(args: &ProbeArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let opts = args.options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(probe::run(&opts)).map_err(|e| match e {
        probe::Error::Usage(why) => Failure::Usage(why),
        probe::Error::Unreachable(_) => Failure::Usage(e.to_string()),
    })?;
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&report))
            .with_context(|| format!("writing the JUnit report to {}", path.display()))?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report).context("writing the report")?;
        writeln!(out).context("writing the report")?;
    } else {
        out.write_all(table(&report, color()).as_bytes())
            .context("writing the report")?;
    }
    out.flush().context("writing the report")?;
    if report.failed() {
        return Err(Failure::Runtime(anyhow!(
            "{} of {} checks failed",
            report.summary.fail,
            report.checks.len()
        )));
    }
    Ok(())
}

/// Colour only on a terminal, and never with NO_COLOR set (https://no-color.org).
fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
}

fn paint(verdict: Verdict, color: bool) -> String {
    let name = verdict.name();
    if !color {
        return name.to_owned();
    }
    let code = match verdict {
        Verdict::Pass => "32",
        Verdict::Fail => "1;31",
        Verdict::Skip => "2",
        Verdict::Inconclusive => "33",
    };
    format!("\x1b[{code}m{name}\x1b[0m")
}

fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The human report: one row per check (code, check, verdict, expected, observed), the other
/// authority's verdict under a row where it differs, then the requests and responses of the
/// failed checks, then the counts.
pub(crate) fn table(report: &Report, color: bool) -> String {
    let mut s = format!(
        "statuslab probe {} ({}, against the {})\n\n",
        report.target,
        report.protocol,
        match report.against {
            Against::Table => "table",
            Against::Rfc => "RFC",
        }
    );
    let id_w = report
        .checks
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let verdict_w = 12;
    s.push_str(&format!(
        "{:<4}  {:<id_w$}  {:<verdict_w$}  {:<52}  {}\n",
        "CODE", "CHECK", "VERDICT", "EXPECTED", "OBSERVED"
    ));
    for c in &report.checks {
        // Padding is computed on the plain name: escape codes take no columns.
        let pad = " ".repeat(verdict_w.saturating_sub(c.verdict.name().len()));
        s.push_str(&format!(
            "{:<4}  {:<id_w$}  {}{pad}  {:<52}  {}\n",
            c.code,
            c.id,
            paint(c.verdict, color),
            clip(&c.expected, 52),
            clip(&c.observed, 100),
        ));
        if let Some(o) = c.other.as_ref().filter(|o| o.verdict != c.verdict) {
            s.push_str(&format!(
                "{:<4}  {:<id_w$}  {} by the {}: {}\n",
                "",
                "",
                o.verdict.name(),
                match o.against {
                    Against::Table => "table",
                    Against::Rfc => "RFC",
                },
                clip(&o.expected, 120)
            ));
        }
    }
    let failed: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    if !failed.is_empty() {
        s.push_str("\nFailures:\n");
        for c in failed {
            s.push_str(&format!(
                "\n{} ({}; {}{})\n  expected: {}\n  observed: {}\n",
                c.id,
                c.code,
                c.rfc,
                c.table_row
                    .as_ref()
                    .map_or(String::new(), |r| format!("; table row {r}")),
                c.expected,
                c.observed
            ));
            if !c.request.is_empty() {
                s.push_str(&format!("  request:\n{}\n", indent(&c.request, 1200)));
            }
            if !c.response.is_empty() {
                s.push_str(&format!("  response:\n{}\n", indent(&c.response, 1200)));
            }
        }
    }
    let sum = &report.summary;
    s.push_str(&format!(
        "\n{} pass, {} fail, {} skip, {} inconclusive\n",
        sum.pass, sum.fail, sum.skip, sum.inconclusive
    ));
    s
}

fn indent(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        cut.push('…');
    }
    cut.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(ch),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The report as JUnit XML: one test case per check; `fail` is a failure, `skip` and
/// `inconclusive` are skipped (with the reason).
pub(crate) fn junit(report: &Report) -> String {
    let sum = &report.summary;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let name = xml(&format!("statuslab probe {}", report.target));
    s.push_str(&format!(
        "<testsuites name=\"{name}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        report.checks.len(),
        sum.fail,
        sum.skip + sum.inconclusive
    ));
    s.push_str(&format!(
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\">\n",
        report.checks.len(),
        sum.fail,
        sum.skip + sum.inconclusive
    ));
    s.push_str(&format!(
        "    <properties>\n      <property name=\"against\" value=\"{}\"/>\n      <property name=\"protocol\" value=\"{}\"/>\n    </properties>\n",
        report.against.name(),
        xml(&report.protocol)
    ));
    for c in &report.checks {
        s.push_str(&format!(
            "    <testcase classname=\"statuslab.probe\" name=\"{} ({})\">\n",
            xml(&c.id),
            c.code
        ));
        let message = format!("expected {}; observed {}", c.expected, c.observed);
        match c.verdict {
            Verdict::Pass => {}
            Verdict::Fail => s.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                xml(&message),
                xml(&c.rfc),
                xml(&format!(
                    "{message}\n\nrequest:\n{}\n\nresponse:\n{}",
                    c.request, c.response
                ))
            )),
            Verdict::Skip => s.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                xml(&c.observed)
            )),
            Verdict::Inconclusive => s.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                xml(&format!("inconclusive: {}", c.observed))
            )),
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_header("Authorization: Bearer x:y"),
            Ok(("Authorization".into(), "Bearer x:y".into()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": empty").is_err());
        assert!(parse_header("Bad Name: v").is_err());
    }

    #[test]
    fn xml_escapes() {
        assert_eq!(xml("a<b>&\"'\r"), "a&lt;b&gt;&amp;&quot;&apos;\\x0d");
    }
}
