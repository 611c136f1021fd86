//! Hostile-review finding (l), pending a configuration field: a client that pipelines many
//! requests and never reads must not hold a connection (and its buffers) forever. It needs
//! `Config.send_timeout: Duration` (how long a write may make no progress before the server
//! closes the connection), which does not exist yet.
//!
//! NOT compiled today: this file is deliberately absent from `main.rs`. Once `send_timeout`
//! exists, add `mod hostile_pending;` to `tests/it/main.rs`.

use crate::support::TestServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests pipelined by the client that never reads.
const PIPELINED: usize = 3000;

/// (l) With `send_timeout` = 1 s, a client that pipelines thousands of requests for a large
/// body and reads nothing is disconnected once the server's writes stop making progress: when
/// it finally reads (3 s later), it gets what was buffered and then the end of the connection
/// (a close or a reset) within 4 s, fewer than all the answers, and no wait for the idle
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_pipelines_and_never_reads_is_closed_after_send_timeout() {
    tokio::time::timeout(Duration::from_secs(14), async {
        let server = TestServer::start_with(|cfg| {
            cfg.send_timeout = Duration::from_secs(1);
            cfg.idle_timeout = Duration::from_secs(60);
        })
        .await;
        // The size of one answer, to tell whether all of them were delivered.
        let sample = server.get("/codes", &[]).await;
        assert_eq!(sample.status, 200);
        let answer_len = sample.head.len() + 4 + sample.body.len();
        let tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        let (mut rd, mut wr) = tcp.into_split();
        // The writer stalls as soon as the server stops reading requests (it is stuck writing
        // answers nobody reads); it gives up after 8 s or at the first error.
        let writer = tokio::spawn(async move {
            let one = b"GET /codes HTTP/1.1\r\nHost: x\r\n\r\n";
            let batch = one.repeat(100);
            let _ = tokio::time::timeout(Duration::from_secs(8), async {
                for _ in 0..PIPELINED / 100 {
                    if wr.write_all(&batch).await.is_err() {
                        break;
                    }
                }
            })
            .await;
            wr
        });
        // Never read, for three times the send timeout.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut received = 0usize;
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        let ended = loop {
            match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(n)) => received += n,
                Err(_) => break false,
            }
        };
        writer.abort();
        let answers = received / answer_len;
        assert!(
            ended,
            "the connection of a client that did not read for 3 s was still open 4 s later (send_timeout = 1 s); about {answers} answers had arrived by then"
        );
        assert!(
            received < PIPELINED * answer_len,
            "all {PIPELINED} answers were delivered ({received} bytes): the server never gave up on the stalled client"
        );
    })
    .await
    .expect("the test finishes within 14 s");
}
