//! `GET /schedules/{id}/seats.svg`: the schedule's seats drawn at their plan positions and
//! coloured by state, the categories and their prices in the legend. Built like the seat map
//! ([`super::seat_map`]): where each seat is drawn never changes once the seats exist, so each
//! process keeps it (a schedule's geometry, one query); the states are the seat map's (one
//! Redis `GET`). A schedule made by hand (sections, no plan) is drawn as a grid: a section's
//! rows under each other, sections under each other.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use uuid::Uuid;

use super::seat_map::layout_and_states;
use crate::app::kept::seat_layouts::{AVAILABLE, HELD, SOLD};
use crate::app::kept::{Geometry, Place};
use crate::app::venues::picture::{self, CATEGORY_COLOURS, Class, Dot, NOT_FOR_SALE};
use crate::app::{AppError, Deps};
use crate::infra::postgres::{catalog as catalog_repo, venues as repo};

/// The grid of a hand-made schedule: plan units between seats and between sections.
const GRID: f64 = 10.0;

async fn geometry(deps: &Deps, schedule_id: Uuid) -> Result<Geometry, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let rows = catalog_repo::seats_of(&mut conn, schedule_id).await?;
    let mut categories: Vec<(String, i64, usize)> = Vec::new();
    let mut count = |name: &str, price: i64| match categories.iter_mut().find(|(n, p, _)| n == name && *p == price) {
        Some(entry) => entry.2 += 1,
        None => categories.push((name.to_owned(), price, 1)),
    };
    let Some((hall_id, version)) = repo::plan_of_schedule(&mut conn, schedule_id).await? else {
        // By hand: sections in seat-map order, each under the last.
        let mut seats = Vec::with_capacity(rows.len());
        let (mut top, mut section, mut deepest) = (0.0, None::<&str>, 0);
        for r in &rows {
            if section != Some(r.section.as_str()) {
                if section.is_some() {
                    top += f64::from(deepest + 2) * GRID;
                }
                section = Some(&r.section);
                deepest = 0;
            }
            deepest = deepest.max(r.row_number);
            count(&r.section, r.price);
            seats.push(Place {
                x: f64::from(r.seat_number) * GRID,
                y: top + f64::from(r.row_number) * GRID,
                accessible: false,
            });
        }
        return Ok(Geometry {
            seats,
            never_for_sale: Vec::new(),
            categories,
        });
    };
    let drawn = repo::drawn_seats(&mut conn, hall_id, version).await?;
    let mut at: HashMap<(&str, i32, i32), usize> = HashMap::with_capacity(drawn.len());
    let mut never_for_sale = Vec::new();
    for (i, d) in drawn.iter().enumerate() {
        if d.for_sale {
            at.insert((d.section.as_str(), d.row_number, d.seat_number), i);
        } else {
            never_for_sale.push(Place {
                x: d.x,
                y: d.y,
                accessible: d.accessible,
            });
        }
    }
    let mut seats = Vec::with_capacity(rows.len());
    for r in &rows {
        let d = at
            .get(&(r.section.as_str(), r.row_number, r.seat_number))
            .map(|&i| &drawn[i])
            .with_context(|| {
                format!(
                    "seat {}/{}/{} is not in its plan",
                    r.section, r.row_number, r.seat_number
                )
            })?;
        count(&d.category, r.price);
        seats.push(Place {
            x: d.x,
            y: d.y,
            accessible: d.accessible,
        });
    }
    Ok(Geometry {
        seats,
        never_for_sale,
        categories,
    })
}

fn dot(place: &Place, class: usize) -> Dot {
    Dot {
        x: place.x,
        y: place.y,
        class,
        ring: place.accessible,
    }
}

/// The picture of a schedule's seats now, and a tag of what it shows (for `ETag`).
#[tracing::instrument(name = "seat picture", skip_all, fields(schedule_id = %schedule_id))]
pub async fn seat_picture(deps: &Deps, schedule_id: Uuid) -> Result<(String, String), AppError> {
    let (_, states) = layout_and_states(deps, schedule_id).await?;
    let kept = deps.seat_pictures.get(schedule_id);
    let geometry = match kept {
        Some(g) if g.seats.len() == states.len() => g,
        _ => {
            let g = Arc::new(geometry(deps, schedule_id).await?);
            deps.seat_pictures.keep(schedule_id, g.clone());
            g
        }
    };
    if geometry.seats.len() != states.len() {
        // Seats were being added while the picture was read: draw what both agree on next time.
        return Err(AppError::unavailable(
            "seats_changing",
            "the schedule's seats are being created; retry in a moment",
            1,
        ));
    }
    let class_of = |state: u8| match state {
        AVAILABLE => 0,
        HELD => 1,
        SOLD => 2,
        _ => 0,
    };
    let mut dots: Vec<Dot> = geometry
        .seats
        .iter()
        .zip(&states)
        .map(|(p, &s)| dot(p, class_of(s)))
        .collect();
    dots.extend(geometry.never_for_sale.iter().map(|p| dot(p, 3)));
    let counted = |state: u8| states.iter().filter(|&&s| s == state).count();
    let classes = [
        ("#43a047", format!("available: {}", counted(AVAILABLE))),
        ("#fb8c00", format!("held: {}", counted(HELD))),
        ("#e53935", format!("sold: {}", counted(SOLD))),
        (
            NOT_FOR_SALE,
            format!("never for sale: {}", geometry.never_for_sale.len()),
        ),
    ]
    .map(|(colour, label)| Class { colour, label });
    let notes: Vec<String> = geometry
        .categories
        .iter()
        .map(|(name, price, seats)| format!("{name}: {price} points, {seats} seats"))
        .collect();
    let svg = picture::draw(
        &format!("Schedule {schedule_id}"),
        &dots,
        &classes,
        dots.iter().any(|d| d.ring).then_some("accessible place"),
        &notes,
    );
    let tag = {
        use sha2::{Digest, Sha256};
        format!("\"seats-{:x}\"", Sha256::digest(&states))
    };
    Ok((svg, tag))
}

/// The picture of a plan version: dots coloured by category, places never for sale grey,
/// accessible places ringed.
pub fn plan_picture(title: &str, plan: &crate::domain::seat_plan::SeatPlan) -> String {
    let categories = plan.categories();
    let colour = |i: usize| CATEGORY_COLOURS[i % CATEGORY_COLOURS.len()];
    let index: HashMap<&str, usize> = categories.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
    let never = categories.len();
    let dots: Vec<Dot> = plan
        .seats()
        .iter()
        .map(|s| Dot {
            x: s.x,
            y: s.y,
            class: if s.for_sale {
                index.get(s.category.as_str()).copied().unwrap_or(0)
            } else {
                never
            },
            ring: s.accessible,
        })
        .collect();
    let mut classes: Vec<Class> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| Class {
            colour: colour(i),
            label: format!("{c}: {} seats", dots.iter().filter(|d| d.class == i).count()),
        })
        .collect();
    classes.push(Class {
        colour: NOT_FOR_SALE,
        label: format!("never for sale: {}", dots.iter().filter(|d| d.class == never).count()),
    });
    let sections = plan.sections();
    let notes = vec![format!(
        "{} seats in {} sections, {} for sale",
        plan.seats().len(),
        sections.len(),
        plan.for_sale()
    )];
    picture::draw(
        title,
        &dots,
        &classes,
        plan.seats().iter().any(|s| s.accessible).then_some("accessible place"),
        &notes,
    )
}
