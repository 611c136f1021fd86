//! Crash safety of the embedded store: a write the server acknowledged (2xx) survives SIGKILL.
//!
//! The real binary runs on a temporary `--data-dir`; client threads PUT fresh resources over
//! keep-alive connections; the process is killed with SIGKILL while writes are in flight, started
//! again on the same folder, and every acknowledged resource must read back byte for byte. This
//! is done for two kill cycles, so recovery after a kill is itself killed and recovered.
//!
//! The mixed test does the same for every kind of write (replace, delete, POST, merge patch, job,
//! sequence step, maintenance switch) beside rate-limit traffic, kills at seeded random points,
//! and kills the following starts again while they open the store.
//!
//! (SIGKILL loses the process, not the machine: this shows that an acknowledgment is sent only
//! after the write is committed, not that the commit survives a power cut.)

use crate::live::{Conn, Served};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Client threads writing at once: enough that the embedded store's group commit runs many
/// writers in one redb transaction with one fsync, which is what a kill must not break (a
/// batch committed just before the kill, whose answers it cut off, shows in the report as
/// in-flight writes "committed anyway").
const WRITERS: usize = 64;
/// Kill cycles.
const ROUNDS: usize = 3;
/// How long the writers run before SIGKILL.
const WRITE_FOR: Duration = Duration::from_millis(1500);
/// Fewest acknowledged writes per round for the test to mean something.
const MIN_ACKED: usize = 50;

/// The content stored under `name`: the name, plus some length that varies with it.
fn body_of(name: &str, n: usize) -> Vec<u8> {
    format!(
        "statuslab crash test: {name}\n{}\n",
        "x".repeat((n * 37) % 500)
    )
    .into_bytes()
}

/// What one writer thread saw.
#[derive(Default)]
struct Written {
    /// Names answered with 201, with their content.
    acked: Vec<(String, Vec<u8>)>,
    /// Names sent without a 201 (the kill cut them off).
    unacked: Vec<String>,
    /// Complete responses other than 201, by status.
    other: BTreeMap<u16, usize>,
    /// The error that ended the thread (the kill, normally).
    ended_by: Option<String>,
}

fn writer(served_addr: std::net::SocketAddr, id: usize, stop: Arc<AtomicBool>) -> Written {
    let mut w = Written::default();
    let mut conn = match Conn::open(served_addr) {
        Ok(c) => c,
        Err(e) => {
            w.ended_by = Some(format!("connect: {e}"));
            return w;
        }
    };
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("r-{id}-{n}");
        let body = body_of(&name, n);
        n += 1;
        let result = conn.request(
            "PUT",
            &format!("/resources/{name}"),
            &[("Content-Type", "text/plain; charset=utf-8")],
            &body,
        );
        match result {
            Ok(r) if r.status == 201 => w.acked.push((name, body)),
            Ok(r) => {
                *w.other.entry(r.status).or_default() += 1;
                w.unacked.push(name);
            }
            Err(e) => {
                // A status line that arrived before the kill is an acknowledgment even when
                // the rest of the response was cut off.
                if conn.last_status == Some(201) {
                    w.acked.push((name, body));
                } else {
                    w.unacked.push(name);
                }
                w.ended_by = Some(e.to_string());
                break;
            }
        }
    }
    w
}

/// Reads every acknowledged resource back; returns the descriptions of the missing or wrong ones.
fn verify(served: &Served, acked: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut conn = Conn::open(served.addr).expect("connect to the restarted server");
    let mut lost = Vec::new();
    for (name, body) in acked {
        let r = conn
            .request("GET", &format!("/resources/{name}"), &[], b"")
            .unwrap_or_else(|e| panic!("GET /resources/{name}: {e}"));
        if r.status != 200 {
            lost.push(format!("{name}: {} {:?}", r.status, r.text()));
        } else if &r.body != body {
            lost.push(format!(
                "{name}: 200 with other content: {:?} instead of {:?}",
                r.text(),
                String::from_utf8_lossy(body)
            ));
        } else if r.header("content-type") != Some("text/plain; charset=utf-8") {
            lost.push(format!(
                "{name}: 200 with Content-Type {:?}",
                r.header("content-type")
            ));
        }
    }
    lost
}

/// How many of `names` the server has (200), for the report only.
fn present(served: &Served, names: &[String]) -> usize {
    let mut conn = Conn::open(served.addr).expect("connect to the restarted server");
    names
        .iter()
        .filter(|name| {
            conn.request("GET", &format!("/resources/{name}"), &[], b"")
                .unwrap_or_else(|e| panic!("GET /resources/{name}: {e}"))
                .status
                == 200
        })
        .count()
}

/// The issue's "0 acknowledged writes lost across kill -9".
#[test]
fn no_acknowledged_write_is_lost_across_kill_9() {
    let dir = tempfile::tempdir().expect("temporary data dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.as_str(),
        "--no-access-log",
        // The default cap (10,000 keys) must not turn writes into 507 on a fast disk.
        "--max-keys",
        "100000000",
    ];
    let mut acked_total: Vec<(String, Vec<u8>)> = Vec::new();
    let mut served = Served::start(&args, &[]);
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..WRITERS)
            .map(|t| {
                let stop = Arc::clone(&stop);
                let addr = served.addr;
                std::thread::spawn(move || writer(addr, round * WRITERS + t, stop))
            })
            .collect();
        std::thread::sleep(WRITE_FOR);
        // The writers are mid-request: kill the server under them.
        served.kill_9();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Written> = threads
            .into_iter()
            .map(|t| t.join().expect("writer thread"))
            .collect();

        let acked: Vec<(String, Vec<u8>)> = results.iter().flat_map(|w| w.acked.clone()).collect();
        let unacked: Vec<String> = results.iter().flat_map(|w| w.unacked.clone()).collect();
        let mut other = BTreeMap::new();
        for w in &results {
            for (status, n) in &w.other {
                *other.entry(*status).or_insert(0usize) += n;
            }
        }
        let ended: Vec<_> = results.iter().map(|w| w.ended_by.clone()).collect();
        assert!(
            other.is_empty(),
            "round {round}: PUT of a fresh name answered other than 201: {other:?}; log:\n{}",
            served.final_log()
        );
        assert!(
            acked.len() >= MIN_ACKED,
            "round {round}: only {} writes acknowledged in {WRITE_FOR:?} (want >= {MIN_ACKED}); \
             writers ended by {ended:?}; log:\n{}",
            acked.len(),
            served.final_log()
        );

        // Restart on the same folder: this round's acknowledged writes, and every earlier
        // round's (which have now been through more than one kill), all read back.
        served = Served::start(&args, &[]);
        let lost = verify(&served, &acked);
        let lost_earlier = verify(&served, &acked_total);
        let in_flight_kept = present(&served, &unacked);
        eprintln!(
            "crash round {round}: {} writes acknowledged before SIGKILL, {} lost; \
             {} in flight unacknowledged ({in_flight_kept} of them committed anyway); \
             {} of {} earlier acknowledged writes lost",
            acked.len(),
            lost.len(),
            unacked.len(),
            lost_earlier.len(),
            acked_total.len(),
        );
        assert!(
            lost.is_empty() && lost_earlier.is_empty(),
            "round {round}: {} of {} acknowledged writes lost across kill -9; the first:\n{}",
            lost.len() + lost_earlier.len(),
            acked.len() + acked_total.len(),
            lost.iter()
                .chain(&lost_earlier)
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        acked_total.extend(acked);
    }
    eprintln!(
        "crash total: {} writes acknowledged over {ROUNDS} kills, 0 lost",
        acked_total.len()
    );
}

// ---- Every write kind, at random kill points ----

/// The admin token of the mixed crash test (admin covers read and write too).
const ADMIN: &str = "crash-admin-token";
const BEARER: &str = "Bearer crash-admin-token";
/// Kill rounds of the mixed test.
const MIXED_ROUNDS: usize = 3;
/// Spawn-then-SIGKILL cycles after each round's kill, before the clean restart.
const EARLY_KILLS: usize = 3;
/// Names each round's replace/patch writer cycles over.
const REPLACED_NAMES: usize = 4;
/// The seed of the mixed test unless `STATUSLAB_CRASH_SEED` gives another (to replay or explore).
const DEFAULT_SEED: u64 = 0x5747_0000_1abc;

/// splitmix64: a tiny deterministic generator, so a failing run can be replayed from its seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// A generator of its own for a thread, derived from this one.
    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}

/// What a resource must look like after the restart.
#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// 404: never created.
    Missing,
    /// 200 with exactly this ETag and content (an acknowledged create, replace or patch).
    Exact { etag: String, body: String },
    /// 200 with this content and any ETag (a create or replace cut off by the kill).
    Body(String),
    /// 200 with JSON equal to this (a merge patch cut off by the kill).
    Json(serde_json::Value),
    /// 410: an acknowledged delete (or one cut off by the kill).
    Gone,
}

/// A resource's expected state: what the last acknowledged write left, and what the write in
/// flight at the kill (if any) would leave; either may be found after the restart.
#[derive(Clone, Debug)]
struct Tracked {
    name: String,
    acked: Expect,
    in_flight: Option<Expect>,
}

/// Counts of one write kind in one round.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// Answered with the success status.
    acked: usize,
    /// Sent, then cut off by the kill: no complete answer.
    unacked: usize,
    /// Refused with 503 while maintenance mode was on (not written).
    refused: usize,
}

/// The write kinds of the mixed test, for the report.
const KINDS: [&str; 9] = [
    "put-create",
    "put-replace",
    "post-create",
    "patch",
    "delete",
    "job-submit",
    "sequence-step",
    "maintenance",
    "rate-limit",
];

/// What one client thread did in one round.
#[derive(Default)]
struct Log {
    tallies: BTreeMap<&'static str, Tally>,
    resources: Vec<Tracked>,
    /// Acknowledged job ids.
    jobs: Vec<String>,
    /// Sequence key, acknowledged steps, and whether a step was cut off.
    sequences: Vec<(String, u64, bool)>,
    /// Maintenance: the last acknowledged state, and the state a cut-off switch would leave.
    maintenance: Option<(Option<bool>, Option<bool>)>,
    /// Answers no write should get, described.
    unexpected: Vec<String>,
}

impl Log {
    fn tally(&mut self, kind: &'static str) -> &mut Tally {
        self.tallies.entry(kind).or_default()
    }
}

/// The result of one request of a client thread.
enum Sent {
    /// A complete answer.
    Answer(crate::live::Response),
    /// Sent, then cut off by the kill (the status line, if one arrived, is kept).
    CutOff(Option<u16>),
    /// Not sent: the server is gone (no connection).
    Down,
}

/// A client thread's keep-alive connection, opened again after an answer that closes it (a
/// refusal before the content is read does).
struct Client {
    addr: std::net::SocketAddr,
    conn: Option<Conn>,
}

impl Client {
    fn new(addr: std::net::SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Sent {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => match Conn::open(self.addr) {
                Ok(conn) => self.conn.insert(conn),
                Err(_) => return Sent::Down,
            },
        };
        match conn.request(method, target, headers, body) {
            Ok(r) => {
                if r.header("connection")
                    .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                {
                    self.conn = None;
                }
                Sent::Answer(r)
            }
            Err(_) => {
                let status = conn.last_status;
                self.conn = None;
                Sent::CutOff(status)
            }
        }
    }
}

/// A JSON document, unique per `(tag, n)`, of varying length.
fn json_body(tag: &str, n: u64, rng: &mut Rng) -> String {
    let pad = "p".repeat(rng.range(0, 300) as usize);
    serde_json::json!({ "tag": tag, "n": n, "pad": pad, "keep": { "a": n % 7 } }).to_string()
}

/// Counts an answer: `true` for the success status `ok`; a 503 (maintenance mode) is a
/// refusal; anything else is unexpected.
fn judge(
    log: &mut Log,
    kind: &'static str,
    what: &str,
    r: &crate::live::Response,
    ok: u16,
) -> bool {
    if r.status == ok {
        log.tally(kind).acked += 1;
        true
    } else {
        if r.status == 503 {
            log.tally(kind).refused += 1;
        } else {
            log.unexpected
                .push(format!("{what}: {} {}", r.status, r.text()));
        }
        false
    }
}

/// PUT (create, replace) and PATCH over a few names of its own, then POST-created names that
/// are deleted again (two of three), over one keep-alive connection until the kill.
fn resource_writer(
    addr: std::net::SocketAddr,
    round: usize,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> Log {
    let mut log = Log::default();
    let mut client = Client::new(addr);
    let json = [
        ("Content-Type", "application/json"),
        ("Authorization", BEARER),
    ];
    let patch_ct = [
        ("Content-Type", "application/merge-patch+json"),
        ("Authorization", BEARER),
    ];
    let auth = [("Authorization", BEARER)];
    let mut replaced: Vec<Tracked> = (0..REPLACED_NAMES)
        .map(|i| Tracked {
            name: format!("rep-{round}-{i}"),
            acked: Expect::Missing,
            in_flight: None,
        })
        .collect();
    let mut posted: Vec<Tracked> = Vec::new();
    // A POST-created name waiting for its DELETE.
    let mut to_delete: Option<usize> = None;
    let mut n = 0u64;
    'run: while !stop.load(Ordering::Relaxed) {
        n += 1;
        if let Some(i) = to_delete.take() {
            let t = &mut posted[i];
            let target = format!("/resources/{}", t.name);
            match client.send("DELETE", &target, &auth, b"") {
                Sent::Down => break 'run,
                Sent::Answer(r) => {
                    if judge(&mut log, "delete", &format!("DELETE {target}"), &r, 204) {
                        t.acked = Expect::Gone;
                    }
                }
                Sent::CutOff(status) => {
                    log.tally("delete").unacked += 1;
                    if status == Some(204) {
                        t.acked = Expect::Gone;
                    } else {
                        t.in_flight = Some(Expect::Gone);
                    }
                    break 'run;
                }
            }
            continue;
        }
        if rng.range(0, 3) == 0 {
            // POST a new name (Slug), and DELETE it next unless it is a keeper.
            let name = format!("post-{round}-{n}");
            let body = json_body(&name, n, &mut rng);
            let mut headers = json.to_vec();
            headers.push(("Slug", name.as_str()));
            posted.push(Tracked {
                name: name.clone(),
                acked: Expect::Missing,
                in_flight: None,
            });
            let i = posted.len() - 1;
            match client.send("POST", "/resources", &headers, body.as_bytes()) {
                Sent::Down => break 'run,
                Sent::Answer(r) => {
                    if judge(&mut log, "post-create", &format!("POST {name}"), &r, 201) {
                        let etag = r.header("etag").unwrap_or_default().to_owned();
                        posted[i].acked = Expect::Exact { etag, body };
                        if !n.is_multiple_of(3) {
                            to_delete = Some(i);
                        }
                    }
                }
                Sent::CutOff(status) => {
                    log.tally("post-create").unacked += 1;
                    // A 201 status line that arrived is an acknowledgment, ETag or not.
                    if status == Some(201) {
                        posted[i].acked = Expect::Body(body);
                    } else {
                        posted[i].in_flight = Some(Expect::Body(body));
                    }
                    break 'run;
                }
            }
            continue;
        }
        let t = &mut replaced[rng.range(0, REPLACED_NAMES as u64) as usize];
        let target = format!("/resources/{}", t.name);
        let existing = match &t.acked {
            Expect::Exact { body, .. } => Some(body.clone()),
            _ => None,
        };
        match existing {
            Some(old) if rng.range(0, 5) < 2 => {
                // A merge patch: sets `n`, removes `pad` or sets it anew.
                let patch = if n.is_multiple_of(2) {
                    serde_json::json!({ "n": n, "pad": null, "patched": true })
                } else {
                    serde_json::json!({ "n": n, "pad": "q".repeat(n as usize % 50) })
                };
                let mut want: serde_json::Value = serde_json::from_str(&old).expect("JSON");
                merge(&mut want, &patch);
                let patch = patch.to_string();
                match client.send("PATCH", &target, &patch_ct, patch.as_bytes()) {
                    Sent::Down => break 'run,
                    Sent::Answer(r) => {
                        if judge(&mut log, "patch", &format!("PATCH {target}"), &r, 200) {
                            let got: serde_json::Value =
                                serde_json::from_slice(&r.body).unwrap_or_default();
                            if got != want {
                                log.unexpected.push(format!(
                                    "PATCH {target} answered {got} instead of {want}"
                                ));
                            }
                            let etag = r.header("etag").unwrap_or_default().to_owned();
                            t.acked = Expect::Exact {
                                etag,
                                body: r.text(),
                            };
                        }
                    }
                    Sent::CutOff(status) => {
                        log.tally("patch").unacked += 1;
                        if status == Some(200) {
                            t.acked = Expect::Json(want);
                        } else {
                            t.in_flight = Some(Expect::Json(want));
                        }
                        break 'run;
                    }
                }
            }
            existing => {
                let (kind, ok) = if existing.is_some() {
                    ("put-replace", 204)
                } else {
                    ("put-create", 201)
                };
                let body = json_body(&t.name, n, &mut rng);
                match client.send("PUT", &target, &json, body.as_bytes()) {
                    Sent::Down => break 'run,
                    Sent::Answer(r) => {
                        if judge(&mut log, kind, &format!("PUT {target}"), &r, ok) {
                            let etag = r.header("etag").unwrap_or_default().to_owned();
                            t.acked = Expect::Exact { etag, body };
                        }
                    }
                    Sent::CutOff(status) => {
                        log.tally(kind).unacked += 1;
                        if status == Some(ok) {
                            t.acked = Expect::Body(body);
                        } else {
                            t.in_flight = Some(Expect::Body(body));
                        }
                        break 'run;
                    }
                }
            }
        }
    }
    log.resources = replaced.into_iter().chain(posted).collect();
    log
}

/// JSON merge patch (RFC 7386), the test's own.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    let t = target.as_object_mut().expect("an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
        }
    }
}

/// Submits jobs (long-running, so they read back as running) until the kill.
fn job_writer(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let mut client = Client::new(addr);
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", BEARER),
    ];
    while !stop.load(Ordering::Relaxed) {
        let body = br#"{"duration": "50m", "result": {"status": 201, "body": {"done": true}}}"#;
        match client.send("POST", "/jobs", &headers, body) {
            Sent::Down => break,
            Sent::Answer(r) => {
                if judge(&mut log, "job-submit", "POST /jobs", &r, 202) {
                    let id = r
                        .header("location")
                        .and_then(|l| l.strip_prefix("/jobs/"))
                        .unwrap_or_default()
                        .to_owned();
                    log.jobs.push(id);
                }
            }
            Sent::CutOff(_) => {
                log.tally("job-submit").unacked += 1;
                break;
            }
        }
    }
    log
}

/// Steps one sequence of its own until the kill.
fn sequence_writer(addr: std::net::SocketAddr, round: usize, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let mut client = Client::new(addr);
    let key = format!("seq-{round}");
    let target = format!("/sequence/{key}/500,503,201,200");
    let (mut acked, mut cut) = (0u64, false);
    while !stop.load(Ordering::Relaxed) {
        match client.send("GET", &target, &[], b"") {
            Sent::Down => break,
            // Every answer of the sequence carries its position; a maintenance 503 does not.
            Sent::Answer(r) if r.header("sequence-step").is_some() => {
                acked += 1;
                log.tally("sequence-step").acked += 1;
            }
            Sent::Answer(r) if r.status == 503 => log.tally("sequence-step").refused += 1,
            Sent::Answer(r) => {
                log.unexpected
                    .push(format!("GET {target}: {} {}", r.status, r.text()))
            }
            Sent::CutOff(_) => {
                log.tally("sequence-step").unacked += 1;
                cut = true;
                break;
            }
        }
    }
    log.sequences.push((key, acked, cut));
    log
}

/// Switches maintenance on and straight off again now and then (while it is on, the other
/// writers get 503s), until the kill.
fn maintenance_writer(addr: std::net::SocketAddr, mut rng: Rng, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let mut client = Client::new(addr);
    let auth = [("Authorization", BEARER)];
    let (mut last, mut in_flight) = (None, None);
    'run: while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(rng.range(50, 250)));
        for (method, on) in [("PUT", true), ("DELETE", false)] {
            match client.send(method, "/admin/maintenance", &auth, b"") {
                Sent::Down => break 'run,
                Sent::Answer(r) => {
                    if judge(
                        &mut log,
                        "maintenance",
                        &format!("{method} /admin/maintenance"),
                        &r,
                        204,
                    ) {
                        last = Some(on);
                    }
                }
                Sent::CutOff(status) => {
                    log.tally("maintenance").unacked += 1;
                    if status == Some(204) {
                        last = Some(on);
                    } else {
                        in_flight = Some(on);
                    }
                    break 'run;
                }
            }
        }
    }
    log.maintenance = Some((last, in_flight));
    log
}

/// Rate-limit traffic (committed without an fsync) until the kill.
fn rate_writer(addr: std::net::SocketAddr, id: usize, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let mut client = Client::new(addr);
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let target = format!("/rate-limit/1000000/1s?key=rl-{id}-{}", n % 16);
        match client.send("GET", &target, &[], b"") {
            Sent::Down => break,
            Sent::Answer(r) => {
                judge(&mut log, "rate-limit", &format!("GET {target}"), &r, 200);
            }
            Sent::CutOff(_) => {
                log.tally("rate-limit").unacked += 1;
                break;
            }
        }
    }
    log
}

/// Checks one resource against its expectation after a restart; on success the expectation
/// becomes exactly what was found, so that later rounds check it exactly.
fn check_resource(conn: &mut Conn, t: &mut Tracked) -> Result<bool, String> {
    let r = conn
        .request(
            "GET",
            &format!("/resources/{}", t.name),
            &[("Authorization", BEARER)],
            b"",
        )
        .map_err(|e| format!("GET {}: {e}", t.name))?;
    let matches = |e: &Expect| match e {
        Expect::Missing => r.status == 404,
        Expect::Gone => r.status == 410,
        Expect::Exact { etag, body } => {
            r.status == 200 && r.header("etag") == Some(etag.as_str()) && r.body == body.as_bytes()
        }
        Expect::Body(body) => r.status == 200 && r.body == body.as_bytes(),
        Expect::Json(want) => {
            r.status == 200
                && serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .as_ref()
                    == Some(want)
        }
    };
    let took_in_flight = if matches(&t.acked) {
        false
    } else if t.in_flight.as_ref().is_some_and(matches) {
        true
    } else {
        return Err(format!(
            "{}: {} ETag {:?} {:?}; want {:?} (or, from the write in flight, {:?})",
            t.name,
            r.status,
            r.header("etag"),
            r.text(),
            t.acked,
            t.in_flight
        ));
    };
    t.acked = match r.status {
        200 => Expect::Exact {
            etag: r.header("etag").unwrap_or_default().to_owned(),
            body: r.text(),
        },
        410 => Expect::Gone,
        _ => Expect::Missing,
    };
    t.in_flight = None;
    Ok(took_in_flight)
}

/// Starts the binary and SIGKILLs it `after` later, whatever it is doing (opening the store,
/// most likely); returns whether it had reported its address by then.
fn spawn_and_kill(args: &[&str], after: Duration) -> bool {
    use std::io::Read as _;
    let mut child = crate::live::command()
        .arg("serve")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn statuslab");
    std::thread::sleep(after);
    child.kill().expect("SIGKILL statuslab");
    child.wait().expect("reap statuslab");
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr);
    stderr.contains("listening on")
}

/// Every kind of write the server acknowledges survives SIGKILL at a random point: creates
/// (PUT, POST), replaces (the exact ETag and content), merge patches, deletes (410 after the
/// restart), job submissions, sequence steps (the position never falls behind what was
/// answered) and maintenance switches (the last acknowledged state), mixed with rate-limit
/// traffic whose commits skip the fsync. After each kill the binary is also started and killed
/// again within milliseconds (while it opens the store) before a clean restart.
#[test]
fn every_write_kind_survives_kill_9_at_random_points() {
    let seed = std::env::var("STATUSLAB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temporary data dir");
    let data_dir = dir.path().to_str().expect("UTF-8 temp path").to_owned();
    let token = format!("{ADMIN}:admin");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.as_str(),
        "--no-access-log",
        "--max-keys",
        "100000000",
        "--token",
        token.as_str(),
    ];
    let mut resources: Vec<Tracked> = Vec::new();
    let mut jobs: Vec<String> = Vec::new();
    // Sequence key → the fewest and most steps it may have served.
    let mut sequences: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut totals: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let (mut early_kills, mut early_before_listening) = (0usize, 0usize);
    let started = Instant::now();
    let mut served = Served::start(&args, &[]);
    // Early kills land anywhere in a start: from spawn to about when it first listened.
    let start_ms = (started.elapsed().as_millis() as u64).max(5);
    for round in 0..MIXED_ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = served.addr;
        let mut threads: Vec<std::thread::JoinHandle<Log>> = Vec::new();
        {
            let (s, r) = (Arc::clone(&stop), rng.fork());
            threads.push(std::thread::spawn(move || {
                resource_writer(addr, round, r, s)
            }));
            let s = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || job_writer(addr, s)));
            let s = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || sequence_writer(addr, round, s)));
            let (s, r) = (Arc::clone(&stop), rng.fork());
            threads.push(std::thread::spawn(move || maintenance_writer(addr, r, s)));
            for id in 0..2 {
                let s = Arc::clone(&stop);
                threads.push(std::thread::spawn(move || rate_writer(addr, id, s)));
            }
        }
        let kill_after = Duration::from_millis(rng.range(700, 2000));
        std::thread::sleep(kill_after);
        served.kill_9();
        stop.store(true, Ordering::Relaxed);
        let logs: Vec<Log> = threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect();

        let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
        let mut unexpected = Vec::new();
        let mut maintenance = (None, None);
        for log in logs {
            for (kind, t) in log.tallies {
                let e = tallies.entry(kind).or_default();
                e.acked += t.acked;
                e.unacked += t.unacked;
                e.refused += t.refused;
            }
            unexpected.extend(log.unexpected);
            resources.extend(log.resources);
            jobs.extend(log.jobs);
            for (key, acked, cut) in log.sequences {
                sequences.insert(key, (acked, acked + u64::from(cut)));
            }
            if let Some(m) = log.maintenance {
                maintenance = m;
            }
        }
        let report: Vec<String> = KINDS
            .iter()
            .map(|k| {
                let t = tallies.get(k).copied().unwrap_or_default();
                format!("{k} {}/{}/{}", t.acked, t.unacked, t.refused)
            })
            .collect();
        eprintln!(
            "mixed crash round {round} (seed {seed}, kill after {kill_after:?}), \
             acknowledged/cut off/refused in maintenance: {}",
            report.join(", ")
        );
        assert!(
            unexpected.is_empty(),
            "round {round} (seed {seed}): unexpected answers:\n{}\nlog:\n{}",
            unexpected.join("\n"),
            served.final_log()
        );
        // Cut off in a durable write (rate-limit requests, always in flight, do not count).
        let cut_off: usize = tallies
            .iter()
            .filter(|(kind, _)| **kind != "rate-limit")
            .map(|(_, t)| t.unacked)
            .sum();
        let acked: usize = tallies.values().map(|t| t.acked).sum();
        assert!(
            cut_off >= 1,
            "round {round} (seed {seed}): the kill cut no durable write off, so it landed \
             between writes, not in one: {report:?}"
        );
        assert!(
            acked >= 10,
            "round {round} (seed {seed}): only {acked} writes acknowledged: {report:?}"
        );
        for (kind, t) in tallies {
            let e = totals.entry(kind).or_default();
            e.acked += t.acked;
            e.unacked += t.unacked;
            e.refused += t.refused;
        }

        // Kill the next starts while they open the store after the kill.
        for _ in 0..EARLY_KILLS {
            let after = Duration::from_millis(rng.range(0, start_ms));
            early_kills += 1;
            if !spawn_and_kill(&args, after) {
                early_before_listening += 1;
            }
        }

        served = Served::start(&args, &[]);
        let mut conn = Conn::open(served.addr).expect("connect to the restarted server");
        let auth = [("Authorization", BEARER)];
        // Maintenance first: while it is on, every other route answers 503.
        let r = conn
            .request("GET", "/admin/maintenance", &auth, b"")
            .expect("GET /admin/maintenance");
        assert_eq!(r.status, 200, "{r:?}");
        let on = crate::json(&r.text())["maintenance"] == true;
        let (last, in_flight) = maintenance;
        let want = last.unwrap_or(false);
        assert!(
            on == want || in_flight == Some(on),
            "round {round} (seed {seed}): maintenance is {on} after the restart; the last \
             acknowledged switch left it {want} (one in flight: {in_flight:?})"
        );
        if on {
            let r = conn
                .request("DELETE", "/admin/maintenance", &auth, b"")
                .expect("DELETE /admin/maintenance");
            assert_eq!(r.status, 204, "{r:?}");
        }

        let mut lost = Vec::new();
        let mut in_flight_kept = 0usize;
        for t in resources.iter_mut() {
            match check_resource(&mut conn, t) {
                Ok(kept) => in_flight_kept += usize::from(kept),
                Err(e) => lost.push(e),
            }
        }
        for id in &jobs {
            let r = conn
                .request("GET", &format!("/jobs/{id}"), &auth, b"")
                .expect("GET a job");
            let body = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap_or_default();
            if r.status != 200 || body["id"] != id.as_str() || body["state"] != "running" {
                lost.push(format!("job {id}: {} {}", r.status, r.text()));
            }
        }
        for (key, (least, most)) in sequences.iter_mut() {
            let r = conn
                .request("GET", &format!("/sequences/{key}"), &[], b"")
                .expect("GET a sequence");
            let served_steps = crate::json(&r.text())["served"].as_u64();
            match served_steps {
                Some(n) if r.status == 200 && (*least..=*most).contains(&n) => {
                    in_flight_kept += usize::from(n > *least);
                    (*least, *most) = (n, n);
                }
                _ if r.status == 404 && *least == 0 => {}
                _ => lost.push(format!(
                    "sequence {key}: {} {} (acknowledged {least} steps, at most {most} sent)",
                    r.status,
                    r.text()
                )),
            }
        }
        eprintln!(
            "mixed crash round {round}: after {EARLY_KILLS} more kills while starting, {} \
             resources, {} jobs, {} sequences checked, {} lost; {in_flight_kept} writes cut \
             off by the kill were committed anyway",
            resources.len(),
            jobs.len(),
            sequences.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "round {round} (seed {seed}): acknowledged writes lost or wrong across kill -9:\n{}",
            lost.join("\n")
        );
    }
    let report: Vec<String> = KINDS
        .iter()
        .map(|k| {
            let t = totals.get(k).copied().unwrap_or_default();
            format!("{k} {}/{}/{}", t.acked, t.unacked, t.refused)
        })
        .collect();
    eprintln!(
        "mixed crash total over {MIXED_ROUNDS} kills (acknowledged/cut off/refused): {}; \
         {early_before_listening} of {early_kills} kills while starting (0-{start_ms} ms after \
         spawn) landed before it listened",
        report.join(", ")
    );
    // Every kind was acknowledged at least once, so each was actually put to the test.
    let missing: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| totals.get(k).is_none_or(|t| t.acked == 0))
        .collect();
    assert!(
        missing.is_empty(),
        "no acknowledged {missing:?} in {MIXED_ROUNDS} rounds (seed {seed}): {report:?}"
    );
    assert!(
        early_before_listening >= 1,
        "none of the {early_kills} early kills landed before the server listened"
    );
}
