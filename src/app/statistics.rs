//! Sales statistics and settlement: the `statistics` role adds the events up
//! ([`record`], [`settle`]), admins read them ([`concert_report`], [`settlement`]). Exact by
//! construction: a batch's effects commit with its `processed_events` records, so an event
//! counts once however often it is delivered, and settlement adds the ledger's own rows.
//! Why and how: docs/architecture.md ("Statistics and settlement").

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{AppError, Deps};
use crate::events::{
    PaymentCompleted, QueueAdmitted, QueueJoined, ReservationConfirmed, ReservationCreated, ReservationExpired,
};
use crate::infra::postgres::statistics::{self as repo, Step, Steps, Totals};
use crate::infra::postgres::{Db, processed_events};

pub use repo::{Funnel, ScheduleReport, SettlementDay};

/// An event the `statistics` group counts.
#[derive(Debug, Clone)]
pub enum Fact {
    Created(ReservationCreated),
    Confirmed(ReservationConfirmed),
    Expired(ReservationExpired),
    Joined(QueueJoined),
    Admitted(QueueAdmitted),
}

/// One event: its id (the idempotency key), when it happened, what it says.
#[derive(Debug, Clone)]
pub struct Counted {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub fact: Fact,
}

/// Adds `facts` up for `group` in one transaction; the ones recorded before are skipped. The
/// batch is summed first and written in key order (schedules, then fans), so concurrent
/// batches (the streams' consumers, several processes) never deadlock on each other's rows.
pub async fn record(deps: &Deps, group: &str, facts: &[Counted]) -> anyhow::Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = facts.iter().map(|f| f.event_id).collect();
    let mut tx = deps.db.begin().await.context("begin statistics")?;
    let fresh = processed_events::record_new(&mut tx, group, &ids).await?;
    let mut totals: BTreeMap<Uuid, (Option<Uuid>, Totals)> = BTreeMap::new();
    let mut fans: BTreeMap<(Uuid, Uuid), Steps> = BTreeMap::new();
    let mut sold: BTreeMap<Uuid, u64> = BTreeMap::new();
    for counted in facts.iter().filter(|f| fresh.contains(&f.event_id)) {
        let at = counted.occurred_at;
        match &counted.fact {
            Fact::Created(e) => {
                let t = &mut totals
                    .entry(e.schedule_id)
                    .or_insert((Some(e.concert_id), Totals::default()))
                    .1;
                t.holds_placed += 1;
                t.seats_held += e.seat_ids.len() as i64;
                fans.entry((e.concert_id, e.user_id))
                    .or_default()
                    .reached(Step::Held, at);
            }
            Fact::Confirmed(e) => {
                let t = &mut totals
                    .entry(e.schedule_id)
                    .or_insert((Some(e.concert_id), Totals::default()))
                    .1;
                t.holds_confirmed += 1;
                t.seats_sold += e.seat_ids.len() as i64;
                t.revenue_points += e.amount;
                *sold.entry(e.concert_id).or_default() += e.seat_ids.len() as u64;
                fans.entry((e.concert_id, e.user_id))
                    .or_default()
                    .reached(Step::Paid, at);
            }
            Fact::Expired(e) => {
                let t = &mut totals.entry(e.schedule_id).or_insert((None, Totals::default())).1;
                t.holds_expired += 1;
                t.seats_expired += e.seat_ids.len() as i64;
            }
            Fact::Joined(e) => fans
                .entry((e.concert_id, e.user_id))
                .or_default()
                .reached(Step::Joined, at),
            Fact::Admitted(e) => fans
                .entry((e.concert_id, e.user_id))
                .or_default()
                .reached(Step::Admitted, at),
        }
    }
    for (schedule_id, (concert_id, add)) in &totals {
        repo::add_totals(&mut tx, *schedule_id, *concert_id, add).await?;
    }
    for ((concert_id, user_id), steps) in &fans {
        repo::funnel(&mut tx, *concert_id, *user_id, steps).await?;
    }
    tx.commit().await.context("commit statistics")?;
    for (concert_id, seats) in sold {
        metrics::counter!("sales_seats_sold_total", "concert" => concert_id.to_string()).increment(seats);
    }
    Ok(())
}

/// Settles `payments` for `group` in one transaction (the ones recorded before are skipped):
/// each one's ledger row goes to its day. Returns the points settled now.
pub async fn settle(deps: &Deps, group: &str, payments: &[(Uuid, PaymentCompleted)]) -> anyhow::Result<i64> {
    if payments.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = payments.iter().map(|(id, _)| *id).collect();
    let mut tx = deps.db.begin().await.context("begin settlement")?;
    let fresh = processed_events::record_new(&mut tx, group, &ids).await?;
    let reservations: Vec<Uuid> = payments
        .iter()
        .filter(|(id, _)| fresh.contains(id))
        .map(|(_, p)| p.reservation_id)
        .collect();
    let points = repo::settle(&mut tx, &reservations).await?;
    tx.commit().await.context("commit settlement")?;
    metrics::counter!("settlement_points_total").increment(points.max(0) as u64);
    Ok(points)
}

/// Counts a refused payment of `concert_id`, after the answer and off the request's way: a
/// payment that fails commits nothing and publishes no event, so this is the only record.
/// Best effort (a failure to count is logged): the failures are also in the metric
/// `payment_failures_total{code}`.
pub fn payment_failed(deps: &Deps, concert_id: Uuid, code: &'static str) {
    let db = deps.db.clone();
    tokio::spawn(async move {
        let counted = async {
            let mut conn = db.write().await.context("acquire connection")?;
            repo::payment_failed(&mut conn, concert_id, code).await?;
            conn.commit().await.context("commit payment failure count")
        }
        .await;
        if let Err(err) = counted {
            tracing::warn!(error = %format!("{err:#}"), code, "could not count a payment failure");
        }
    });
}

/// A concert's sales: per schedule, the funnel of its fans, refused payments by code.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConcertReport {
    pub concert_id: Uuid,
    pub schedules: Vec<ScheduleReport>,
    /// Distinct fans at each step: joined the line → admitted → held seats → paid.
    pub funnel: Funnel,
    /// Refused payments by error code (`insufficient_points`, `hold_expired`, …).
    pub payment_failures: std::collections::BTreeMap<String, i64>,
}

pub async fn concert_report(db: &Db, concert_id: Uuid) -> Result<ConcertReport, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    if !repo::concert_exists(&mut conn, concert_id).await? {
        return Err(AppError::concert_not_found());
    }
    Ok(ConcertReport {
        concert_id,
        schedules: repo::schedules(&mut conn, concert_id).await?,
        funnel: repo::funnel_of(&mut conn, concert_id).await?,
        payment_failures: repo::failures_of(&mut conn, concert_id).await?.into_iter().collect(),
    })
}

/// The settlement of a span of days.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Settlement {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// One line per UTC day and concert with payments.
    pub days: Vec<SettlementDay>,
    pub total_payments: i64,
    pub total_points: i64,
}

/// The longest span one settlement request covers.
pub const MAX_SETTLEMENT_DAYS: i64 = 366;

pub async fn settlement(db: &Db, from: NaiveDate, to: NaiveDate) -> Result<Settlement, AppError> {
    if to < from {
        return Err(AppError::validation("invalid_field", "to: must not be before from"));
    }
    if (to - from).num_days() >= MAX_SETTLEMENT_DAYS {
        return Err(AppError::validation(
            "invalid_field",
            format!("to: at most {MAX_SETTLEMENT_DAYS} days from from"),
        ));
    }
    let mut conn = db.read().await.context("acquire connection")?;
    let days = repo::settlement(&mut conn, from, to).await?;
    Ok(Settlement {
        from,
        to,
        total_payments: days.iter().map(|d| d.payments).sum(),
        total_points: days.iter().map(|d| d.points).sum(),
        days,
    })
}

/// A day of a request (`YYYY-MM-DD`), `name` naming the field in the error.
pub fn day(name: &str, value: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        AppError::validation(
            "invalid_field",
            format!("{name}: must be a date YYYY-MM-DD, got {value:?}"),
        )
    })
}

/// The report as CSV: one line per schedule (the funnel and failures are in the JSON form).
pub fn concert_csv(report: &ConcertReport) -> String {
    let mut out = String::from(
        "schedule_id,starts_at,seats_total,seats_available,seats_held_now,seats_sold,revenue_points,holds_placed,holds_confirmed,holds_expired,seats_expired\n",
    );
    for s in &report.schedules {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            s.schedule_id,
            s.starts_at.to_rfc3339(),
            s.seats_total,
            s.seats_available,
            s.seats_held_now,
            s.seats_sold,
            s.revenue_points,
            s.holds_placed,
            s.holds_confirmed,
            s.holds_expired,
            s.seats_expired
        );
    }
    out
}

/// The settlement as CSV: one line per day and concert.
pub fn settlement_csv(settlement: &Settlement) -> String {
    let mut out = String::from("day,concert_id,payments,points\n");
    for d in &settlement.days {
        let _ = writeln!(out, "{},{},{},{}", d.day, d.concert_id, d.payments, d.points);
    }
    out
}
