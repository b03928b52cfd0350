//! The event backbone against real Redis and PostgreSQL: consumer groups, reclaim, back-off,
//! dead letters, trimming, the outbox, and crashes of real processes (`kill -9`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../common/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../common/servers.rs"]
mod servers;
mod support;

mod admin_cli;
mod crashes;
mod fanout;
mod outbox;
mod queue_cli;
mod retention;
mod runtime;
