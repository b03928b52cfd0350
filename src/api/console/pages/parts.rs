//! What the console's pages share: the frame with a live part, URL encoding, short ids.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};
use uuid::Uuid;

use super::super::view;
use super::super::view::age_ms;
use super::super::{ConsoleUser, html as respond, live_only};

pub(super) const PAGE_SIZE: usize = 50;

pub(super) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A page with a live part: `before` and `after` stay as they are, `live` is refreshed in place.
pub(super) struct Parts {
    pub before: Markup,
    pub live: Markup,
    pub after: Markup,
}

/// The page, or its live part alone for the refresh script.
pub(super) fn live(req: &HttpRequest, title: &str, active: &str, user: &ConsoleUser, parts: Parts) -> HttpResponse {
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

pub(super) fn short(id: Uuid) -> String {
    id.to_string()[..8].to_owned()
}

pub(super) fn secs(s: Option<f64>) -> String {
    match s {
        None => "–".to_owned(),
        Some(s) => age_ms((s * 1000.0).max(0.0) as u64),
    }
}
