//! The catalog's request and response bodies, as the OpenAPI document describes them. The
//! use cases return their own plain views (`app::catalog::concerts`, `app::catalog::seat_map`,
//! `app::catalog::seat_creation`); the cached bodies are those views serialized, so the tests below
//! prove each documented shape serializes to the same JSON as its view.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::extract::whole;
use crate::api::schemas;
use crate::app::catalog::{concerts, seat_creation};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConcert {
    #[schema(schema_with = schemas::concert_title, example = "Aurora Live 2027")]
    pub title: String,
    #[serde(default)]
    #[schema(schema_with = schemas::concert_description)]
    pub description: String,
    /// RFC 3339; when the sale opens (the waiting room holds early fans in a pre-queue until
    /// then). At most 5 years (5 × 365 days) ahead of the request, else 422; a past time or
    /// `null`/absent means on sale now.
    #[serde(default)]
    #[schema(example = "2027-03-01T10:00:00Z")]
    pub sale_opens_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page (default 1). Not an integer: 400 `invalid_query`; out of range: 422.
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<i64>,
    /// Items per page (default 20). Not an integer: 400 `invalid_query`; out of range: 422.
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// RFC 3339; after the time of the request and at most 5 years (5 × 365 days) ahead of it,
    /// else 422 (a rule relative to now, which JSON Schema has no keyword for).
    pub starts_at: DateTime<Utc>,
    /// The hall whose seat plan (`/halls/{id}/plans/{version}`) the schedule's seats are made
    /// from; with `version` and `prices`, or none of the three (seats added by hand later).
    #[serde(default)]
    pub hall_plan_id: Option<Uuid>,
    /// The plan version (it is in use from now on and never changes).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    pub version: Option<i32>,
    /// Points per seat for every category of the plan that has seats for sale (and no other).
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, i64>>)]
    pub prices: Option<std::collections::BTreeMap<String, i64>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSection {
    #[schema(schema_with = schemas::section_name)]
    pub name: String,
    /// At most 200,000 (the seats of one request), and `rows × seats_per_row` over every
    /// section is at most 200,000 too.
    #[serde(deserialize_with = "whole::<1, 200_000, _>")]
    #[schema(minimum = 1, maximum = 200_000)]
    pub rows: i64,
    #[serde(deserialize_with = "whole::<1, 200_000, _>")]
    #[schema(minimum = 1, maximum = 200_000)]
    pub seats_per_row: i64,
    /// Points per seat.
    #[serde(deserialize_with = "whole::<1, 10_000_000, _>")]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub price: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeats {
    /// At least one; unique names; at most 200,000 seats in all (422 otherwise: a sum and a
    /// uniqueness of one property that JSON Schema cannot state).
    #[schema(min_items = 1)]
    pub sections: Vec<NewSection>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeatCreationQuery {
    /// `stream` (default): a worker does the job, surviving crashes. `inline`: the API does it
    /// in-process (comparison mode; a crash leaves it unfinished). Anything else: 422.
    #[param(schema_with = schemas::seat_creation_mode)]
    pub mode: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeatQuery {
    /// Only seats with this status. Anything else: 422.
    #[param(schema_with = schemas::seat_status)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: Uuid,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Concert {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// When the sale opens; `null`: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
}

impl From<concerts::Concert> for Concert {
    fn from(c: concerts::Concert) -> Self {
        Self {
            id: c.id,
            title: c.title,
            description: c.description,
            created_at: c.created_at,
            sale_opens_at: c.sale_opens_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertPage {
    pub items: Vec<Concert>,
    pub page: u32,
    pub size: u32,
    pub total: i64,
}

impl From<concerts::ConcertPage> for ConcertPage {
    fn from(p: concerts::ConcertPage) -> Self {
        Self {
            items: p.items.into_iter().map(Concert::from).collect(),
            page: p.page,
            size: p.size,
            total: p.total,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleSummary {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
}

/// Served as cached (the serialized [`concerts::ConcertDetails`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertDetails {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// When the sale opens; `null`: on sale now.
    pub sale_opens_at: Option<DateTime<Utc>>,
    pub schedules: Vec<ScheduleSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
    /// Made from a plan: the job creating its seats (follow it at `/api/v1/jobs/{job_id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_job: Option<JobAccepted>,
}

impl From<concerts::Schedule> for Schedule {
    fn from(s: concerts::Schedule) -> Self {
        Self {
            id: s.id,
            concert_id: s.concert_id,
            starts_at: s.starts_at,
            seat_job: s.seat_job.map(|job| JobAccepted {
                job_id: job.id,
                status: job.status,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Seat {
    pub id: Uuid,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
    /// `available`, `held` or `sold`.
    pub status: String,
}

/// Served as cached (the serialized [`crate::app::catalog::seat_map::SeatMap`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMap {
    pub schedule_id: Uuid,
    pub seats: Vec<Seat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    /// `seat_creation`.
    pub kind: String,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    pub total: i32,
    pub done: i32,
    pub error: Option<String>,
}

impl From<seat_creation::Job> for Job {
    fn from(j: seat_creation::Job) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            status: j.status,
            total: j.total,
            done: j.done,
            error: j.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::catalog::seat_map;

    fn json<T: Serialize>(value: &T) -> serde_json::Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn documented_bodies_match_the_cached_views() {
        let (id, now) = (Uuid::now_v7(), Utc::now());
        let view = concerts::ConcertDetails {
            id,
            title: "t".into(),
            description: "d".into(),
            sale_opens_at: Some(now),
            schedules: vec![concerts::ScheduleSummary {
                id,
                starts_at: now,
                total_seats: 3,
                available_seats: 2,
            }],
        };
        let documented = ConcertDetails {
            id,
            title: "t".into(),
            description: "d".into(),
            sale_opens_at: Some(now),
            schedules: vec![ScheduleSummary {
                id,
                starts_at: now,
                total_seats: 3,
                available_seats: 2,
            }],
        };
        assert_eq!(json(&view), json(&documented));
        assert_eq!(json(&view)["sale_opens_at"], json(&now));
        let on_sale_now = concerts::ConcertDetails {
            sale_opens_at: None,
            schedules: vec![],
            ..view
        };
        let documented = ConcertDetails {
            sale_opens_at: None,
            schedules: vec![],
            ..documented
        };
        assert_eq!(json(&on_sale_now), json(&documented));
        assert_eq!(json(&on_sale_now)["sale_opens_at"], serde_json::Value::Null);

        let view = seat_map::SeatMap {
            schedule_id: id,
            seats: vec![seat_map::Seat {
                id,
                section: "A".into(),
                row: 1,
                number: 2,
                price: 10,
                status: "available".into(),
            }],
        };
        let documented = SeatMap {
            schedule_id: id,
            seats: vec![Seat {
                id,
                section: "A".into(),
                row: 1,
                number: 2,
                price: 10,
                status: "available".into(),
            }],
        };
        assert_eq!(json(&view), json(&documented));
    }

    #[test]
    fn converted_bodies_keep_every_field() {
        let (id, now) = (Uuid::now_v7(), Utc::now());
        let job = seat_creation::Job {
            id,
            kind: "seat_creation".into(),
            status: "done".into(),
            total: 5,
            done: 5,
            error: None,
        };
        assert_eq!(json(&Job::from(job.clone())), json(&job));
        let page = concerts::ConcertPage {
            items: vec![
                concerts::Concert {
                    id,
                    title: "t".into(),
                    description: "".into(),
                    created_at: now,
                    sale_opens_at: Some(now),
                },
                concerts::Concert {
                    id,
                    title: "u".into(),
                    description: "".into(),
                    created_at: now,
                    sale_opens_at: None,
                },
            ],
            page: 1,
            size: 20,
            total: 2,
        };
        let expected = json(&page);
        assert_eq!(expected["items"][1]["sale_opens_at"], serde_json::Value::Null);
        assert_eq!(json(&ConcertPage::from(page)), expected);
    }
}
