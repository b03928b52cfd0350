//! Users and their wallets.

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: &'a str,
}

/// Inserts the user and its empty wallet. Fails with `users_email_key` if the address is taken.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "users.insert_with_wallet"))]
pub async fn insert_with_wallet(conn: &mut PgConnection, user: &NewUser<'_>) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO users (id, email, password_hash, name, role) VALUES ($1, $2, $3, $4, $5)",
        user.id,
        user.email,
        user.password_hash,
        user.name,
        user.role,
    )
    .execute(&mut *conn)
    .await
    .context("insert user")?;
    sqlx::query!("INSERT INTO wallets (user_id) VALUES ($1)", user.id)
        .execute(&mut *conn)
        .await
        .context("insert wallet")?;
    Ok(())
}

/// Inserts users (one password hash for all: demo and load-test accounts), each with a wallet
/// holding `points` and, when `points > 0`, the ledger row of that charge: one statement.
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "users.insert_many_with_points"))]
pub async fn insert_many_with_points(
    conn: &mut PgConnection,
    ids: &[Uuid],
    emails: &[String],
    password_hash: &str,
    name: &str,
    points: i64,
) -> anyhow::Result<u64> {
    let ledger: Vec<Uuid> = ids.iter().map(|_| Uuid::now_v7()).collect();
    let inserted = sqlx::query_scalar!(
        r#"WITH people AS (
               INSERT INTO users (id, email, password_hash, name, role)
               SELECT id, email, $3, $4, 'user' FROM UNNEST($1::uuid[], $2::text[]) AS t(id, email)
               RETURNING id
           ), wallets AS (
               INSERT INTO wallets (user_id, balance) SELECT id, $5 FROM people RETURNING user_id
           ), charges AS (
               INSERT INTO point_transactions (id, user_id, amount, kind)
               SELECT t.ledger, t.id, $5, 'charge' FROM UNNEST($1::uuid[], $6::uuid[]) AS t(id, ledger)
               WHERE $5 > 0
           )
           SELECT count(*) AS "count!" FROM wallets"#,
        ids,
        emails,
        password_hash,
        name,
        points,
        &ledger
    )
    .fetch_one(conn)
    .await
    .context("insert users with points")?;
    Ok(inserted as u64)
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "users.find_by_email"))]
pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> anyhow::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, email, name, role, password_hash FROM users WHERE email = $1",
        email
    )
    .fetch_optional(conn)
    .await
    .context("find user by email")
}

#[tracing::instrument(name = "db statement", skip_all, fields(statement = "users.find_by_id"))]
pub async fn find_by_id(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        "SELECT id, email, name, role, password_hash FROM users WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find user by id")
}

/// Returns whether a row changed (false: no such user, or already admin).
#[tracing::instrument(name = "db statement", skip_all, fields(statement = "users.promote_to_admin"))]
pub async fn promote_to_admin(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let result = sqlx::query!("UPDATE users SET role = 'admin' WHERE id = $1 AND role <> 'admin'", id)
        .execute(conn)
        .await
        .context("promote user to admin")?;
    Ok(result.rows_affected() == 1)
}

/// Sets the role of the account with this (normalised) e-mail address; its id, or None if
/// there is no such account.
pub async fn set_role(conn: &mut PgConnection, email: &str, role: &str) -> anyhow::Result<Option<Uuid>> {
    sqlx::query_scalar!("UPDATE users SET role = $2 WHERE email = $1 RETURNING id", email, role)
        .fetch_optional(conn)
        .await
        .context("set user role")
}
