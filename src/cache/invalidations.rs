//! The invalidation channel: every API process follows it to keep its near cache in step.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::near::NearCache;
use crate::infra::redis::Redis;

/// Follows the invalidation channel until `shutdown`, evicting what each message names from
/// `near`. The near cache is live only while subscribed: it starts empty on every
/// (re)subscription and is cleared when the subscription is lost, so no copy outlives a gap
/// in which invalidations could have been missed by more than the near TTL.
pub async fn follow_invalidations(redis: Redis, channel: String, near: Arc<NearCache>, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match redis.subscribe(&channel).await {
            Ok(pubsub) => {
                failures = 0;
                near.set_live(true);
                tracing::debug!(channel = %channel, "following cache invalidations");
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        message = messages.next() => match message {
                            Some(message) => match serde_json::from_slice::<Vec<String>>(message.get_payload_bytes()) {
                                Ok(names) => near.evict(&names),
                                // Unreadable: assume the worst.
                                Err(_) => near.clear(),
                            },
                            None => break,
                        },
                    }
                }
                near.set_live(false);
                if !shutdown.is_cancelled() {
                    tracing::warn!(channel = %channel, "lost the cache invalidation channel; near cache off until it is back");
                }
            }
            Err(err) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(channel = %channel, error = %format!("{err:#}"), "cannot follow cache invalidations; near cache off");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(crate::retry::retry_delay(failures.max(1))) => {}
        }
    }
}
