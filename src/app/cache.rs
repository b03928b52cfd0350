//! Look-aside caching of whole JSON responses.
//!
//! - A miss loads from PostgreSQL once per key and process however many requests miss at the
//!   same time (single-flight); the others wait for that load.
//! - Entries live for a TTL with random jitter, so keys written together do not expire
//!   together.
//! - Cache errors are logged and counted, never returned: with Redis down, reads go to
//!   PostgreSQL. After an error the cache is bypassed for a second, so an outage does not
//!   add a Redis timeout to every request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::AppError;
use crate::infra::cache::CacheStore;

/// A JSON document ready to be sent as a response body.
pub type JsonBody = Arc<[u8]>;

/// Time to live: `base ± jitter`.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    pub base: Duration,
    pub jitter: Duration,
}

impl Ttl {
    fn pick(self) -> Duration {
        let jitter = self.jitter.as_millis() as i64;
        let offset = if jitter > 0 {
            rand::random_range(-jitter..=jitter)
        } else {
            0
        };
        Duration::from_millis((self.base.as_millis() as i64 + offset).max(1) as u64)
    }
}

type Flight = Arc<OnceCell<JsonBody>>;

#[derive(Clone)]
pub struct LookAside {
    store: CacheStore,
    in_flight: Arc<Mutex<HashMap<String, Flight>>>,
    /// Unix millis until which the cache is bypassed after an error.
    bypass_until: Arc<AtomicI64>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LookAside {
    pub fn new(store: CacheStore) -> Self {
        Self {
            store,
            in_flight: Arc::default(),
            bypass_until: Arc::default(),
        }
    }

    pub fn store(&self) -> &CacheStore {
        &self.store
    }

    /// The same cache (shared single-flight and error bypass) over another store.
    pub fn with_store(&self, store: CacheStore) -> Self {
        Self {
            store,
            in_flight: self.in_flight.clone(),
            bypass_until: self.bypass_until.clone(),
        }
    }

    fn healthy(&self) -> bool {
        now_ms() >= self.bypass_until.load(Ordering::Relaxed)
    }

    fn failed(&self, cache: &'static str, op: &'static str, err: &anyhow::Error) {
        tracing::warn!(cache, op, error = %format!("{err:#}"), "cache unavailable; using the database");
        metrics::counter!("cache_errors_total", "cache" => cache, "op" => op).increment(1);
        self.bypass_until.store(now_ms() + 1000, Ordering::Relaxed);
    }

    /// The cached body of `key`, or `load`'s result (stored for next time).
    pub async fn get_or_load<F, Fut>(
        &self,
        cache: &'static str,
        key: &str,
        ttl: Ttl,
        load: F,
    ) -> Result<JsonBody, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<JsonBody, AppError>>,
    {
        if self.healthy() {
            match self.store.get(key).await {
                Ok(Some(bytes)) => {
                    metrics::counter!("cache_requests_total", "cache" => cache, "result" => "hit").increment(1);
                    return Ok(bytes.into());
                }
                Ok(None) => {}
                Err(err) => self.failed(cache, "get", &err),
            }
        }
        metrics::counter!("cache_requests_total", "cache" => cache, "result" => "miss").increment(1);

        let flight = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.entry(key.to_owned()).or_default().clone()
        };
        let result = flight
            .get_or_try_init(|| async {
                // A request that missed just before another flight stored the value, and
                // arrives just after that flight ended, finds the value here instead of
                // loading it a second time.
                if self.healthy()
                    && let Ok(Some(bytes)) = self.store.get(key).await
                {
                    return Ok::<JsonBody, AppError>(bytes.into());
                }
                metrics::counter!("cache_loads_total", "cache" => cache).increment(1);
                let body = load().await?;
                if self.healthy()
                    && let Err(err) = self.store.set(key, &body, ttl.pick()).await
                {
                    self.failed(cache, "set", &err);
                }
                Ok::<_, AppError>(body)
            })
            .await
            .cloned();
        // The flight is over; later misses (after expiry or invalidation) start a new one.
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if in_flight.get(key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            in_flight.remove(key);
        }
        result
    }

    /// Drops `keys` so the next read loads fresh data. A failure is logged: the entries then
    /// expire with their TTL.
    pub async fn invalidate(&self, cache: &'static str, keys: &[String]) {
        if let Err(err) = self.store.delete(keys).await {
            self.failed(cache, "delete", &err);
        }
    }

    /// Stores a freshly loaded body (warm-up).
    pub async fn put(&self, cache: &'static str, key: &str, body: &[u8], ttl: Ttl) {
        if let Err(err) = self.store.set(key, body, ttl.pick()).await {
            self.failed(cache, "set", &err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_jitter_stays_in_bounds() {
        let ttl = Ttl {
            base: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
        };
        for _ in 0..1000 {
            let t = ttl.pick();
            assert!(t >= Duration::from_secs(270) && t <= Duration::from_secs(330), "{t:?}");
        }
    }
}
