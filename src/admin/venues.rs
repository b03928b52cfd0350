//! `imticket-admin venues …` and `imticket-admin plans …`: venues, halls and seat plan
//! versions, as `/api/v1/venues…` and `/api/v1/halls/{id}/plans…` serve them (the same
//! checks, the same immutability of a used version).

use std::fmt::Write as _;

use uuid::Uuid;

use super::command::{Context, Needs, Run};
use crate::app::AppError;
use crate::app::venues::{self, VenueFields, plans};
use crate::domain::catalog::PageRequest;
use crate::domain::seat_plan::{RawPlan, SeatPlan, arena};

/// `Plans::Demo` is answered before a database is asked for.
fn unreachable_demo() -> anyhow::Result<String> {
    Err(anyhow::anyhow!("the demo plan needs no database"))
}

#[derive(clap::Subcommand)]
pub enum Venues {
    /// Every venue: id, time zone, name.
    List,
    /// Create a venue; prints its id.
    Add {
        name: String,
        /// An IANA time zone name (`Europe/Berlin`).
        #[arg(long)]
        time_zone: String,
        #[arg(long, default_value = "")]
        address: String,
    },
    /// A venue's halls: id, plan versions, name.
    Halls { venue: String },
    /// Add a hall to a venue; prints its id.
    AddHall { venue: String, name: String },
}

#[derive(clap::Subcommand)]
pub enum Plans {
    /// Import a plan file (`.csv`, one line a place, or `.json`) as the hall's next version.
    /// Every bad place is named and nothing is stored.
    Import {
        hall: String,
        file: std::path::PathBuf,
        /// CSV only: the plan's categories in order (default: those its lines use).
        #[arg(long, value_delimiter = ',')]
        categories: Option<Vec<String>>,
    },
    /// Write a plan version to standard output, as JSON (default) or CSV.
    Export {
        hall: String,
        version: i32,
        #[arg(long)]
        csv: bool,
    },
    /// A plan version's summary: sections, places, categories, flags, whether it is in use.
    Show { hall: String, version: i32 },
    /// Print the demo arena's plan (the one `seed` uses), to start a real one from or to load
    /// test with: JSON (default) or CSV. Nothing is stored.
    Demo {
        #[arg(long, default_value_t = 24)]
        sections: usize,
        #[arg(long, default_value_t = 30)]
        rows: usize,
        /// Places in a block's first row (each second row has one more).
        #[arg(long, default_value_t = 16)]
        first_row: usize,
        /// At most this many places (at most 100000).
        #[arg(long, default_value_t = 100_000)]
        limit: usize,
        #[arg(long)]
        csv: bool,
    },
}

fn id(what: &str, raw: &str) -> anyhow::Result<Uuid> {
    raw.parse().map_err(|_| anyhow::anyhow!("not a {what} id: {raw:?}"))
}

fn fail(e: AppError) -> anyhow::Error {
    let errors = e
        .extensions
        .iter()
        .find(|(name, _)| *name == "errors")
        .and_then(|(_, v)| v.as_array());
    match errors {
        Some(errors) => {
            let mut out = e.detail.clone();
            for error in errors {
                let _ = write!(
                    out,
                    "\n  {}: {}",
                    error["at"].as_str().unwrap_or(""),
                    error["message"].as_str().unwrap_or("")
                );
            }
            anyhow::anyhow!("{out}")
        }
        None => anyhow::anyhow!("{}", e.detail),
    }
}

impl Run for Venues {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Venues::Halls { venue } | Venues::AddHall { venue, .. } => id("venue", venue).map(|_| ()),
            Venues::List | Venues::Add { .. } => Ok(()),
        }
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let db = cx.db()?;
        match self {
            Venues::List => {
                let mut all = Vec::new();
                for page in 1.. {
                    let page = venues::list_venues(db, PageRequest { page, size: 100 })
                        .await
                        .map_err(fail)?;
                    let last = page.items.len() < 100;
                    all.extend(page.items);
                    if last {
                        break;
                    }
                }
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&all)?);
                }
                let mut out = format!("{:<36} {:<24} NAME\n", "ID", "TIME ZONE");
                for v in &all {
                    writeln!(out, "{:<36} {:<24} {}", v.id, v.time_zone, v.name)?;
                }
                Ok(out.trim_end().to_owned())
            }
            Venues::Add {
                name,
                time_zone,
                address,
            } => {
                let venue = venues::create_venue(
                    db,
                    VenueFields {
                        name: &name,
                        address: &address,
                        time_zone: &time_zone,
                    },
                )
                .await
                .map_err(fail)?;
                Ok(if cx.json {
                    serde_json::to_string_pretty(&venue)?
                } else {
                    venue.id.to_string()
                })
            }
            Venues::Halls { venue } => {
                let details = venues::venue(db, id("venue", &venue)?).await.map_err(fail)?;
                let mut rows = Vec::new();
                for hall in &details.halls {
                    let versions = plans::versions(db, hall.id).await.map_err(fail)?;
                    rows.push((hall, versions));
                }
                if cx.json {
                    let halls: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|(h, v)| serde_json::json!({"hall": h, "plans": v}))
                        .collect();
                    return Ok(serde_json::to_string_pretty(&halls)?);
                }
                let mut out = format!("{:<36} {:<9} NAME\n", "ID", "VERSIONS");
                for (hall, versions) in &rows {
                    writeln!(out, "{:<36} {:<9} {}", hall.id, versions.len(), hall.name)?;
                }
                Ok(out.trim_end().to_owned())
            }
            Venues::AddHall { venue, name } => {
                let hall = venues::create_hall(db, id("venue", &venue)?, &name)
                    .await
                    .map_err(fail)?;
                Ok(if cx.json {
                    serde_json::to_string_pretty(&hall)?
                } else {
                    hall.id.to_string()
                })
            }
        }
    }
}

impl Run for Plans {
    fn needs(&self) -> Needs {
        match self {
            Plans::Demo { .. } => Needs::NOTHING,
            _ => Needs::DATABASE,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Plans::Import { hall, .. } | Plans::Export { hall, .. } | Plans::Show { hall, .. } => {
                id("hall", hall).map(|_| ())
            }
            Plans::Demo {
                sections,
                rows,
                first_row,
                limit,
                ..
            } => {
                anyhow::ensure!(
                    (1..=1000).contains(sections) && (1..=500).contains(rows) && (4..=1000).contains(first_row),
                    "--sections 1-1000, --rows 1-500, --first-row 4-1000"
                );
                anyhow::ensure!((1..=100_000).contains(limit), "--limit 1-100000");
                Ok(())
            }
        }
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        if let Plans::Demo {
            sections,
            rows,
            first_row,
            limit,
            csv,
        } = self
        {
            let plan = arena(sections, rows, first_row, limit).map_err(|e| anyhow::anyhow!("demo plan: {e}"))?;
            return Ok(if csv {
                String::from_utf8(plan.to_csv())?.trim_end().to_owned()
            } else {
                serde_json::to_string(&plan.to_document())?
            });
        }
        let db = cx.db()?;
        match self {
            Plans::Demo { .. } => unreachable_demo(),
            Plans::Import { hall, file, categories } => {
                let body = std::fs::read(&file).map_err(|e| anyhow::anyhow!("read {}: {e}", file.display()))?;
                let is_csv = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
                let plan = if is_csv {
                    SeatPlan::from_csv(&body, categories).map_err(|e| fail(plans::invalid_plan(e)))?
                } else {
                    let raw: RawPlan = serde_json::from_slice(&body)
                        .map_err(|e| anyhow::anyhow!("{}: not a plan document: {e}", file.display()))?;
                    SeatPlan::from_json(raw).map_err(|e| fail(plans::invalid_plan(e)))?
                };
                let summary = plans::import(db, id("hall", &hall)?, &plan).await.map_err(fail)?;
                Ok(if cx.json {
                    serde_json::to_string_pretty(&summary)?
                } else {
                    format!(
                        "version {}: {} places, {} for sale, categories {}",
                        summary.version,
                        summary.seats,
                        summary.for_sale,
                        summary.categories.join(", ")
                    )
                })
            }
            Plans::Export { hall, version, csv } => {
                let (_, plan) = plans::load(db, id("hall", &hall)?, version).await.map_err(fail)?;
                Ok(if csv {
                    String::from_utf8(plan.to_csv())?.trim_end().to_owned()
                } else {
                    serde_json::to_string_pretty(&plan.to_document())?
                })
            }
            Plans::Show { hall, version } => {
                let (summary, plan) = plans::load(db, id("hall", &hall)?, version).await.map_err(fail)?;
                let seats = plan.seats();
                let count = |f: fn(&crate::domain::seat_plan::PlanSeat) -> bool| seats.iter().filter(|s| f(s)).count();
                let sections = plan.sections();
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&serde_json::json!({
                        "plan": summary,
                        "sections": sections.iter().map(|(n, c)| serde_json::json!({"name": n, "places": c})).collect::<Vec<_>>(),
                        "accessible": count(|s| s.accessible),
                        "companion": count(|s| s.companion),
                        "never_for_sale": count(|s| !s.for_sale),
                    }))?);
                }
                let rows: std::collections::HashSet<(&str, &str)> =
                    seats.iter().map(|s| (s.section.as_str(), s.row.as_str())).collect();
                let mut out = String::new();
                writeln!(
                    out,
                    "hall {} version {}{}",
                    summary.hall_id,
                    summary.version,
                    if summary.in_use { " (in use: never changes)" } else { "" }
                )?;
                writeln!(
                    out,
                    "{} places in {} sections and {} rows; {} for sale",
                    seats.len(),
                    sections.len(),
                    rows.len(),
                    plan.for_sale()
                )?;
                writeln!(
                    out,
                    "{} accessible, {} companion, {} never for sale",
                    count(|s| s.accessible),
                    count(|s| s.companion),
                    count(|s| !s.for_sale)
                )?;
                for category in plan.categories() {
                    let n = seats.iter().filter(|s| &s.category == category).count();
                    writeln!(out, "category {category}: {n} places")?;
                }
                writeln!(out, "digest {}", summary.digest)?;
                Ok(out.trim_end().to_owned())
            }
        }
    }
}
