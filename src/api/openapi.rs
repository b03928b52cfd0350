//! The OpenAPI document served at `/openapi.json`: generated from the handlers' annotations,
//! then completed here with what every operation of a kind answers (the errors its extractors,
//! the middleware and the rate limits can send, as problem+json, with their headers), the links
//! from what an operation creates to what reads or ends it, and this deployment's limits.
//!
//! The annotations say what is particular to an operation (its body, its success, the errors of
//! its use case); [`contract`] derives the rest from the operation's own shape, so a new
//! endpoint gets them by being declared, and the two cannot drift apart.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::PROBLEM_JSON;
use super::{auth, catalog, error, operational, reservations, waiting_room, wallet};
use crate::app::Deps;
use crate::config::BookingSettings;

/// The OpenAPI document, generated from the handlers' annotations. A test calls every
/// operation it lists against the running server, so the two cannot drift apart.
#[derive(OpenApi)]
#[openapi(
    info(title = "ImTicket", description = "Concert-ticketing backend (REST contract v1)."),
    paths(
        super::auth::signup, auth::login, auth::me,
        catalog::create_concert, catalog::list_concerts, catalog::concert, catalog::create_schedule,
        catalog::create_seats, catalog::job, catalog::seats,
        waiting_room::join, waiting_room::status, waiting_room::leave,
        super::queue_events::events, super::queue_events::token, super::queue_admin::pause, super::queue_admin::resume,
        reservations::hold, reservations::get, reservations::cancel, reservations::pay, reservations::mine,
        wallet::balance, wallet::charge,
        super::reports::concert, super::reports::settlement,
        super::webhooks::create, super::webhooks::list, super::webhooks::get, super::webhooks::delete,
        super::webhooks::rotate, super::webhooks::deliveries,
        super::notifications::get, super::notifications::put,
        super::venues::create_venue, super::venues::list_venues, super::venues::venue, super::venues::update_venue,
        super::venues::delete_venue, super::venues::create_hall, super::venues::hall, super::venues::rename_hall,
        super::venues::delete_hall, super::venues::import_plan, super::venues::plans, super::venues::plan,
        super::venues::replace_plan, super::venues::delete_plan, super::venues::plan_svg, super::venues::schedule_svg,
        operational::live, operational::ready, operational::metrics, openapi
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth, &DeclaredLicenseOnly),
    tags((name = "auth"), (name = "catalog"), (name = "waiting room"), (name = "reservations"), (name = "wallet"), (name = "reports"), (name = "webhooks"), (name = "notifications"), (name = "venues"), (name = "operational"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// utoipa fills `info.license` from `CARGO_PKG_LICENSE`, which Cargo sets to "" when
/// Cargo.toml declares no license (ours does not); a license object with an empty name makes
/// the document invalid, so it is left out then.
struct DeclaredLicenseOnly;

impl Modify for DeclaredLicenseOnly {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if openapi.info.license.as_ref().is_some_and(|l| l.name.trim().is_empty()) {
            openapi.info.license = None;
        }
    }
}

/// The document this deployment serves.
pub fn document(booking: &BookingSettings) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    contract(&mut doc);
    links(&mut doc);
    // A hold names 1 to IMTICKET_MAX_SEATS_PER_RESERVATION distinct seats (422 otherwise).
    if let Some(seat_ids) = doc.pointer_mut("/components/schemas/NewReservation/properties/seat_ids") {
        seat_ids["minItems"] = json!(1);
        seat_ids["maxItems"] = json!(booking.max_seats_per_reservation);
        seat_ids["uniqueItems"] = json!(true);
    }
    // A fan mutes each notice at most once (422 otherwise); utoipa has no attribute for it.
    if let Some(muted) = doc.pointer_mut("/components/schemas/NotificationPreferences/properties/muted") {
        muted["uniqueItems"] = json!(true);
    }
    doc
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operational",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi(deps: Data<Deps>) -> HttpResponse {
    HttpResponse::Ok().json(document(&deps.config.booking))
}

/// What an operation's shape says about the answers it can get.
struct Shape {
    /// Under `/api/v1`: the per-IP rate limit (`ip_all`) counts it.
    api: bool,
    /// Waits for a turn, so it can be shed with 503 `overloaded` (all but `/health/*`, `/metrics`).
    sheddable: bool,
    body: bool,
    path_params: bool,
    query: bool,
    bearer: bool,
    queue_token: bool,
    /// `Some(required)` when it takes `Idempotency-Key`.
    idempotency: Option<bool>,
}

impl Shape {
    fn of(path: &str, op: &Value) -> Self {
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        };
        let located = |place: &str| params.iter().any(|p| p["in"] == place);
        Shape {
            api: path.starts_with("/api/v1/"),
            sheddable: !(path.starts_with("/health/") || path == "/metrics"),
            body: op.get("requestBody").is_some(),
            path_params: located("path"),
            query: located("query"),
            bearer: op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some())),
            queue_token: param("X-Queue-Token").is_some(),
            idempotency: param("Idempotency-Key").map(|p| p["required"] == true),
        }
    }

    /// The answers every operation of this shape can get: (status, description).
    fn standard_errors(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        if self.body {
            bad.push("`malformed_json`, `unsupported_media_type`, `body_too_large`, `invalid_body`: the body");
        }
        if self.path_params {
            bad.push("`invalid_path`: a path segment that does not parse");
        }
        if self.query {
            bad.push("`invalid_query`: a query parameter that does not parse");
        }
        match self.idempotency {
            Some(true) => bad.push("`invalid_idempotency_key`, `idempotency_key_required`: the `Idempotency-Key`"),
            Some(false) => bad.push("`invalid_idempotency_key`: a malformed `Idempotency-Key`"),
            None => {}
        }
        if !bad.is_empty() {
            out.push(("400", bad.join("; ")));
        }
        let mut unauthorized = Vec::new();
        if self.bearer {
            unauthorized.push("`missing_token`, `invalid_token`: the access token");
        }
        if self.queue_token {
            unauthorized.push("`missing_queue_token`, `invalid_queue_token`: the `X-Queue-Token`");
        }
        if !unauthorized.is_empty() {
            out.push(("401", unauthorized.join("; ")));
        }
        if self.path_params {
            out.push(("404", "no such resource".to_owned()));
        }
        if self.body {
            out.push((
                "408",
                "`request_timeout`: the body did not arrive in time; the connection is closed".to_owned(),
            ));
        }
        if self.body || self.query {
            out.push((
                "422",
                "`invalid_field`: well-formed input that breaks a rule; the detail names the field".to_owned(),
            ));
        }
        if self.api {
            out.push(("429", "`rate_limited`: a rate limit; `policy` names it".to_owned()));
        }
        if self.sheddable {
            let mut unavailable = "`overloaded` (`Retry-After: 1`): no turn came in time; nothing was done".to_owned();
            if self.api {
                unavailable.push_str(
                    "; `database_unavailable`, `dependency_unavailable` (`Retry-After: 5`): PostgreSQL or Redis \
                     unavailable; nothing was done",
                );
            }
            out.push(("503", unavailable));
        }
        out
    }
}

fn problem_content() -> Value {
    json!({ PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } })
}

fn header(description: &str, schema: Value, required: bool) -> Value {
    let mut header = json!({ "description": description, "schema": schema });
    if required {
        header["required"] = json!(true);
    }
    header
}

/// Completes every operation with the answers its shape implies (see [`Shape`]): errors as
/// problem+json with the `Problem` schema, `Retry-After` on 429 and 503, `WWW-Authenticate`
/// on 401, and the rate-limit headers on every answer of a rate-limited route.
fn contract(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            let shape = Shape::of(path, op);
            let responses = op["responses"].as_object_mut().map(std::mem::take).unwrap_or_default();
            op["responses"] = Value::Object(complete(responses, &shape));
        }
    }
}

fn complete(mut responses: Map<String, Value>, shape: &Shape) -> Map<String, Value> {
    for (status, description) in shape.standard_errors() {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let code: u16 = status.parse().unwrap_or(0);
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if code >= 400 {
            response.insert("content".into(), problem_content());
        }
        let mut headers = match response.remove("headers") {
            Some(Value::Object(headers)) => headers,
            _ => Map::new(),
        };
        if code == 401 {
            headers.insert(
                "WWW-Authenticate".into(),
                header(
                    "`Bearer`, or `Bearer error=\"invalid_token\"`",
                    json!({"type": "string"}),
                    true,
                ),
            );
        }
        if code == 429 || code == 503 {
            headers.insert(
                "Retry-After".into(),
                header(
                    "seconds to wait before trying again",
                    json!({"type": "integer", "minimum": 0}),
                    true,
                ),
            );
        }
        if shape.api {
            headers.insert(
                "RateLimit-Policy".into(),
                header(
                    "the policies that decided this request: `\"user_writes\";q=10;w=2, …` (quota, window in \
                     seconds); absent while rate limits are off",
                    json!({"type": "string"}),
                    false,
                ),
            );
            headers.insert(
                "RateLimit".into(),
                header(
                    "per policy, requests left and seconds until the quota is whole: `\"user_writes\";r=9;t=1, …`",
                    json!({"type": "string"}),
                    false,
                ),
            );
        }
        if !headers.is_empty() {
            response.insert("headers".into(), Value::Object(headers));
        }
    }
    responses
}

/// OpenAPI links: from what an operation creates to the operations that read, extend or end
/// it, so a client (and a stateful fuzzer) can follow them.
fn links(doc: &mut Value) {
    let id = json!({"path.id": "$response.body#/id"});
    let token = json!({"header.X-Queue-Token": "$response.body#/queue_token"});
    let log_in = json!({"email": "$request.body#/email", "password": "$request.body#/password"});
    let mut link = |from: &str, status: &str, name: &str, operation_id: &str, parameters: &Value| {
        let (method, path) = from.split_once(' ').unwrap_or(("", from));
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        );
        let Some(response) = doc.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            return;
        };
        let mut link = json!({ "operationId": operation_id });
        if parameters.get("requestBody").is_some() {
            link["requestBody"] = parameters["requestBody"].clone();
        } else {
            link["parameters"] = parameters.clone();
        }
        let links = response.entry("links").or_insert_with(|| json!({}));
        links[name] = link;
    };
    link(
        "post /api/v1/auth/signup",
        "201",
        "LogIn",
        "login",
        &json!({"requestBody": log_in}),
    );
    link("post /api/v1/concerts", "201", "GetConcert", "concert", &id);
    link("post /api/v1/concerts", "201", "AddSchedule", "create_schedule", &id);
    link("post /api/v1/concerts", "201", "JoinQueue", "join", &id);
    let schedules = "post /api/v1/concerts/{id}/schedules";
    link(schedules, "201", "CreateSeats", "create_seats", &id);
    link(schedules, "201", "GetSeats", "seats", &id);
    link(
        schedules,
        "201",
        "GetConcert",
        "concert",
        &json!({"path.id": "$response.body#/concert_id"}),
    );
    let seats = "post /api/v1/schedules/{id}/seats";
    link(
        seats,
        "202",
        "GetJob",
        "job",
        &json!({"path.id": "$response.body#/job_id"}),
    );
    link(
        seats,
        "202",
        "GetSeats",
        "seats",
        &json!({"path.id": "$request.path.id"}),
    );
    link(
        "post /api/v1/concerts/{id}/queue",
        "200",
        "QueueStatus",
        "status",
        &token,
    );
    link("post /api/v1/concerts/{id}/queue", "200", "LeaveQueue", "leave", &token);
    link("post /api/v1/reservations", "201", "GetReservation", "get", &id);
    link("post /api/v1/reservations", "201", "CancelReservation", "cancel", &id);
    link("post /api/v1/reservations", "201", "PayReservation", "pay", &id);
    let paid = json!({"path.id": "$response.body#/reservation_id"});
    link(
        "post /api/v1/reservations/{id}/payments",
        "201",
        "GetReservation",
        "get",
        &paid,
    );
}
