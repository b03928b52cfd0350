//! Password hashing with argon2id, off the async worker threads and with bounded concurrency:
//! each hash takes ~19 MiB and tens of milliseconds of CPU, so an unbounded burst of sign-ups
//! or log-ins would exhaust memory instead of queueing.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when a login names an unknown account, so that the answer takes as
    /// long as for a known one and does not reveal which e-mail addresses exist. Made on first
    /// need, or by [`Self::prepare`] (the API, before it listens): workers and the operator CLI
    /// never log anyone in and do not pay a hash at start.
    dummy_hash: Arc<OnceLock<String>>,
}

const DUMMY_PASSWORD: &str = "imticket-dummy-password";

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::default(),
        })
    }

    /// Makes the dummy hash now, so that the first log-in naming an unknown account takes no
    /// longer than the others.
    pub async fn prepare(&self) -> anyhow::Result<()> {
        let dummy = self.dummy_hash.clone();
        self.run(move || dummy_hash(&dummy).map(drop)).await?
    }

    /// A hasher sized for this machine: two hashes per available core.
    pub fn for_this_machine() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::new(cores * 2)
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = SecretString::from(password.to_owned());
        self.run(move || hash_blocking(password.expose_secret())).await?
    }

    /// `stored` is `None` when no account matched; the dummy hash is verified instead.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        let found = stored.is_some();
        let stored = stored.map(str::to_owned);
        let dummy = self.dummy_hash.clone();
        let password = SecretString::from(password.to_owned());
        let matches = self
            .run(move || -> anyhow::Result<bool> {
                let hash = match &stored {
                    Some(hash) => hash.as_str(),
                    None => dummy_hash(&dummy)?,
                };
                let parsed =
                    PasswordHash::new(hash).map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
                Ok(Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok())
            })
            .await??;
        Ok(found && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await.context("password hasher closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("password hashing task failed")
    }
}

fn dummy_hash(cell: &OnceLock<String>) -> anyhow::Result<&str> {
    if let Some(hash) = cell.get() {
        return Ok(hash);
    }
    let hash = hash_blocking(DUMMY_PASSWORD)?;
    Ok(cell.get_or_init(|| hash))
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hash password: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let hasher = PasswordHasher::new(2).unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify(DUMMY_PASSWORD, None).await.unwrap());
        let made = hasher.dummy_hash.get().cloned().unwrap();
        hasher.prepare().await.unwrap();
        assert_eq!(hasher.dummy_hash.get(), Some(&made), "made once");
    }
}
