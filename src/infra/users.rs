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
pub async fn promote_to_admin(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let result = sqlx::query!("UPDATE users SET role = 'admin' WHERE id = $1 AND role <> 'admin'", id)
        .execute(conn)
        .await
        .context("promote user to admin")?;
    Ok(result.rows_affected() == 1)
}
