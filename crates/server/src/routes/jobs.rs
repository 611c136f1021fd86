//! `/jobs`: the table's 202 — "accepted for processing, but the processing has not been
//! completed" — and 303 to the result once it has. A job's state follows from the clock, so
//! jobs need no worker and survive restarts.

use crate::content::params::{self, Bare, is_json};
use crate::ctx::Ctx;
use crate::problem::Problem;
use crate::store::{Job, JobOutcome, JobResult, JobState};
use crate::wire::reply::{Reply, known};
use crate::wire::request::Request;
use http::Method;
use http::header::{self, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// What `POST /jobs` accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    /// How long the job runs: milliseconds, or a duration string (`2s`).
    #[serde(default)]
    duration: Option<Value>,
    /// What the job answers when done.
    #[serde(default)]
    result: Option<ResultSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultSpec {
    /// A whole number, as JSON writes it (`201`, `201.0`, `2.01e2`).
    #[serde(default)]
    status: Option<serde_json::Number>,
    #[serde(default)]
    body: Option<Value>,
}

/// The run time of a job that names none.
const DEFAULT_DURATION: Duration = Duration::from_secs(2);

fn monitor_path(id: &str) -> String {
    format!("/jobs/{id}")
}

fn retry_after(ms: u64) -> HeaderValue {
    HeaderValue::from(ms.div_ceil(1000).max(1))
}

/// A JSON number that is a whole number, however written: JSON (and JSON Schema's `integer`)
/// make no difference between `2000` and `2000.0` or `2e3`.
fn whole(n: &serde_json::Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        // i64::MAX as f64 rounds up to 2^63, so the bound is exclusive.
        (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
    })
}

/// Validates a submission: 400 for malformed JSON, 422 for well-formed but invalid values.
fn parse(ctx: &Ctx, req: &Request) -> Result<(u64, JobResult), Problem> {
    let sub: Submission = if req.body.is_empty() {
        Submission {
            duration: None,
            result: None,
        }
    } else {
        // Serde would also fill the struct from an array (`[2000, null]`): a job is an object.
        let value: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Problem::new(400, format!("the body is not valid JSON: {e}")))?;
        let result_ok = value
            .get("result")
            .is_none_or(|r| r.is_object() || r.is_null());
        if !value.is_object() || !result_ok {
            return Err(Problem::new(
                422,
                "a job description is a JSON object, and its result an object or null",
            ));
        }
        serde_json::from_value(value).map_err(|e| {
            Problem::new(
                422,
                format!("the job description is JSON but not a valid job: {e}"),
            )
        })?
    };
    let max = ctx.cfg.max_job_duration;
    let duration = match sub.duration {
        None => DEFAULT_DURATION,
        Some(Value::Number(n)) => match whole(&n) {
            Some(ms) if ms >= 0 => Duration::from_millis(ms as u64),
            _ => {
                return Err(Problem::new(
                    422,
                    format!("duration {n} must be a whole number of milliseconds >= 0"),
                ));
            }
        },
        Some(Value::String(s)) => params::duration("duration", &s, Bare::Millis, Duration::MAX, "")
            .map_err(|e| Problem::new(422, e))?,
        Some(other) => {
            return Err(Problem::new(
                422,
                format!("duration must be milliseconds or a duration string, not {other}"),
            ));
        }
    };
    if duration > max {
        return Err(Problem::new(
            422,
            format!(
                "duration {} exceeds the maximum of {} (--max-job-duration)",
                humantime::format_duration(duration),
                humantime::format_duration(max)
            ),
        ));
    }
    let spec = sub.result.unwrap_or(ResultSpec {
        status: None,
        body: None,
    });
    let code = match &spec.status {
        None => 200,
        Some(n) => match whole(n) {
            Some(code) if (200..=599).contains(&code) => code,
            _ => {
                return Err(Problem::new(
                    422,
                    format!("result status {n} must be a whole number in 200-599"),
                ));
            }
        },
    };
    let body = spec.body.unwrap_or_else(|| json!({ "ok": true }));
    Ok((
        duration.as_millis() as u64,
        JobResult {
            status: code as u16,
            body,
        },
    ))
}

/// 415 unless content describing a job is JSON (decided from the head, before the content).
pub(crate) fn type_check(req: &Request) -> Result<(), Problem> {
    let has_content = req.headers.contains_key(header::TRANSFER_ENCODING)
        || req
            .header(header::CONTENT_LENGTH)
            .is_some_and(|v| v.trim() != "0");
    let ct = req.header(header::CONTENT_TYPE).unwrap_or("");
    if has_content && !is_json(ct) {
        let detail = format!(
            "a job is described in application/json, not {:?}",
            if ct.is_empty() { "no Content-Type" } else { ct }
        );
        return Err(Problem::new(415, detail));
    }
    Ok(())
}

/// `POST /jobs`: 202 with the status monitor in `Location`.
pub(crate) async fn submit(ctx: &Ctx, req: &Request) -> Result<Reply, Problem> {
    let (duration_ms, result) = parse(ctx, req)?;
    let job = Job {
        id: format!("{:016x}", fastrand::u64(..)),
        submitted_ms: ctx.store.now_ms(),
        duration_ms,
        result,
        cancelled: false,
    };
    match ctx.store.submit_job(job.clone()).await? {
        JobOutcome::Accepted => {}
        JobOutcome::TooManyKeys => {
            let detail = format!(
                "the store holds its maximum number of jobs ({}, --max-keys)",
                ctx.cfg.limits.max_keys
            );
            return Err(Problem::new(507, detail).retry_later());
        }
        JobOutcome::QuotaFull { used, limit } => {
            let detail = format!(
                "the store is full ({used} of {limit} bytes, --max-store-bytes); retry later"
            );
            return Err(Problem::new(413, detail).retry_later());
        }
    }
    let monitor = monitor_path(&job.id);
    let body = json!({ "id": job.id, "state": JobState::Running, "monitor": monitor, "duration_ms": duration_ms });
    Ok(Reply::json(202, body.to_string())
        .with_header(
            header::LOCATION,
            HeaderValue::from_str(&monitor).expect("ids are hex"),
        )
        .with_header(header::RETRY_AFTER, retry_after(duration_ms)))
}

fn no_job(id: &str) -> Problem {
    Problem::new(404, format!("there is no job {id:?}"))
}

/// `GET /jobs/{id}` (200 while running, 303 when done) and `DELETE /jobs/{id}` (cancel).
pub(crate) async fn monitor(ctx: &Ctx, req: &Request, id: &str) -> Result<Reply, Problem> {
    if req.method == Method::DELETE {
        // A finished job cannot be cancelled: its result stands (409, pointing at it).
        let job = ctx.store.job(id).await?.ok_or_else(|| no_job(id))?;
        if job.state(ctx.store.now_ms()) == JobState::Done {
            let target = format!("/jobs/{id}/result");
            return Err(Problem::new(
                409,
                format!("job {id:?} is already done; its result stays at {target}"),
            )
            .with_header(
                header::LOCATION,
                HeaderValue::from_str(&target).expect("ids are hex"),
            ));
        }
        return match ctx.store.cancel_job(id).await? {
            true => Ok(Reply::new(known(204))),
            false => Err(no_job(id)),
        };
    }
    let job = ctx.store.job(id).await?.ok_or_else(|| no_job(id))?;
    let now = ctx.store.now_ms();
    let state = job.state(now);
    let end = job.submitted_ms + job.duration_ms;
    let body = json!({
        "id": job.id,
        "state": state,
        "remaining_ms": end.saturating_sub(now),
        "result": format!("/jobs/{}/result", job.id),
    });
    match state {
        JobState::Running => Ok(Reply::json(200, body.to_string())
            .with_header(header::RETRY_AFTER, retry_after(end - now))),
        JobState::Cancelled => Ok(Reply::json(200, body.to_string())),
        JobState::Done => {
            let target = format!("/jobs/{}/result", job.id);
            let detail = format!("the job is done; its result is at {target}");
            Err(Problem::new(303, detail).with_header(
                header::LOCATION,
                HeaderValue::from_str(&target).expect("ids are hex"),
            ))
        }
    }
}

/// `GET /jobs/{id}/result`: the result once done.
pub(crate) async fn result(ctx: &Ctx, id: &str) -> Result<Reply, Problem> {
    let job = ctx.store.job(id).await?.ok_or_else(|| no_job(id))?;
    let now = ctx.store.now_ms();
    match job.state(now) {
        JobState::Done => Ok(Reply::json(job.result.status, job.result.body.to_string())),
        JobState::Cancelled => Err(Problem::new(
            410,
            format!("job {id:?} was cancelled; it has no result"),
        )),
        JobState::Running => {
            let end = job.submitted_ms + job.duration_ms;
            let detail = format!("job {id:?} is still running; poll /jobs/{id}");
            Err(Problem::new(404, detail).with_header(header::RETRY_AFTER, retry_after(end - now)))
        }
    }
}
