//! ImTicket: a concert-ticketing backend.
//!
//! Layers, in one direction: [`api`] (actix handlers, DTOs, auth extractors) → [`app`] (use
//! cases; own the transaction) → [`domain`] (pure types) ← [`infra`] (PostgreSQL, Redis).
//! The binaries are thin: they parse configuration, install telemetry and call one `run`.

pub mod admin;
pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;
pub mod seed;
pub mod shutdown;
pub mod startup;
pub mod stream;
pub mod telemetry;
pub mod worker;
