//! Integration tests against real PostgreSQL and Redis servers started by the harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/browser.rs"]
mod browser;
#[path = "../common/haproxy.rs"]
mod haproxy;
#[path = "../common/helpers.rs"]
mod helpers;
#[path = "../common/servers.rs"]
mod servers;

mod audit;
mod auth;
mod availability;
mod balancer;
mod catalog;
mod cluster;
mod confirmations;
mod console;
mod email;
mod errors;
mod expiry;
mod holds;
mod hosts;
mod observability;
mod openapi;
mod operational;
mod outages;
mod payments;
mod pgbouncer;
mod processes;
mod rate_limits;
mod schema;
mod seat_crashes;
mod seat_map;
mod security;
mod slow_clients;
mod sse;
mod statistics;
mod told;
mod traces;
mod venues;
mod waiting_room;
mod webhooks;
