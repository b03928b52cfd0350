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
    /// `stream` read by its own consumer group (the one its worker role uses).
    pub fn to(keys: &Keys, stream: Stream, handler: impl Into<Arc<H>>) -> Self {
        Self {
            stream_key: keys.stream(stream),
            label: stream.name().to_owned(),
            group: stream.group().to_owned(),
            handler: handler.into(),
        }
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
