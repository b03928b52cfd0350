//! Requests made at most once per `Idempotency-Key` (api.md "Idempotency"): a key is scoped to
//! the user and the endpoint ([`Scope`]: the same key on another endpoint is another key); a replay with the same request returns the stored status and
//! body without running the effect again; the same key with another request is 409
//! `idempotency_key_reused`; concurrent requests with one key are answered once (the others
//! wait for the first, then replay its answer). The answer is stored in the transaction of the
//! effect, so an effect that fails stores nothing.

use anyhow::Context;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Deps;
use super::error::AppError;
use crate::domain::idempotency::IdempotencyKey;
use crate::infra::postgres::idempotency as repo;

/// An answer, and whether it was replayed from an earlier request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

fn request_hash(request: &Value) -> String {
    // serde_json writes object keys in a fixed (sorted) order: the same request, the same text.
    let digest = Sha256::digest(request.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The endpoints whose effect happens once per key (the key is scoped to the user and the
/// endpoint). The text is what `idempotency_keys.scope` stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /reservations`.
    Hold,
    /// `POST /reservations/{id}/payments`.
    Pay,
    /// `POST /users/me/points/charge`.
    Charge,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Hold => "reservation.hold",
            Scope::Pay => "reservation.pay",
            Scope::Charge => "points.charge",
        }
    }
}

/// A keyed request: `user_id` asks `scope` for `request` under `key`.
pub struct Keyed<'a> {
    pub user_id: Uuid,
    pub key: &'a IdempotencyKey,
    pub scope: Scope,
    pub request: &'a Value,
}

impl Keyed<'_> {
    /// The hash stored with the answer: the same request, the same hash.
    pub fn request_hash(&self) -> String {
        request_hash(self.request)
    }

    /// The name of the key's advisory lock, for a statement that takes it itself.
    pub fn lock_name(&self) -> String {
        repo::lock_name(self.user_id, self.scope.as_str(), self.key.as_str())
    }
}

/// The answer stored under a key, to a request whose hash is `hash`: a replay of it, or 409
/// `idempotency_key_reused` if the key was stored for another request.
pub fn replay(scope: Scope, stored_hash: &str, hash: &str, status: i16, body: Value) -> Result<Answer, AppError> {
    let scope = scope.as_str();
    if stored_hash != hash {
        metrics::counter!("idempotency_conflicts_total", "scope" => scope).increment(1);
        return Err(AppError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    metrics::counter!("idempotency_replays_total", "scope" => scope).increment(1);
    Ok(Answer {
        status: u16::try_from(status).unwrap_or(200),
        body,
        replayed: true,
    })
}

/// How a keyed request begins.
pub enum Begun {
    /// Answered before: send this, run nothing.
    AnsweredBefore(Answer),
    /// The first time: do the work in [`Once::tx`], then [`Once::commit_with`] the answer.
    FirstTime(Once),
}

/// A keyed request's transaction, holding the key's lock until it ends.
pub struct Once {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    user_id: Uuid,
    key: String,
    scope: Scope,
    hash: String,
}

impl Once {
    /// Opens the request's transaction; waits for any concurrent request with the same key and
    /// answers from the stored record if there is one.
    pub async fn begin(deps: &Deps, keyed: Keyed<'_>) -> Result<Begun, AppError> {
        let Keyed {
            user_id,
            key,
            scope,
            request,
        } = keyed;
        let mut tx = deps.db.begin().await.context("begin")?;
        let hash = request_hash(request);
        repo::lock(&mut tx, user_id, scope.as_str(), key.as_str()).await?;
        if let Some(stored) = repo::find(&mut tx, user_id, scope.as_str(), key.as_str()).await? {
            return replay(scope, &stored.request_hash, &hash, stored.status, stored.body).map(Begun::AnsweredBefore);
        }
        Ok(Begun::FirstTime(Once {
            tx,
            user_id,
            key: key.as_str().to_owned(),
            scope,
            hash,
        }))
    }

    /// The request's transaction: the effect goes here, committed with the answer.
    pub fn tx(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Stores the answer under the key and commits the work with it.
    pub async fn commit_with(mut self, status: u16, body: Value) -> Result<Answer, AppError> {
        repo::insert(
            &mut self.tx,
            self.user_id,
            &self.key,
            self.scope.as_str(),
            &self.hash,
            status as i16,
            &body,
        )
        .await?;
        self.tx.commit().await.context("commit")?;
        Ok(Answer {
            status,
            body,
            replayed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_hashes_the_same() {
        let a = serde_json::json!({"amount": 5, "b": [1, 2]});
        let b = serde_json::json!({"b": [1, 2], "amount": 5});
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(
            request_hash(&a),
            request_hash(&serde_json::json!({"amount": 6, "b": [1, 2]}))
        );
    }
}
