//! Paying a held reservation with points (`POST /reservations/{id}/payments`): one transaction
//! checks the caller owns it and it is held and not due, debits the wallet (402 changes
//! nothing), records the payment, marks the reservation `paid` and writes `payment.completed`
//! to the outbox; the `payment` worker then confirms it. The usual case (held, the caller's,
//! enough points) is one statement with its key (`reservations::pay_once`: the key's lock, its
//! stored answer, the payment and the answer stored); a refusal, or anything that statement
//! did not settle, goes the general way, which names the reason. Once per `Idempotency-Key`: a replay
//! is answered from the stored record even when the waiting-room gate refuses, because paying
//! releases the buyer's slot (api.md).

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::Deps;
use super::error::{AppError, ErrorKind};
use super::idempotency::{Answer, Begun, Keyed, Once, Scope, replay};
use super::statistics;
use super::tokens::QueuePass;
use super::waiting_room::{ActivePass, require_active};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::reservation::ReservationStatus;
use crate::events::PaymentCompleted;
use crate::infra::{postgres::outbox, postgres::reservations as repo, postgres::wallet as wallets};

fn failed(code: &'static str) -> &'static str {
    metrics::counter!("payment_failures_total", "code" => code).increment(1);
    code
}

pub async fn pay(
    deps: &Deps,
    user_id: Uuid,
    pass: QueuePass,
    reservation_id: Uuid,
    key: &IdempotencyKey,
) -> Result<Answer, AppError> {
    let request = json!({ "reservation_id": reservation_id });
    let keyed = Keyed {
        user_id,
        key,
        scope: Scope::Pay,
        request: &request,
    };
    // The gate first for the usual payment; a refusal may still be a replay, which the general
    // path answers from the stored record before its own look at the gate.
    if let Ok(active) = require_active(deps, pass, user_id).await
        && let Some(answer) = pay_in_one_statement(deps, &keyed, active, reservation_id).await?
    {
        return Ok(answer);
    }
    let mut once = match Once::begin(deps, keyed).await? {
        Begun::AnsweredBefore(answer) => return Ok(answer),
        Begun::FirstTime(once) => once,
    };
    // The gate, for a request that does something.
    let active = require_active(deps, pass, user_id).await?;
    let payment_id = Uuid::now_v7();
    let row = repo::find(once.tx(), reservation_id, true)
        .await?
        .filter(|r| r.user_id == user_id)
        .ok_or_else(AppError::reservation_not_found)?;
    let concert_id = deps.schedule_concerts.concert_of_in(once.tx(), row.schedule_id).await?;
    active.for_concert(concert_id)?;
    // A refusal is counted for the concert's report too (after the answer, off its way).
    let failed = |code: &'static str| {
        statistics::payment_failed(deps, concert_id, code);
        failed(code)
    };
    match row.status.at(row.expires_at, Utc::now()) {
        ReservationStatus::Held => {}
        status if status.is_paid() => {
            return Err(AppError::conflict(
                failed("reservation_paid"),
                "this reservation is already paid",
            ));
        }
        _ => {
            return Err(AppError::conflict(
                failed("hold_expired"),
                "the hold has expired; hold the seats again",
            ));
        }
    }
    let Some(balance) = wallets::debit(once.tx(), user_id, row.amount, row.id).await? else {
        return Err(AppError::new(
            ErrorKind::PaymentRequired,
            failed("insufficient_points"),
            format!("the reservation costs {} points; charge your wallet", row.amount),
        ));
    };
    if !repo::mark_paid(once.tx(), row.id, payment_id, user_id, row.amount, key.as_str()).await? {
        return Err(AppError::conflict(failed("hold_expired"), "the hold has expired"));
    }
    let event = PaymentCompleted {
        payment_id,
        reservation_id: row.id,
        user_id,
        amount: row.amount,
    };
    let outbox_id = outbox::append(once.tx(), &event).await?;
    tracing::debug!(%reservation_id, path = "general", "paid");
    finish(deps, once, payment_id, row.id, row.amount, balance, outbox_id).await
}

/// The usual payment (held, the caller's, of the pass's concert, covered by the wallet) with
/// its key in one statement (`reservations::pay_once`): the key's lock, its stored answer, the
/// payment and the answer stored, in one implicit transaction. `None` when a check failed:
/// nothing was written and the general path says why.
async fn pay_in_one_statement(
    deps: &Deps,
    keyed: &Keyed<'_>,
    active: ActivePass,
    reservation_id: Uuid,
) -> Result<Option<Answer>, AppError> {
    let (hash, lock) = (keyed.request_hash(), keyed.lock_name());
    let trace_id = crate::telemetry::trace_context::current_traceparent();
    let mut conn = deps.db.write().await.context("acquire connection")?;
    let outcome = repo::pay_once(
        &mut conn,
        &repo::PayOnce {
            lock: &lock,
            scope: keyed.scope.as_str(),
            request_hash: &hash,
            reservation_id,
            user_id: keyed.user_id,
            concert_id: active.pass.concert_id,
            payment_id: Uuid::now_v7(),
            ledger_id: Uuid::now_v7(),
            idempotency_key: keyed.key.as_str(),
            now: Utc::now(),
            event_id: Uuid::now_v7(),
            trace_id: trace_id.as_deref(),
        },
    )
    .await?;
    match outcome {
        repo::PaidOnce::Stored {
            request_hash,
            status,
            body,
        } => {
            conn.commit().await.context("end the lookup")?;
            replay(keyed.scope, &request_hash, &hash, status, body).map(Some)
        }
        repo::PaidOnce::Paid { body, outbox_id } => {
            conn.commit().await.context("commit payment")?;
            tracing::debug!(%reservation_id, path = "one statement", "paid");
            paid(deps, "fast", outbox_id).await;
            Ok(Some(Answer {
                status: 201,
                body,
                replayed: false,
            }))
        }
        // Behind a transaction pooler the connection's transaction wrote nothing: dropped.
        repo::PaidOnce::Unsettled => Ok(None),
    }
}

/// After a payment committed: counted by its path, its event handed to the publisher.
async fn paid(deps: &Deps, path: &'static str, outbox_id: i64) {
    metrics::counter!("payments_total", "path" => path).increment(1);
    // With the process's other events, a few milliseconds later (the API's batching task): the
    // worker confirms within a batch anyway, and the answer never waits for Redis.
    deps.outbox.publish_soon(&[outbox_id]).await;
}

/// The answer of a payment (the same fields as `pay_once` stores), stored with its
/// `Idempotency-Key`, committed; then [`paid`].
async fn finish(
    deps: &Deps,
    once: Once,
    payment_id: Uuid,
    reservation_id: Uuid,
    amount: i64,
    balance: i64,
    outbox_id: i64,
) -> Result<Answer, AppError> {
    let answer = once
        .commit_with(
            201,
            json!({
                "payment_id": payment_id,
                "reservation_id": reservation_id,
                "amount": amount,
                "status": "completed",
                "balance": balance,
            }),
        )
        .await?;
    paid(deps, "general", outbox_id).await;
    Ok(answer)
}
