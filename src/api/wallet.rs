//! `/api/v1/users/me/points`: the balance and charging it.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::Problem;
use super::extract::{AuthUser, IdempotencyHeader, Json, answer, whole};
use super::rate_limits::limit;
use crate::app::{AppError, Deps, wallet};
use crate::domain::rate_limit::Policy;

#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    /// Points.
    pub balance: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// Points.
    #[serde(deserialize_with = "whole::<1, 10_000_000, _>")]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub amount: i64,
}

/// The caller's points.
#[utoipa::path(get, path = "/api/v1/users/me/points", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Balance)))]
pub async fn balance(deps: Data<Deps>, AuthUser(user): AuthUser) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Balance {
        balance: wallet::balance(&deps, user.user_id).await?,
    }))
}

/// Add points, once per `Idempotency-Key` (required): a replay answers the same, charged once.
#[utoipa::path(post, path = "/api/v1/users/me/points/charge", tag = "wallet", request_body = Charge,
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "required")),
    security(("bearer" = [])),
    responses((status = 200, body = Balance),
        (status = 409, body = Problem, description = "`idempotency_key_reused`"),
        (status = 422, body = Problem, description = "`invalid_field`: `amount` out of range")))]
pub async fn charge(
    req: HttpRequest,
    deps: Data<Deps>,
    AuthUser(user): AuthUser,
    key: IdempotencyHeader,
    Json(body): Json<Charge>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::UserWrites, &user.user_id.to_string()).await?;
    let key = key.required()?;
    let stored = wallet::charge(&deps, user.user_id, &key, body.amount).await?;
    Ok(answer(stored.status, stored.body))
}
