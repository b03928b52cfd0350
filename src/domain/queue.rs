//! The waiting room's types and the rules that need no I/O: where an entry stands, what a
//! client is told about its place in line (ETA, when to ask again), the admission settings.
//! Formulas and their reasoning: docs/waiting-room.md.

use uuid::Uuid;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Joined before the sale opens; placed in line (at random) at the opening.
    PreQueue,
    Waiting,
    Active,
    /// The active slot ended (its TTL passed), or the entry left the line.
    Expired,
    /// The user's payment completed and released the slot (joining again starts a new entry).
    Done,
    /// Waiting, but every schedule is sold out: admission pauses until seats come back.
    SoldOut,
}

impl QueueStatus {
    pub const ALL: [QueueStatus; 6] = [
        QueueStatus::PreQueue,
        QueueStatus::Waiting,
        QueueStatus::SoldOut,
        QueueStatus::Active,
        QueueStatus::Expired,
        QueueStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::PreQueue => "pre_queue",
            QueueStatus::Waiting => "waiting",
            QueueStatus::Active => "active",
            QueueStatus::Expired => "expired",
            QueueStatus::Done => "done",
            QueueStatus::SoldOut => "sold_out",
        }
    }
}

/// Where an entry stands, each status with what it carries: a position while in line, the
/// slot's end while active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    PreQueue,
    /// 1-based among the waiting.
    Waiting {
        position: u64,
    },
    /// In line while every schedule is sold out (admission paused); 1-based.
    SoldOut {
        position: u64,
    },
    /// Admitted; the slot ends at `until_ms` (Unix ms).
    Active {
        until_ms: i64,
    },
    Expired,
    Done,
}

impl Standing {
    pub fn status(self) -> QueueStatus {
        match self {
            Standing::PreQueue => QueueStatus::PreQueue,
            Standing::Waiting { .. } => QueueStatus::Waiting,
            Standing::SoldOut { .. } => QueueStatus::SoldOut,
            Standing::Active { .. } => QueueStatus::Active,
            Standing::Expired => QueueStatus::Expired,
            Standing::Done => QueueStatus::Done,
        }
    }
}

/// How an entry stands, as the waiting room read it in one step (one script, one clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    pub entry: Uuid,
    pub standing: Standing,
    /// When the sale opens (Unix ms; 0: open).
    pub opens_at_ms: i64,
    pub sold_out: bool,
    /// Admissions of this concert in the last minute.
    pub admitted_last_minute: i64,
    /// Redis's clock when it answered (Unix ms).
    pub now_ms: i64,
    /// The oldest admission of the last minute (Unix ms; `now_ms` when none).
    pub oldest_admission_ms: i64,
}

/// How a concert's line admits (from the configuration): at most `capacity` active at once,
/// `per_second` admissions a second over every promoter, each slot `active_ttl_ms` long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub capacity: u32,
    pub per_second: u32,
    pub active_ttl_ms: u64,
}

/// The shortest and longest pause a client is told to wait before asking again.
pub const POLL_MIN_SECONDS: u64 = 2;
pub const POLL_MAX_SECONDS: u64 = 30;

/// Seconds until `position` (1-based among the waiting) is admitted at `rate` admissions per
/// second: `⌈position ÷ rate⌉`.
pub fn eta_seconds(position: u64, rate: f64) -> u64 {
    if position == 0 {
        return 0;
    }
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        f64::MIN_POSITIVE
    };
    let eta = (position as f64 / rate).ceil();
    if eta >= u64::MAX as f64 { u64::MAX } else { eta as u64 }
}

/// When a waiting client should ask again: half its ETA, between 2 and 30 seconds. Near the
/// front (ETA ≤ 4 s) every 2 s, so nobody misses the admission by long; further back each poll
/// halves the wait left, so a fan asks a few times on its way to the front, not every few
/// seconds; from an ETA of 60 s on, every 30 s. A line of N people at rate r then makes at most
/// about `2 r (1 + ln 15) + N / 30` status requests per second (docs/waiting-room.md).
pub fn poll_after_waiting(eta_seconds: u64) -> u64 {
    eta_seconds.div_ceil(2).clamp(POLL_MIN_SECONDS, POLL_MAX_SECONDS)
}

/// When a pre-queue client should ask again: at the opening at the earliest (its place is
/// revealed then), spread by `jitter` (0 ≤ jitter < 1) over up to 28 s after it, never later
/// than 30 s from now, so a large pre-queue does not ask all at once the second the sale opens.
/// While the opening is 30 s away or more, between 16 and 30 s: fans who joined in the same
/// second (a link sent to a mailing list) ask again in different seconds, not together every
/// 30 s — a herd that would otherwise land on the opening with the first admissions.
pub fn poll_after_pre_queue(seconds_until_open: u64, jitter: f64) -> u64 {
    let jitter = jitter.clamp(0.0, 0.999);
    if seconds_until_open >= POLL_MAX_SECONDS {
        return POLL_MAX_SECONDS - (jitter * (POLL_MAX_SECONDS / 2) as f64) as u64;
    }
    let spread = (jitter * (POLL_MAX_SECONDS - POLL_MIN_SECONDS) as f64) as u64;
    (seconds_until_open.max(POLL_MIN_SECONDS) + spread).min(POLL_MAX_SECONDS)
}

/// When an active client should ask again: no later than its slot ends, at most 30 s.
pub fn poll_after_active(seconds_left: u64) -> u64 {
    seconds_left.clamp(POLL_MIN_SECONDS, POLL_MAX_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_is_position_over_rate_rounded_up() {
        assert_eq!(eta_seconds(0, 100.0), 0);
        assert_eq!(eta_seconds(1, 100.0), 1);
        assert_eq!(eta_seconds(100, 100.0), 1);
        assert_eq!(eta_seconds(101, 100.0), 2);
        assert_eq!(eta_seconds(30, 0.5), 60);
        assert_eq!(eta_seconds(5, 0.0), u64::MAX, "no admissions: no ETA to promise");
    }

    #[test]
    fn polling_grows_with_the_wait_and_stays_bounded() {
        assert_eq!(poll_after_waiting(0), 2);
        assert_eq!(poll_after_waiting(4), 2);
        assert_eq!(poll_after_waiting(5), 3);
        assert_eq!(poll_after_waiting(40), 20);
        assert_eq!(poll_after_waiting(60), 30);
        assert_eq!(poll_after_waiting(u64::MAX), 30);
        let mut last = 0;
        for eta in 0..1000 {
            let poll = poll_after_waiting(eta);
            assert!(poll >= last, "never shorter further back");
            last = poll;
        }
    }

    #[test]
    fn a_line_of_100000_makes_a_bounded_number_of_status_requests() {
        // At 100 admissions/s: the sum over every position of 1 / poll interval.
        let per_second: f64 = (1..=100_000u64)
            .map(|p| 1.0 / poll_after_waiting(eta_seconds(p, 100.0)) as f64)
            .sum();
        let bound = 2.0 * 100.0 * (1.0 + 15f64.ln()) + 100_000.0 / 30.0;
        assert!(per_second <= bound, "{per_second} > {bound}");
        assert!(per_second < 4_200.0, "{per_second}");
    }

    #[test]
    fn a_fast_line_asks_a_few_times_per_fan_not_every_few_seconds() {
        // 20,000 fans at 500 admissions/s (the on-sale bench): the front's 2 s polls dominated.
        let per_second: f64 = (1..=20_000u64)
            .map(|p| 1.0 / poll_after_waiting(eta_seconds(p, 500.0)) as f64)
            .sum();
        let bound = 2.0 * 500.0 * (1.0 + 15f64.ln()) + 20_000.0 / 30.0;
        assert!(per_second <= bound, "{per_second} > {bound}");
        assert!(per_second < 3_500.0, "{per_second}");
    }

    #[test]
    fn pre_queue_polls_spread_after_the_opening() {
        assert_eq!(poll_after_pre_queue(0, 0.0), 2);
        assert_eq!(poll_after_pre_queue(3600, 0.0), 30);
        assert_eq!(poll_after_pre_queue(3600, 0.5), 23, "spread while the opening is far");
        assert_eq!(poll_after_pre_queue(30, 0.9999), 16);
        let far: std::collections::BTreeSet<u64> =
            (0..100).map(|i| poll_after_pre_queue(600, i as f64 / 100.0)).collect();
        assert_eq!((far.first(), far.last(), far.len()), (Some(&16), Some(&30), 15));
        assert_eq!(poll_after_pre_queue(5, 0.5), 5 + 14);
        assert_eq!(poll_after_pre_queue(20, 0.9), 30, "never later than 30 s");
        assert!((2..=30).contains(&poll_after_pre_queue(0, 0.9999)));
        assert_eq!(poll_after_active(600), 30);
        assert_eq!(poll_after_active(0), 2);
    }
}
