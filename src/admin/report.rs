//! `imticket-admin report concert <id>` and `report settlement --from --to`: the sales
//! statistics and the settlement, as the admin API serves them (tables, `--json`, `--csv`).

use std::fmt::Write as _;

use uuid::Uuid;

use super::command::{Context, Needs, Run};
use crate::app::statistics::{self, concert_csv, day, settlement_csv};

#[derive(clap::Subcommand)]
pub enum Report {
    /// A concert's sales: per schedule, the funnel of its fans, refused payments by code.
    Concert {
        id: String,
        /// CSV, one line per schedule (as `GET /admin/reports/concerts/{id}?format=csv`).
        #[arg(long)]
        csv: bool,
    },
    /// Points charged per UTC day and concert, from the ledger's rows.
    Settlement {
        /// First UTC day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last UTC day (included), YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// CSV, one line per day and concert.
        #[arg(long)]
        csv: bool,
    },
}

impl Run for Report {
    fn needs(&self) -> Needs {
        Needs::DATABASE
    }

    fn check(&self) -> anyhow::Result<()> {
        match self {
            Report::Concert { id, .. } => {
                id.parse::<Uuid>()
                    .map_err(|_| anyhow::anyhow!("not a concert id: {id:?}"))?;
            }
            Report::Settlement { from, to, .. } => {
                for (name, value) in [("--from", from), ("--to", to)] {
                    day(name, value).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
                }
            }
        }
        Ok(())
    }

    async fn run(self, cx: &Context) -> anyhow::Result<String> {
        let db = cx.db()?;
        match self {
            Report::Concert { id, csv } => {
                let id: Uuid = id.parse()?;
                let report = statistics::concert_report(db, id).await.map_err(anyhow::Error::new)?;
                if csv {
                    return Ok(concert_csv(&report).trim_end().to_owned());
                }
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&report)?);
                }
                let f = &report.funnel;
                let mut out = format!(
                    "concert {}\nfunnel: joined {} → admitted {} → held {} → paid {} (admitted, never held {}; held, never paid {})\n",
                    report.concert_id, f.joined, f.admitted, f.held, f.paid, f.admitted_never_held, f.held_never_paid
                );
                let failures: Vec<String> = report
                    .payment_failures
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect();
                writeln!(
                    out,
                    "payment failures: {}",
                    if failures.is_empty() {
                        "none".to_owned()
                    } else {
                        failures.join(", ")
                    }
                )?;
                writeln!(
                    out,
                    "{:<36} {:>7} {:>9} {:>6} {:>6} {:>10} {:>6} {:>9} {:>7}",
                    "SCHEDULE", "SEATS", "AVAILABLE", "HELD", "SOLD", "REVENUE", "HOLDS", "CONFIRMED", "EXPIRED"
                )?;
                for s in &report.schedules {
                    writeln!(
                        out,
                        "{:<36} {:>7} {:>9} {:>6} {:>6} {:>10} {:>6} {:>9} {:>7}",
                        s.schedule_id,
                        s.seats_total,
                        s.seats_available,
                        s.seats_held_now,
                        s.seats_sold,
                        s.revenue_points,
                        s.holds_placed,
                        s.holds_confirmed,
                        s.holds_expired
                    )?;
                }
                Ok(out.trim_end().to_owned())
            }
            Report::Settlement { from, to, csv } => {
                let from = day("--from", &from).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
                let to = day("--to", &to).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
                let settlement = statistics::settlement(db, from, to).await.map_err(anyhow::Error::new)?;
                if csv {
                    return Ok(settlement_csv(&settlement).trim_end().to_owned());
                }
                if cx.json {
                    return Ok(serde_json::to_string_pretty(&settlement)?);
                }
                let mut out = format!("{:<10} {:<36} {:>8} {:>12}\n", "DAY", "CONCERT", "PAYMENTS", "POINTS");
                for d in &settlement.days {
                    writeln!(
                        out,
                        "{:<10} {:<36} {:>8} {:>12}",
                        d.day, d.concert_id, d.payments, d.points
                    )?;
                }
                write!(
                    out,
                    "{:<10} {:<36} {:>8} {:>12}",
                    "total", "", settlement.total_payments, settlement.total_points
                )?;
                Ok(out)
            }
        }
    }
}
