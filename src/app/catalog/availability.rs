//! Whether a concert has anything left to sell: the waiting room pauses admission while it is
//! sold out (api.md "Waiting room", status `sold_out`).

use anyhow::Context;
use uuid::Uuid;

use crate::app::{AppError, Deps};
use crate::infra::postgres::catalog::{self as repo, ConcertStock};

/// True iff the concert has seats, none of its schedules has an available seat, and no live
/// hold (a `held` reservation not yet past `expires_at`) could still give seats back.
///
/// The booking issue changes these counts with holds and sales; this function is the only
/// reader the waiting room uses.
///
/// A concert without seats (or one that does not exist) is *not* sold out: admitting fans to a
/// sale whose seats are not created yet is the admin's business, and sold-out is meant to stop
/// a sale that ran out, not one that never started. Sold-out is not final either: when a hold
/// expires or is cancelled its seats return to the inventory and this turns false again.
#[tracing::instrument(name = "concert sold out", skip_all, fields(concert_id = %concert_id))]
pub async fn concert_sold_out(deps: &Deps, concert_id: Uuid) -> Result<bool, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let stock = repo::concert_stock(&mut conn, concert_id).await?;
    Ok(is_sold_out(stock))
}

fn is_sold_out(stock: ConcertStock) -> bool {
    stock.total_seats > 0 && stock.available_seats == 0 && !stock.live_holds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock(total_seats: i64, available_seats: i64, live_holds: bool) -> ConcertStock {
        ConcertStock {
            total_seats,
            available_seats,
            live_holds,
        }
    }

    #[test]
    fn sold_out_needs_seats_none_available_and_no_live_hold() {
        assert!(!is_sold_out(stock(0, 0, false)), "no seats yet is not sold out");
        assert!(!is_sold_out(stock(10, 1, false)));
        assert!(!is_sold_out(stock(10, 0, true)), "a live hold may give seats back");
        assert!(is_sold_out(stock(10, 0, false)));
    }
}
