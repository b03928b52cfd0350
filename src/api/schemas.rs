//! OpenAPI schemas of the domain's enums, written here so `domain` stays free of the HTTP
//! document's crate: each lists exactly the values the server sends.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema};

use crate::domain::queue::QueueStatus;
use crate::domain::reservation::ReservationStatus;

fn text_enum(values: impl IntoIterator<Item = &'static str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(schema::SchemaType::Type(Type::String))
        .enum_values(Some(values))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for ReservationStatus {
    fn schema() -> RefOr<Schema> {
        text_enum(
            ReservationStatus::ALL.map(ReservationStatus::as_str),
            "held → paid → confirmed; a hold can also end expired or cancelled",
        )
    }
}

impl utoipa::ToSchema for ReservationStatus {}

impl utoipa::PartialSchema for QueueStatus {
    fn schema() -> RefOr<Schema> {
        text_enum(
            QueueStatus::ALL.map(QueueStatus::as_str),
            "pre_queue before the sale opens; waiting (or sold_out) in line; active when admitted; \
             expired when the slot's time ran out or the entry left; done when a payment released the slot",
        )
    }
}

impl utoipa::ToSchema for QueueStatus {}
