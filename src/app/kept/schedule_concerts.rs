//! Which concert each schedule belongs to, kept per process: the booking gate must not cost a
//! database query per request (a loser must cost none).

use anyhow::Context;
use sqlx::PgConnection;

use crate::infra::postgres::Db;
use uuid::Uuid;

use super::bounded::Kept;
use crate::app::error::AppError;
use crate::infra::postgres::reservations as repo;

/// Schedules kept at most.
const KEPT: usize = 100_000;

/// Schedules never move from one concert to another.
pub struct ScheduleConcerts {
    known: Kept<Uuid, Uuid>,
}

impl Default for ScheduleConcerts {
    fn default() -> Self {
        Self { known: Kept::new(KEPT) }
    }
}

impl ScheduleConcerts {
    /// The schedule's concert; 404 `schedule_not_found` for an unknown schedule.
    pub async fn concert_of(&self, db: &Db, schedule_id: Uuid) -> Result<Uuid, AppError> {
        if let Some(concert) = self.known.get(&schedule_id) {
            return Ok(concert);
        }
        let mut conn = db.read().await.context("acquire connection")?;
        self.concert_of_in(&mut conn, schedule_id).await
    }

    /// As [`Self::concert_of`], on the caller's connection: inside a transaction a second
    /// pooled connection must never be needed (concurrent requests holding theirs could
    /// exhaust the pool).
    pub async fn concert_of_in(&self, conn: &mut PgConnection, schedule_id: Uuid) -> Result<Uuid, AppError> {
        if let Some(concert) = self.known.get(&schedule_id) {
            return Ok(concert);
        }
        let concert = repo::schedule_concert(conn, schedule_id)
            .await?
            .ok_or_else(AppError::schedule_not_found)?;
        self.known.insert(schedule_id, concert);
        Ok(concert)
    }
}
