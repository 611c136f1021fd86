//! One request through a retrying reqwest client, for the clients matrix
//! (`scripts/clients-matrix.py`): TrueLayer's `reqwest-retry` as its documentation shows it, or
//! this crate's middleware in table mode. Prints `{"status": N}` or `{"error": "…"}`.
//!
//! ```text
//! cargo run -p statuslab-retry --example retry_client -- statuslab-retry GET http://127.0.0.1:8080/sequence/k/429,200
//! ```

use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use statuslab_retry::reqwest::RetryMiddleware;
use statuslab_retry::{Backoff, Rules};
use std::time::Duration;

fn client(which: &str) -> Result<ClientWithMiddleware, String> {
    let inner = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let builder = ClientBuilder::new(inner);
    Ok(match which {
        "reqwest-retry" => builder
            .with(RetryTransientMiddleware::new_with_policy(
                ExponentialBackoff::builder().build_with_max_retries(3),
            ))
            .build(),
        "statuslab-retry" => builder
            .with(
                RetryMiddleware::new(Rules::new(), Backoff::default().max_attempts(4))
                    .read_content(true),
            )
            .build(),
        other => {
            return Err(format!(
                "unknown client {other:?}: reqwest-retry or statuslab-retry"
            ));
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [which, method, url, rest @ ..] = args.as_slice() else {
        eprintln!("usage: retry_client (reqwest-retry|statuslab-retry) METHOD URL [BODY]");
        std::process::exit(2);
    };
    let outcome = async {
        let client = client(which)?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = client.request(method, url);
        if let Some(body) = rest.first() {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(|e| format!("{e:#}"))?;
        let status = response.status().as_u16();
        response.bytes().await.map_err(|e| format!("{e:#}"))?;
        Ok::<u16, String>(status)
    }
    .await;
    match outcome {
        Ok(status) => println!("{}", serde_json::json!({ "status": status })),
        Err(error) => println!("{}", serde_json::json!({ "error": error, "status": null })),
    }
}
