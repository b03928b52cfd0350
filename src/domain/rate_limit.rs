//! Rate limits: the policies, their quotas, and the generic cell rate algorithm (GCRA) that
//! decides. The same arithmetic runs in Redis (`src/infra/redis/lua/rate_limit_gcra.lua`, so
//! every API instance shares one limit) and here (the per-process fallback while Redis is
//! down, and the unit tests that pin the behaviour).
//!
//! A quota of `count` per `window` admits requests at one per `window / count` (the emission
//! interval) with a burst of up to `count`: a client may spend the whole quota at once, then
//! one request per interval. The state of a key is one number, its theoretical arrival time
//! (TAT): a request at `now` is allowed iff `max(TAT, now) + interval − now ≤ window`.

use std::fmt;
use std::time::Duration;

/// What is counted, and per what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// `POST /auth/signup`, per client IP.
    SignupIp,
    /// `POST /auth/login`, per client IP.
    LoginIp,
    /// Failed logins, per account (e-mail address): brute force.
    LoginAccount,
    /// Holds, cancels, payments, charges and joins, per user.
    UserWrites,
    /// `GET /queue/status`, per user.
    QueueStatus,
    /// Every request, per client IP.
    IpAll,
}

impl Policy {
    pub const ALL: [Policy; 6] = [
        Policy::SignupIp,
        Policy::LoginIp,
        Policy::LoginAccount,
        Policy::UserWrites,
        Policy::QueueStatus,
        Policy::IpAll,
    ];

    /// The policy's name: in headers, metrics, and (upper-cased) its configuration variable.
    pub fn name(self) -> &'static str {
        match self {
            Policy::SignupIp => "signup_ip",
            Policy::LoginIp => "login_ip",
            Policy::LoginAccount => "login_account",
            Policy::UserWrites => "user_writes",
            Policy::QueueStatus => "queue_status",
            Policy::IpAll => "ip_all",
        }
    }

    /// The default quota (`.env.example` documents each).
    pub fn default_quota(self) -> Quota {
        let q = |count, secs| Quota::new(count, Duration::from_secs(secs));
        match self {
            Policy::SignupIp => q(5, 60),
            Policy::LoginIp => q(30, 60),
            Policy::LoginAccount => q(10, 900),
            Policy::UserWrites => q(10, 2),
            Policy::QueueStatus => q(3, 3),
            Policy::IpAll => q(600, 1),
        }
    }

    /// Whether the limit still holds while Redis is down (each API instance then counts on its
    /// own): sign-ups and logins must never become unlimited. The other policies guard
    /// operations that need Redis anyway and answer 503 without it.
    pub fn holds_without_redis(self) -> bool {
        matches!(self, Policy::SignupIp | Policy::LoginIp | Policy::LoginAccount)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `count` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub window: Duration,
}

impl Quota {
    pub fn new(count: u32, window: Duration) -> Self {
        Self { count, window }
    }

    /// `"<count>/<seconds>"`, both whole numbers from 1.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, seconds) = text.trim().split_once('/')?;
        let count: u32 = count.trim().parse().ok().filter(|c| *c >= 1)?;
        let seconds: u64 = seconds.trim().parse().ok().filter(|s| (1..=86_400).contains(s))?;
        Some(Self::new(count, Duration::from_secs(seconds)))
    }

    /// Time between two requests at the sustained rate, in milliseconds.
    pub fn interval_ms(self) -> f64 {
        self.window.as_secs_f64() * 1000.0 / f64::from(self.count)
    }

    pub fn window_ms(self) -> f64 {
        self.window.as_secs_f64() * 1000.0
    }
}

/// What the limiter said about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// When a refused request may be retried (zero when allowed).
    pub retry_after: Duration,
    /// When the quota is whole again.
    pub reset: Duration,
}

impl Decision {
    /// `Retry-After` in whole seconds, at least 1 for a refused request.
    pub fn retry_after_secs(&self) -> u64 {
        if self.allowed {
            0
        } else {
            (self.retry_after.as_millis() as u64).div_ceil(1000).max(1)
        }
    }

    pub fn reset_secs(&self) -> u64 {
        (self.reset.as_millis() as u64).div_ceil(1000)
    }
}

/// A decision with the policy and quota it was made under (what the `RateLimit-Policy` and
/// `RateLimit` headers say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub policy: Policy,
    pub quota: Quota,
    pub decision: Decision,
}

/// One GCRA step: `tat_ms` is the key's stored TAT (`None`: never seen, or expired), `now_ms`
/// the clock, `cost` 1 to count the request or 0 to only ask. Returns the decision and the TAT
/// to store when the request is allowed and counted.
pub fn gcra(quota: Quota, tat_ms: Option<f64>, now_ms: f64, cost: u32) -> (Decision, Option<f64>) {
    let interval = quota.interval_ms();
    let window = quota.window_ms();
    let tat = tat_ms.unwrap_or(now_ms).max(now_ms);
    let next = tat + interval * f64::from(cost.max(1));
    let ms = |v: f64| Duration::from_millis(v.max(0.0).ceil() as u64);
    let remaining_after = |t: f64| ((window - (t - now_ms)) / interval).floor().max(0.0) as u32;
    if next - now_ms > window {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_after: ms(next - now_ms - window),
            reset: ms(tat - now_ms),
        };
        return (decision, None);
    }
    if cost == 0 {
        let decision = Decision {
            allowed: true,
            remaining: remaining_after(tat),
            retry_after: Duration::ZERO,
            reset: ms(tat - now_ms),
        };
        return (decision, None);
    }
    let decision = Decision {
        allowed: true,
        remaining: remaining_after(next),
        retry_after: Duration::ZERO,
        reset: ms(next - now_ms),
    };
    (decision, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `times` counted requests at `now`, returning how many were allowed.
    fn burst(quota: Quota, tat: &mut Option<f64>, now: f64, times: u32) -> u32 {
        let mut allowed = 0;
        for _ in 0..times {
            let (d, next) = gcra(quota, *tat, now, 1);
            if d.allowed {
                allowed += 1;
                *tat = next;
            }
        }
        allowed
    }

    #[test]
    fn a_quota_is_a_burst_then_the_sustained_rate() {
        let quota = Quota::new(10, Duration::from_secs(60));
        let mut tat = None;
        assert_eq!(burst(quota, &mut tat, 0.0, 15), 10, "the whole quota at once, no more");
        let (refused, _) = gcra(quota, tat, 0.0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(6), "one interval: 60 s / 10");
        assert_eq!(refused.retry_after_secs(), 6);
        assert_eq!(burst(quota, &mut tat, 5_999.0, 1), 0, "a millisecond early");
        assert_eq!(burst(quota, &mut tat, 6_000.0, 2), 1, "then one per interval");
        assert_eq!(
            burst(quota, &mut tat, 72_000.0, 20),
            10,
            "whole again once its TAT has passed"
        );
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let quota = Quota::new(3, Duration::from_secs(3));
        let (first, tat) = gcra(quota, None, 0.0, 1);
        assert_eq!(
            (first.allowed, first.remaining, first.reset),
            (true, 2, Duration::from_secs(1))
        );
        let (second, tat) = gcra(quota, tat, 0.0, 1);
        assert_eq!(second.remaining, 1);
        let (peek, none) = gcra(quota, tat, 0.0, 0);
        assert_eq!(
            (peek.allowed, peek.remaining, none),
            (true, 1, None),
            "asking counts nothing"
        );
        let (third, tat) = gcra(quota, tat, 0.0, 1);
        assert_eq!(
            (third.allowed, third.remaining, third.reset),
            (true, 0, Duration::from_secs(3))
        );
        let (peek, _) = gcra(quota, tat, 0.0, 0);
        assert!(!peek.allowed, "an exhausted quota refuses even a question");
    }

    #[test]
    fn quotas_parse_as_count_per_seconds() {
        assert_eq!(Quota::parse("30/60"), Some(Quota::new(30, Duration::from_secs(60))));
        assert_eq!(Quota::parse(" 5 / 1 "), Some(Quota::new(5, Duration::from_secs(1))));
        for bad in ["", "30", "0/60", "30/0", "x/60", "30/60/2", "-1/5", "5/100000"] {
            assert_eq!(Quota::parse(bad), None, "{bad:?}");
        }
        for policy in Policy::ALL {
            assert!(policy.default_quota().count >= 1);
        }
    }
}
