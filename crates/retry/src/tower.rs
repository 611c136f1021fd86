//! A [`tower::retry::Policy`](::tower::retry::Policy) that follows the status-code table.
//!
//! [`RetryPolicy`] decides each answer with [`Rules`], waits out `Retry-After` or a
//! [`Backoff`] delay before the next attempt (its retry future sleeps on tokio's timer), stops
//! after the backoff's attempts, and draws every retry from a shared retry budget
//! ([`TpsBudget`]), so that a failing server sees at most a fraction more traffic. An `Err`
//! from the inner service counts as a connection failure: retried only for an idempotent
//! method or a request with an `Idempotency-Key`.
//!
//! It works on `http::Request<B>` (with a cloneable body, such as `Full<Bytes>` or `String`)
//! and `http::Response<_>`: hyper's client, or any service speaking the `http` types.
//!
//! ```
//! use statuslab_retry::tower::RetryPolicy;
//! use statuslab_retry::{Backoff, Mode, Rules};
//! use std::time::Duration;
//! use tower::retry::RetryLayer;
//!
//! let policy = RetryPolicy::new(
//!     Rules::new().mode(Mode::Table).max_retry_after(Duration::from_secs(30)),
//!     Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).max_attempts(4),
//! );
//! let layer = RetryLayer::new(policy);
//! # let _ = layer;
//! ```

use crate::{Advice, Backoff, Rules};
use ::tower::retry::Policy;
use ::tower::retry::budget::{Budget, TpsBudget};
use std::sync::Arc;

/// A tower retry policy that follows the status-code table; see the [module](self) docs.
///
/// Cloned per request by tower's `Retry` service: the attempt count is the request's own, the
/// budget is shared.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    rules: Rules,
    backoff: Backoff,
    budget: Arc<TpsBudget>,
    made: u32,
}

impl RetryPolicy {
    /// A policy with these rules and backoff and tower's default budget (retries up to 20% of
    /// the requests of the last 10 s, plus 10 a second).
    pub fn new(rules: Rules, backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            rules,
            backoff,
            budget: Arc::new(TpsBudget::default()),
            made: 0,
        }
    }

    /// This policy drawing its retries from `budget`, which may be shared with other policies.
    pub fn budget(mut self, budget: Arc<TpsBudget>) -> RetryPolicy {
        self.budget = budget;
        self
    }

    /// The rules the policy decides with.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The backoff between attempts.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }
}

impl<B, ResB, E> Policy<http::Request<B>, http::Response<ResB>, E> for RetryPolicy
where
    B: Clone,
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut http::Request<B>,
        result: &mut Result<http::Response<ResB>, E>,
    ) -> Option<Self::Future> {
        if self.made == 0 {
            // Each request, not each retry, earns the budget its share.
            self.budget.deposit();
        }
        self.made = self.made.saturating_add(1);
        let advice = match result {
            Ok(res) => self
                .rules
                .advise(req.method(), req.headers(), res.status(), res.headers()),
            Err(_) => Advice::for_connection_error(req.method(), req.headers()),
        };
        let wait = self.backoff.next_delay(advice, self.made)?;
        if !self.budget.withdraw() {
            return None;
        }
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &http::Request<B>) -> Option<http::Request<B>> {
        Some(req.clone())
    }
}
