//! Venues and their halls (admin CRUD), and each hall's seat plan versions ([`plans`]) and
//! their pictures ([`picture`]). Shared by `/api/v1/venues…` and `imticket-admin venues …`.
//! See docs/venues.md.

pub mod picture;
pub mod plans;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AppError;
use super::error::OnConstraint;
use crate::domain::catalog::PageRequest;
use crate::domain::seat_plan::time_zone_ok;
use crate::infra::postgres::Db;
use crate::infra::postgres::error::violated_constraint;
use crate::infra::postgres::venues::{self as repo, HallRow, VenueRow};

const MAX_NAME_CHARS: usize = 200;
const MAX_ADDRESS_CHARS: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct Venue {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

impl From<VenueRow> for Venue {
    fn from(r: VenueRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            address: r.address,
            time_zone: r.time_zone,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Hall {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<HallRow> for Hall {
    fn from(r: HallRow) -> Self {
        Self {
            id: r.id,
            venue_id: r.venue_id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VenueDetails {
    #[serde(flatten)]
    pub venue: Venue,
    pub halls: Vec<Hall>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VenuePage {
    pub items: Vec<Venue>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

/// What a venue is made of, as a create or an edit gives it.
pub struct VenueFields<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub time_zone: &'a str,
}

pub fn venue_not_found() -> AppError {
    AppError::not_found("venue_not_found", "no such venue")
}

pub fn hall_not_found() -> AppError {
    AppError::not_found("hall_not_found", "no such hall")
}

fn in_use(what: &str) -> AppError {
    AppError::conflict(
        "plan_in_use",
        format!("{what} has a plan version a schedule was made from; it cannot be deleted"),
    )
}

/// A venue's or hall's name: trimmed, 1 to 200 characters, no control characters.
pub fn valid_name(raw: &str) -> bool {
    let name = raw.trim();
    !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control)
}

fn name(field: &'static str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if !valid_name(raw) {
        return Err(AppError::validation(
            "invalid_field",
            format!("{field}: must be 1 to 200 characters without control characters"),
        ));
    }
    Ok(name.to_owned())
}

fn checked(fields: &VenueFields<'_>) -> Result<(String, String, String), AppError> {
    let name = name("name", fields.name)?;
    let address = fields.address.trim();
    if address.chars().count() > MAX_ADDRESS_CHARS || address.contains('\0') {
        return Err(AppError::validation(
            "invalid_field",
            "address: at most 500 characters, no NUL",
        ));
    }
    let zone = fields.time_zone.trim();
    if !time_zone_ok(zone) {
        return Err(AppError::validation(
            "invalid_field",
            "time_zone: must be an IANA time zone name such as Europe/Berlin",
        ));
    }
    Ok((name, address.to_owned(), zone.to_owned()))
}

pub async fn create_venue(db: &Db, fields: VenueFields<'_>) -> Result<Venue, AppError> {
    let (name, address, time_zone) = checked(&fields)?;
    let row = VenueRow {
        id: Uuid::now_v7(),
        name,
        address,
        time_zone,
        created_at: Utc::now(),
    };
    let mut conn = db.write().await.context("acquire connection")?;
    repo::insert_venue(&mut conn, &row).await?;
    conn.commit().await.context("commit venue")?;
    Ok(row.into())
}

pub async fn list_venues(db: &Db, page: PageRequest) -> Result<VenuePage, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    let (rows, total) = repo::list_venues(&mut conn, i64::from(page.size), page.offset()).await?;
    Ok(VenuePage {
        items: rows.into_iter().map(Venue::from).collect(),
        page: page.page,
        size: page.size,
        total,
    })
}

pub async fn venue(db: &Db, id: Uuid) -> Result<VenueDetails, AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    let venue = repo::find_venue(&mut conn, id).await?.ok_or_else(venue_not_found)?;
    let halls = repo::halls_of(&mut conn, id).await?;
    Ok(VenueDetails {
        venue: venue.into(),
        halls: halls.into_iter().map(Hall::from).collect(),
    })
}

pub async fn update_venue(db: &Db, id: Uuid, fields: VenueFields<'_>) -> Result<Venue, AppError> {
    let (name, address, time_zone) = checked(&fields)?;
    let mut tx = db.begin().await.context("begin")?;
    let current = repo::find_venue(&mut tx, id).await?.ok_or_else(venue_not_found)?;
    let row = VenueRow {
        name,
        address,
        time_zone,
        ..current
    };
    repo::update_venue(&mut tx, &row).await?;
    tx.commit().await.context("commit venue")?;
    Ok(row.into())
}

pub async fn delete_venue(db: &Db, id: Uuid) -> Result<(), AppError> {
    let mut conn = db.write().await.context("acquire connection")?;
    let deleted = repo::delete_venue(&mut conn, id)
        .await
        .on_constraint("schedules_plan_fkey", || in_use("a hall of this venue"))?;
    conn.commit().await.context("commit")?;
    if deleted { Ok(()) } else { Err(venue_not_found()) }
}

pub async fn create_hall(db: &Db, venue_id: Uuid, raw_name: &str) -> Result<Hall, AppError> {
    let row = HallRow {
        id: Uuid::now_v7(),
        venue_id,
        name: name("name", raw_name)?,
        created_at: Utc::now(),
    };
    let mut conn = db.write().await.context("acquire connection")?;
    if let Err(err) = repo::insert_hall(&mut conn, &row).await {
        return Err(match violated_constraint(&err) {
            Some("halls_venue_fkey") => venue_not_found(),
            Some("halls_name_key") => duplicate_hall(&row.name),
            _ => err.into(),
        });
    }
    conn.commit().await.context("commit hall")?;
    Ok(row.into())
}

pub async fn hall(db: &Db, id: Uuid) -> Result<(Hall, Vec<plans::PlanSummary>), AppError> {
    let mut conn = db.read().await.context("acquire connection")?;
    let hall = repo::find_hall(&mut conn, id).await?.ok_or_else(hall_not_found)?;
    let versions = repo::plans_of(&mut conn, id).await?;
    Ok((
        hall.into(),
        versions.into_iter().map(plans::PlanSummary::from).collect(),
    ))
}

pub async fn rename_hall(db: &Db, id: Uuid, raw_name: &str) -> Result<Hall, AppError> {
    let name = name("name", raw_name)?;
    let mut tx = db.begin().await.context("begin")?;
    let renamed = repo::rename_hall(&mut tx, id, &name)
        .await
        .on_constraint("halls_name_key", || duplicate_hall(&name))?;
    if !renamed {
        return Err(hall_not_found());
    }
    let hall = repo::find_hall(&mut tx, id).await?.ok_or_else(hall_not_found)?;
    tx.commit().await.context("commit hall")?;
    Ok(hall.into())
}

pub async fn delete_hall(db: &Db, id: Uuid) -> Result<(), AppError> {
    let mut conn = db.write().await.context("acquire connection")?;
    let deleted = repo::delete_hall(&mut conn, id)
        .await
        .on_constraint("schedules_plan_fkey", || in_use("this hall"))?;
    conn.commit().await.context("commit")?;
    if deleted { Ok(()) } else { Err(hall_not_found()) }
}

fn duplicate_hall(name: &str) -> AppError {
    AppError::conflict("hall_exists", format!("this venue already has a hall named {name:?}"))
}
