//! The invariant checks of `imticket-admin audit` (architecture.md I1–I5), as SQL over the live
//! database. Runtime queries on purpose: each is a diagnostic over several tables whose text is
//! the specification of one check, and `tests/api/audit.rs` plants a violation of each.

use anyhow::Context;
use sqlx::PgConnection;

/// One broken invariant: which check, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub check: &'static str,
    pub detail: String,
}

/// (check, explanation, query returning one text row per violation).
const CHECKS: &[(&str, &str, &str)] = &[
    (
        "I1",
        "seat in more than one live reservation",
        "SELECT seat_id::text || ' in ' || count(*) || ' live reservations' FROM reservation_seats
         WHERE reservation_status IN ('held', 'paid', 'confirmed') GROUP BY seat_id HAVING count(*) > 1",
    ),
    (
        "I1",
        "seat status disagrees with its reservations",
        "SELECT s.id::text || ' is ' || s.status FROM seats s WHERE
           (s.status = 'held') <> EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.seat_id = s.id
                                            AND rs.reservation_status IN ('held', 'paid'))
           OR (s.status = 'sold') <> EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.seat_id = s.id
                                               AND rs.reservation_status = 'confirmed')",
    ),
    (
        "I2",
        "confirmed reservation without exactly one completed payment",
        "SELECT r.id::text || ' has ' || count(p.id) || ' completed payments' FROM reservations r
         LEFT JOIN payments p ON p.reservation_id = r.id AND p.status = 'completed'
         WHERE r.status = 'confirmed' GROUP BY r.id HAVING count(p.id) <> 1",
    ),
    (
        "I3",
        "wallet balance negative or not the sum of its ledger",
        "SELECT w.user_id::text || ': balance ' || w.balance || ', ledger ' ||
                COALESCE((SELECT sum(amount) FROM point_transactions t WHERE t.user_id = w.user_id), 0)
         FROM wallets w WHERE w.balance < 0 OR w.balance <>
               COALESCE((SELECT sum(amount) FROM point_transactions t WHERE t.user_id = w.user_id), 0)",
    ),
    (
        "I4",
        "one Idempotency-Key with more than one payment",
        "SELECT user_id::text || ' key ' || idempotency_key || ': ' || count(*) || ' payments' FROM payments
         GROUP BY user_id, idempotency_key HAVING count(*) > 1",
    ),
    (
        "counts",
        "schedule's available count differs from its available seats",
        "SELECT i.schedule_id::text || ': counted ' ||
                (i.available_seats + COALESCE((SELECT sum(available_delta) FROM schedule_inventory_slots d
                                                WHERE d.schedule_id = i.schedule_id), 0)) ||
                ', seats ' || (SELECT count(*) FROM seats s WHERE s.schedule_id = i.schedule_id AND s.status = 'available')
         FROM schedule_inventory i
         WHERE i.available_seats + COALESCE((SELECT sum(available_delta) FROM schedule_inventory_slots d
                                              WHERE d.schedule_id = i.schedule_id), 0)
               <> (SELECT count(*) FROM seats s WHERE s.schedule_id = i.schedule_id AND s.status = 'available')",
    ),
    (
        "I5",
        "outbox event unpublished for more than a minute",
        "SELECT event_id::text || ' (' || event_type || ') unpublished since ' || occurred_at FROM outbox
         WHERE published_at IS NULL AND occurred_at < now() - interval '1 minute'",
    ),
];

/// Every violation the database shows now.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "audit.database"))]
pub async fn database(conn: &mut PgConnection) -> anyhow::Result<Vec<Violation>> {
    let mut found = Vec::new();
    for (check, what, query) in CHECKS {
        let rows: Vec<String> = sqlx::query_scalar(query)
            .fetch_all(&mut *conn)
            .await
            .with_context(|| format!("audit {check}: {what}"))?;
        found.extend(rows.into_iter().map(|row| Violation {
            check,
            detail: format!("{what}: {row}"),
        }));
    }
    Ok(found)
}
