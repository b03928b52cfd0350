//! Venues, halls, seat plan versions and their seats.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::catalog::SeatColumns;
use crate::domain::seat_plan::{PlanSeat, Prices, SeatPlan};

/// Plan seats inserted per statement.
const SEATS_PER_INSERT: usize = 10_000;

#[derive(Debug, Clone)]
pub struct VenueRow {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct HallRow {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PlanRow {
    pub hall_id: Uuid,
    pub version: i32,
    pub seats: i32,
    pub for_sale: i32,
    pub categories: Vec<String>,
    pub digest: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert_venue(conn: &mut PgConnection, row: &VenueRow) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO venues (id, name, address, time_zone, created_at) VALUES ($1, $2, $3, $4, $5)",
        row.id,
        row.name,
        row.address,
        row.time_zone,
        row.created_at
    )
    .execute(conn)
    .await
    .context("insert venue")?;
    Ok(())
}

pub async fn list_venues(conn: &mut PgConnection, limit: i64, offset: i64) -> anyhow::Result<(Vec<VenueRow>, i64)> {
    let rows = sqlx::query_as!(
        VenueRow,
        "SELECT id, name, address, time_zone, created_at FROM venues ORDER BY created_at, id LIMIT $1 OFFSET $2",
        limit,
        offset
    )
    .fetch_all(&mut *conn)
    .await
    .context("list venues")?;
    let total = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM venues"#)
        .fetch_one(conn)
        .await
        .context("count venues")?;
    Ok((rows, total))
}

pub async fn find_venue(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<VenueRow>> {
    sqlx::query_as!(
        VenueRow,
        "SELECT id, name, address, time_zone, created_at FROM venues WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find venue")
}

pub async fn update_venue(conn: &mut PgConnection, row: &VenueRow) -> anyhow::Result<bool> {
    let done = sqlx::query!(
        "UPDATE venues SET name = $2, address = $3, time_zone = $4 WHERE id = $1",
        row.id,
        row.name,
        row.address,
        row.time_zone
    )
    .execute(conn)
    .await
    .context("update venue")?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a venue with its halls and plans; a `schedules_plan_fkey` violation if a schedule
/// was made from one of its plans.
pub async fn delete_venue(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let done = sqlx::query!("DELETE FROM venues WHERE id = $1", id)
        .execute(conn)
        .await
        .context("delete venue")?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_hall(conn: &mut PgConnection, row: &HallRow) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO halls (id, venue_id, name, created_at) VALUES ($1, $2, $3, $4)",
        row.id,
        row.venue_id,
        row.name,
        row.created_at
    )
    .execute(conn)
    .await
    .context("insert hall")?;
    Ok(())
}

pub async fn halls_of(conn: &mut PgConnection, venue_id: Uuid) -> anyhow::Result<Vec<HallRow>> {
    sqlx::query_as!(
        HallRow,
        "SELECT id, venue_id, name, created_at FROM halls WHERE venue_id = $1 ORDER BY created_at, id",
        venue_id
    )
    .fetch_all(conn)
    .await
    .context("halls of venue")
}

pub async fn find_hall(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<HallRow>> {
    sqlx::query_as!(
        HallRow,
        "SELECT id, venue_id, name, created_at FROM halls WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await
    .context("find hall")
}

/// The hall, locked until the transaction ends: new versions of its plan take turns.
pub async fn lock_hall(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<Option<HallRow>> {
    sqlx::query_as!(
        HallRow,
        "SELECT id, venue_id, name, created_at FROM halls WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
    .context("lock hall")
}

pub async fn rename_hall(conn: &mut PgConnection, id: Uuid, name: &str) -> anyhow::Result<bool> {
    let done = sqlx::query!("UPDATE halls SET name = $2 WHERE id = $1", id, name)
        .execute(conn)
        .await
        .context("rename hall")?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_hall(conn: &mut PgConnection, id: Uuid) -> anyhow::Result<bool> {
    let done = sqlx::query!("DELETE FROM halls WHERE id = $1", id)
        .execute(conn)
        .await
        .context("delete hall")?;
    Ok(done.rows_affected() == 1)
}

pub async fn next_version(conn: &mut PgConnection, hall_id: Uuid) -> anyhow::Result<i32> {
    let last = sqlx::query_scalar!(
        r#"SELECT coalesce(max(version), 0) AS "v!" FROM hall_plans WHERE hall_id = $1"#,
        hall_id
    )
    .fetch_one(conn)
    .await
    .context("last plan version")?;
    Ok(last + 1)
}

pub async fn plans_of(conn: &mut PgConnection, hall_id: Uuid) -> anyhow::Result<Vec<PlanRow>> {
    sqlx::query_as!(
        PlanRow,
        "SELECT hall_id, version, seats, for_sale, categories, digest, created_at, updated_at, used_at
         FROM hall_plans WHERE hall_id = $1 ORDER BY version",
        hall_id
    )
    .fetch_all(conn)
    .await
    .context("plans of hall")
}

pub async fn find_plan(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<Option<PlanRow>> {
    sqlx::query_as!(
        PlanRow,
        "SELECT hall_id, version, seats, for_sale, categories, digest, created_at, updated_at, used_at
         FROM hall_plans WHERE hall_id = $1 AND version = $2",
        hall_id,
        version
    )
    .fetch_optional(conn)
    .await
    .context("find plan")
}

/// The plan version, locked until the transaction ends: a replacement and a schedule made
/// from it take turns, so a used version is never replaced.
pub async fn lock_plan(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<Option<PlanRow>> {
    sqlx::query_as!(
        PlanRow,
        "SELECT hall_id, version, seats, for_sale, categories, digest, created_at, updated_at, used_at
         FROM hall_plans WHERE hall_id = $1 AND version = $2 FOR UPDATE",
        hall_id,
        version
    )
    .fetch_optional(conn)
    .await
    .context("lock plan")
}

pub async fn mark_plan_used(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE hall_plans SET used_at = coalesce(used_at, now()) WHERE hall_id = $1 AND version = $2",
        hall_id,
        version
    )
    .execute(conn)
    .await
    .context("mark plan used")?;
    Ok(())
}

/// Writes a version's row and seats (a new version, or the seats of a replaced unused one
/// after [`delete_plan_seats`]).
pub async fn write_plan(
    conn: &mut PgConnection,
    hall_id: Uuid,
    version: i32,
    plan: &SeatPlan,
    digest: &str,
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO hall_plans (hall_id, version, seats, for_sale, categories, digest)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (hall_id, version) DO UPDATE
         SET seats = EXCLUDED.seats, for_sale = EXCLUDED.for_sale, categories = EXCLUDED.categories,
             digest = EXCLUDED.digest, updated_at = now()",
        hall_id,
        version,
        plan.seats().len() as i32,
        plan.for_sale() as i32,
        plan.categories(),
        digest
    )
    .execute(&mut *conn)
    .await
    .context("write plan")?;
    let mut sale_ordinal = 0i32;
    for (chunk_index, chunk) in plan.seats().chunks(SEATS_PER_INSERT).enumerate() {
        let first = (chunk_index * SEATS_PER_INSERT) as i32;
        let ordinals: Vec<i32> = (first..first + chunk.len() as i32).collect();
        let sale_ordinals: Vec<Option<i32>> = chunk
            .iter()
            .map(|s| {
                s.for_sale.then(|| {
                    sale_ordinal += 1;
                    sale_ordinal - 1
                })
            })
            .collect();
        let rows = &plan.row_numbers()[first as usize..first as usize + chunk.len()];
        let column = |f: fn(&PlanSeat) -> String| chunk.iter().map(f).collect::<Vec<String>>();
        sqlx::query!(
            "INSERT INTO plan_seats (hall_id, version, ordinal, sale_ordinal, section, row_label, row_number,
                 seat_number, label, x, y, category, accessible, companion, for_sale)
             SELECT $1, $2, * FROM UNNEST($3::int[], $4::int[], $5::text[], $6::text[], $7::int[], $8::int[],
                 $9::text[], $10::float8[], $11::float8[], $12::text[], $13::bool[], $14::bool[], $15::bool[])",
            hall_id,
            version,
            &ordinals,
            &sale_ordinals as &[Option<i32>],
            &column(|s| s.section.clone()),
            &column(|s| s.row.clone()),
            rows,
            &chunk.iter().map(|s| s.number).collect::<Vec<i32>>(),
            &column(|s| s.label.clone()),
            &chunk.iter().map(|s| s.x).collect::<Vec<f64>>(),
            &chunk.iter().map(|s| s.y).collect::<Vec<f64>>(),
            &column(|s| s.category.clone()),
            &chunk.iter().map(|s| s.accessible).collect::<Vec<bool>>(),
            &chunk.iter().map(|s| s.companion).collect::<Vec<bool>>(),
            &chunk.iter().map(|s| s.for_sale).collect::<Vec<bool>>(),
        )
        .execute(&mut *conn)
        .await
        .context("insert plan seats")?;
    }
    Ok(())
}

pub async fn delete_plan_seats(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM plan_seats WHERE hall_id = $1 AND version = $2",
        hall_id,
        version
    )
    .execute(conn)
    .await
    .context("delete plan seats")?;
    Ok(())
}

/// Every seat of a version in plan order, as a plan.
pub async fn load_plan(conn: &mut PgConnection, plan: &PlanRow) -> anyhow::Result<SeatPlan> {
    let rows = sqlx::query!(
        "SELECT section, row_label, row_number, seat_number, label, x, y, category, accessible, companion, for_sale
         FROM plan_seats WHERE hall_id = $1 AND version = $2 ORDER BY ordinal",
        plan.hall_id,
        plan.version
    )
    .fetch_all(conn)
    .await
    .context("plan seats")?;
    let mut row_numbers = Vec::with_capacity(rows.len());
    let seats = rows
        .into_iter()
        .map(|r| {
            row_numbers.push(r.row_number);
            PlanSeat {
                section: r.section,
                row: r.row_label,
                number: r.seat_number,
                label: r.label,
                x: r.x,
                y: r.y,
                category: r.category,
                accessible: r.accessible,
                companion: r.companion,
                for_sale: r.for_sale,
            }
        })
        .collect();
    Ok(SeatPlan::stored(plan.categories.clone(), seats, row_numbers))
}

/// The for-sale seats `start..end` (by sale ordinal) as schedule seats priced by category.
pub async fn sale_seats(
    conn: &mut PgConnection,
    hall_id: Uuid,
    version: i32,
    prices: &Prices,
    start: i32,
    end: i32,
) -> anyhow::Result<SeatColumns> {
    let rows = sqlx::query!(
        "SELECT section, row_number, seat_number, category FROM plan_seats
         WHERE hall_id = $1 AND version = $2 AND sale_ordinal >= $3 AND sale_ordinal < $4
         ORDER BY sale_ordinal",
        hall_id,
        version,
        start,
        end
    )
    .fetch_all(conn)
    .await
    .context("plan seats for sale")?;
    let mut columns = SeatColumns::default();
    for r in rows {
        let price = prices
            .of(&r.category)
            .with_context(|| format!("no price for category {:?}", r.category))?;
        columns.sections.push(r.section);
        columns.rows.push(r.row_number);
        columns.numbers.push(r.seat_number);
        columns.prices.push(price);
    }
    Ok(columns)
}

/// Where each seat of a plan-made schedule is drawn, keyed by its place.
pub struct DrawnSeat {
    pub section: String,
    pub row_number: i32,
    pub seat_number: i32,
    pub x: f64,
    pub y: f64,
    pub category: String,
    pub accessible: bool,
    pub for_sale: bool,
}

/// The plan a schedule was made from (hall, version), if any.
pub async fn plan_of_schedule(conn: &mut PgConnection, schedule_id: Uuid) -> anyhow::Result<Option<(Uuid, i32)>> {
    let row = sqlx::query!("SELECT hall_id, plan_version FROM schedules WHERE id = $1", schedule_id)
        .fetch_optional(conn)
        .await
        .context("plan of schedule")?;
    Ok(row.and_then(|r| Some((r.hall_id?, r.plan_version?))))
}

pub async fn drawn_seats(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<Vec<DrawnSeat>> {
    sqlx::query_as!(
        DrawnSeat,
        "SELECT section, row_number, seat_number, x, y, category, accessible, for_sale
         FROM plan_seats WHERE hall_id = $1 AND version = $2 ORDER BY ordinal",
        hall_id,
        version
    )
    .fetch_all(conn)
    .await
    .context("drawn seats")
}

/// Records that a schedule is made from a plan version.
pub async fn set_schedule_plan(
    conn: &mut PgConnection,
    schedule_id: Uuid,
    hall_id: Uuid,
    version: i32,
) -> anyhow::Result<()> {
    sqlx::query!(
        "UPDATE schedules SET hall_id = $2, plan_version = $3 WHERE id = $1",
        schedule_id,
        hall_id,
        version
    )
    .execute(conn)
    .await
    .context("set schedule plan")?;
    Ok(())
}

pub async fn delete_plan(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<()> {
    sqlx::query!(
        "DELETE FROM hall_plans WHERE hall_id = $1 AND version = $2",
        hall_id,
        version
    )
    .execute(conn)
    .await
    .context("delete plan")?;
    Ok(())
}

/// Categories with a seat for sale in a version: the ones a schedule must price.
pub async fn sold_categories(conn: &mut PgConnection, hall_id: Uuid, version: i32) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT DISTINCT category FROM plan_seats WHERE hall_id = $1 AND version = $2 AND for_sale ORDER BY category",
        hall_id,
        version
    )
    .fetch_all(conn)
    .await
    .context("sold categories")
}
