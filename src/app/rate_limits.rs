//! Whether a request may pass its rate limits (api.md "Rate limits"): one decision in Redis per
//! policy and subject, shared by every API instance. While Redis cannot answer, the policies
//! that must never become unlimited (sign-ups and logins, [`Policy::holds_without_redis`])
//! are counted by each process on its own; the others let the request through (what they
//! guard needs Redis and answers 503 without it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::error::{AppError, ErrorKind};
use crate::config::RateLimitSettings;
use crate::domain::rate_limit::{Decision, Limited, Policy, Quota, gcra};
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;
use crate::infra::redis::rate_limits;

/// Keys the per-process fallback remembers at most (it only runs while Redis is down).
const FALLBACK_KEYS: usize = 100_000;

pub struct RateLimiter {
    settings: RateLimitSettings,
    redis: Redis,
    keys: Keys,
    /// Per-process TATs (ms since `started`) while Redis is down, shared by every thread.
    fallback: Arc<Mutex<HashMap<(Policy, String), f64>>>,
    started: Instant,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, redis: Redis, keys: Keys) -> Self {
        Self {
            settings,
            redis,
            keys,
            fallback: Arc::default(),
            started: Instant::now(),
        }
    }

    /// The same limiter over another Redis handle (each HTTP worker thread has its own).
    pub fn with_redis(&self, redis: Redis) -> Self {
        Self {
            settings: self.settings.clone(),
            redis,
            keys: self.keys.clone(),
            fallback: self.fallback.clone(),
            started: self.started,
        }
    }

    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// Counts one request of `subject` under `policy`. `Ok(None)`: the policy is off;
    /// `Ok(Some(_))`: allowed, with what is left; `Err`: 429 `rate_limited`.
    pub async fn hit(&self, policy: Policy, subject: &str) -> Result<Option<Limited>, AppError> {
        self.decide(policy, subject, 1).await
    }

    /// Asks without counting: would a request of `subject` pass now? (Failed logins are counted
    /// only when they fail, but an account at its limit is refused before the password is
    /// even checked.)
    pub async fn ask(&self, policy: Policy, subject: &str) -> Result<Option<Limited>, AppError> {
        self.decide(policy, subject, 0).await
    }

    async fn decide(&self, policy: Policy, subject: &str, cost: u32) -> Result<Option<Limited>, AppError> {
        let Some(quota) = self.settings.quota(policy) else {
            return Ok(None);
        };
        let decision = match rate_limits::decide(&self.redis, &self.keys, policy, subject, quota, cost).await {
            Ok(decision) => decision,
            Err(err) if policy.holds_without_redis() => {
                tracing::warn!(policy = policy.name(), error = %format!("{err:#}"), "rate limit counted in this process: Redis is unavailable");
                self.decide_here(policy, subject, quota, cost)
            }
            Err(err) => {
                tracing::debug!(policy = policy.name(), error = %format!("{err:#}"), "rate limit skipped: Redis is unavailable");
                return Ok(None);
            }
        };
        let limited = Limited {
            policy,
            quota,
            decision,
        };
        if decision.allowed {
            Ok(Some(limited))
        } else {
            metrics::counter!("rate_limited_total", "policy" => policy.name()).increment(1);
            Err(rate_limited(limited))
        }
    }

    fn decide_here(&self, policy: Policy, subject: &str, quota: Quota, cost: u32) -> Decision {
        let now = self.started.elapsed().as_secs_f64() * 1000.0;
        let mut tats = self.fallback.lock().unwrap_or_else(|e| e.into_inner());
        if tats.len() >= FALLBACK_KEYS {
            tats.retain(|_, tat| *tat > now);
        }
        let key = (policy, subject.to_owned());
        let (decision, next) = gcra(quota, tats.get(&key).copied(), now, cost);
        if let Some(next) = next {
            tats.insert(key, next);
        }
        decision
    }
}

/// 429 `rate_limited`, with `Retry-After` and the policy's headers (added by the API).
fn rate_limited(limited: Limited) -> AppError {
    let mut err = AppError::new(
        ErrorKind::TooManyRequests,
        "rate_limited",
        format!(
            "too many requests ({} per {} s, policy {}); retry after {} s",
            limited.quota.count,
            limited.quota.window.as_secs(),
            limited.policy,
            limited.decision.retry_after_secs()
        ),
    )
    .with_extension("policy", serde_json::json!(limited.policy.name()));
    err.retry_after = Some(limited.decision.retry_after_secs());
    err.rate_limit = Some(Box::new(limited));
    err
}

/// A subject that names an account without putting its address into Redis keys.
pub fn account_subject(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_named_by_a_hash_of_their_address() {
        assert_eq!(account_subject("Fan@Example.com "), account_subject("fan@example.com"));
        assert_eq!(account_subject("a@b.c").len(), 32);
        assert!(!account_subject("fan@example.com").contains("fan"));
    }
}
