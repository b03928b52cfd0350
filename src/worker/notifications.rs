//! The `notifications` role: the `notifications` group on the queue, reservations and expiry
//! streams turns events into webhook deliveries and mail, and the two dispatchers here send
//! the due ones. Any number of processes may run it: deliveries are leased, never sent twice
//! at once.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::handlers::notifications::{NOTIFICATIONS, NotificationsHandler};
use crate::app::Deps;
use crate::app::{email, webhooks};
use crate::events::Stream;
use crate::retry::retry_delay;
use crate::stream::{StreamRuntime, Subscription};

/// Pause after a round that found nothing due.
const IDLE: Duration = Duration::from_millis(200);

/// The group's consumers (one per stream partition) and the dispatcher.
pub fn spawn(deps: &Deps, streams: &StreamRuntime, tasks: &mut JoinSet<()>, stop: &CancellationToken) {
    // Exported from the start, at zero (a 410 is rare; a rule on it should see 0).
    metrics::counter!("webhook_endpoints_disabled").increment(0);
    let handler = std::sync::Arc::new(NotificationsHandler::new(deps.clone()));
    for stream in [Stream::Queue, Stream::Reservations, Stream::Expiry] {
        for subscription in
            Subscription::<NotificationsHandler>::each_partition_for(&deps.keys, stream, NOTIFICATIONS, handler.clone())
        {
            streams.spawn(tasks, subscription, stop.clone());
        }
    }
    tasks.spawn(dispatch(deps.clone(), stop.clone(), Channel::Webhook));
    if deps.mailer.enabled() {
        tasks.spawn(dispatch(deps.clone(), stop.clone(), Channel::Email));
    } else {
        tracing::info!("IMTICKET_SMTP_URL is empty: no mail is queued or sent");
    }
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    Webhook,
    Email,
}

/// Sends due deliveries of `channel` until `stop`; a round that fails (PostgreSQL down) backs off.
async fn dispatch(deps: Deps, stop: CancellationToken, channel: Channel) {
    tracing::info!(?channel, "dispatcher started");
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let round = match channel {
            Channel::Webhook => webhooks::dispatch_round(&deps).await,
            Channel::Email => email::dispatch_round(&deps).await,
        };
        let wait = match round {
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
                tracing::warn!(error = %format!("{err:#}"), failures, ?channel, "dispatch failed; backing off");
                retry_delay(failures)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(?channel, "dispatcher stopped");
}
