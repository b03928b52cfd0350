//! Requests made at most once per `Idempotency-Key` (api.md "Idempotency"): a key is scoped to
//! the user and the endpoint; a replay with the same request returns the stored status and
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

/// How a request with (or without) a key begins.
pub enum Start {
    /// Answered before: send this, run nothing.
    Replay(Answer),
    /// Do the work in [`Once::conn`]'s transaction, then [`Once::finish`] with the answer.
    Fresh(Once),
}

/// A request's transaction, holding the key's lock until it ends.
pub struct Once {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    user_id: Uuid,
    key: Option<String>,
    scope: &'static str,
    hash: String,
}

/// Opens the request's transaction; with a key, waits for any concurrent request with the same
/// key and answers from the stored record if there is one.
pub async fn start(
    deps: &Deps,
    user_id: Uuid,
    key: Option<&IdempotencyKey>,
    scope: &'static str,
    request: &Value,
) -> Result<Start, AppError> {
    let mut tx = deps.db.begin().await.context("begin")?;
    let hash = request_hash(request);
    if let Some(key) = key {
        repo::lock(&mut tx, user_id, key.as_str()).await?;
        if let Some(stored) = repo::find(&mut tx, user_id, key.as_str()).await? {
            if stored.scope != scope || stored.request_hash != hash {
                metrics::counter!("idempotency_conflicts_total", "scope" => scope).increment(1);
                return Err(AppError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                ));
            }
            metrics::counter!("idempotency_replays_total", "scope" => scope).increment(1);
            return Ok(Start::Replay(Answer {
                status: u16::try_from(stored.status).unwrap_or(200),
                body: stored.body,
                replayed: true,
            }));
        }
    }
    Ok(Start::Fresh(Once {
        tx,
        user_id,
        key: key.map(|k| k.as_str().to_owned()),
        scope,
        hash,
    }))
}

impl Once {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Stores the answer under the key (if any) and commits the work with it.
    pub async fn finish(mut self, status: u16, body: Value) -> Result<Answer, AppError> {
        if let Some(key) = &self.key {
            repo::insert(
                &mut self.tx,
                self.user_id,
                key,
                self.scope,
                &self.hash,
                status as i16,
                &body,
            )
            .await?;
        }
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
