//! The `notifications` role: the `notifications` group on the queue, reservations and expiry
//! streams turns events into webhook deliveries, and the dispatcher here sends the due ones.
//! Any number of processes may run it: deliveries are leased, never sent twice at once.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::handlers::notifications::{NOTIFICATIONS, NotificationsHandler};
use crate::app::Deps;
use crate::app::webhooks::dispatch_round;
use crate::events::Stream;
use crate::retry::retry_delay;
use crate::stream::{StreamRuntime, Subscription};

/// Pause after a round that found nothing due.
const IDLE: Duration = Duration::from_millis(200);

/// The group's consumers (one per stream partition) and the dispatcher.
pub fn spawn(deps: &Deps, streams: &StreamRuntime, tasks: &mut JoinSet<()>, stop: &CancellationToken) {
    let handler = std::sync::Arc::new(NotificationsHandler::new(deps.clone()));
    for stream in [Stream::Queue, Stream::Reservations, Stream::Expiry] {
        for subscription in
            Subscription::<NotificationsHandler>::each_partition_for(&deps.keys, stream, NOTIFICATIONS, handler.clone())
        {
            streams.spawn(tasks, subscription, stop.clone());
        }
    }
    tasks.spawn(dispatch(deps.clone(), stop.clone()));
}

/// Sends due deliveries until `stop`; a round that fails (PostgreSQL down) backs off.
async fn dispatch(deps: Deps, stop: CancellationToken) {
    tracing::info!("webhook dispatcher started");
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let wait = match dispatch_round(&deps).await {
            Ok(0) => {
                failures = 0;
                IDLE
            }
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %format!("{err:#}"), failures, "webhook dispatch failed; backing off");
                retry_delay(failures)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("webhook dispatcher stopped");
}
