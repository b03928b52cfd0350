//! `/console`: the operator console, server-rendered HTML (maud) with one small embedded
//! script that refreshes each page's live part every two seconds. Logged in with an admin
//! (operator: reads and acts) or viewer (reads) account; a session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` over TLS) and a CSRF token in every action's form; a strict
//! Content-Security-Policy (nothing but this origin, no inline script or style). Every page's
//! state is in its URL. What each page shows: docs/console.md.

mod pages;
mod view;

use actix_web::body::BoxBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Data, Form, Path, Query, ServiceConfig};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use uuid::Uuid;

use super::rate_limits::{ask, client_of, limit};
use crate::app::console::{self as console, Session};
use crate::app::{AppError, Deps};
use crate::domain::rate_limit::Policy;

const COOKIE: &str = "imticket_console";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Registers the console's routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/console.css", web::get().to(css))
            .route("/assets/console.js", web::get().to(js))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/streams", web::get().to(pages::streams))
            .route("/dead-letters", web::get().to(pages::dead_letters))
            .route("/dead-letters/replay", web::get().to(pages::replay_dry_run))
            .route("/dead-letters/replay", web::post().to(pages::replay))
            .route("/dead-letters/purge", web::get().to(pages::purge_confirm))
            .route("/dead-letters/purge", web::post().to(pages::purge))
            .route("/dead-letters/{id}", web::get().to(pages::dead_letter))
            .route("/rooms", web::get().to(pages::rooms))
            .route("/rooms/{id}/pause", web::post().to(pages::pause))
            .route("/rooms/{id}/resume", web::post().to(pages::resume))
            .route("/sales", web::get().to(pages::sales))
            .route("/audit", web::get().to(pages::audit))
            .route("/actions", web::get().to(pages::actions))
            .route("/actions/{id}", web::get().to(pages::action))
            .route("/rows/{id}", web::get().to(pages::row))
            .default_service(web::to(not_found)),
    );
}

/// Why a console request did not get its page: not logged in (to the log-in page, coming
/// back here after), or an error shown as a page.
#[derive(Debug)]
pub enum ConsoleError {
    LogIn { next: String },
    App(AppError),
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleError::LogIn { .. } => f.write_str("log in first"),
            ConsoleError::App(e) => write!(f, "{}", e.detail),
        }
    }
}

impl From<AppError> for ConsoleError {
    fn from(e: AppError) -> Self {
        ConsoleError::App(e)
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LogIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::App(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            ConsoleError::LogIn { next } => HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!(
                        "/console/login?next={}",
                        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                    ),
                ))
                .finish(),
            ConsoleError::App(e) => {
                if e.status_code().is_server_error() {
                    // The cause goes to the log through the API's own mapping; the page says little.
                    let _ = e.error_response();
                }
                html(
                    self.status_code(),
                    view::error_page(e.status_code().as_u16(), e.code, &e.detail),
                )
            }
        }
    }
}

pub type Page = Result<HttpResponse, ConsoleError>;

/// A page (or, for the refresh script, only its live part) with the console's headers.
pub(crate) fn html(status: StatusCode, body: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Not `no-referrer` (the API's): with it the browser sends `Origin: null` on the
        // console's own form posts, and the origin check could not tell them from a forgery.
        // Same-origin only: no other site learns a console URL.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(body.into_string())
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// Whether the refresh script asked for the live part only.
pub(crate) fn live_only(req: &HttpRequest) -> bool {
    req.headers().get("x-console-live").is_some()
}

/// The logged-in console user of a request (or a redirect to the log-in page).
pub struct ConsoleUser(pub Session);

impl FromRequest for ConsoleUser {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let deps = req.app_data::<Data<Deps>>().cloned();
        let secret = req.cookie(COOKIE).map(|c| c.value().to_owned());
        let next = req
            .uri()
            .path_and_query()
            .map_or("/console/streams".to_owned(), |p| p.as_str().to_owned());
        Box::pin(async move {
            let deps = deps.ok_or_else(|| AppError::internal(anyhow::anyhow!("dependencies are not registered")))?;
            let Some(secret) = secret.filter(|s| !s.is_empty() && s.len() <= 128) else {
                return Err(ConsoleError::LogIn { next });
            };
            match console::session::lookup(&deps, &secret).await? {
                Some(session) => Ok(ConsoleUser(session)),
                None => Err(ConsoleError::LogIn { next }),
            }
        })
    }
}

/// The form fields every action carries.
#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

/// An operator's action: a live session that may act, its CSRF token, and a request that came
/// from this console (an `Origin`, when the browser sends one, naming this host).
pub(crate) fn may_act(req: &HttpRequest, user: &ConsoleUser, csrf: &str) -> Result<(), ConsoleError> {
    if !user.0.may_act() {
        return Err(AppError::forbidden("viewer_cannot_act", "a viewer reads the console and acts on nothing").into());
    }
    if !same_origin(req) || !user.0.csrf_matches(csrf) {
        return Err(AppError::forbidden(
            "csrf_failed",
            "this action did not come from this console page: reload it and try again",
        )
        .into());
    }
    Ok(())
}

fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let info = req.connection_info();
    origin == format!("{}://{}", info.scheme(), info.host())
}

async fn home(_user: ConsoleUser) -> HttpResponse {
    see_other("/console/streams")
}

async fn not_found() -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        view::error_page(404, "not_found", "no console page here"),
    )
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type.to_owned())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of this console may be where a log-in returns to.
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']))
        .unwrap_or("/console/streams")
        .to_owned()
}

async fn login_form(query: Query<Next>) -> HttpResponse {
    html(
        StatusCode::OK,
        view::login_page(&safe_next(query.next.as_deref()), None),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: secrecy::SecretString,
    next: Option<String>,
}

async fn login(req: HttpRequest, deps: Data<Deps>, form: Form<LoginForm>) -> HttpResponse {
    let next = safe_next(form.next.as_deref());
    if !same_origin(&req) {
        return html(
            StatusCode::FORBIDDEN,
            view::login_page(&next, Some("this log-in did not come from this console")),
        );
    }
    // The API's log-in limits, shared with it: per address, and failed log-ins per account.
    let account = crate::app::rate_limits::account_subject(&form.email);
    let allowed = async {
        limit(&req, &deps, Policy::LoginIp, &client_of(&req, &deps)).await?;
        ask(&req, &deps, Policy::LoginAccount, &account).await
    }
    .await;
    if let Err(e) = allowed {
        return html(e.status_code(), view::login_page(&next, Some(&e.detail)));
    }
    match console::session::login(&deps, &form.email, &form.password).await {
        Ok(login) => {
            let secure = req.connection_info().scheme() == "https";
            let cookie = Cookie::build(COOKIE, login.secret)
                .path("/console")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Strict)
                .max_age(actix_web::cookie::time::Duration::hours(
                    console::session::SESSION_HOURS,
                ))
                .finish();
            HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((header::LOCATION, next))
                .finish()
        }
        Err(e) if e.code == "console_forbidden" => {
            html(StatusCode::FORBIDDEN, view::login_page(&next, Some(&e.detail)))
        }
        Err(e) if e.status_code() == StatusCode::UNAUTHORIZED => {
            if let Err(limited) = limit(&req, &deps, Policy::LoginAccount, &account).await {
                return html(limited.status_code(), view::login_page(&next, Some(&limited.detail)));
            }
            html(
                StatusCode::UNAUTHORIZED,
                view::login_page(&next, Some("the e-mail address or password is wrong")),
            )
        }
        Err(e) => ConsoleError::App(e).error_response(),
    }
}

async fn logout(req: HttpRequest, deps: Data<Deps>, user: ConsoleUser, form: Form<Csrf>) -> Page {
    if !same_origin(&req) || !user.0.csrf_matches(&form.csrf) {
        return Err(AppError::forbidden("csrf_failed", "this log-out did not come from this console").into());
    }
    if let Some(secret) = req.cookie(COOKIE) {
        console::session::logout(&deps, secret.value()).await?;
    }
    let mut gone = Cookie::build(COOKIE, "").path("/console").finish();
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "/console/login"))
        .finish())
}

/// A path id that is not a UUID: a console page, not a problem document.
pub(crate) fn uuid(raw: &str, what: &'static str) -> Result<Uuid, ConsoleError> {
    raw.parse()
        .map_err(|_| AppError::bad_request("invalid_id", format!("{raw:?} is not a {what} id (a UUID)")).into())
}

pub(crate) type Id = Path<String>;
