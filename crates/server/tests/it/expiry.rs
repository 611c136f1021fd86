//! Expiry at the HTTP level, with short TTLs in `Config`: a tombstone's 410 becomes 404, jobs
//! and sequences are forgotten, and the periodic sweeper frees the keys of expired state so that
//! new state fits under `--max-keys` again. Every wait is a poll with a generous deadline; the
//! only timing asserted is a lower bound (nothing expires before its TTL).

use crate::support::{Exchange, TestServer, request};
use std::time::{Duration, Instant};

/// The TTLs here: long enough that the checks right after a write are far from expiry.
const TTL: Duration = Duration::from_secs(2);

/// How long past its TTL state may take to be seen as expired (or swept) before a test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// How often a poll asks again.
const POLL: Duration = Duration::from_millis(50);

/// Slack for the store's millisecond clock (it truncates) against the test's monotonic one.
const CLOCK_SLACK: Duration = Duration::from_millis(50);

async fn call(s: &TestServer, method: &str, target: &str, body: &[u8]) -> Exchange {
    let headers: &[(&str, &str)] = if body.is_empty() {
        &[]
    } else {
        &[("Content-Type", "application/json")]
    };
    s.exchange(&request(method, target, &s.host(), headers, body))
        .await
}

/// Asks `target` until it answers `want`; every other answer must be one of `meanwhile`.
/// Returns when `want` first came, measured from `since`, failing after `TTL + DEADLINE`.
async fn poll_until(
    s: &TestServer,
    target: &str,
    want: u16,
    meanwhile: &[u16],
    since: Instant,
) -> Duration {
    loop {
        let r = call(s, "GET", target, b"").await;
        if r.status == want {
            return since.elapsed();
        }
        assert!(
            meanwhile.contains(&r.status),
            "{target}: {} while waiting for {want}:\n{}\n{}",
            r.status,
            r.head,
            r.text()
        );
        assert!(
            since.elapsed() < TTL + DEADLINE,
            "{target} still {} {:?} after the write (TTL {TTL:?})",
            r.status,
            since.elapsed()
        );
        tokio::time::sleep(POLL).await;
    }
}

#[track_caller]
fn not_before_ttl(what: &str, after: Duration) {
    assert!(
        after + CLOCK_SLACK >= TTL,
        "{what} after {after:?}, before its TTL of {TTL:?}"
    );
}

#[tokio::test]
async fn a_tombstone_410_becomes_404_after_tombstone_ttl() {
    let s = TestServer::start_with(|c| c.limits.tombstone_ttl = TTL).await;
    let r = call(&s, "PUT", "/resources/t", b"{}").await;
    assert_eq!(r.status, 201, "{}", r.head);
    let deleting = Instant::now();
    let r = call(&s, "DELETE", "/resources/t", b"").await;
    assert_eq!(r.status, 204, "{}", r.head);
    let r = call(&s, "GET", "/resources/t", b"").await;
    assert_eq!(r.status, 410, "a fresh tombstone:\n{}", r.head);
    let after = poll_until(&s, "/resources/t", 404, &[410], deleting).await;
    not_before_ttl("the tombstone expired", after);
    // Gone for good, and the name can be used again.
    assert_eq!(call(&s, "GET", "/resources/t", b"").await.status, 404);
    assert_eq!(call(&s, "DELETE", "/resources/t", b"").await.status, 404);
    let r = call(&s, "PUT", "/resources/t", b"{}").await;
    assert_eq!(r.status, 201, "created anew:\n{}", r.head);
}

#[tokio::test]
async fn jobs_and_sequences_are_forgotten_after_their_ttl() {
    let s = TestServer::start_with(|c| {
        c.limits.job_ttl = TTL;
        c.limits.sequence_ttl = TTL;
    })
    .await;
    let submitting = Instant::now();
    let r = call(&s, "POST", "/jobs", br#"{"duration":"100ms"}"#).await;
    assert_eq!(r.status, 202, "{}\n{}", r.head, r.text());
    let monitor = r.must("location").to_owned();
    let result = format!("{monitor}/result");
    let sequencing = Instant::now();
    let seq = "/sequence/exp/503,200";
    let r = call(&s, "GET", seq, b"").await;
    assert_eq!((r.status, r.must("sequence-step")), (503, "1/2"));
    let r = call(&s, "GET", seq, b"").await;
    assert_eq!((r.status, r.must("sequence-step")), (200, "2/2"));
    // Reading a sequence's state does not touch it.
    let r = call(&s, "GET", "/sequences/exp", b"").await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.json()["served"], 2);

    // The job runs, finishes (303), and is then forgotten (404), result and all.
    let after = poll_until(&s, &monitor, 404, &[200, 303], submitting).await;
    not_before_ttl("the job was forgotten", after);
    let r = call(&s, "GET", &result, b"").await;
    assert_eq!(r.status, 404, "the result of a forgotten job:\n{}", r.head);

    let after = poll_until(&s, "/sequences/exp", 404, &[200], sequencing).await;
    not_before_ttl("the sequence was forgotten", after);
    // An expired sequence starts over at its first code.
    let r = call(&s, "GET", seq, b"").await;
    assert_eq!(
        (r.status, r.must("sequence-step")),
        (503, "1/2"),
        "{}",
        r.head
    );
}

/// With `--max-keys 1`, a second job and a second sequence get 507 while the first ones are
/// stored. Expired state still holds its key until a sweep removes it: with a short
/// `sweep_interval` the periodic sweeper frees the keys, and new ones fit again; with a sweep
/// an hour away, expired state keeps its keys (so it is the sweeper, not the expiry alone, that
/// frees them).
#[tokio::test]
async fn the_periodic_sweeper_frees_expired_keys_under_max_keys() {
    let servers = |sweep: Duration| {
        TestServer::start_with(move |c| {
            c.limits.max_keys = 1;
            c.limits.job_ttl = TTL;
            c.limits.sequence_ttl = TTL;
            c.sweep_interval = sweep;
        })
    };
    let swept = servers(Duration::from_millis(100)).await;
    let unswept = servers(Duration::from_secs(3600)).await;
    let mut started = Vec::new();
    for s in [&swept, &unswept] {
        let at = Instant::now();
        let r = call(s, "POST", "/jobs", br#"{"duration":"0ms"}"#).await;
        assert_eq!(r.status, 202, "{}\n{}", r.head, r.text());
        let monitor = r.must("location").to_owned();
        assert_eq!(call(s, "GET", "/sequence/one/200", b"").await.status, 200);
        // Full: one job and one sequence is the maximum.
        let r = call(s, "POST", "/jobs", br#"{"duration":"0ms"}"#).await;
        assert_eq!(r.status, 507, "{}\n{}", r.head, r.text());
        let r = call(s, "GET", "/sequence/two/200", b"").await;
        assert_eq!(r.status, 507, "{}\n{}", r.head, r.text());
        started.push((at, monitor));
    }

    // Where the sweeper runs, a new job and a new sequence fit once the old ones expired.
    let (at, _) = &started[0];
    let job_fits = async {
        loop {
            let r = call(&swept, "POST", "/jobs", br#"{"duration":"0ms"}"#).await;
            if r.status == 202 {
                return at.elapsed();
            }
            assert_eq!(r.status, 507, "{}\n{}", r.head, r.text());
            assert!(
                at.elapsed() < TTL + DEADLINE,
                "no job fits after {:?}",
                at.elapsed()
            );
            tokio::time::sleep(POLL).await;
        }
    };
    let after = job_fits.await;
    not_before_ttl("a second job fitted", after);
    let after = poll_until(&swept, "/sequence/two/200", 200, &[507], *at).await;
    not_before_ttl("a second sequence fitted", after);

    // Without a sweep, the expired job and sequence are gone to readers but keep their keys.
    let (at, monitor) = &started[1];
    poll_until(&unswept, monitor, 404, &[200, 303], *at).await;
    poll_until(&unswept, "/sequences/one", 404, &[200], *at).await;
    let r = call(&unswept, "POST", "/jobs", br#"{"duration":"0ms"}"#).await;
    assert_eq!(r.status, 507, "no sweep has freed the key:\n{}", r.head);
    let r = call(&unswept, "GET", "/sequence/two/200", b"").await;
    assert_eq!(r.status, 507, "no sweep has freed the key:\n{}", r.head);
}
