//! The one description of a consumer: which stream, which group, which handler.

use std::sync::Arc;

use super::handler::Handler;
use crate::events::Stream;
use crate::infra::redis::keys::Keys;

/// What a consumer serves. A worker role is one line: `Subscription::to(keys, Stream::X, handler)`.
pub struct Subscription<H> {
    pub stream_key: String,
    /// The logical stream name, for metrics and logs.
    pub label: String,
    pub group: String,
    pub handler: Arc<H>,
}

impl<H: Handler> Subscription<H> {
    /// `stream` (its only partition) read by its own consumer group (the one its worker role
    /// uses).
    pub fn to(keys: &Keys, stream: Stream, handler: impl Into<Arc<H>>) -> Self {
        Self {
            stream_key: keys.stream(stream),
            label: stream.name().to_owned(),
            group: stream.group().to_owned(),
            handler: handler.into(),
        }
    }

    /// One subscription per partition of `stream` (one, unless `IMTICKET_STREAM_PARTITIONS`
    /// splits it), all with the same group and handler: every process of the role reads every
    /// partition, and the group shares each partition's entries between the processes. The
    /// label of a partition is `<name>.<i>`.
    pub fn each_partition(keys: &Keys, stream: Stream, handler: impl Into<Arc<H>>) -> Vec<Self> {
        Self::each_partition_for(keys, stream, stream.group(), handler)
    }

    /// As [`Self::each_partition`], read by `group` (one of the stream's declared groups,
    /// [`crate::events::groups`]): a fan-out reader of the stream.
    pub fn each_partition_for(keys: &Keys, stream: Stream, group: &str, handler: impl Into<Arc<H>>) -> Vec<Self> {
        let handler = handler.into();
        let keys_of = keys.stream_keys(stream);
        let split = keys_of.len() > 1;
        keys_of
            .into_iter()
            .enumerate()
            .map(|(i, stream_key)| Self {
                stream_key,
                label: if split {
                    format!("{}.{i}", stream.name())
                } else {
                    stream.name().to_owned()
                },
                group: group.to_owned(),
                handler: handler.clone(),
            })
            .collect()
    }

    /// Any stream key and group (benchmarks and tests use keys of their own); the key is the
    /// label.
    pub fn custom(stream_key: impl Into<String>, group: impl Into<String>, handler: impl Into<Arc<H>>) -> Self {
        let stream_key = stream_key.into();
        Self {
            label: stream_key.clone(),
            stream_key,
            group: group.into(),
            handler: handler.into(),
        }
    }
}
