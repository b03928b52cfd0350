//! `imticket-admin seed`: realistic demo and benchmark data, fast — seats go in through the
//! same chunked UNNEST insert as the seat-creation worker; users 10,000 per statement, with an
//! access token each on request (`--tokens-out`) for load tests.

use std::time::Instant;

use crate::infra::postgres::Db;
use anyhow::Context as _;
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::command::{Context, Needs, Run};
use crate::app::password::PasswordHasher;
use crate::app::tokens::TokenService;
use crate::app::venues;
use crate::domain::catalog::{RawSection, SeatLayout};
use crate::domain::seat_plan::{Prices, arena};
use crate::domain::user::Role;
use crate::infra::postgres::venues as venues_repo;
use crate::infra::{postgres::catalog, postgres::users};

/// Create demo data fast: concerts, schedules with seats, users with points.
#[derive(Debug, Clone, clap::Args)]
pub struct Seed {
    #[arg(long, default_value_t = 3)]
    pub concerts: u32,
    #[arg(long, default_value_t = 2)]
    pub schedules_per_concert: u32,
    /// At most 200000; 5 × 200000 makes 1,000,000 seats.
    #[arg(long, default_value_t = 10_000)]
    pub seats_per_schedule: u32,
    #[arg(long, default_value_t = 100)]
    pub users: u32,
    #[arg(long, default_value_t = 1_000_000)]
    pub points_per_user: i64,
    /// Every seeded user's password (they are demo accounts).
    #[arg(long, default_value = "seeded-password")]
    pub password: String,
    /// Also write the seeded users with an access token each (minted with the deployment's
    /// JWT_SECRET, valid IMTICKET_JWT_TTL_SECONDS) to this JSON file, for load tests: logging
    /// in thousands of fans would measure the deliberately slow password hash instead.
    #[arg(long, value_name = "FILE")]
    pub tokens_out: Option<std::path::PathBuf>,
}

#[derive(Debug, Default)]
struct SeedReport {
    pub concerts: u32,
    pub schedules: u32,
    pub seats: u64,
    pub users: u32,
    pub seconds: f64,
    /// The seeded users: (id, email).
    pub fans: Vec<(Uuid, String)>,
    /// The demo venue: (venue, hall, plan version, the schedule made from it).
    pub venue: Option<(Uuid, Uuid, i32, Uuid)>,
}

impl Run for Seed {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.seats_per_schedule <= 200_000, "at most 200000 seats per schedule");
        Ok(())
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let pool = cx.db()?;
        crate::infra::postgres::migrate(pool).await?;
        let r = seed(pool, &self).await?;
        if let Some(path) = &self.tokens_out {
            let (secret, ttl) = cx
                .settings
                .tokens
                .as_ref()
                .map_err(|e| anyhow::anyhow!("--tokens-out: {e}"))?;
            write_tokens(path, &TokenService::new(secret, *ttl), &r.fans)?;
        }
        let (venue, hall, version, arena_schedule) = r.venue.context("the demo venue")?;
        Ok(if cx.json {
            serde_json::json!({"concerts": r.concerts, "schedules": r.schedules, "seats": r.seats, "users": r.users,
                "seconds": r.seconds, "venue": {"id": venue, "hall_id": hall, "plan_version": version, "schedule_id": arena_schedule}})
            .to_string()
        } else {
            format!(
                "seeded {} concerts, {} schedules, {} seats, {} users in {:.1}s (the concerts asked for, and one more \
                 whose schedule is made from the demo arena's seat plan)\n\
                 venue {venue}: hall {hall}, plan version {version} (/api/v1/halls/{hall}/plans/{version}.svg), \
                 schedule {arena_schedule} made from it (/api/v1/schedules/{arena_schedule}/seats.svg)",
                r.concerts, r.schedules, r.seats, r.users, r.seconds
            )
        })
    }
}

/// The seeded users with an access token each, as JSON: `[{user_id, email, access_token}]`.
fn write_tokens(path: &std::path::Path, tokens: &TokenService, fans: &[(Uuid, String)]) -> anyhow::Result<()> {
    let fans = fans
        .iter()
        .map(|(id, email)| {
            let token = tokens
                .issue(*id, Role::User)
                .map_err(|e| anyhow::anyhow!("mint a token: {e:?}"))?;
            Ok(serde_json::json!({"user_id": id, "email": email, "access_token": token.access_token}))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::write(path, serde_json::to_vec(&fans)?).with_context(|| format!("write {}", path.display()))
}

/// Sections of up to 100 rows × 100 seats covering `seats` seats (the last one may be short).
fn layout_for(seats: u32) -> anyhow::Result<SeatLayout> {
    let mut raw = Vec::new();
    let mut left = i64::from(seats);
    let mut n = 0;
    while left > 0 {
        let take = left.min(10_000);
        let (rows, per_row) = if take % 100 == 0 { (take / 100, 100) } else { (take, 1) };
        raw.push(RawSection {
            name: format!("S{:02}", n + 1),
            rows,
            seats_per_row: per_row,
            price: 5_000 + 1_000 * (n % 10),
        });
        left -= take;
        n += 1;
    }
    SeatLayout::parse(raw).map_err(|e| anyhow::anyhow!("seed layout: {e}"))
}

async fn seed(db: &Db, plan: &Seed) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let mut report = SeedReport::default();
    let run = Uuid::now_v7().simple().to_string();
    let layout = layout_for(plan.seats_per_schedule)?;
    for c in 0..plan.concerts {
        let mut tx = db.begin().await.context("begin")?;
        let concert = catalog::insert_concert(
            &mut tx,
            Uuid::now_v7(),
            &format!("Seeded Concert {} ({})", c + 1, &run[..8]),
            "Demo data from imticket-admin seed",
            None,
        )
        .await?;
        tx.commit().await?;
        report.concerts += 1;
        for s in 0..plan.schedules_per_concert {
            let mut tx = db.begin().await.context("begin")?;
            let starts_at = Utc::now() + Duration::days(i64::from(1 + s * 2)) + Duration::hours(i64::from(c));
            let schedule = catalog::insert_schedule(&mut tx, Uuid::now_v7(), concert.id, starts_at).await?;
            tx.commit().await?;
            report.schedules += 1;
            let total = layout.total();
            for start in (0..total).step_by(10_000) {
                let seats = layout.columns(start, (start + 10_000).min(total));
                let mut tx = db.begin().await.context("begin")?;
                let inserted = catalog::insert_seats(&mut tx, schedule.id, &seats).await?;
                catalog::add_to_inventory(&mut tx, schedule.id, inserted as i32).await?;
                tx.commit().await?;
                report.seats += inserted;
            }
        }
    }
    seed_arena(db, &run, &mut report).await?;
    // One hash for every demo account: hashing is deliberately slow. Users go in 10,000 at a
    // time, each with its wallet and the ledger row of its points.
    let hash = PasswordHasher::new(1)?.hash(&plan.password).await?;
    let ids: Vec<Uuid> = (0..plan.users).map(|_| Uuid::now_v7()).collect();
    let emails: Vec<String> = (0..plan.users)
        .map(|u| format!("fan{}-{}@seed.imticket.test", u + 1, &run[..8]))
        .collect();
    for (ids, emails) in ids.chunks(10_000).zip(emails.chunks(10_000)) {
        let mut tx = db.begin().await.context("begin")?;
        let inserted =
            users::insert_many_with_points(&mut tx, ids, emails, &hash, "Seeded Fan", plan.points_per_user).await?;
        tx.commit().await?;
        report.users += inserted as u32;
    }
    report.fans = ids.into_iter().zip(emails).collect();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A venue with a real plan for a newcomer to look at (docs/venues.md, "Demo data"): ImTicket
/// Arena, its main hall's plan (version 1), and a concert whose one schedule is made from it.
async fn seed_arena(db: &Db, run: &str, report: &mut SeedReport) -> anyhow::Result<()> {
    let plan = arena(24, 30, 16, 100_000).map_err(|e| anyhow::anyhow!("seed arena plan: {e}"))?;
    let venue = venues::create_venue(
        db,
        venues::VenueFields {
            name: &format!("ImTicket Arena ({})", &run[..8]),
            address: "1 Demo Way, Hamburg",
            time_zone: "Europe/Berlin",
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("seed venue: {}", e.detail))?;
    let hall = venues::create_hall(db, venue.id, "Main hall")
        .await
        .map_err(|e| anyhow::anyhow!("seed hall: {}", e.detail))?;
    let version = venues::plans::import(db, hall.id, &plan)
        .await
        .map_err(|e| anyhow::anyhow!("seed plan: {}", e.detail))?
        .version;
    let prices = Prices::parse(
        [("A", 9_000), ("B", 6_500), ("C", 4_000)]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p))
            .collect(),
        plan.categories(),
        &plan.sold_categories(),
    )
    .map_err(|e| anyhow::anyhow!("seed prices: {e}"))?;
    let mut tx = db.begin().await.context("begin")?;
    let concert = catalog::insert_concert(
        &mut tx,
        Uuid::now_v7(),
        &format!("Arena Night ({})", &run[..8]),
        "Demo data from imticket-admin seed: a schedule made from ImTicket Arena's seat plan",
        None,
    )
    .await?;
    let schedule =
        catalog::insert_schedule(&mut tx, Uuid::now_v7(), concert.id, Utc::now() + Duration::days(14)).await?;
    venues_repo::lock_plan(&mut tx, hall.id, version).await?;
    venues_repo::mark_plan_used(&mut tx, hall.id, version).await?;
    venues_repo::set_schedule_plan(&mut tx, schedule.id, hall.id, version).await?;
    let for_sale = plan.for_sale() as i32;
    for start in (0..for_sale).step_by(10_000) {
        let seats = venues_repo::sale_seats(
            &mut tx,
            hall.id,
            version,
            &prices,
            start,
            (start + 10_000).min(for_sale),
        )
        .await?;
        let inserted = catalog::insert_seats(&mut tx, schedule.id, &seats).await?;
        catalog::add_to_inventory(&mut tx, schedule.id, inserted as i32).await?;
        report.seats += inserted;
    }
    tx.commit().await?;
    report.concerts += 1;
    report.schedules += 1;
    report.venue = Some((venue.id, hall.id, version, schedule.id));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_layouts_cover_the_requested_seats() {
        for seats in [1, 99, 100, 10_000, 12_345, 200_000] {
            assert_eq!(layout_for(seats).unwrap().total(), u64::from(seats), "{seats}");
        }
    }
}
