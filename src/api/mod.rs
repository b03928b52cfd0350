//! The HTTP interface: routes, DTOs, extractors and the mapping of errors to problem+json.
//! The only layer that knows actix-web.

pub mod auth;
pub mod catalog;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod operational;

use actix_web::web::{self, Data, ServiceConfig};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::app::Deps;

/// The OpenAPI document, generated from the handlers' annotations. A test calls every
/// operation it lists against the running server, so the two cannot drift apart.
#[derive(OpenApi)]
#[openapi(
    info(title = "ImTicket", description = "Concert-ticketing backend (REST contract v1)."),
    paths(
        auth::signup, auth::login, auth::me,
        catalog::create_concert, catalog::list_concerts, catalog::concert, catalog::create_schedule,
        catalog::create_seats, catalog::job, catalog::seats,
        operational::live, operational::ready, operational::metrics, operational::openapi
    ),
    components(schemas(error::Problem)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "catalog"), (name = "operational"))
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

/// A resource whose unsupported methods answer 405 problem+json.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(error::method_not_allowed))
}

/// Registers every route and the extractor configuration on an actix `App`.
pub fn configure(deps: Deps) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(Data::new(deps))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .service(
                web::scope("/api/v1")
                    .service(resource("/auth/signup").route(web::post().to(auth::signup)))
                    .service(resource("/auth/login").route(web::post().to(auth::login)))
                    .service(resource("/users/me").route(web::get().to(auth::me)))
                    .service(
                        resource("/concerts")
                            .route(web::get().to(catalog::list_concerts))
                            .route(web::post().to(catalog::create_concert)),
                    )
                    .service(resource("/concerts/{id}").route(web::get().to(catalog::concert)))
                    .service(resource("/concerts/{id}/schedules").route(web::post().to(catalog::create_schedule)))
                    .service(
                        resource("/schedules/{id}/seats")
                            .route(web::get().to(catalog::seats))
                            .route(web::post().to(catalog::create_seats)),
                    )
                    .service(resource("/jobs/{id}").route(web::get().to(catalog::job))),
            )
            .service(resource("/health/live").route(web::get().to(operational::live)))
            .service(resource("/health/ready").route(web::get().to(operational::ready)))
            .service(resource("/metrics").route(web::get().to(operational::metrics)))
            .service(resource("/openapi.json").route(web::get().to(operational::openapi)));
    }
}
