//! Waiting rooms (pause, resume) and sales.

use actix_web::HttpRequest;
use actix_web::web::{Data, Form, Query};
use maud::html;
use serde::Deserialize;

use super::super::view::{action_button, bars};
use super::super::{ConsoleUser, Id, Page, may_act, see_other, uuid};
use super::parts::{Parts, live, secs, short};
use crate::app::Deps;
use crate::app::console::{rooms, sales};

#[derive(Deserialize)]
pub struct RoomsQuery {
    concert: Option<String>,
}

pub async fn rooms(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, q: Query<RoomsQuery>) -> Page {
    let concert = q
        .concert
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| uuid(c, "concert"))
        .transpose()?;
    let rooms = rooms::rooms(&deps, concert).await?;
    let upcoming = match rooms.is_empty() {
        true => rooms::upcoming(&deps).await?,
        false => Vec::new(),
    };
    let part = html! {
        @if rooms.is_empty() {
            p #no-rooms { "No open line (a line closes when nobody waits or is active in it)." }
            @if !upcoming.is_empty() {
                p { "Next concerts: " @for (id, title) in &upcoming { a href={"/console/rooms?concert=" (id)} { (title) } " · " } }
            }
        }
        @for r in &rooms {
            @let s = &r.stats;
            section.room data-concert=(s.concert_id) data-paused=(s.paused) {
                h2 { a href={"/console/rooms?concert=" (s.concert_id)} { (r.title) } " "
                    @if s.paused { span.badge.paused { "admission paused" } }
                    @if s.sold_out { span.badge.sold-out { "sold out" } } }
                table.fields {
                    tr { th { "pre-queue" } td.pre-queue { (s.pre_queue) } th { "waiting" } td.waiting { (s.waiting) } th { "active" } td.active { (s.active) } }
                    tr { th { "admitted, last minute" } td.admitted { (s.admitted_last_minute) }
                         th { "wait (10 min, p50 / p95)" } td { (secs(r.wait_p50_s)) " / " (secs(r.wait_p95_s)) " (" (r.admitted_recently) " fans)" }
                         th { "ETA of the last in line" } td.eta { @if s.paused { "paused" } @else { (secs(r.eta_s)) } } }
                }
                p { "Admissions per second (last 5 min, 5 s steps): " (bars(&r.admissions_per_s, &format!("admissions-{}", s.concert_id), "admissions per second")) }
                table.stock {
                    thead { tr { th { "schedule" } th { "starts" } th { "seats left" } } }
                    tbody { @for st in &r.schedules {
                        tr { td { a href={"/console/sales?schedule=" (st.schedule_id)} { (short(st.schedule_id)) } }
                             td { (st.starts_at.format("%Y-%m-%d %H:%M UTC")) } td.left { (st.available) " of " (st.seats) } }
                    } }
                }
                @if s.paused {
                    (action_button(&user.0, &format!("/console/rooms/{}/resume", s.concert_id), "Resume admission", "resume", &[]))
                } @else {
                    (action_button(&user.0, &format!("/console/rooms/{}/pause", s.concert_id), "Pause admission", "pause", &[]))
                }
            }
        }
    };
    Ok(live(
        &req,
        "Waiting rooms",
        "/console/rooms",
        &user,
        Parts {
            before: html! {},
            live: part,
            after: html! {},
        },
    ))
}

async fn set_paused(
    req: HttpRequest,
    deps: Data<Deps>,
    user: ConsoleUser,
    id: Id,
    form: Form<super::super::Csrf>,
    paused: bool,
) -> Page {
    may_act(&req, &user, &form.csrf)?;
    let concert = uuid(&id, "concert")?;
    rooms::set_paused(&deps, &user.0, concert, paused).await?;
    Ok(see_other(&format!("/console/rooms?concert={concert}")))
}

pub async fn pause(
    req: HttpRequest,
    deps: Data<Deps>,
    user: ConsoleUser,
    id: Id,
    form: Form<super::super::Csrf>,
) -> Page {
    set_paused(req, deps, user, id, form, true).await
}

pub async fn resume(
    req: HttpRequest,
    deps: Data<Deps>,
    user: ConsoleUser,
    id: Id,
    form: Form<super::super::Csrf>,
) -> Page {
    set_paused(req, deps, user, id, form, false).await
}

#[derive(Deserialize)]
pub struct SalesQuery {
    schedule: Option<String>,
}

pub async fn sales(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, q: Query<SalesQuery>) -> Page {
    let schedule = q
        .schedule
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| uuid(c, "schedule"))
        .transpose()?;
    let sales = sales::sales(&deps, schedule).await?;
    let picker = html! {
        form method="get" action="/console/sales" #pick {
            label { "Schedule " select name="schedule" {
                @for s in &sales.schedules {
                    option value=(s.id) selected[sales.selected.as_ref().is_some_and(|x| x.schedule.id == s.id)] {
                        (s.title) " · " (s.starts_at.format("%Y-%m-%d %H:%M UTC"))
                    }
                }
            } }
            " " button type="submit" { "Show" }
        }
    };
    let part = html! {
        @if let Some(sel) = &sales.selected {
            @let per_minute: Vec<f64> = sel.payments_per_minute.iter().map(|n| *n as f64).collect();
            section #sales data-schedule=(sel.schedule.id) {
                h2 { (sel.schedule.title) " · " (sel.schedule.starts_at.format("%Y-%m-%d %H:%M UTC")) }
                table.fields {
                    tr { th { "available" } td #available { (sel.seats.available) } th { "held" } td #held { (sel.seats.held) } th { "sold" } td #sold { (sel.seats.sold) } }
                    tr { th { "expiry lag" } td #expiry-lag colspan="5" {
                        @match sel.expiry_lag_s { None => "none: no hold waits past its end", Some(l) => (format!("{l:.1} s (oldest hold past its end)")) } } }
                }
                h3 { "Holds placed in the last " (sales::MINUTES) " minutes, by outcome" }
                table #holds { tr { @for (status, _) in &sel.holds_by_outcome { th { (status) } } } tr { @for (status, n) in &sel.holds_by_outcome { td data-status=(status) { (n) } } } }
                h3 { "Payments per minute (last " (sales::MINUTES) ")" }
                p { (bars(&per_minute, "payments-chart", "payments per minute")) " this minute so far: " (per_minute.last().copied().unwrap_or(0.0)) }
            }
        } @else {
            p { "No schedule yet." }
        }
        h2 { "Webhook endpoints" }
        table #webhooks {
            thead { tr { th { "endpoint" } th { "state" } th { "pending" } th { "oldest pending" } th { "failed" } th { "delivered (1 h)" } th { "last error" } } }
            tbody { @for w in &sales.webhooks {
                tr data-endpoint=(w.id) { td.mono { (w.url) } td { @if w.disabled { "disabled (410)" } @else { "active" } }
                     td { (w.pending) } td { (secs(w.oldest_pending_s)) } td { (w.failed) } td { (w.delivered_last_hour) }
                     td.error { (w.last_error.as_deref().unwrap_or("–")) } }
            } }
        }
    };
    let picture = html! {
        @if let Some(sel) = &sales.selected {
            p { img #seat-picture data-refresh="5000" src={"/api/v1/schedules/" (sel.schedule.id) "/seats.svg"} alt="seat plan by state"; }
        }
    };
    Ok(live(
        &req,
        "Sales",
        "/console/sales",
        &user,
        Parts {
            before: picker,
            live: part,
            after: picture,
        },
    ))
}
