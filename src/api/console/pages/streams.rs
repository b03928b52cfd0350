//! The streams page.

use actix_web::HttpRequest;
use actix_web::web::{Data, Query};
use maud::html;
use serde::Deserialize;

use super::super::view::{age_ms, per_s};
use super::super::{ConsoleUser, Page};
use super::parts::{Parts, enc, live};
use crate::app::Deps;
use crate::app::console::streams;

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
                            td data-served=(g.served) { (g.live_consumers) " live of " (g.consumers.len()) " consumer(s)"
                                @if let Some(ago) = g.seen_ms_ago { ", seen " (age_ms(ago)) " ago" } ": "
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
