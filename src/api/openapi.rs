//! The OpenAPI document served at `/openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, catalog, error, operational, reservations, waiting_room, wallet};

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
        reservations::hold, reservations::get, reservations::cancel, reservations::pay, reservations::mine,
        wallet::balance, wallet::charge,
        operational::live, operational::ready, operational::metrics, openapi
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth, &DeclaredLicenseOnly),
    tags((name = "auth"), (name = "catalog"), (name = "waiting room"), (name = "reservations"), (name = "wallet"), (name = "operational"))
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

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operational",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
