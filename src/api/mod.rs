//! The HTTP interface: routes, DTOs, extractors and the mapping of errors to problem+json.
//! The only layer that knows actix-web.

pub mod admission;
pub mod auth;
pub mod catalog;
pub mod console;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod notifications;
pub mod openapi;
pub mod operational;
pub mod queue_admin;
pub mod queue_events;
pub mod rate_limits;
pub mod reports;
pub mod reservations;
mod schemas;
pub mod venues;
pub mod waiting_room;
pub mod wallet;
pub mod webhooks;

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::Method;
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{FromRequest, Handler, Responder};

use crate::app::Deps;

/// A resource built method by method, so that its 405 for any other method lists exactly the
/// methods it serves in `Allow` (RFC 9110 §15.5.6), with no second list that could drift.
struct Endpoint {
    resource: actix_web::Resource,
    allow: Vec<Method>,
}

fn resource(path: &str) -> Endpoint {
    Endpoint {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

impl Endpoint {
    fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PUT, handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }

    fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.allow.push(method);
        self
    }
}

impl HttpServiceFactory for Endpoint {
    fn register(self, config: &mut AppService) {
        let allow = self.allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        self.resource
            .default_service(web::to(move || error::method_not_allowed(allow.clone())))
            .register(config);
    }
}

/// Registers every route and the extractor configuration on an actix `App`.
pub fn configure(deps: Deps) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(Data::new(deps))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .service(
                web::scope("/api/v1")
                    .service(resource("/auth/signup").post(auth::signup))
                    .service(resource("/auth/login").post(auth::login))
                    .service(resource("/users/me").get(auth::me))
                    .service(
                        resource("/concerts")
                            .get(catalog::list_concerts)
                            .post(catalog::create_concert),
                    )
                    .service(resource("/concerts/{id}").get(catalog::concert))
                    .service(resource("/concerts/{id}/schedules").post(catalog::create_schedule))
                    .service(
                        resource("/schedules/{id}/seats")
                            .get(catalog::seats)
                            .post(catalog::create_seats),
                    )
                    .service(resource("/schedules/{id}/seats.svg").get(venues::schedule_svg))
                    .service(resource("/jobs/{id}").get(catalog::job))
                    .service(resource("/venues").get(venues::list_venues).post(venues::create_venue))
                    .service(
                        resource("/venues/{id}")
                            .get(venues::venue)
                            .put(venues::update_venue)
                            .delete(venues::delete_venue),
                    )
                    .service(resource("/venues/{id}/halls").post(venues::create_hall))
                    .service(
                        resource("/halls/{id}")
                            .get(venues::hall)
                            .put(venues::rename_hall)
                            .delete(venues::delete_hall),
                    )
                    .service(
                        resource("/halls/{id}/plans")
                            .get(venues::plans)
                            .post(venues::import_plan),
                    )
                    .service(resource("/halls/{id}/plans/{version:\\d+}.svg").get(venues::plan_svg))
                    .service(
                        resource("/halls/{id}/plans/{version}")
                            .get(venues::plan)
                            .put(venues::replace_plan)
                            .delete(venues::delete_plan),
                    )
                    .service(resource("/concerts/{id}/queue").post(waiting_room::join))
                    .service(resource("/queue/status").get(waiting_room::status))
                    .service(resource("/queue").delete(waiting_room::leave))
                    .service(resource("/queue/events").get(queue_events::events))
                    .service(resource("/queue/events/token").post(queue_events::token))
                    .service(resource("/reservations").post(reservations::hold))
                    .service(
                        resource("/reservations/{id}")
                            .get(reservations::get)
                            .delete(reservations::cancel),
                    )
                    .service(resource("/reservations/{id}/payments").post(reservations::pay))
                    .service(resource("/users/me/reservations").get(reservations::mine))
                    .service(resource("/users/me/points").get(wallet::balance))
                    .service(
                        resource("/users/me/notifications")
                            .get(notifications::get)
                            .put(notifications::put),
                    )
                    .service(resource("/users/me/points/charge").post(wallet::charge))
                    .service(resource("/admin/concerts/{id}/queue/pause").post(queue_admin::pause))
                    .service(resource("/admin/concerts/{id}/queue/resume").post(queue_admin::resume))
                    .service(resource("/admin/reports/concerts/{id}").get(reports::concert))
                    .service(resource("/admin/reports/settlement").get(reports::settlement))
                    .service(resource("/admin/webhooks").post(webhooks::create).get(webhooks::list))
                    .service(
                        resource("/admin/webhooks/{id}")
                            .get(webhooks::get)
                            .delete(webhooks::delete),
                    )
                    .service(resource("/admin/webhooks/{id}/rotate-secret").post(webhooks::rotate))
                    .service(resource("/admin/webhooks/{id}/deliveries").get(webhooks::deliveries)),
            )
            .configure(console::configure)
            .service(resource("/health/live").get(operational::live))
            .service(resource("/health/ready").get(operational::ready))
            .service(resource("/metrics").get(operational::metrics))
            .service(resource("/openapi.json").get(openapi::openapi));
    }
}
