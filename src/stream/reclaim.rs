//! Reclaiming pending entries: those another consumer (dead, or failing) left, or this one
//! left for a retry, once their per-entry back-off has passed.

use std::time::Duration;

use anyhow::Context;
use redis::Value;

use super::Handler;
use super::consumer::Consumer;
use super::delivery::Delivery;
use super::resp::{as_array, as_int, as_string, parse_entry};

impl<H: Handler> Consumer<H> {
    /// Claims pending entries whose idle time exceeds their back-off. Returns the claimed
    /// deliveries and how many pending entries pointed at deleted stream entries.
    pub(super) async fn reclaim(&mut self) -> anyhow::Result<(Vec<Delivery>, usize)> {
        let mut conn = self.redis.connection().await?;
        let claim_idle_ms = self.settings.claim_idle.as_millis() as u64;
        let pending: Value = redis::cmd("XPENDING")
            .arg(&self.stream_key)
            .arg(&self.group)
            .arg("IDLE")
            .arg(claim_idle_ms)
            .arg("-")
            .arg("+")
            .arg(self.settings.batch_size)
            .query_async(&mut conn)
            .await
            .context("XPENDING")?;
        let mut due = Vec::new();
        for entry in as_array(pending) {
            let fields = as_array(entry);
            let (Some(id), Some(idle), Some(count)) = (
                fields.first().and_then(as_string),
                fields.get(2).and_then(as_int),
                fields.get(3).and_then(as_int),
            ) else {
                continue;
            };
            let deliveries = u32::try_from(count).unwrap_or(u32::MAX);
            if Duration::from_millis(idle.max(0) as u64) >= self.settings.backoff(deliveries) {
                due.push((id, deliveries));
            }
        }
        if due.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // XCLAIM (not XAUTOCLAIM): the back-off differs per entry, which XAUTOCLAIM's single
        // min-idle-time cannot express. Without JUSTID, XCLAIM increments the delivery counter.
        // Its own min-idle check makes a race with another reclaimer harmless: an entry just
        // claimed by someone else is no longer idle and is skipped.
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&self.stream_key)
            .arg(&self.group)
            .arg(&self.name)
            .arg(claim_idle_ms);
        for (id, _) in &due {
            cmd.arg(id);
        }
        let claimed: Value = cmd.query_async(&mut conn).await.context("XCLAIM")?;
        let mut deliveries = Vec::new();
        let mut deleted = Vec::new();
        for (position, item) in as_array(claimed).into_iter().enumerate() {
            match parse_entry(item) {
                Some((id, fields)) => {
                    let previous = due.iter().find(|(d, _)| *d == id).map(|(_, n)| *n).unwrap_or(0);
                    deliveries.push(Delivery {
                        id,
                        fields,
                        deliveries: previous.saturating_add(1),
                    });
                }
                // Redis 6.2 answers nil for a pending entry whose stream entry was deleted;
                // Redis 7 drops such entries from the pending list and the reply by itself.
                None => {
                    if let Some((id, _)) = due.get(position) {
                        deleted.push(id.clone());
                    }
                }
            }
        }
        if !deleted.is_empty() {
            let _: i64 = redis::cmd("XACK")
                .arg(&self.stream_key)
                .arg(&self.group)
                .arg(&deleted)
                .query_async(&mut conn)
                .await
                .context("XACK deleted entries")?;
            self.count("deleted", deleted.len());
        }
        Ok((deliveries, deleted.len()))
    }
}
