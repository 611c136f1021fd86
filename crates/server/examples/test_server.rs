//! A client's retry logic tested against an embedded statuslab server: the pattern for a
//! `#[test]` in another project, as a program.
//!
//! ```sh
//! cargo run -p statuslab-server --example test_server
//! ```
//!
//! The server runs on `127.0.0.1:0` with its state in memory, on a thread of its own; it stops
//! when `server` is dropped. The "client under test" here is a small loop over a raw
//! `TcpStream`; in a real test it is your HTTP client pointed at `server.base_url()`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// One `GET` on its own connection: the status code, the `Retry-After` seconds if any, and the
/// body.
fn get(addr: SocketAddr, target: &str) -> std::io::Result<(u16, Option<u64>, String)> {
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())?
    });
    Ok((status, retry_after, body.to_owned()))
}

fn main() -> std::io::Result<()> {
    let server = statuslab_server::testing::Builder::new()
        .config(|c| c.default_retry_after = 1)
        .spawn();
    println!("statuslab on {}", server.base_url());

    // The client under test: retry a 429 after its Retry-After, at most three times.
    let target = "/sequence/demo/429,200";
    let mut attempts = 0;
    let status = loop {
        attempts += 1;
        let (status, retry_after, _) = get(server.addr(), target)?;
        match retry_after {
            Some(secs) if status == 429 && attempts < 3 => {
                std::thread::sleep(Duration::from_secs(secs));
            }
            _ => break status,
        }
    };
    assert_eq!(status, 200, "the client gets through after waiting");

    // The server's verdict on how the client retried.
    let (_, _, report) = get(server.addr(), "/sequences/demo/report")?;
    println!("after {attempts} attempts: {report}");
    assert!(report.contains("\"verdict\":\"clean\""), "{report}");
    Ok(())
}
