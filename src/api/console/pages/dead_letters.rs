//! Dead letters: the grouped list, one letter, the dry run, replay and purge.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Query};
use maud::{Markup, html};
use serde::Deserialize;

use super::super::view::{self, action_button};
use super::super::{ConsoleUser, Id, Page, html as respond, may_act, see_other};
use super::parts::{PAGE_SIZE, Parts, enc, live, short};
use crate::app::console::dead_letters::{self, Letter, Scope, Touched};
use crate::app::{AppError, Deps};

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
    let mut streams: Vec<(String, u64)> = Vec::new();
    for g in &groups {
        match streams.iter_mut().find(|(s, _)| *s == g.stream) {
            Some((_, n)) => *n += g.count,
            None => streams.push((g.stream.clone(), g.count)),
        }
    }
    let sq = scope_query(&scope);
    let part = html! {
        p { strong #dead-letter-total { (total) } " dead letter(s) in " (groups.len()) " group(s)."
            @if !streams.is_empty() {
                " By stream: " @for (stream, n) in &streams {
                    a.stream-filter href={"/console/dead-letters?stream=" (enc(stream))} { (stream) " (" (n) ")" } " "
                }
            }
        }
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

fn dead_letter_id(raw: &str) -> Result<String, super::super::ConsoleError> {
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

    fn id(&self) -> Result<Option<String>, super::super::ConsoleError> {
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
        p.hint { "A replay publishes each entry again to its stream with the same event id: every group of the stream reads it, and each that already processed it (processed_events) does nothing a second time. Of several letters of one event (one per group that failed it) one is published and the others removed." }
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
