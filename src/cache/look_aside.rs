//! [`LookAside`]: single-flight loads, error bypass, and invalidations that survive a Redis
//! outage.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::entry::{JsonBody, Ttl};
use super::near::NearCache;
use crate::infra::redis::cache_store::CacheStore;

type Flight = Arc<OnceCell<JsonBody>>;

/// Invalidations kept for a retry at most; beyond this, the oldest are given up (their
/// entries then expire with their TTL) and the loss is logged.
const UNSENT_CAPACITY: usize = 100_000;

/// How often invalidations that failed are tried again.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct LookAside {
    store: CacheStore,
    in_flight: Arc<Mutex<HashMap<String, Flight>>>,
    /// Unix millis until which the cache is bypassed after an error.
    bypass_until: Arc<AtomicI64>,
    near: Option<Arc<NearCache>>,
    /// Invalidations that could not be delivered (Redis unreachable), by key, with the cache
    /// they belong to; sent again with the next invalidation and by
    /// [`LookAside::retry_unsent_invalidations`].
    unsent: Arc<Mutex<Unsent>>,
}

/// Invalidations that failed, in the order they failed, without duplicates.
#[derive(Default)]
struct Unsent {
    order: VecDeque<(&'static str, String)>,
    keys: HashSet<String>,
}

impl Unsent {
    /// Adds `key` (of `cache`) unless present; returns how many of the oldest were given up to
    /// stay within `capacity`.
    fn add(&mut self, cache: &'static str, key: &str, capacity: usize) -> usize {
        if !self.keys.insert(key.to_owned()) {
            return 0;
        }
        self.order.push_back((cache, key.to_owned()));
        let mut dropped = 0;
        while self.order.len() > capacity {
            if let Some((_, old)) = self.order.pop_front() {
                self.keys.remove(&old);
                dropped += 1;
            }
        }
        dropped
    }

    fn take(&mut self) -> Vec<(&'static str, String)> {
        self.keys.clear();
        self.order.drain(..).collect()
    }

    fn len(&self) -> usize {
        self.order.len()
    }
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
            near: None,
            unsent: Arc::default(),
        }
    }

    /// The same cache with a process-local copy of `near` caches in front of Redis.
    pub fn with_near(self, near: Arc<NearCache>) -> Self {
        Self {
            near: Some(near),
            ..self
        }
    }

    pub fn near(&self) -> Option<&Arc<NearCache>> {
        self.near.as_ref()
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
            near: self.near.clone(),
            unsent: self.unsent.clone(),
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
    /// A failed load is returned as it is, and nothing is stored.
    pub async fn get_or_load<F, Fut, E>(&self, cache: &'static str, key: &str, ttl: Ttl, load: F) -> Result<JsonBody, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<JsonBody, E>>,
    {
        let near = self.near.as_deref().filter(|_| ttl.near);
        // Read before anything else: a copy loaded after an eviction began is not kept.
        let epoch = near.map(NearCache::epoch);
        if let Some(near) = near
            && let Some(body) = near.get(key)
        {
            metrics::counter!("cache_requests_total", "cache" => cache, "result" => "near_hit").increment(1);
            return Ok(body);
        }
        let keep = |body: &JsonBody| {
            if let (Some(near), Some(epoch)) = (near, epoch) {
                near.insert(key, body, epoch);
            }
        };
        if self.healthy() {
            match self.store.get(key).await {
                Ok((Some(bytes), _)) => {
                    metrics::counter!("cache_requests_total", "cache" => cache, "result" => "hit").increment(1);
                    let body: JsonBody = bytes.into();
                    keep(&body);
                    return Ok(body);
                }
                Ok((None, _)) => {}
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
                // loading it a second time. The generation read here, before the load, is
                // the one the result may be stored under.
                let mut generation = None;
                if self.healthy() {
                    match self.store.get(key).await {
                        Ok((Some(bytes), _)) => return Ok::<JsonBody, E>(bytes.into()),
                        Ok((None, read)) => generation = Some(read),
                        Err(err) => self.failed(cache, "get", &err),
                    }
                }
                metrics::counter!("cache_loads_total", "cache" => cache).increment(1);
                let body = load().await?;
                // Without a generation (Redis failed) nothing is stored: a change could have
                // been missed.
                if let Some(generation) = generation
                    && self.healthy()
                {
                    match self.store.set_if(key, &body, ttl.pick(), generation).await {
                        Ok(true) => {}
                        Ok(false) => {
                            metrics::counter!("cache_stale_fills_total", "cache" => cache).increment(1);
                        }
                        Err(err) => self.failed(cache, "set", &err),
                    }
                }
                Ok::<_, E>(body)
            })
            .await
            .cloned();
        // The flight is over; later misses (after expiry or invalidation) start a new one.
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.get(key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                in_flight.remove(key);
            }
        }
        if let Ok(body) = &result {
            keep(body);
        }
        result
    }

    /// Drops `keys` so the next read loads fresh data: here at once, in Redis, and in the near
    /// caches of every process (published on the invalidation channel).
    ///
    /// If Redis cannot be reached, the keys are kept and sent again, with the next
    /// invalidation and by [`Self::retry_unsent_invalidations`], so entries that survive an
    /// outage (Redis keeps them on disk) are removed soon after it ends rather than served
    /// until their TTL. A process that exits before Redis is back gives them up: logged.
    pub async fn invalidate(&self, cache: &'static str, keys: &[String]) {
        if let Some(near) = &self.near {
            near.evict(keys);
        }
        let mut batch: Vec<(&'static str, String)> = keys.iter().map(|k| (cache, k.clone())).collect();
        batch.extend(self.unsent().take().into_iter().filter(|(_, k)| !keys.contains(k)));
        self.send(batch).await;
    }

    /// Sends the invalidations that failed earlier; returns how many are still waiting.
    pub async fn retry_unsent_invalidations(&self) -> usize {
        // Within a second of a failure Redis is left alone, as for reads.
        if !self.healthy() {
            return self.unsent().len();
        }
        let batch = self.unsent().take();
        if batch.is_empty() {
            return 0;
        }
        let count = batch.len();
        if self.send(batch).await {
            tracing::info!(
                count,
                "sent cache invalidations that failed while Redis was unreachable"
            );
            metrics::counter!("cache_invalidations_retried_total").increment(count as u64);
        }
        self.unsent().len()
    }

    /// Retries failed invalidations every half second until `shutdown`, then once more.
    pub async fn keep_retrying_invalidations(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(RETRY_INTERVAL) => {}
            }
            self.retry_unsent_invalidations().await;
        }
        self.bypass_until.store(0, Ordering::Relaxed);
        let left = self.retry_unsent_invalidations().await;
        if left > 0 {
            tracing::warn!(
                count = left,
                "exiting with cache invalidations Redis never received; those entries expire with their TTL"
            );
        }
    }

    fn unsent(&self) -> std::sync::MutexGuard<'_, Unsent> {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes `batch` in Redis; on failure keeps it for a retry (the error is counted under
    /// the first entry's cache). Returns whether it was sent.
    async fn send(&self, batch: Vec<(&'static str, String)>) -> bool {
        let Some(&(cache, _)) = batch.first() else {
            return true;
        };
        let names: Vec<String> = batch.iter().map(|(_, k)| k.clone()).collect();
        match self.store.delete(&names).await {
            Ok(()) => true,
            Err(err) => {
                self.failed(cache, "delete", &err);
                let mut unsent = self.unsent();
                let dropped: usize = batch.iter().map(|(c, k)| unsent.add(c, k, UNSENT_CAPACITY)).sum();
                if dropped > 0 {
                    tracing::warn!(
                        dropped,
                        "too many cache invalidations waiting for Redis; the oldest expire with their TTL"
                    );
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn unsent_invalidations_keep_their_order_once_each_and_give_up_the_oldest_past_capacity() {
        let mut unsent = Unsent::default();
        assert_eq!(unsent.add("concert", "a", 2), 0);
        assert_eq!(unsent.add("seats", "b", 2), 0);
        assert_eq!(unsent.add("concert", "a", 2), 0, "already waiting");
        assert_eq!(unsent.add("concert", "c", 2), 1, "the oldest is given up");
        assert_eq!(
            unsent.take(),
            vec![("seats", "b".to_owned()), ("concert", "c".to_owned())]
        );
        assert_eq!(unsent.len(), 0);
        assert_eq!(unsent.add("concert", "a", 2), 0, "taken keys can wait again");
        assert_eq!(unsent.len(), 1);
    }
}
