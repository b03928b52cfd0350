//! Reclaiming pending entries: those another consumer (dead, or failing) left, or this one
//! left for a retry, once their per-entry back-off has passed.

use std::time::Duration;

use super::consumer::Consumer;
use super::delivery::Delivery;
use super::handler::Handler;
use crate::infra::redis::streams;
use crate::infra::redis::{ConnectionLike, protocol};

/// How many XPENDING pages (of `batch_size` idle entries each) one reclaim round examines at
/// most, looking for due entries. Bounds the cost of a round when the pending list is long
/// and mostly backing off (say, every entry of a backlog failed during a database outage):
/// with the defaults, 5,000 entries per reclaim interval (5 s). Later rounds go on from where
/// one stopped, so every entry is looked at within `pending / (pages × batch_size)` rounds.
pub const RECLAIM_PAGES_PER_ROUND: usize = 10;

impl<H: Handler> Consumer<H> {
    /// Claims pending entries whose idle time exceeds their back-off. Returns the claimed
    /// deliveries and how many pending entries pointed at deleted stream entries.
    pub(super) async fn reclaim(&mut self) -> anyhow::Result<(Vec<Delivery>, usize)> {
        let mut conn = self.redis.connection().await?;
        let due = self.due_pending(&mut conn).await?;
        if due.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // XCLAIM (not XAUTOCLAIM): the back-off differs per entry, which XAUTOCLAIM's single
        // min-idle-time cannot express. Without JUSTID, XCLAIM increments the delivery counter.
        // Its own min-idle check makes a race with another reclaimer harmless: an entry just
        // claimed by someone else is no longer idle and is skipped.
        let ids: Vec<String> = due.iter().map(|(id, _)| id.clone()).collect();
        let claimed = streams::claim(
            &mut conn,
            &self.stream_key,
            &self.group,
            &self.name,
            self.settings.claim_idle,
            &ids,
        )
        .await?;
        let mut deliveries = Vec::new();
        let mut deleted = Vec::new();
        for (position, entry) in claimed.into_iter().enumerate() {
            match entry {
                Some(entry) => {
                    let previous = due.iter().find(|(d, _)| *d == entry.id).map_or(0, |(_, n)| *n);
                    deliveries.push(Delivery {
                        id: entry.id,
                        fields: entry.fields,
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
            streams::ack(&mut conn, &self.stream_key, &self.group, &deleted).await?;
            self.count("deleted", deleted.len());
        }
        Ok((deliveries, deleted.len()))
    }

    /// Pending entries idle past their own back-off, with their delivery counts: up to one
    /// batch. XPENDING's `IDLE` filter can only apply the shortest back-off (`claim_idle`), so
    /// the list is paged (exclusive starts) until a batch of due entries is found: otherwise a
    /// batch of entries still backing off at the head would hide due ones behind them until the
    /// head became due (up to the back-off cap). One round examines at most
    /// [`RECLAIM_PAGES_PER_ROUND`] pages and the next round goes on where it stopped, wrapping
    /// to the head at the end, so a huge pending list costs each round a bounded scan and is
    /// still walked entirely, over several rounds.
    async fn due_pending(&mut self, conn: &mut impl ConnectionLike) -> anyhow::Result<Vec<(String, u32)>> {
        let page_size = self.settings.batch_size.max(1);
        let mut due = Vec::new();
        let mut start = self.reclaim_cursor.take();
        for _ in 0..RECLAIM_PAGES_PER_ROUND {
            let page = streams::pending_idle(
                conn,
                &self.stream_key,
                &self.group,
                self.settings.claim_idle,
                start.as_deref(),
                page_size,
            )
            .await?;
            let page_len = page.len();
            let mut examined = 0;
            for entry in page {
                if due.len() >= self.settings.batch_size {
                    break;
                }
                examined += 1;
                start = Some(protocol::after(&entry.id));
                let deliveries = u32::try_from(entry.times_delivered).unwrap_or(u32::MAX);
                if Duration::from_millis(entry.last_delivered_ms as u64) >= self.settings.backoff(deliveries) {
                    due.push((entry.id, deliveries));
                }
            }
            if page_len < page_size && examined == page_len {
                // The end of the list: the next round starts from the head again.
                start = None;
                break;
            }
            if due.len() >= self.settings.batch_size {
                break;
            }
        }
        self.reclaim_cursor = start;
        Ok(due)
    }
}
