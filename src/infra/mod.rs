//! Adapters to the outside world: PostgreSQL repositories and Redis connections.

pub mod audit;
pub mod catalog;
pub mod db;
pub mod error;
pub mod expiry;
pub mod idempotency;
pub mod outbox;
pub mod processed_events;
pub mod redis;
pub mod reservations;
pub mod resource_gauges;
pub mod seat_gates;
pub mod seat_states;
pub mod users;
pub mod waiting_room;
pub mod wallets;
