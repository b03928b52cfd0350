//! Dead letters as the console shows them: grouped by their normalised error, joined to the
//! reservation, payment or job each touches (its current row in PostgreSQL), a dry run that
//! says what a replay would do to each, and replay / purge in bounded batches.
//!
//! Grouping needs every entry's error: this process keeps an index of the dead-letter stream
//! (ids per group) that it extends with the entries added since its last look, and rebuilds
//! only when entries went away (a replay or purge anywhere: the stream is shorter than the
//! index plus what was added since, or `max-deleted-entry-id` moved).

mod actions;
mod index;
mod joined;

pub use actions::{Done, purge, replay};
pub use index::{Group, Index, Scope, groups, normalise};
pub use joined::{Letter, Page, Touched, Verdict, dry_run, one, page};

/// At most this many dead letters are replayed or dry-run by one action; the page says how
/// many remain and offers the next batch.
pub const BATCH: usize = 1000;
