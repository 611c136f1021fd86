//! A [`reqwest_middleware::Middleware`] that follows the status-code table.
//!
//! [`RetryMiddleware`] decides each answer with [`Rules`], waits out `Retry-After` (seconds or
//! an HTTP date, up to [`Rules::max_retry_after`]) or a [`Backoff`] delay, and retries
//! connection failures only for an idempotent method or a request with an `Idempotency-Key`.
//! A request whose body cannot be cloned (a stream) is sent once.
//!
//! The crate turns on no reqwest feature: TLS (`rustls`, say) and the rest are the
//! application's choice, on its own reqwest dependency.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use statuslab_retry::reqwest::RetryMiddleware;
//! use statuslab_retry::{Backoff, Rules};
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryMiddleware::new(Rules::new(), Backoff::default()))
//!     .build();
//! # let _ = client;
//! ```

use crate::{Advice, Backoff, Rules};
use ::reqwest::{Request, Response, ResponseBuilderExt};
use http::Extensions;
use reqwest_middleware::{Middleware, Next};

/// A reqwest middleware that follows the status-code table; see the [module](self) docs.
#[derive(Debug, Clone, Default)]
pub struct RetryMiddleware {
    rules: Rules,
    backoff: Backoff,
    read_content: bool,
}

impl RetryMiddleware {
    /// A middleware with these rules and backoff.
    pub fn new(rules: Rules, backoff: Backoff) -> RetryMiddleware {
        RetryMiddleware {
            rules,
            backoff,
            read_content: false,
        }
    }

    /// With `true`, the middleware reads each response's content before deciding, so that a
    /// connection that breaks in the middle of it (a truncated body) counts as a connection
    /// failure and is retried like one; the caller gets the content from memory. Off by
    /// default: the content then streams to the caller, who sees such a failure itself.
    pub fn read_content(mut self, read: bool) -> RetryMiddleware {
        self.read_content = read;
        self
    }
}

/// Whether a reqwest error is a failure of the connection (no answer, or part of one), as
/// opposed to one of the request's own making (a bad URL, too many redirects).
fn is_connection_failure(e: &::reqwest::Error) -> bool {
    e.is_connect() || e.is_request() || e.is_timeout() || e.is_body() || e.is_decode()
}

/// The response with its content read into memory (url, status, version and headers kept).
async fn buffered(res: Response) -> reqwest_middleware::Result<Response> {
    let mut builder = http::Response::builder()
        .status(res.status())
        .version(res.version())
        .url(res.url().clone());
    if let Some(headers) = builder.headers_mut() {
        *headers = res.headers().clone();
    }
    let content = res.bytes().await?;
    let res = builder
        .body(content)
        .map_err(reqwest_middleware::Error::middleware)?;
    Ok(Response::from(res))
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut made = 0u32;
        loop {
            let Some(attempt) = req.try_clone() else {
                return next.run(req, extensions).await;
            };
            made = made.saturating_add(1);
            let mut outcome = next.clone().run(attempt, extensions).await;
            if self.read_content {
                outcome = match outcome {
                    Ok(res) => buffered(res).await,
                    Err(e) => Err(e),
                };
            }
            let advice = match &outcome {
                Ok(res) => {
                    self.rules
                        .advise(req.method(), req.headers(), res.status(), res.headers())
                }
                Err(reqwest_middleware::Error::Reqwest(e)) if is_connection_failure(e) => {
                    Advice::for_connection_error(req.method(), req.headers())
                }
                Err(_) => Advice::DoNotRepeat,
            };
            match self.backoff.next_delay(advice, made) {
                Some(wait) => {
                    // The failed answer is dropped before the wait, freeing its connection.
                    drop(outcome);
                    tokio::time::sleep(wait).await;
                }
                None => return outcome,
            }
        }
    }
}
