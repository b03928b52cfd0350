//! `GET /queue/events`: a fan's queue entry pushed as it changes (Server-Sent Events). What a
//! process keeps for its open streams ([`QueueStreams`]: how many, their cap, the signal that
//! ends them all on shutdown) and what an event is: the entry's view (the same as
//! `GET /queue/status`), named by a short hash of itself ([`state_id`]) so that a client
//! that reconnects with `Last-Event-ID` is sent the state only if it changed meanwhile.
//! How a stream is read and why it costs less than polling: docs/waiting-room.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::AppError;
use super::waiting_room::QueueView;
use crate::domain::queue::QueueStatus;

/// The open event streams of one API process.
#[derive(Debug)]
pub struct QueueStreams {
    open: AtomicUsize,
    max: usize,
    closing: CancellationToken,
}

impl QueueStreams {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
            closing: CancellationToken::new(),
        })
    }

    /// A slot for one more stream, or 503 `too_many_streams` at `IMTICKET_SSE_MAX_STREAMS`
    /// (the client polls `GET /queue/status` meanwhile, or comes back after Retry-After).
    pub fn open(self: &Arc<Self>) -> Result<StreamSlot, AppError> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("sse_refused_total").increment(1);
            return Err(AppError::unavailable(
                "too_many_streams",
                "this server keeps as many queue streams open as it may; poll GET /queue/status or retry later",
                5,
            ));
        }
        metrics::gauge!("sse_open_streams").set((before + 1) as f64);
        Ok(StreamSlot(self.clone()))
    }

    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Cancelled when the process starts to drain: every stream ends (the client reconnects,
    /// to another instance) instead of holding the shutdown up.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    pub fn close_all(&self) {
        self.closing.cancel();
    }
}

/// One open stream; closing it (drop) gives its slot back.
#[derive(Debug)]
pub struct StreamSlot(Arc<QueueStreams>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let after = self.0.open.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        metrics::gauge!("sse_open_streams").set(after as f64);
    }
}

/// The event id of a state: the first 16 hex digits of the SHA-256 of its JSON. Equal states
/// have equal ids in every process, so `Last-Event-ID` works across instances.
pub fn state_id(json: &str) -> String {
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Whether nothing will change any more: the stream ends after this state.
pub fn is_final(view: &QueueView) -> bool {
    matches!(
        view.status,
        QueueStatus::Done | QueueStatus::Expired | QueueStatus::SoldOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_process_refuses_and_a_closed_stream_gives_its_slot_back() {
        let streams = QueueStreams::new(2);
        let a = streams.open().unwrap();
        let _b = streams.open().unwrap();
        assert_eq!(streams.open().unwrap_err().code, "too_many_streams");
        drop(a);
        assert_eq!(streams.open_streams(), 1);
        assert!(streams.open().is_ok());
    }

    #[test]
    fn state_ids_are_short_stable_and_differ_with_the_state() {
        let id = state_id(r#"{"status":"waiting","position":3}"#);
        assert_eq!(id.len(), 16);
        assert_eq!(id, state_id(r#"{"status":"waiting","position":3}"#));
        assert_ne!(id, state_id(r#"{"status":"waiting","position":2}"#));
    }
}
