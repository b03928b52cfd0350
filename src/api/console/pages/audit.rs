//! The audit, the audit log and the row page.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Query};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::super::view::{self};
use super::super::{ConsoleUser, Id, Page, html as respond, uuid};
use super::parts::PAGE_SIZE;
use crate::app::console;
use crate::app::{AppError, Deps};

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
