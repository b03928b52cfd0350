//! Rate-limit decisions in Redis (`lua/rate_limit_gcra.lua`): one key per policy and subject,
//! one script call per request, Redis's clock, so N API instances enforce one limit.

use std::time::Duration;

use anyhow::Context;

use super::Redis;
use super::keys::Keys;
use super::scripts::RATE_LIMIT_GCRA;
use crate::domain::rate_limit::{Decision, Policy, Quota};

/// Asks (cost 0) or counts (cost 1) one request of `subject` under `policy`.
pub async fn decide(
    redis: &Redis,
    keys: &Keys,
    policy: Policy,
    subject: &str,
    quota: Quota,
    cost: u32,
) -> anyhow::Result<Decision> {
    let mut conn = redis.connection().await?;
    let (allowed, remaining, retry_after, reset): (i64, i64, i64, i64) = RATE_LIMIT_GCRA
        .key(keys.rate_limit(policy.name(), subject))
        .arg(quota.interval_ms())
        .arg(quota.window_ms())
        .arg(cost)
        .invoke_async(&mut conn)
        .await
        .context("rate limit")?;
    let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
    Ok(Decision {
        allowed: allowed == 1,
        remaining: remaining.clamp(0, i64::from(u32::MAX)) as u32,
        retry_after: ms(retry_after),
        reset: ms(reset),
    })
}
