//! Stream handlers, one file per stream: each decodes its event ([`crate::events::decode`]),
//! calls a use case, and maps the result to an [`crate::stream::Outcome`]. A new stream's
//! handler goes here, and its role is one line in [`super::run`].

pub mod expiry;
pub mod notifications;
pub mod payment;
pub mod seat_creation;
pub mod statistics;

pub use expiry::ExpiryHandler;
pub use notifications::NotificationsHandler;
pub use payment::PaymentHandler;
pub use seat_creation::SeatCreationHandler;
pub use statistics::{SettlementHandler, StatisticsHandler};
