//! Adapters to the outside world, one folder per backend: [`postgres`] (the system of record:
//! pool, migrations, repositories) and [`redis`] (the connection, every key name, every Lua
//! script, typed replies, and the stream, waiting-room, gate, seat-state and cache commands).
//! Beside them, the two pieces that use both: the outbox [`publisher::Publisher`] (claims rows in
//! PostgreSQL, adds them to Redis streams) and the [`resource_gauges`] of a process; and the
//! HTTP client that delivers [`webhooks`].

pub mod listen;
pub mod mail;
pub mod postgres;
pub mod publisher;
pub mod redis;
pub mod resource_gauges;
pub mod webhooks;
