//! The `notifications` group's handler (streams `queue`, `reservations`, `expiry`): each event
//! a fan is told about becomes a webhook delivery per endpoint subscribed to its type and a
//! mail to the fan, as the fan's preferences allow ([`crate::app::notices::enqueue`]); the
//! dispatchers ([`crate::worker::notifications`]) send them. Other types (`queue.joined`,
//! `hold.expired`) are acked as they are.

use crate::app::Deps;
use crate::app::notices::{Notice, enqueue, is_notice};
use crate::events::Envelope;
use crate::stream::{Handler, Outcome};

/// The group's name.
pub const NOTIFICATIONS: &str = "notifications";

pub struct NotificationsHandler {
    deps: Deps,
}

impl NotificationsHandler {
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }
}

impl Handler for NotificationsHandler {
    async fn handle(&self, batch: &[Envelope]) -> Vec<Outcome> {
        let told: Vec<(usize, Notice)> = batch
            .iter()
            .enumerate()
            .filter(|(_, e)| is_notice(&e.event_type))
            .map(|(i, e)| {
                let notice = Notice {
                    event_id: e.event_id,
                    event_type: e.event_type.clone(),
                    occurred_at: e.occurred_at,
                    payload: e.payload.clone(),
                };
                (i, notice)
            })
            .collect();
        let mut outcomes = vec![Outcome::Ack; batch.len()];
        let notices: Vec<Notice> = told.iter().map(|(_, n)| n.clone()).collect();
        if let Err(err) = enqueue(&self.deps, NOTIFICATIONS, &notices).await {
            let failed = Outcome::failed(&err);
            for (i, _) in &told {
                outcomes[*i] = failed.clone();
            }
        }
        outcomes
    }
}
