//! `statuslab-loadgen`: the load tool behind `bench/run.sh`'s delayed-requests part.
//!
//! It opens N connections (default 10,000) to a loopback server, at a steady rate (default
//! 5,000 a second) or all as fast as possible (`--rate 0`), and sends one
//! `GET /status/200?sleep=5000` on each as soon as it is open (or, with `--burst`, on all of
//! them at once after every connection is open). For every response it records the time from
//! the start of its request's write to the response's final byte and reports the lateness:
//! that elapsed time minus the delay asked for. Its own scheduling is part of what it measures, so
//! run it on a core of its own (`taskset`).
//!
//! It only talks to loopback addresses. Raise `ulimit -n` before running it with many
//! connections.

use anyhow::{Context as _, bail};
use clap::Parser;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "statuslab-loadgen",
    about = "Hold N concurrent delayed requests against a loopback server; report how late each response came."
)]
struct Args {
    /// Server address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Concurrent connections, one request each.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    connections: usize,
    /// Request target sent on each connection.
    #[arg(long, default_value = "/status/200?sleep=5000")]
    path: String,
    /// The delay the request asks for, in milliseconds: lateness = elapsed − this.
    #[arg(long, default_value_t = 5000)]
    expect_ms: u64,
    /// Status code every response must carry; others count as errors.
    #[arg(long, default_value_t = 200)]
    expect_status: u16,
    /// Connection attempts in flight at once (keeps the server's listen backlog from overflowing).
    #[arg(long, default_value_t = 256)]
    connect_parallel: usize,
    /// A response not complete this many seconds after its request was written is an error.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// Runtime threads (1: a single-threaded runtime, best pinned to a core of its own).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Start this many connections (each sending its request at once) per second, evenly
    /// spaced; 0 starts them all as fast as possible. Keep connections / rate below the
    /// delay so that all requests are in flight together and the responses do not overlap the
    /// ramp.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Open every connection first, then send all requests in one burst (connections opened
    /// early then wait idle, so keep the server's header timeout longer than the connect phase).
    #[arg(long)]
    burst: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also write every sample to this CSV file: write start, first byte and last byte in
    /// milliseconds since the first write, and the lateness.
    #[arg(long)]
    samples: Option<std::path::PathBuf>,
}

/// What one connection saw.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the request's write began: lateness counts from here, so time spent inside the
    /// write call (on loopback it also runs the kernel's receive path) counts against the
    /// server, never for it.
    start: Instant,
    /// When the request's last byte was handed to the kernel.
    written: Instant,
    /// When the response's first byte was read.
    first: Instant,
    /// When the response's last byte was read.
    last: Instant,
}

/// Why a connection produced no sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    Connect,
    Write,
    Read,
    Closed,
    Malformed,
    Status,
    Timeout,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Write => "write",
            Failure::Read => "read",
            Failure::Closed => "closed_early",
            Failure::Malformed => "malformed_response",
            Failure::Status => "unexpected_status",
            Failure::Timeout => "timeout",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: statuslab-loadgen only loads servers on this machine",
            args.addr
        );
    }
    if args.connections == 0 || args.connect_parallel == 0 || args.threads == 0 {
        bail!("--connections, --connect-parallel and --threads must be at least 1");
    }
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    let report = rt.block_on(run(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&args, &report);
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let request: Arc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: statuslab-loadgen\r\n\r\n",
        args.path, args.addr
    )
    .into_bytes()
    .into();
    let connecting = Arc::new(Semaphore::new(args.connect_parallel));
    // With --burst every task (connected or not) meets here, so all requests go out at once.
    let ready = args.burst.then(|| Arc::new(Barrier::new(args.connections)));
    let timeout = Duration::from_secs(args.timeout_secs);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    let start = tokio::time::Instant::now();
    for i in 0..args.connections {
        let at = (args.rate > 0)
            .then(|| start + Duration::from_nanos(i as u64 * 1_000_000_000 / args.rate));
        let connecting = Arc::clone(&connecting);
        let ready = ready.clone();
        let request = Arc::clone(&request);
        let addr = args.addr;
        let status = args.expect_status;
        // Unconstrained: tokio's cooperative budget would otherwise make a ready read or write
        // yield, and the time stamps would then measure the queue of other tasks.
        tasks.push(tokio::spawn(tokio::task::unconstrained(async move {
            if let Some(at) = at {
                tokio::time::sleep_until(at).await;
            }
            let stream = {
                let _permit = connecting.acquire().await.expect("never closed");
                TcpStream::connect(addr).await
            };
            if let Some(ready) = ready {
                ready.wait().await;
            }
            let mut stream = stream.map_err(|_| Failure::Connect)?;
            let _ = stream.set_nodelay(true);
            exchange(&mut stream, &request, status, timeout).await
        })));
    }
    let mut samples = Vec::with_capacity(args.connections);
    let mut failures: BTreeMap<Failure, usize> = BTreeMap::new();
    for task in tasks {
        match task.await {
            Ok(Ok(s)) => samples.push(s),
            Ok(Err(f)) => *failures.entry(f).or_default() += 1,
            Err(_) => *failures.entry(Failure::Read).or_default() += 1,
        }
    }
    let total = started.elapsed();
    if let Some(path) = &args.samples {
        write_samples(path, &samples, Duration::from_millis(args.expect_ms))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summarize(args, &samples, &failures, total))
}

/// Writes the request, then reads one complete response and times it.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    expect_status: u16,
    timeout: Duration,
) -> Result<Sample, Failure> {
    let start = Instant::now();
    write_now(stream, request).await?;
    let written = Instant::now();
    match tokio::time::timeout(timeout, read_response(stream, expect_status)).await {
        Ok(Ok((first, last))) => Ok(Sample {
            start,
            written,
            first,
            last,
        }),
        Ok(Err(f)) => Err(f),
        Err(_) => Err(Failure::Timeout),
    }
}

/// Writes the whole request, straight into the socket when it has room (it always has, for a
/// fresh connection and a short request), so the time stamp taken after it is the write's.
async fn write_now(stream: &mut TcpStream, mut request: &[u8]) -> Result<(), Failure> {
    while !request.is_empty() {
        match stream.try_write(request) {
            Ok(0) => return Err(Failure::Write),
            Ok(n) => request = &request[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                stream.writable().await.map_err(|_| Failure::Write)?;
            }
            Err(_) => return Err(Failure::Write),
        }
    }
    Ok(())
}

/// Reads one response (head plus `Content-Length` bytes); returns when its first and last
/// bytes were read.
async fn read_response(
    stream: &mut TcpStream,
    expect_status: u16,
) -> Result<(Instant, Instant), Failure> {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut first = None;
    let mut need: Option<usize> = None;
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.len().max(2048));
        }
        let n = stream.read_buf(&mut buf).await.map_err(|_| Failure::Read)?;
        let now = Instant::now();
        if n == 0 {
            return Err(Failure::Closed);
        }
        let first = *first.get_or_insert(now);
        if need.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let code = resp.code.unwrap_or(0);
                    if (100..200).contains(&code) {
                        // An interim response: drop it and read on to the final one.
                        buf.drain(..head_len);
                        continue;
                    }
                    if code != expect_status {
                        return Err(Failure::Status);
                    }
                    let length = resp
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .ok_or(Failure::Malformed)?;
                    need = Some(head_len + length);
                }
                Ok(httparse::Status::Partial) => continue,
                Err(_) => return Err(Failure::Malformed),
            }
        }
        if need.is_some_and(|need| buf.len() >= need) {
            return Ok((first, now));
        }
    }
}

/// Writes one CSV line per sample, in the order the requests were written.
fn write_samples(
    path: &std::path::Path,
    samples: &[Sample],
    expect: Duration,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| s.start);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "start_ms,first_byte_ms,last_byte_ms,lateness_ms")?;
    if let Some(t0) = sorted.first().map(|s| s.start) {
        let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
        for s in sorted {
            writeln!(
                out,
                "{:.3},{:.3},{:.3},{:.3}",
                ms(s.start),
                ms(s.first),
                ms(s.last),
                lateness_ms(s.start, s.last, expect)
            )?;
        }
    }
    out.flush()
}

/// Lateness in milliseconds of `at` against `from` + the expected delay.
fn lateness_ms(from: Instant, at: Instant, expect: Duration) -> f64 {
    let elapsed = at.duration_since(from);
    if elapsed >= expect {
        (elapsed - expect).as_secs_f64() * 1000.0
    } else {
        -((expect - elapsed).as_secs_f64() * 1000.0)
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn distribution(mut values: Vec<f64>) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let r = |v: f64| (v * 1000.0).round() / 1000.0;
    serde_json::json!({
        "min": r(percentile(&values, 0.0)),
        "p50": r(percentile(&values, 50.0)),
        "p90": r(percentile(&values, 90.0)),
        "p99": r(percentile(&values, 99.0)),
        "p999": r(percentile(&values, 99.9)),
        "max": r(values.last().copied().unwrap_or(f64::NAN)),
    })
}

fn summarize(
    args: &Args,
    samples: &[Sample],
    failures: &BTreeMap<Failure, usize>,
    total: Duration,
) -> serde_json::Value {
    let expect = Duration::from_millis(args.expect_ms);
    let last: Vec<f64> = samples
        .iter()
        .map(|s| lateness_ms(s.start, s.last, expect))
        .collect();
    let first: Vec<f64> = samples
        .iter()
        .map(|s| lateness_ms(s.start, s.first, expect))
        .collect();
    let write_call: Vec<f64> = samples
        .iter()
        .map(|s| s.written.duration_since(s.start).as_secs_f64() * 1000.0)
        .collect();
    let burst = match (
        samples.iter().map(|s| s.start).min(),
        samples.iter().map(|s| s.written).max(),
    ) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    let errors: serde_json::Map<String, serde_json::Value> = failures
        .iter()
        .map(|(f, n)| (f.name().to_owned(), serde_json::Value::from(*n)))
        .collect();
    // Most requests outstanding at once: written but not yet fully answered.
    let mut events: Vec<(Instant, i32)> = samples
        .iter()
        .flat_map(|s| [(s.start, 1), (s.last, -1)])
        .collect();
    events.sort_by_key(|&(t, delta)| (t, delta));
    let peak_in_flight = events
        .iter()
        .scan(0i64, |open, &(_, d)| {
            *open += i64::from(d);
            Some(*open)
        })
        .max()
        .unwrap_or(0);
    let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    serde_json::json!({
        "addr": args.addr.to_string(),
        "path": args.path,
        "connections": args.connections,
        "expect_ms": args.expect_ms,
        "threads": args.threads,
        "count": samples.len(),
        "errors": failures.values().sum::<usize>(),
        "errors_by_kind": errors,
        "lateness_ms": distribution(last),
        "first_byte_lateness_ms": distribution(first),
        "write_call_ms": distribution(write_call),
        "send_burst_ms": ms(burst),
        "peak_in_flight": peak_in_flight,
        "burst": args.burst,
        "rate": args.rate,
        "total_ms": ms(total),
        "loadgen_peak_rss_kib": own_peak_rss_kib(),
    })
}

/// This process's peak resident set (VmHWM), in KiB, where /proc has it.
fn own_peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn print_text(args: &Args, r: &serde_json::Value) {
    let d = |key: &str, q: &str| r[key][q].as_f64().unwrap_or(f64::NAN);
    println!(
        "{} connections to {} ({}), rate {}/s{}, {} runtime thread(s)",
        args.connections,
        args.addr,
        args.path,
        args.rate,
        if args.burst { ", burst" } else { "" },
        args.threads
    );
    println!(
        "count {}  errors {} {}",
        r["count"], r["errors"], r["errors_by_kind"]
    );
    println!(
        "lateness of the final byte (elapsed - {} ms): p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (min {:.3} ms)",
        args.expect_ms,
        d("lateness_ms", "p50"),
        d("lateness_ms", "p99"),
        d("lateness_ms", "max"),
        d("lateness_ms", "min"),
    );
    println!(
        "lateness of the first byte:                    p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        d("first_byte_lateness_ms", "p50"),
        d("first_byte_lateness_ms", "p99"),
        d("first_byte_lateness_ms", "max"),
    );
    println!(
        "time inside the request's write call:          p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        d("write_call_ms", "p50"),
        d("write_call_ms", "p99"),
        d("write_call_ms", "max"),
    );
    println!(
        "requests written over {} ms (first to last); at most {} in flight at once; total {} ms; loadgen peak RSS {} KiB",
        r["send_burst_ms"], r["peak_in_flight"], r["total_ms"], r["loadgen_peak_rss_kib"]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn lateness_is_signed() {
        let t = Instant::now();
        let e = Duration::from_millis(10);
        assert!((lateness_ms(t, t + Duration::from_millis(12), e) - 2.0).abs() < 1e-9);
        assert!((lateness_ms(t, t + Duration::from_millis(9), e) + 1.0).abs() < 1e-9);
    }
}
