//! `/jobs`: the table's 202 — "accepted for processing, but the processing has not been
//! completed" — and 303 to the result once it has. A job's state follows from the clock, so
//! jobs need no worker and survive restarts.

use crate::app::{App, status};
use crate::reply::Reply;
use crate::request::Request;
use crate::store::{Job, JobOutcome, JobResult, JobState};
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
    #[serde(default)]
    status: Option<i64>,
    #[serde(default)]
    body: Option<Value>,
}

/// The run time of a job that names none.
const DEFAULT_DURATION: Duration = Duration::from_secs(2);

fn is_json(ct: &str) -> bool {
    let bare = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    bare == "application/json" || bare.ends_with("+json")
}

fn monitor_path(id: &str) -> String {
    format!("/jobs/{id}")
}

fn retry_after(ms: u64) -> HeaderValue {
    HeaderValue::from(ms.div_ceil(1000).max(1))
}

/// Validates a submission: 400 for malformed JSON, 422 for well-formed but invalid values.
fn parse(app: &App, req: &Request) -> Result<(u64, JobResult), (u16, String)> {
    let sub: Submission = if req.body.is_empty() {
        Submission {
            duration: None,
            result: None,
        }
    } else {
        serde_json::from_slice(&req.body).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => (
                    422,
                    format!("the job description is JSON but not a valid job: {e}"),
                ),
                _ => (400, format!("the body is not valid JSON: {e}")),
            }
        })?
    };
    let max = app.cfg.max_job_duration;
    let duration = match sub.duration {
        None => DEFAULT_DURATION,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => Duration::from_millis(ms as u64),
            _ => {
                return Err((
                    422,
                    format!("duration {n} must be a whole number of milliseconds >= 0"),
                ));
            }
        },
        Some(Value::String(s)) => humantime::parse_duration(&s).map_err(|_| {
            (
                422,
                format!("duration {s:?} is not a duration such as 500ms or 2s"),
            )
        })?,
        Some(other) => {
            return Err((
                422,
                format!("duration must be milliseconds or a duration string, not {other}"),
            ));
        }
    };
    if duration > max {
        return Err((
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
    let code = spec.status.unwrap_or(200);
    if !(200..=599).contains(&code) {
        return Err((422, format!("result status {code} must be in 200-599")));
    }
    let body = spec.body.unwrap_or_else(|| json!({ "ok": true }));
    Ok((
        duration.as_millis() as u64,
        JobResult {
            status: code as u16,
            body,
        },
    ))
}

/// `POST /jobs`: 202 with the status monitor in `Location`.
/// 415 unless content describing a job is JSON (decided from the head, before the content).
pub(crate) fn type_refusal(app: &App, req: &Request, has_content: bool) -> Option<Reply> {
    let ct = req.header(header::CONTENT_TYPE).unwrap_or("");
    if has_content && !is_json(ct) {
        let detail = format!(
            "a job is described in application/json, not {:?}",
            if ct.is_empty() { "no Content-Type" } else { ct }
        );
        return Some(app.error(req, 415, &detail));
    }
    None
}

pub(crate) async fn submit(app: &App, req: &Request) -> Reply {
    if let Some(refused) = type_refusal(app, req, !req.body.is_empty()) {
        return refused;
    }
    let (duration_ms, result) = match parse(app, req) {
        Ok(v) => v,
        Err((code, detail)) => return app.error(req, code, &detail),
    };
    let job = Job {
        id: format!("{:016x}", fastrand::u64(..)),
        submitted_ms: app.store.now_ms(),
        duration_ms,
        result,
        cancelled: false,
    };
    match app.store.submit_job(job.clone()).await {
        Ok(JobOutcome::Accepted) => {}
        Ok(JobOutcome::TooManyKeys) => {
            let detail = format!(
                "the store holds its maximum number of jobs ({}, --max-keys)",
                app.cfg.limits.max_keys
            );
            return app.error(req, 507, &detail).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(app.cfg.store_full_retry_after),
            );
        }
        Ok(JobOutcome::QuotaFull { used, limit }) => {
            let detail = format!(
                "the store is full ({used} of {limit} bytes, --max-store-bytes); retry later"
            );
            return app.error(req, 413, &detail).with_header(
                header::RETRY_AFTER,
                HeaderValue::from(app.cfg.store_full_retry_after),
            );
        }
        Err(e) => return app.store_failed(req, e),
    }
    let monitor = monitor_path(&job.id);
    let body = json!({ "id": job.id, "state": JobState::Running, "monitor": monitor, "duration_ms": duration_ms });
    app.json(202, body.to_string())
        .with_header(
            header::LOCATION,
            HeaderValue::from_str(&monitor).expect("ids are hex"),
        )
        .with_header(header::RETRY_AFTER, retry_after(duration_ms))
}

/// `GET /jobs/{id}` (200 while running, 303 when done) and `DELETE /jobs/{id}` (cancel).
pub(crate) async fn monitor(app: &App, req: &Request, id: &str) -> Reply {
    if req.method == Method::DELETE {
        return match app.store.cancel_job(id).await {
            Ok(true) => Reply::new(status(204)),
            Ok(false) => app.error(req, 404, &format!("there is no job {id:?}")),
            Err(e) => app.store_failed(req, e),
        };
    }
    let job = match app.store.job(id).await {
        Ok(Some(j)) => j,
        Ok(None) => return app.error(req, 404, &format!("there is no job {id:?}")),
        Err(e) => return app.store_failed(req, e),
    };
    let now = app.store.now_ms();
    let state = job.state(now);
    let end = job.submitted_ms + job.duration_ms;
    let body = json!({
        "id": job.id,
        "state": state,
        "remaining_ms": end.saturating_sub(now),
        "result": format!("/jobs/{}/result", job.id),
    });
    match state {
        JobState::Running => app
            .json(200, body.to_string())
            .with_header(header::RETRY_AFTER, retry_after(end - now)),
        JobState::Cancelled => app.json(200, body.to_string()),
        JobState::Done => {
            let target = format!("/jobs/{}/result", job.id);
            let detail = format!("the job is done; its result is at {target}");
            app.error(req, 303, &detail).with_header(
                header::LOCATION,
                HeaderValue::from_str(&target).expect("ids are hex"),
            )
        }
    }
}

/// `GET /jobs/{id}/result`: the result once done.
pub(crate) async fn result(app: &App, req: &Request, id: &str) -> Reply {
    let job = match app.store.job(id).await {
        Ok(Some(j)) => j,
        Ok(None) => return app.error(req, 404, &format!("there is no job {id:?}")),
        Err(e) => return app.store_failed(req, e),
    };
    let now = app.store.now_ms();
    match job.state(now) {
        JobState::Done => app.json(job.result.status, job.result.body.to_string()),
        JobState::Cancelled => app.error(
            req,
            410,
            &format!("job {id:?} was cancelled; it has no result"),
        ),
        JobState::Running => {
            let end = job.submitted_ms + job.duration_ms;
            let detail = format!("job {id:?} is still running; poll /jobs/{id}");
            app.error(req, 404, &detail)
                .with_header(header::RETRY_AFTER, retry_after(end - now))
        }
    }
}
