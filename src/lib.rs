//! ImTicket: a concert-ticketing backend.
//!
//! Layers, in one direction: [`api`] (actix handlers, DTOs, auth extractors) → [`app`] (use
//! cases; own the transaction) → [`domain`] (pure types) ← [`infra`] (PostgreSQL, Redis).
//! Beside them: [`config`] (typed settings, one section per concern), [`events`] (streams and
//! typed payloads), [`cache`] (look-aside and near cache), [`stream`] (the consumer runtime),
//! [`worker`] (roles and their stream handlers) and [`admin`] (the operator CLI). [`root`]
//! builds every dependency of a process once. docs/layout.md says where new code goes.
//! The binaries are thin: they parse configuration, install telemetry and call one `run`.

pub mod admin;
pub mod api;
pub mod app;
pub mod cache;
pub mod config;
pub mod domain;
pub mod events;
pub mod infra;
pub mod retry;
pub mod root;
pub mod shutdown;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod worker;
