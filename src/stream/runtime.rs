//! Running consumers: the one place where a [`Subscription`] becomes a running consumer with
//! its stream's housekeeping beside it.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::consumer::Consumer;
use super::handler::Handler;
use super::maintenance::{self, Target};
use super::subscription::Subscription;
use crate::config::ConsumerSettings;
use crate::config::{MaintenanceSettings, StreamSettings};
use crate::infra::redis::Redis;
use crate::infra::redis::keys::Keys;

/// What every consumer of a process shares: Redis, the key names and the tuning.
#[derive(Clone)]
pub struct StreamRuntime {
    redis: Redis,
    keys: Keys,
    settings: ConsumerSettings,
    maintenance: MaintenanceSettings,
}

impl StreamRuntime {
    pub fn new(redis: Redis, keys: Keys, settings: &StreamSettings) -> Self {
        Self {
            redis,
            keys,
            settings: settings.consumer(),
            maintenance: settings.maintenance(),
        }
    }

    /// The same runtime with other consumer settings (tests and benchmarks).
    pub fn with_settings(self, settings: ConsumerSettings) -> Self {
        Self { settings, ..self }
    }

    pub fn settings(&self) -> &ConsumerSettings {
        &self.settings
    }

    /// A consumer to drive by hand ([`Consumer::process_batch`]): tests drain with it.
    pub fn consumer<H: Handler>(&self, subscription: Subscription<H>) -> Consumer<H> {
        Consumer::new(self.redis.clone(), &self.keys, subscription, self.settings.clone())
    }

    /// Runs a consumer of `subscription`, and beside it the stream's housekeeping (trimming,
    /// dead-consumer removal, stream metrics), until `stop`. The unit every consumer role is
    /// made of.
    pub fn spawn<H: Handler>(&self, tasks: &mut JoinSet<()>, subscription: Subscription<H>, stop: CancellationToken) {
        let consumer = self.consumer(subscription);
        let target = Target {
            key: consumer.stream_key().to_owned(),
            label: consumer.label().to_owned(),
            group: consumer.group().to_owned(),
            consumer: consumer.name().to_owned(),
        };
        tasks.spawn(maintenance::run(
            self.redis.clone(),
            self.keys.clone(),
            target,
            self.maintenance.clone(),
            stop.clone(),
        ));
        tasks.spawn(consumer.run(stop));
    }
}
