//! The console's pages and actions, one handler each. A page with a live part renders it
//! alone when the refresh script asks (`X-Console-Live`).

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::view::{self, action_button, age_ms, bars, per_s};
use super::{ConsoleUser, Id, Page, html as respond, live_only, may_act, see_other, uuid};
use crate::app::console::dead_letters::{self, Letter, Scope, Touched};
use crate::app::console::{self as console, rooms, sales, streams};
use crate::app::{AppError, Deps};

const PAGE_SIZE: usize = 50;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The page, or its live part alone for the refresh script.
/// `before` and `after` stay as they are; `live_part` is refreshed in place.
struct Parts {
    before: Markup,
    live: Markup,
    after: Markup,
}

fn live(req: &HttpRequest, title: &str, active: &str, user: &ConsoleUser, parts: Parts) -> HttpResponse {
    let Parts {
        before,
        live: live_part,
        after,
    } = parts;
    if live_only(req) {
        return respond(StatusCode::OK, live_part);
    }
    respond(
        StatusCode::OK,
        view::page(
            title,
            active,
            &user.0,
            html! {
                (before)
                div #live data-live="2000" { (live_part) }
                (after)
            },
        ),
    )
}

#[derive(Deserialize)]
pub struct StreamsQuery {
    stream: Option<String>,
}

pub async fn streams(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, q: Query<StreamsQuery>) -> Page {
    let overview = streams::overview(&deps).await?;
    let shown: Vec<&streams::StreamView> = overview
        .streams
        .iter()
        .filter(|s| {
            q.stream
                .as_ref()
                .is_none_or(|f| &s.name == f || s.name.split(':').next() == Some(f.as_str()))
        })
        .collect();
    let part = html! {
        section #attention .attention {
            @if overview.attention.is_empty() {
                p.ok #all-well { "Nothing needs attention: every group keeps up, nothing new is dead-lettered." }
            } @else {
                h2 { "Needs attention" }
                ol {
                    @for a in &overview.attention {
                        li class={"sev" (a.severity)} data-kind=(a.kind) { strong { (a.kind) } ": " a href=(a.link) { (a.text) } }
                    }
                }
            }
        }
        p { "Dead letters: " a href="/console/dead-letters" #dead-letter-count { (overview.dead_letters) }
            " (" (overview.dead_letters_recent) " in the last 10 minutes)" }
        table #streams {
            thead { tr { th { "stream" } th { "length" } th { "in (1 min)" } th { "in (5 min)" } th { "last id" } th { "trim point / held by" } } }
            tbody {
                @for s in &shown {
                    tr.stream data-stream=(s.name) {
                        td { a href={"/console/streams?stream=" (enc(&s.name))} { (s.name) } }
                        td.length { (s.length) }
                        td { (per_s(s.in_per_s)) }
                        td { (per_s(s.in_per_s_5m)) }
                        td.mono { (s.last_id.as_deref().unwrap_or("–")) }
                        td { (s.trim_point.as_deref().unwrap_or("–")) " / " (s.trim_held_by.as_deref().unwrap_or("no group")) }
                    }
                    @for g in &s.groups {
                        tr.group data-stream=(s.name) data-group=(g.name) {
                            td.indent { "group " strong { (g.name) } @if g.pins { " (holds trim)" } @if g.abandoned { " (abandoned)" } }
                            td { "lag " span.lag { (g.lag.map_or("unknown".to_owned(), |l| l.to_string())) }
                                @if let Some(c) = g.lag_change { @if c != 0 { " (" @if c > 0 { "+" } (c) " / 30 s)" } } }
                            td { "out " (per_s(g.out_per_s)) }
                            td { "pending " span.pending { (g.pending) } }
                            td { "oldest pending " (g.oldest_pending_age_ms.map_or("–".to_owned(), age_ms)) }
                            td { (g.live_consumers) " live of " (g.consumers.len()) " consumer(s): "
                                @for c in &g.consumers { span.consumer title={"pending " (c.pending)} { (c.name) " idle " (age_ms(c.idle_ms)) } " " } }
                        }
                    }
                }
            }
        }
    };
    Ok(live(
        &req,
        "Streams",
        "/console/streams",
        &user,
        Parts {
            before: html! {},
            live: part,
            after: html! {},
        },
    ))
}

#[derive(Deserialize)]
pub struct LettersQuery {
    group: Option<String>,
    stream: Option<String>,
    after: Option<String>,
}

impl LettersQuery {
    fn scope(&self) -> Scope {
        Scope {
            group: self.group.clone().filter(|g| !g.is_empty()),
            stream: self.stream.clone().filter(|s| !s.is_empty()),
        }
    }
}

fn scope_query(scope: &Scope) -> String {
    let mut parts = Vec::new();
    if let Some(g) = &scope.group {
        parts.push(format!("group={}", enc(g)));
    }
    if let Some(s) = &scope.stream {
        parts.push(format!("stream={}", enc(s)));
    }
    parts.join("&")
}

fn touched(t: &Touched) -> Markup {
    match t {
        Touched::Reservation(r) => html! {
            span.touch data-kind="reservation" data-status=(r.status) {
                "reservation " a href={"/console/rows/" (r.id)} { (short(r.id)) } " is " strong { (r.status) }
                @if let Some(p) = &r.payment_status { ", payment " (p) }
            }
        },
        Touched::Payment(p) => html! {
            span.touch data-kind="payment" data-status=(p.status) {
                "payment " a href={"/console/rows/" (p.id)} { (short(p.id)) } " is " strong { (p.status) }
            }
        },
        Touched::Job(j) => html! {
            span.touch data-kind="job" data-status=(j.status) {
                "job " a href={"/console/rows/" (j.id)} { (short(j.id)) } " is " strong { (j.status) } " (" (j.done) "/" (j.total) ")"
            }
        },
        Touched::Missing { what, id } => html! {
            span.touch.missing data-kind=(what) data-status="missing" { (what) " " (short(*id)) " does not exist" }
        },
    }
}

fn short(id: Uuid) -> String {
    id.to_string()[..8].to_owned()
}

fn letter_row(l: &Letter) -> Markup {
    html! {
        tr.letter data-id=(l.letter.id) data-verdict=(l.verdict.outcome) {
            td.mono { a href={"/console/dead-letters/" (l.letter.id)} { (l.letter.id) } }
            td { (l.stream) " / " (l.letter.group) }
            td { (l.event_type) }
            td { (l.letter.deliveries) }
            td.error { (l.letter.error) }
            td { @for t in &l.touches { (touched(t)) " " } }
            td.verdict { span class=(l.verdict.outcome) { (l.verdict.outcome.replace('_', " ")) } }
        }
    }
}

pub async fn dead_letters(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, q: Query<LettersQuery>) -> Page {
    let scope = q.scope();
    if let Some(after) = &q.after
        && crate::infra::redis::protocol::EntryId::parse(after).is_none()
    {
        return Err(AppError::bad_request("invalid_query", "`after` must be a dead-letter id (<ms>-<seq>)").into());
    }
    let (total, groups) = dead_letters::groups(&deps).await?;
    let page = dead_letters::page(&deps, &scope, q.after.as_deref(), PAGE_SIZE).await?;
    let sq = scope_query(&scope);
    let part = html! {
        p { strong #dead-letter-total { (total) } " dead letter(s) in " (groups.len()) " group(s)." }
        table #groups {
            thead { tr { th { "count" } th { "stream / group" } th { "event types" } th { "error (normalised)" } th { "newest" } th { "" } } }
            tbody {
                @for g in &groups {
                    tr.group data-group=(g.id) class=@if scope.group.as_ref() == Some(&g.id) { "selected" } {
                        td.count { (g.count) }
                        td { (g.stream) " / " (g.group) }
                        td { (g.event_types.join(", ")) }
                        td.error title=(g.sample) { (g.error) }
                        td.mono { (g.last_id) }
                        td { a href={"/console/dead-letters?group=" (g.id)} { "show" } " · "
                             a.dry-run href={"/console/dead-letters/replay?group=" (g.id)} { "dry run replay" } " · "
                             a href={"/console/dead-letters/purge?group=" (g.id)} { "purge…" } }
                    }
                }
            }
        }
    };
    let list = html! {
        h2 { @if scope == Scope::default() { "All dead letters" } @else { "Dead letters of " (scope.describe()) } " (" (page.total) ")" }
        p {
            @if scope != Scope::default() { a href="/console/dead-letters" { "show all" } " · " }
            a #dry-run-scope href={"/console/dead-letters/replay?" (sq)} { "dry run: replay these" } " · "
            a href={"/console/dead-letters/purge?" (sq)} { "purge these…" }
        }
        table #letters {
            thead { tr { th { "id" } th { "stream / group" } th { "type" } th { "deliveries" } th { "last error" } th { "touches (now)" } th { "a replay would" } } }
            tbody { @for l in &page.letters { (letter_row(l)) } }
        }
        @if let Some(next) = &page.next_after {
            p { a #next-page href={"/console/dead-letters?" (sq) @if !sq.is_empty() { "&" } "after=" (next)} { "next " (PAGE_SIZE) " →" } }
        }
    };
    Ok(live(
        &req,
        "Dead letters",
        "/console/dead-letters",
        &user,
        Parts {
            before: html! {},
            live: part,
            after: list,
        },
    ))
}

pub async fn dead_letter(deps: Data<Deps>, user: ConsoleUser, id: Id) -> Page {
    let id = dead_letter_id(&id)?;
    let Some(l) = dead_letters::one(&deps, &id).await? else {
        return Err(AppError::not_found(
            "dead_letter_not_found",
            format!("no dead letter {id}: replayed or purged (see the audit log)"),
        )
        .into());
    };
    let body = html! {
        table.fields #letter {
            tr { th { "id" } td.mono { (l.letter.id) } }
            tr { th { "source" } td { (l.letter.source_stream) " entry " (l.letter.source_id) } }
            tr { th { "group" } td { (l.letter.group) } }
            tr { th { "deliveries" } td #deliveries { (l.letter.deliveries) } }
            tr { th { "dead-lettered at" } td { (l.letter.dead_lettered_at) } }
            tr { th { "last error" } td.error #last-error { (l.letter.error) } }
            tr { th { "error group" } td { a href={"/console/dead-letters?group=" (l.group_id)} { (dead_letters::normalise(&l.letter.error)) } } }
        }
        h2 { "Payload" }
        table.fields #payload {
            @for (k, v) in &l.letter.original { tr { th { (k) } td.mono { (v) } } }
        }
        h2 { "What it touches, now" }
        @if l.touches.is_empty() { p { "No reservation, payment or job named in its payload." } }
        ul #touches { @for t in &l.touches { li { (touched(t)) } } }
        h2 { "A replay would" }
        p #verdict data-verdict=(l.verdict.outcome) { strong { (l.verdict.outcome.replace('_', " ")) } ": " (l.verdict.why) }
        p { a #dry-run href={"/console/dead-letters/replay?id=" (l.letter.id)} { "Dry run, then replay…" } }
    };
    Ok(respond(
        StatusCode::OK,
        view::page(&format!("Dead letter {id}"), "/console/dead-letters", &user.0, body),
    ))
}

fn dead_letter_id(raw: &str) -> Result<String, super::ConsoleError> {
    crate::infra::redis::protocol::EntryId::parse(raw.trim())
        .map(|e| e.to_string())
        .ok_or_else(|| {
            AppError::bad_request("invalid_id", format!("{raw:?} is not a dead-letter id (<ms>-<seq>)")).into()
        })
}

#[derive(Deserialize)]
pub struct ActionQuery {
    id: Option<String>,
    group: Option<String>,
    stream: Option<String>,
}

impl ActionQuery {
    fn scope(&self) -> Scope {
        Scope {
            group: self.group.clone().filter(|g| !g.is_empty()),
            stream: self.stream.clone().filter(|s| !s.is_empty()),
        }
    }

    fn id(&self) -> Result<Option<String>, super::ConsoleError> {
        self.id
            .as_deref()
            .filter(|i| !i.is_empty())
            .map(dead_letter_id)
            .transpose()
    }
}

pub async fn replay_dry_run(deps: Data<Deps>, user: ConsoleUser, q: Query<ActionQuery>) -> Page {
    let (scope, id) = (q.scope(), q.id()?);
    let (letters, total) = dead_letters::dry_run(&deps, &scope, id.as_deref()).await?;
    let count = |o: &str| letters.iter().filter(|l| l.verdict.outcome == o).count();
    let target = id
        .as_ref()
        .map_or_else(|| scope.describe(), |i| format!("dead letter {i}"));
    let mut fields: Vec<(&str, &str)> = Vec::new();
    if let Some(i) = &id {
        fields.push(("id", i));
    }
    if let Some(g) = &scope.group {
        fields.push(("group", g));
    }
    if let Some(s) = &scope.stream {
        fields.push(("stream", s));
    }
    let body = html! {
        p #dry-run-summary {
            "Dry run of a replay of " strong { (target) } ": " (letters.len()) " of " (total) " dead letter(s) looked at — "
            strong #no-op-count { (count("no_op")) } " would be no-ops (the effect already happened), "
            strong #apply-count { (count("would_apply")) } " would be applied, "
            strong #fail-count { (count("would_fail")) } " would fail again."
        }
        @if total as usize > letters.len() { p { "A replay takes the first " (dead_letters::BATCH) "; the page after it offers the next batch." } }
        p.hint { "A replay publishes each entry again to its stream with the same event id: every group that already processed it (processed_events) does nothing a second time." }
        @if letters.is_empty() {
            p #nothing { "Nothing to replay: no such dead letter (already replayed or purged)." }
        } @else {
            (action_button(&user.0, "/console/dead-letters/replay", &format!("Replay {}", letters.len()), "replay-confirm", &fields))
        }
        table #letters {
            thead { tr { th { "id" } th { "stream / group" } th { "type" } th { "deliveries" } th { "last error" } th { "touches (now)" } th { "a replay would" } } }
            tbody {
                @for l in &letters {
                    (letter_row(l))
                    tr.why { td colspan="7" { (l.verdict.why) } }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        view::page("Replay: dry run", "/console/dead-letters", &user.0, body),
    ))
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    id: Option<String>,
    group: Option<String>,
    stream: Option<String>,
    confirm: Option<String>,
}

impl ActionForm {
    fn query(&self) -> ActionQuery {
        ActionQuery {
            id: self.id.clone(),
            group: self.group.clone(),
            stream: self.stream.clone(),
        }
    }
}

pub async fn replay(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, form: Form<ActionForm>) -> Page {
    may_act(&req, &user, &form.csrf)?;
    let q = form.query();
    let (scope, id) = (q.scope(), q.id()?);
    let (_, action) = dead_letters::replay(&deps, &user.0, &scope, id.as_deref()).await?;
    Ok(see_other(&format!("/console/actions/{action}")))
}

pub async fn purge_confirm(deps: Data<Deps>, user: ConsoleUser, q: Query<ActionQuery>) -> Page {
    let scope = q.scope();
    let page = dead_letters::page(&deps, &scope, None, 0).await?;
    let mut fields: Vec<(&str, &str)> = vec![("confirm", "yes")];
    if let Some(g) = &scope.group {
        fields.push(("group", g));
    }
    if let Some(s) = &scope.stream {
        fields.push(("stream", s));
    }
    let body = html! {
        p.warning #purge-summary { "Delete " strong { (page.total) } " dead letter(s) of " (scope.describe()) " for good? They cannot be replayed afterwards." }
        (action_button(&user.0, "/console/dead-letters/purge", &format!("Yes, delete {}", page.total), "purge-confirm", &fields))
        " " a href={"/console/dead-letters?" (scope_query(&scope))} { "No, back" }
    };
    Ok(respond(
        StatusCode::OK,
        view::page("Purge dead letters", "/console/dead-letters", &user.0, body),
    ))
}

pub async fn purge(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, form: Form<ActionForm>) -> Page {
    may_act(&req, &user, &form.csrf)?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(
            AppError::bad_request("confirmation_required", "a purge needs its confirmation (confirm=yes)").into(),
        );
    }
    let (_, action) = dead_letters::purge(&deps, &user.0, &form.query().scope()).await?;
    Ok(see_other(&format!("/console/actions/{action}")))
}

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
    let part = html! {
        @if rooms.is_empty() { p #no-rooms { "No open line." } }
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
                p { "Admissions per second (last 5 min): " (bars(&r.admissions_per_s, &format!("admissions-{}", s.concert_id), "admissions per second")) }
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

fn secs(s: Option<f64>) -> String {
    match s {
        None => "–".to_owned(),
        Some(s) => age_ms((s * 1000.0).max(0.0) as u64),
    }
}

async fn set_paused(
    req: HttpRequest,
    deps: Data<Deps>,
    user: ConsoleUser,
    id: Id,
    form: Form<super::Csrf>,
    paused: bool,
) -> Page {
    may_act(&req, &user, &form.csrf)?;
    let concert = uuid(&id, "concert")?;
    rooms::set_paused(&deps, &user.0, concert, paused).await?;
    Ok(see_other(&format!("/console/rooms?concert={concert}")))
}

pub async fn pause(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, id: Id, form: Form<super::Csrf>) -> Page {
    set_paused(req, deps, user, id, form, true).await
}

pub async fn resume(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, id: Id, form: Form<super::Csrf>) -> Page {
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
                p { (bars(&per_minute, "payments-chart", "payments per minute")) " now " (per_minute.last().copied().unwrap_or(0.0) / 60.0) "/s" }
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

#[derive(Deserialize)]
pub struct AuditQuery {
    run: Option<String>,
}

/// Every UUID of `text` as a link to its rows.
fn linked(text: &str) -> Markup {
    let mut parts: Vec<Markup> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let found = rest
            .char_indices()
            .find_map(|(i, _)| rest.get(i..i + 36).and_then(|c| c.parse::<Uuid>().ok().map(|u| (i, u))));
        match found {
            Some((i, id)) => {
                let before = &rest[..i];
                parts.push(html! { (before) a.row-link href={"/console/rows/" (id)} { (id) } });
                rest = &rest[i + 36..];
            }
            None => {
                parts.push(html! { (rest) });
                break;
            }
        }
    }
    html! { @for p in parts { (p) } }
}

pub async fn audit(deps: Data<Deps>, user: ConsoleUser, q: Query<AuditQuery>) -> Page {
    let ran = q.run.is_some();
    let violations = if ran { Some(console::audit(&deps).await?) } else { None };
    let body = html! {
        p { "Checks I1–I4 (seats, payments, wallets, idempotency keys), the schedules' available counts, and I5 (the outbox and the streams' pending entries), as " code { "imticket-admin audit" } "." }
        form method="get" action="/console/audit" { input type="hidden" name="run" value="1"; button type="submit" #run-audit { "Run the audit" } }
        @if let Some(v) = &violations {
            @if v.is_empty() {
                p.ok #audit-clean { "Audit clean: no violation." }
            } @else {
                p.error #audit-violations { (v.len()) " violation(s)" }
                table #violations {
                    thead { tr { th { "check" } th { "finding" } } }
                    tbody { @for x in v { tr { td { (x.check) } td { (linked(&x.detail)) } } } }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        view::page("Audit", "/console/audit", &user.0, body),
    ))
}

#[derive(Deserialize)]
pub struct ActionsQuery {
    before: Option<String>,
}

fn action_rows(rows: &[crate::infra::postgres::console::ActionRow]) -> Markup {
    html! {
        table #actions {
            thead { tr { th { "when" } th { "admin" } th { "action" } th { "target" } th { "outcome" } } }
            tbody { @for a in rows {
                tr.action data-action=(a.action) data-id=(a.id) {
                    td { a href={"/console/actions/" (a.id)} { (a.at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                    td { (a.admin_email.as_deref().unwrap_or("?")) " " span.mono.muted { (a.admin_id) } }
                    td { (a.action) } td { (a.target) } td.outcome { (a.outcome) }
                }
            } }
        }
    }
}

pub async fn actions(deps: Data<Deps>, user: ConsoleUser, q: Query<ActionsQuery>) -> Page {
    let before = q
        .before
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(|b| uuid(b, "action"))
        .transpose()?;
    let rows = console::actions(&deps, before, PAGE_SIZE as i64).await?;
    let body = html! {
        p { "Every action taken from the console, newest first, with the admin who took it." }
        (action_rows(&rows))
        @if rows.len() == PAGE_SIZE { @if let Some(last) = rows.last() { p { a #next-page href={"/console/actions?before=" (last.id)} { "older →" } } } }
    };
    Ok(respond(
        StatusCode::OK,
        view::page("Audit log", "/console/actions", &user.0, body),
    ))
}

pub async fn action(deps: Data<Deps>, user: ConsoleUser, id: Id) -> Page {
    let id = uuid(&id, "action")?;
    let Some(row) = console::action(&deps, id).await? else {
        return Err(AppError::not_found("action_not_found", "no such console action").into());
    };
    let body = html! {
        p #action-outcome data-action=(row.action) { strong { (row.action) } " of " (row.target) ": " span.outcome { (row.outcome) } }
        (action_rows(std::slice::from_ref(&row)))
        pre.mono { (serde_json::to_string_pretty(&row.detail).unwrap_or_default()) }
        @if row.action == "replay" && row.detail.get("remaining").and_then(|r| r.as_u64()).unwrap_or(0) > 0 {
            p { (row.detail["remaining"]) " more in this scope: " a href="/console/dead-letters" { "back to the dead letters" } " for the next batch's dry run." }
        }
        p { a href="/console/actions" { "All actions" } " · " a href="/console/dead-letters" { "Dead letters" } }
    };
    Ok(respond(
        StatusCode::OK,
        view::page("Action", "/console/actions", &user.0, body),
    ))
}

pub async fn row(deps: Data<Deps>, user: ConsoleUser, id: Id) -> Page {
    let id = uuid(&id, "row")?;
    let rows = console::rows(&deps, id).await?;
    let body = html! {
        @if rows.is_empty() { p #no-row { "No reservation, payment, seat, schedule, concert, job, outbox event, user or wallet has this id." } }
        @for (table, value) in &rows {
            section.row data-table=(table) {
                h2 { (table) }
                table.fields { @if let Some(map) = value.as_object() { @for (k, v) in map {
                    tr { th { (k) } td.mono { (linked(&match v { serde_json::Value::String(s) => s.clone(), other => other.to_string() })) } }
                } } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        view::page(&format!("Rows with id {id}"), "/console/audit", &user.0, body),
    ))
}
