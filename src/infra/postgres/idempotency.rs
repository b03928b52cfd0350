//! Stored answers of requests made with an `Idempotency-Key` (table `idempotency_keys`).

use anyhow::Context;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct StoredAnswer {
    pub request_hash: String,
    pub status: i16,
    pub body: Value,
}

/// Serializes the requests of one (user, endpoint, key) until the transaction ends: a
/// concurrent request with the same key waits here for the first one's commit, then finds its
/// answer.
pub async fn lock(conn: &mut PgConnection, user_id: Uuid, scope: &str, key: &str) -> anyhow::Result<()> {
    super::advisory_xact_lock(conn, &lock_name(user_id, scope, key)).await
}

/// The name of the advisory lock of one (user, endpoint, key), as [`lock`] and the
/// one-statement functions (`pay_once`) take it.
pub fn lock_name(user_id: Uuid, scope: &str, key: &str) -> String {
    format!("idempotency:{user_id}:{scope}:{key}")
}

/// The answer stored for the user's `key` on the endpoint `scope`.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "idempotency.find"))]
pub async fn find(
    conn: &mut PgConnection,
    user_id: Uuid,
    scope: &str,
    key: &str,
) -> anyhow::Result<Option<StoredAnswer>> {
    sqlx::query_as!(
        StoredAnswer,
        r#"SELECT request_hash, response_status AS status, response_body AS body
           FROM idempotency_keys WHERE user_id = $1 AND scope = $2 AND idempotency_key = $3"#,
        user_id,
        scope,
        key
    )
    .fetch_optional(conn)
    .await
    .context("find idempotency key")
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "idempotency.insert"))]
pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: &str,
    scope: &str,
    request_hash: &str,
    status: i16,
    body: &Value,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, scope, request_hash, response_status, response_body)
         VALUES ($1, $2, $3, $4, $5, $6)",
        user_id,
        key,
        scope,
        request_hash,
        status,
        body
    )
    .execute(conn)
    .await
    .context("store idempotency key")?;
    Ok(())
}
