//! Access tokens and the bootstrap admin account.

use std::time::Duration;

use secrecy::SecretString;

use super::env::{ConfigError, Env, Environment};

/// Used as `JWT_SECRET` in development mode only; production refuses to start without one.
pub(super) const DEV_JWT_SECRET: &str = "imticket-development-secret-do-not-use-in-production";
/// HS256 keys shorter than the hash output weaken the MAC (RFC 7518 §3.2).
const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `JWT_SECRET`: the HS256 key of access and queue tokens. Only the API signs and
    /// verifies tokens, so only it requires one ([`AuthSettings::signing_secret`]); a worker
    /// starts without it.
    pub jwt_secret: Result<SecretString, ConfigError>,
    /// `IMTICKET_JWT_TTL_SECONDS`: access-token lifetime.
    pub jwt_ttl: Duration,
    /// The admin account created at start when both of its variables are set.
    pub bootstrap_admin: Option<BootstrapAdmin>,
}

/// `IMTICKET_BOOTSTRAP_ADMIN_EMAIL` and `IMTICKET_BOOTSTRAP_ADMIN_PASSWORD`.
#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: SecretString,
}

impl AuthSettings {
    pub(super) fn read(env: &Env, environment: Environment) -> Result<Self, ConfigError> {
        let bootstrap_admin = match (
            env.get("IMTICKET_BOOTSTRAP_ADMIN_EMAIL"),
            env.get("IMTICKET_BOOTSTRAP_ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) => Some(BootstrapAdmin {
                email,
                password: SecretString::from(password),
            }),
            _ => None,
        };
        Ok(Self {
            jwt_secret: jwt_secret(env, environment).map(SecretString::from),
            jwt_ttl: jwt_ttl(env)?,
            bootstrap_admin,
        })
    }
}

impl AuthSettings {
    /// The key tokens are signed and verified with, or the error naming `JWT_SECRET` (unset in
    /// production, or too short).
    pub fn signing_secret(&self) -> Result<&SecretString, ConfigError> {
        self.jwt_secret.as_ref().map_err(Clone::clone)
    }
}

/// `JWT_SECRET`, at least 32 bytes; in development the built-in one when unset.
pub(crate) fn jwt_secret(env: &Env, environment: Environment) -> Result<String, ConfigError> {
    match env.get("JWT_SECRET") {
        Some(secret) if secret.len() >= MIN_JWT_SECRET_BYTES => Ok(secret),
        Some(_) => Err(ConfigError::new(
            "JWT_SECRET",
            format!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
        )),
        None if environment == Environment::Development => Ok(DEV_JWT_SECRET.to_owned()),
        None => Err(ConfigError::new(
            "JWT_SECRET",
            "is required in production (set IMTICKET_ENV=development to use a dev default)",
        )),
    }
}

pub(crate) fn jwt_ttl(env: &Env) -> Result<Duration, ConfigError> {
    env.seconds("IMTICKET_JWT_TTL_SECONDS", 3600, 60..=86_400 * 30)
}
