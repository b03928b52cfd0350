//! Point wallets and their ledger (I3: a balance is never negative and equals the sum of its
//! ledger rows, written in the same transaction as every change).

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "wallet.balance"))]
pub async fn balance(conn: &mut PgConnection, user_id: Uuid) -> anyhow::Result<i64> {
    let balance = sqlx::query_scalar!("SELECT balance FROM wallets WHERE user_id = $1", user_id)
        .fetch_optional(conn)
        .await
        .context("wallet balance")?;
    Ok(balance.unwrap_or(0))
}

/// Adds `amount` (> 0), creating the wallet on first use, and writes the ledger row.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "wallet.charge"))]
pub async fn charge(conn: &mut PgConnection, user_id: Uuid, amount: i64) -> anyhow::Result<i64> {
    let balance = sqlx::query_scalar!(
        "INSERT INTO wallets (user_id, balance) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET balance = wallets.balance + $2, updated_at = now()
         RETURNING balance",
        user_id,
        amount
    )
    .fetch_one(&mut *conn)
    .await
    .context("charge wallet")?;
    sqlx::query!(
        "INSERT INTO point_transactions (id, user_id, amount, kind) VALUES ($1, $2, $3, 'charge')",
        Uuid::now_v7(),
        user_id,
        amount
    )
    .execute(conn)
    .await
    .context("ledger: charge")?;
    Ok(balance)
}

/// Takes `amount` for `reservation_id` if the balance covers it (a conditional update: never
/// below zero, whatever runs concurrently); writes the ledger row. `None`: not enough points,
/// nothing changed.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "wallet.debit"))]
pub async fn debit(
    conn: &mut PgConnection,
    user_id: Uuid,
    amount: i64,
    reservation_id: Uuid,
) -> anyhow::Result<Option<i64>> {
    let balance = sqlx::query_scalar!(
        "UPDATE wallets SET balance = balance - $2, updated_at = now() WHERE user_id = $1 AND balance >= $2
         RETURNING balance",
        user_id,
        amount
    )
    .fetch_optional(&mut *conn)
    .await
    .context("debit wallet")?;
    let Some(balance) = balance else {
        return Ok(None);
    };
    if amount > 0 {
        sqlx::query!(
            "INSERT INTO point_transactions (id, user_id, amount, kind, reservation_id) VALUES ($1, $2, $3, 'payment', $4)",
            Uuid::now_v7(),
            user_id,
            -amount,
            reservation_id
        )
        .execute(conn)
        .await
        .context("ledger: payment")?;
    }
    Ok(Some(balance))
}
