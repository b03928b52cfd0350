//! The bodies of `/api/v1/venues…` and `/api/v1/halls…`, as the OpenAPI document describes
//! them; the use cases return their own views (`app::venues`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::schemas;
use crate::app::venues::{self, plans::PlanSummary};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVenue {
    #[schema(schema_with = schemas::place_name, example = "Riverside Arena")]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::venue_address, example = "1 River Road, Hamburg")]
    pub address: String,
    /// An IANA time zone name (`Europe/Berlin`, `UTC`).
    #[schema(
        example = "Europe/Berlin",
        pattern = "^(UTC|[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)+)$",
        max_length = 64
    )]
    pub time_zone: String,
}

#[derive(Serialize, ToSchema)]
pub struct Venue {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

impl From<venues::Venue> for Venue {
    fn from(v: venues::Venue) -> Self {
        Self {
            id: v.id,
            name: v.name,
            address: v.address,
            time_zone: v.time_zone,
            created_at: v.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VenuePage {
    pub items: Vec<Venue>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Hall {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<venues::Hall> for Hall {
    fn from(h: venues::Hall) -> Self {
        Self {
            id: h.id,
            venue_id: h.venue_id,
            name: h.name,
            created_at: h.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VenueDetails {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub halls: Vec<Hall>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHall {
    #[schema(schema_with = schemas::place_name, example = "Main hall")]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Plan {
    pub hall_id: Uuid,
    pub version: i32,
    /// Every place of the plan.
    pub seats: i32,
    /// Places that become seats of a schedule made from it.
    pub for_sale: i32,
    pub categories: Vec<String>,
    /// A schedule was made from this version: it never changes (409 `plan_in_use`).
    pub in_use: bool,
    /// SHA-256 of the JSON export (hex); the exports' and the picture's `ETag`.
    pub digest: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PlanSummary> for Plan {
    fn from(p: PlanSummary) -> Self {
        Self {
            hall_id: p.hall_id,
            version: p.version,
            seats: p.seats,
            for_sale: p.for_sale,
            categories: p.categories,
            in_use: p.in_use,
            digest: p.digest,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct HallDetails {
    pub id: Uuid,
    pub venue_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Its plan versions, oldest first.
    pub plans: Vec<Plan>,
}

/// One place of a plan, as imported and exported (CSV: one line with these columns).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSeat {
    /// 1 to 50 characters, no control characters.
    #[schema(min_length = 1, max_length = 50, example = "101")]
    pub section: String,
    /// The row's label.
    #[schema(schema_with = schemas::plan_label)]
    pub row: serde_json::Value,
    #[schema(minimum = 1, maximum = 100_000)]
    pub number: i64,
    /// What the seat is called (default, or `null`: the number).
    #[serde(default)]
    #[schema(schema_with = schemas::plan_label_or_null)]
    pub label: serde_json::Value,
    /// Where the seat is drawn, in plan units (0–100,000).
    #[schema(minimum = 0, maximum = 100_000)]
    pub x: f64,
    #[schema(minimum = 0, maximum = 100_000)]
    pub y: f64,
    /// One of the plan's `categories`.
    pub category: String,
    /// A wheelchair place.
    #[serde(default)]
    pub accessible: bool,
    /// A companion's seat, in a row with an accessible place.
    #[serde(default)]
    pub companion: bool,
    /// False for a place never sold: drawn, never a seat of a schedule.
    #[serde(default)]
    #[schema(default = true)]
    pub for_sale: bool,
}

/// A seat plan: 1–32 categories, 1–100,000 places.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    #[schema(min_items = 1, max_items = 32)]
    pub categories: Vec<String>,
    #[schema(min_items = 1, max_items = 100_000)]
    pub seats: Vec<PlanSeat>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// CSV only: the plan's categories, comma-separated, in order (default: those its lines
    /// name, in order of first use).
    #[param(max_length = 2000)]
    pub categories: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`; `Accept: text/csv` asks for CSV too.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanError {
    /// `seats[17]` (JSON), `line 19` (CSV), `categories[2]`, …
    pub at: String,
    pub message: String,
}

pub(super) fn page_of(page: venues::VenuePage) -> VenuePage {
    VenuePage {
        items: page.items.into_iter().map(Venue::from).collect(),
        page: page.page,
        size: page.size,
        total: page.total,
    }
}
