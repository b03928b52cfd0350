//! Console sessions: log in with an admin or viewer account, a random secret in an `HttpOnly`
//! cookie (only its SHA-256 is stored), and a per-session CSRF token every action carries.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::Rng as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::app::{AppError, Deps};
use crate::domain::user::Role;
use crate::infra::postgres::console as repo;

/// How long a console session lasts from its log-in.
pub const SESSION_HOURS: i64 = 12;

/// A logged-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    /// Sent back with every action (a hidden form field).
    pub csrf_token: String,
}

impl Session {
    /// Operators (admin accounts) read and act; viewers only read.
    pub fn may_act(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        let (a, b) = (self.csrf_token.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// What the console calls the role.
    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::Admin => "operator",
            _ => "viewer",
        }
    }
}

/// A new session: the cookie's secret (never stored) and the session.
pub struct SessionLogin {
    pub secret: String,
    pub session: Session,
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Logs in with an account's e-mail and password; only admin (operator) and viewer accounts
/// may open the console (403 `console_forbidden` for everyone else).
pub async fn login(deps: &Deps, email: &str, password: &SecretString) -> Result<SessionLogin, AppError> {
    let user = crate::app::auth::authenticate(deps, email, password).await?;
    if !matches!(user.role, Role::Admin | Role::Viewer) {
        tracing::info!(user_id = %user.id, "console log-in refused: not an admin or viewer");
        return Err(AppError::forbidden(
            "console_forbidden",
            "the console is for admin and viewer accounts",
        ));
    }
    let (secret, csrf_token) = (random_token(), random_token());
    let expires_at = Utc::now() + chrono::Duration::hours(SESSION_HOURS);
    let mut conn = deps.db.write().await.context("acquire connection")?;
    repo::insert_session(&mut conn, &hash(&secret), user.id, &csrf_token, expires_at).await?;
    conn.commit().await.context("commit console session")?;
    tracing::info!(user_id = %user.id, role = user.role.as_str(), "console session opened");
    Ok(SessionLogin {
        secret,
        session: Session {
            user_id: user.id,
            email: user.email,
            role: user.role,
            csrf_token,
        },
    })
}

/// The session of a cookie's secret, if it is live and its account may still use the console
/// (an admin demoted to user loses it at once).
pub async fn lookup(deps: &Deps, secret: &str) -> Result<Option<Session>, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let Some(row) = repo::find_session(&mut conn, &hash(secret)).await? else {
        return Ok(None);
    };
    let role: Role = row
        .role
        .parse()
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e:?}")))?;
    Ok(matches!(role, Role::Admin | Role::Viewer).then_some(Session {
        user_id: row.user_id,
        email: row.email,
        role,
        csrf_token: row.csrf_token,
    }))
}

/// Ends the session of a cookie's secret.
pub async fn logout(deps: &Deps, secret: &str) -> Result<(), AppError> {
    let mut conn = deps.db.write().await.context("acquire connection")?;
    repo::delete_session(&mut conn, &hash(secret)).await?;
    conn.commit().await.context("commit console log-out")?;
    Ok(())
}
