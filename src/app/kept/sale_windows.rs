//! When each concert's sale opens, kept per process: a join must not cost a database query.

use crate::infra::postgres::Db;
use anyhow::Context;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::bounded::Kept;
use crate::app::error::AppError;
use crate::infra::postgres::catalog as repo;

/// Concerts' sale openings kept at most.
const KEPT: usize = 100_000;

/// A concert's `sale_opens_at` never changes once created, and concerts are never deleted, so
/// a found answer is kept; an unknown concert is asked again each time.
pub struct SaleWindows {
    known: Kept<Uuid, Option<DateTime<Utc>>>,
}

impl Default for SaleWindows {
    fn default() -> Self {
        Self { known: Kept::new(KEPT) }
    }
}

impl SaleWindows {
    /// When `concert_id`'s sale opens (`None`: open now); 404 for an unknown concert.
    pub async fn opens_at(&self, db: &Db, concert_id: Uuid) -> Result<Option<DateTime<Utc>>, AppError> {
        if let Some(known) = self.known.get(&concert_id) {
            return Ok(known);
        }
        let mut conn = db.read().await.context("acquire connection")?;
        let window = repo::concert_sale_window(&mut conn, concert_id)
            .await?
            .ok_or_else(AppError::concert_not_found)?;
        self.known.insert(concert_id, window);
        Ok(window)
    }
}
