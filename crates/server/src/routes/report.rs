//! The verdict on a client: `GET /sequences/{key}/report` reads a sequence's recorded attempts
//! and says what the client did — whether it waited out `Retry-After`, the backoff its gaps
//! show, whether it repeated unchanged what the table says must not be repeated, whether it
//! repeated a non-idempotent request without an `Idempotency-Key` — with one finding per
//! problem, citing the table row. JSON by default; HTML (a time line in inline SVG) for
//! `Accept: text/html` or `?format=html`.

use crate::content::bodies::escape;
use crate::store::Attempt;
use crate::wire::fault::FaultKind;
use serde_json::{Value, json};
use statuslab_catalog::Status;
use std::fmt::Write as _;

/// Gaps shorter than this are a repeat "at once": no backoff at all.
pub(crate) const IMMEDIATE_MS: u64 = 50;
/// A model fits when the gaps stray from it by at most this share on average; beyond it the
/// gaps had jitter.
const JITTER_SHARE: f64 = 0.10;
/// The table's words for the codes whose request must not be repeated unchanged.
const DO_NOT_REPEAT: &str = "should not repeat the request without modifications";

/// One attempt as the report sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    /// Arrival, ms since the epoch.
    pub(crate) at_ms: u64,
    /// The request method.
    pub(crate) method: String,
    /// The code answered (900 and up: a fault).
    pub(crate) code: u16,
    /// The `Retry-After` seconds the answer carried (explicit or the server's default).
    pub(crate) retry_after: Option<u64>,
    /// The request's `Idempotency-Key`.
    pub(crate) idempotency_key: Option<String>,
    /// What makes two requests the same (method, target, content, headers that matter).
    pub(crate) fingerprint: Option<String>,
}

impl Seen {
    /// An attempt as recorded, with the `Retry-After` its answer carried — which asks the
    /// client to wait only on an error (4xx, 5xx): after a success there is nothing to repeat.
    pub(crate) fn new(a: &Attempt, retry_after: Option<u64>) -> Seen {
        Seen {
            at_ms: a.at_ms,
            method: a.method.clone(),
            code: a.code,
            retry_after: retry_after.filter(|_| (400..600).contains(&a.code)),
            idempotency_key: a
                .headers
                .iter()
                .find(|(k, _)| k == "idempotency-key")
                .map(|(_, v)| v.clone()),
            fingerprint: a.fingerprint.clone(),
        }
    }

    fn outcome(&self) -> Outcome {
        match self.code {
            100..400 => Outcome::Success,
            400..500 => Outcome::ClientError,
            500..600 => Outcome::ServerError,
            _ => Outcome::Fault,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    ClientError,
    ServerError,
    Fault,
}

impl Outcome {
    const fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client-error",
            Outcome::ServerError => "server-error",
            Outcome::Fault => "fault",
        }
    }

    /// Fill colour on the time line.
    const fn colour(self) -> &'static str {
        match self {
            Outcome::Success => "#2e7d32",
            Outcome::ClientError => "#ef6c00",
            Outcome::ServerError => "#c62828",
            Outcome::Fault => "#6a1b9a",
        }
    }
}

/// The backoff a run of gaps shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backoff {
    /// Every repeat came at once.
    None,
    /// About the same wait each time.
    Constant,
    /// Waits growing by about the same amount.
    Linear,
    /// Waits growing by about the same factor.
    Exponential,
}

impl Backoff {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Backoff::None => "none",
            Backoff::Constant => "constant",
            Backoff::Linear => "linear",
            Backoff::Exponential => "exponential",
        }
    }
}

/// Classifies the gaps (ms) between consecutive attempts: `None` when there are none, else
/// the model (constant, linear, exponential) that fits best — the simpler one when two fit
/// about as well — and whether the gaps strayed from it (jitter).
pub(crate) fn backoff(gaps: &[u64]) -> Option<(Backoff, bool)> {
    if gaps.is_empty() {
        return None;
    }
    if gaps.iter().all(|&g| g < IMMEDIATE_MS) {
        return Some((Backoff::None, false));
    }
    let g: Vec<f64> = gaps.iter().map(|&g| g.max(1) as f64).collect();
    if g.len() == 1 {
        return Some((Backoff::Constant, false));
    }
    // Two gaps: any line or curve fits two points, so the ratio decides.
    if g.len() == 2 {
        let r = g[1] / g[0];
        let model = if (0.8..=1.25).contains(&r) || r < 0.8 {
            Backoff::Constant
        } else if r < 1.75 {
            Backoff::Linear
        } else {
            Backoff::Exponential
        };
        return Some((model, r < 0.8 || (1.25 < r && r < 1.4)));
    }
    let constant = {
        let mut sorted = g.clone();
        sorted.sort_by(f64::total_cmp);
        let c = sorted[sorted.len() / 2];
        stray(&g, |_| c)
    };
    let (a, b) = line(&g);
    let linear = if b > 0.0 {
        stray(&g, |i| a + b * i)
    } else {
        f64::INFINITY
    };
    let logs: Vec<f64> = g.iter().map(|v| v.ln()).collect();
    let (la, lb) = line(&logs);
    // A factor under 1.4 per step is better told as linear growth.
    let exponential = if lb.exp() >= 1.4 {
        stray(&g, |i| (la + lb * i).exp())
    } else {
        f64::INFINITY
    };
    // The simpler model wins unless a more complex one fits clearly better.
    let mut best = (Backoff::Constant, constant);
    for (model, err) in [
        (Backoff::Linear, linear),
        (Backoff::Exponential, exponential),
    ] {
        if err + 0.03 < best.1 {
            best = (model, err);
        }
    }
    Some((best.0, best.1 > JITTER_SHARE))
}

/// The mean share by which `g` strays from `model(i)`.
fn stray(g: &[f64], model: impl Fn(f64) -> f64) -> f64 {
    let sum: f64 = g
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let m = model(i as f64).max(1.0);
            (v - m).abs() / m
        })
        .sum();
    sum / g.len() as f64
}

/// Least squares `y ≈ a + b·i`.
fn line(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mean_i = (n - 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, &v) in y.iter().enumerate() {
        let di = i as f64 - mean_i;
        num += di * (v - mean_y);
        den += di * di;
    }
    let b = if den == 0.0 { 0.0 } else { num / den };
    (mean_y - b * mean_i, b)
}

/// A step as JSON: its code, or a fault's name.
pub(crate) fn step_json(code: u16) -> Value {
    FaultKind::from_code(code).map_or_else(|| code.into(), |k| k.name().into())
}

/// What an answer was, for a sentence: `a 503 ("ServiceUnavailable")` or `a reset fault`.
fn answer_phrase(code: u16) -> String {
    match FaultKind::from_code(code) {
        Some(k) => format!("a `{}` fault", k.name()),
        None => match Status::new(code) {
            Ok(s) => format!("a {code} ({})", s.message()),
            Err(_) => format!("a {code}"),
        },
    }
}

/// The table row's words about a code, quoted; the end of a finding's sentence.
fn row(code: u16) -> String {
    let quote = |s: &str| {
        let s = s.trim_end_matches('.');
        format!("\"{s}.\"")
    };
    match Status::new(code) {
        Ok(s) if s.table_row().is_some() => {
            format!("the table's {code} row says {}", quote(s.description()))
        }
        Ok(s) => format!("RFC 9110 says of {code}: {}", quote(s.meaning())),
        Err(_) => format!("{code} is not a registered code."),
    }
}

fn must_not_repeat(code: u16) -> bool {
    Status::new(code)
        .ok()
        .and_then(Status::table_row)
        .is_some_and(|r| r.description.contains(DO_NOT_REPEAT))
}

/// Idempotent methods (RFC 9110 §9.2.2): repeating them is safe.
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// The verdict, as JSON.
pub(crate) fn verdict(key: &str, codes: &[u16], seen: &[Seen]) -> Value {
    let first = seen.first().map_or(0, |s| s.at_ms);
    let mut findings: Vec<String> = Vec::new();
    let mut honoured_all: Option<bool> = None;
    let mut repeated_unchanged = false;
    let mut non_idempotent = false;
    let mut timeline = Vec::with_capacity(seen.len());
    let gaps: Vec<u64> = seen
        .windows(2)
        .map(|w| w[1].at_ms.saturating_sub(w[0].at_ms))
        .collect();
    for (i, s) in seen.iter().enumerate() {
        let n = i + 1;
        let prev = i.checked_sub(1).map(|p| &seen[p]);
        let gap = i.checked_sub(1).map(|p| gaps[p]);
        let unchanged = prev.is_some_and(|p| {
            p.method == s.method && p.fingerprint.is_some() && p.fingerprint == s.fingerprint
        });
        let mut honoured = None;
        if let (Some(p), Some(gap)) = (prev, gap) {
            if let Some(ra) = p.retry_after {
                let ok = gap >= ra * 1000;
                honoured = Some(ok);
                honoured_all = Some(honoured_all.unwrap_or(true) && ok);
                if !ok {
                    findings.push(format!(
                        "Attempt {n} came {gap} ms after attempt {} was answered with {}, which asked to wait {ra} s with Retry-After: {}",
                        n - 1,
                        answer_phrase(p.code),
                        row(p.code)
                    ));
                }
            }
            if unchanged && must_not_repeat(p.code) {
                repeated_unchanged = true;
                findings.push(format!(
                    "Attempt {n} repeated attempt {} unchanged after {}: {}",
                    n - 1,
                    answer_phrase(p.code),
                    row(p.code)
                ));
            }
            if p.outcome() != Outcome::Success
                && s.method == p.method
                && !idempotent(&s.method)
                && s.idempotency_key.is_none()
            {
                non_idempotent = true;
                findings.push(format!(
                    "Attempt {n} repeated a {} without an Idempotency-Key after {}: {} is not idempotent (RFC 9110 §9.2.2), so the repeat may apply it twice; {}",
                    s.method,
                    answer_phrase(p.code),
                    s.method,
                    row(p.code)
                ));
            }
        }
        timeline.push(json!({
            "attempt": n,
            "at_ms": s.at_ms,
            "offset_ms": s.at_ms.saturating_sub(first),
            "method": s.method,
            "code": step_json(s.code),
            "outcome": s.outcome().name(),
            "retry_after": s.retry_after,
            "since_previous_ms": gap,
            "honoured_retry_after": honoured,
            "unchanged": unchanged,
            "idempotency_key": s.idempotency_key,
        }));
    }
    let shape = backoff(&gaps);
    // Repeating at once, again and again, after failures that named no wait: nothing in the
    // table asks for it, and it is how retry storms start. (One immediate repeat — a fresh
    // connection after a stale one was reset — is common practice and not a finding.)
    let storm: Vec<&[Seen]> = seen
        .windows(2)
        .filter(|w| {
            w[0].outcome() != Outcome::Success
                && w[0].retry_after.is_none()
                && w[1].at_ms.saturating_sub(w[0].at_ms) < IMMEDIATE_MS
        })
        .collect();
    if storm.len() >= 2 {
        let failed = storm[0][0].code;
        findings.push(format!(
            "The client repeated at once {} times (each within {IMMEDIATE_MS} ms) after failures that named no wait, starting with {}: without a wait it adds load to a server that is failing; {}",
            storm.len(),
            answer_phrase(failed),
            row(failed)
        ));
    }
    let last = seen.last();
    let succeeded = last.is_some_and(|s| s.outcome() == Outcome::Success);
    let gave_up = last.is_some() && !succeeded;
    json!({
        "key": key,
        "codes": codes.iter().map(|&c| step_json(c)).collect::<Vec<_>>(),
        "attempts": seen.len(),
        "timeline": timeline,
        "honoured_retry_after": honoured_all,
        "backoff": shape.map(|(b, _)| b.name()),
        "jitter": shape.is_some_and(|(_, j)| j),
        "longest_gap_ms": gaps.iter().max(),
        "gave_up": gave_up,
        "gave_up_after": gave_up.then_some(seen.len()),
        "succeeded": succeeded,
        "repeated_unchanged": repeated_unchanged,
        "retried_non_idempotent_without_key": non_idempotent,
        "verdict": if findings.is_empty() { "clean" } else { "findings" },
        "findings": findings,
    })
}

/// The verdict as a page: a summary, the time line in inline SVG (each attempt a mark
/// coloured by outcome, each `Retry-After` window shaded), the findings and the attempts.
pub(crate) fn html(report: &Value) -> String {
    let key = report["key"].as_str().unwrap_or_default();
    let timeline = report["timeline"].as_array().cloned().unwrap_or_default();
    let span = timeline
        .iter()
        .flat_map(|a| {
            let at = a["offset_ms"].as_u64().unwrap_or(0);
            [at, at + a["retry_after"].as_u64().unwrap_or(0) * 1000]
        })
        .max()
        .unwrap_or(0)
        .max(1000);
    let (width, left, right) = (900.0, 40.0, 20.0);
    let x = |ms: u64| left + (ms as f64) * (width - left - right) / (span as f64);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" viewBox=\"0 0 {width} 140\" width=\"{width}\" height=\"140\" role=\"img\" aria-label=\"attempts over time\">\
<line x1=\"{left}\" y1=\"90\" x2=\"{}\" y2=\"90\" stroke=\"#555\"/>",
        width - right
    );
    for a in &timeline {
        let at = a["offset_ms"].as_u64().unwrap_or(0);
        if let Some(ra) = a["retry_after"].as_u64() {
            let _ = write!(
                svg,
                "<rect class=\"retry-after\" x=\"{:.1}\" y=\"40\" width=\"{:.1}\" height=\"50\" fill=\"#1565c0\" fill-opacity=\"0.15\"><title>Retry-After: {ra} s</title></rect>",
                x(at),
                x(at + ra * 1000) - x(at)
            );
        }
    }
    for a in &timeline {
        let at = a["offset_ms"].as_u64().unwrap_or(0);
        let code = match &a["code"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let outcome = a["outcome"].as_str().unwrap_or_default();
        let colour = match outcome {
            "success" => Outcome::Success,
            "client-error" => Outcome::ClientError,
            "server-error" => Outcome::ServerError,
            _ => Outcome::Fault,
        }
        .colour();
        let flagged = a["honoured_retry_after"] == Value::Bool(false);
        let _ = write!(
            svg,
            "<g class=\"attempt {outcome}\"><circle cx=\"{cx:.1}\" cy=\"90\" r=\"7\" fill=\"{colour}\"{stroke}/><text x=\"{cx:.1}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"middle\">{code}</text><title>attempt {n}: {method} → {code} at +{at} ms</title></g>",
            cx = x(at),
            stroke = if flagged {
                " stroke=\"#000\" stroke-width=\"3\""
            } else {
                ""
            },
            ty = if a["attempt"].as_u64().unwrap_or(0) % 2 == 0 {
                115
            } else {
                75
            },
            code = escape(&code),
            n = a["attempt"],
            method = escape(a["method"].as_str().unwrap_or_default()),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"135\" font-size=\"11\">0 s</text><text x=\"{}\" y=\"135\" font-size=\"11\" text-anchor=\"end\">{:.1} s</text></svg>",
        width - right,
        span as f64 / 1000.0
    );

    let field = |name: &str| match &report[name] {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut rows = String::new();
    for a in &timeline {
        let cell = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => escape(s),
            v => escape(&v.to_string()),
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>+{} ms</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(&a["attempt"]),
            cell(&a["offset_ms"]),
            cell(&a["method"]),
            cell(&a["code"]),
            cell(&a["since_previous_ms"]),
            cell(&a["retry_after"]),
            cell(&a["honoured_retry_after"]),
            cell(&a["unchanged"]),
        );
    }
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let findings = if findings.is_empty() {
        "<p class=\"clean\">No findings: the client did what the table asks.</p>".to_owned()
    } else {
        let items: String = findings
            .iter()
            .map(|f| format!("<li>{}</li>", escape(f.as_str().unwrap_or_default())))
            .collect();
        format!("<ol class=\"findings\">{items}</ol>")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>statuslab: retry report for {k}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}\
.clean{{color:#2e7d32}}.findings li{{color:#b71c1c;margin:.3em 0}}dl{{display:grid;grid-template-columns:max-content auto;gap:2px 1em}}dt{{font-weight:bold}}</style></head>\
<body><h1>Retry report: <code>{k}</code></h1>\
<p>Steps: <code>{steps}</code> · verdict: <strong id=\"verdict\">{verdict}</strong></p>\
<dl><dt>attempts</dt><dd>{attempts}</dd><dt>honoured Retry-After</dt><dd>{honoured}</dd><dt>backoff</dt><dd>{backoff}{jitter}</dd>\
<dt>longest gap</dt><dd>{gap} ms</dd><dt>succeeded</dt><dd>{succeeded}</dd><dt>gave up</dt><dd>{gave_up}</dd>\
<dt>repeated unchanged</dt><dd>{unchanged}</dd><dt>non-idempotent repeat without key</dt><dd>{nonidem}</dd></dl>\
<h2>Time line</h2>{svg}\
<p>Marks: <span style=\"color:#2e7d32\">●</span> success · <span style=\"color:#ef6c00\">●</span> 4xx · <span style=\"color:#c62828\">●</span> 5xx · <span style=\"color:#6a1b9a\">●</span> connection fault; shaded: the Retry-After window an answer asked for; a ringed mark came too early.</p>\
<h2>Findings</h2>{findings}\
<h2>Attempts</h2><table><thead><tr><th>#</th><th>at</th><th>method</th><th>answer</th><th>since previous (ms)</th><th>Retry-After (s)</th><th>honoured</th><th>unchanged</th></tr></thead><tbody>{rows}</tbody></table>\
<p>As JSON: <a href=\"/sequences/{k}/report?format=json\">/sequences/{k}/report?format=json</a></p></body></html>\n",
        k = escape(key),
        steps = escape(
            &report["codes"]
                .as_array()
                .map(|c| c
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default()
        ),
        verdict = field("verdict"),
        attempts = field("attempts"),
        honoured = field("honoured_retry_after"),
        backoff = field("backoff"),
        jitter = if report["jitter"] == Value::Bool(true) {
            " with jitter"
        } else {
            ""
        },
        gap = field("longest_gap_ms"),
        succeeded = field("succeeded"),
        gave_up = field("gave_up"),
        unchanged = field("repeated_unchanged"),
        nonidem = field("retried_non_idempotent_without_key"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(at_ms: u64, method: &str, code: u16, retry_after: Option<u64>) -> Seen {
        Seen {
            at_ms,
            method: method.to_owned(),
            code,
            retry_after,
            idempotency_key: None,
            fingerprint: Some("same".to_owned()),
        }
    }

    #[test]
    fn backoff_shapes() {
        assert_eq!(backoff(&[]), None);
        assert_eq!(backoff(&[3, 2, 4]), Some((Backoff::None, false)));
        assert_eq!(backoff(&[1000]), Some((Backoff::Constant, false)));
        assert_eq!(
            backoff(&[1002, 1001, 1004, 1003]),
            Some((Backoff::Constant, false))
        );
        assert_eq!(
            backoff(&[100, 200, 300, 400, 500]),
            Some((Backoff::Linear, false))
        );
        assert_eq!(
            backoff(&[100, 200, 400, 800, 1600]),
            Some((Backoff::Exponential, false))
        );
        assert_eq!(
            backoff(&[200, 402, 801]),
            Some((Backoff::Exponential, false))
        );
        assert_eq!(backoff(&[200, 400]), Some((Backoff::Exponential, false)));
        assert_eq!(backoff(&[200, 300]), Some((Backoff::Linear, false)));
        // Exponential growth with ±30 % jitter.
        let (shape, jitter) = backoff(&[130, 150, 520, 610, 2000, 2300]).unwrap();
        assert_eq!((shape, jitter), (Backoff::Exponential, true));
        // Constant with jitter.
        assert_eq!(
            backoff(&[700, 1300, 900, 1250, 800]),
            Some((Backoff::Constant, true))
        );
    }

    #[test]
    fn waiting_out_retry_after_is_clean() {
        let run = [
            seen(0, "GET", 429, Some(1)),
            seen(1_003, "GET", 429, Some(1)),
            seen(2_010, "GET", 200, None),
        ];
        let v = verdict("k", &[429, 429, 200], &run);
        assert_eq!(v["verdict"], "clean", "{v:#}");
        assert_eq!(v["honoured_retry_after"], true);
        assert_eq!(v["backoff"], "constant");
        assert_eq!(v["succeeded"], true);
        assert_eq!(v["gave_up"], false);
        assert_eq!(v["longest_gap_ms"], 1_007);
    }

    #[test]
    fn an_immediate_loop_is_told_apart() {
        let run = [
            seen(0, "GET", 429, Some(1)),
            seen(4, "GET", 429, Some(1)),
            seen(9, "GET", 429, Some(1)),
        ];
        let v = verdict("k", &[429], &run);
        assert_eq!(v["honoured_retry_after"], false);
        assert_eq!(v["backoff"], "none");
        assert_eq!(v["gave_up"], true);
        assert_eq!(v["gave_up_after"], 3);
        assert_eq!(v["verdict"], "findings");
        let findings = v["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 2, "{findings:#?}");
        assert!(
            findings[0]
                .as_str()
                .unwrap()
                .contains("the table's 429 row says")
        );
    }

    #[test]
    fn repeating_what_the_table_forbids() {
        for code in [400, 403, 404, 405, 503] {
            let run = [seen(0, "GET", code, None), seen(500, "GET", 200, None)];
            let v = verdict("k", &[code, 200], &run);
            assert_eq!(v["repeated_unchanged"], true, "{code}");
            let f = v["findings"][0].as_str().unwrap();
            assert!(f.contains(DO_NOT_REPEAT), "{f}");
        }
        // Changed requests, and codes that may be repeated, are fine.
        let mut changed = [seen(0, "GET", 400, None), seen(500, "GET", 200, None)];
        changed[1].fingerprint = Some("other".to_owned());
        assert_eq!(
            verdict("k", &[400, 200], &changed)["repeated_unchanged"],
            false
        );
        let run = [seen(0, "GET", 408, None), seen(500, "GET", 200, None)];
        assert_eq!(verdict("k", &[408, 200], &run)["verdict"], "clean");
    }

    #[test]
    fn non_idempotent_repeats_need_a_key() {
        let run = [seen(0, "POST", 500, None), seen(400, "POST", 200, None)];
        let v = verdict("k", &[500, 200], &run);
        assert_eq!(v["retried_non_idempotent_without_key"], true);
        let mut keyed = run.clone();
        for s in &mut keyed {
            s.idempotency_key = Some("abc".to_owned());
        }
        let v = verdict("k", &[500, 200], &keyed);
        assert_eq!(v["retried_non_idempotent_without_key"], false);
        assert_eq!(v["verdict"], "clean", "{v:#}");
        // A fault counts as a failure too.
        let fault = FaultKind::from_name("reset").unwrap().code();
        let run = [seen(0, "PATCH", fault, None), seen(400, "PATCH", 200, None)];
        assert_eq!(
            verdict("k", &[fault, 200], &run)["retried_non_idempotent_without_key"],
            true
        );
    }

    #[test]
    fn the_page_draws_every_attempt_and_window() {
        let run = [
            seen(0, "GET", 429, Some(1)),
            seen(10, "GET", 503, None),
            seen(1_500, "GET", 200, None),
        ];
        let page = html(&verdict("k<&>", &[429, 503, 200], &run));
        assert_eq!(page.matches("<circle").count(), 3);
        assert_eq!(page.matches("class=\"retry-after\"").count(), 1);
        assert!(page.contains("k&lt;&amp;&gt;"));
        assert!(!page.contains("<script"));
    }
}
