//! Crash safety of the embedded store: a write the server acknowledged (201) survives SIGKILL.
//!
//! The real binary runs on a temporary `--data-dir`; client threads PUT fresh resources over
//! keep-alive connections; the process is killed with SIGKILL while writes are in flight, started
//! again on the same folder, and every acknowledged resource must read back byte for byte. This
//! is done for two kill cycles, so recovery after a kill is itself killed and recovered.
//!
//! (SIGKILL loses the process, not the machine: this shows that an acknowledgment is sent only
//! after the write is committed, not that the commit survives a power cut.)

use crate::live::{Conn, Served};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Client threads writing at once.
const WRITERS: usize = 4;
/// Kill cycles.
const ROUNDS: usize = 2;
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

/// The "0 acknowledged writes lost across kill -9".
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
