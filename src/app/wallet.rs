//! Points: the balance, and charging it (with an `Idempotency-Key`, charged once).

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Deps;
use super::error::AppError;
use super::idempotency::{Answer, Begun, Keyed, Once, Scope};
use crate::domain::idempotency::IdempotencyKey;
use crate::infra::postgres::wallet as wallets;

pub const MAX_CHARGE: i64 = 10_000_000;

pub async fn balance(deps: &Deps, user_id: Uuid) -> Result<i64, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    Ok(wallets::balance(&mut conn, user_id).await?)
}

/// `POST /users/me/points/charge`: adds `amount` (1 ..= 10,000,000) once per key.
pub async fn charge(deps: &Deps, user_id: Uuid, key: &IdempotencyKey, amount: i64) -> Result<Answer, AppError> {
    if !(1..=MAX_CHARGE).contains(&amount) {
        return Err(AppError::validation(
            "invalid_field",
            format!("amount: must be from 1 to {MAX_CHARGE} points"),
        ));
    }
    let request = json!({ "amount": amount });
    let keyed = Keyed {
        user_id,
        key,
        scope: Scope::Charge,
        request: &request,
    };
    let mut once = match Once::begin(deps, keyed).await? {
        Begun::AnsweredBefore(answer) => return Ok(answer),
        Begun::FirstTime(once) => once,
    };
    let balance = wallets::charge(once.tx(), user_id, amount).await?;
    metrics::counter!("points_charged_total").increment(amount as u64);
    once.commit_with(200, json!({ "balance": balance })).await
}
