//! `/api/v1/admin/reports…`: sales statistics per concert and settlement per day (admin), as
//! JSON or, with `?format=csv`, as CSV.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AdminUser, Query};
use super::schemas;
use crate::app::statistics::{self, ConcertReport, Settlement, concert_csv, day, settlement_csv};
use crate::app::{AppError, Deps};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `json` (default) or `csv`. Anything else: 422.
    #[param(schema_with = schemas::report_format)]
    pub format: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    /// First UTC day, `YYYY-MM-DD`.
    #[param(format = Date, example = "2026-12-01")]
    pub from: String,
    /// Last UTC day (included), `YYYY-MM-DD`; at most 366 days after `from`.
    #[param(format = Date, example = "2026-12-31")]
    pub to: String,
    /// `json` (default) or `csv`. Anything else: 422.
    #[param(schema_with = schemas::report_format)]
    pub format: Option<String>,
}

fn wants_csv(format: Option<&str>) -> Result<bool, AppError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(AppError::validation(
            "invalid_field",
            format!("format: must be json or csv, got {other:?}"),
        )),
    }
}

fn csv(body: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(body)
}

/// A concert's sales (admin): per schedule seats sold, held now and available, revenue, holds
/// placed, confirmed and expired; the funnel of its fans (joined → admitted → held → paid)
/// and refused payments by code.
#[utoipa::path(get, path = "/api/v1/admin/reports/concerts/{id}", tag = "reports", params(("id" = Uuid, Path), FormatQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "JSON; with `format=csv`, `text/csv`: one line per schedule",
            content((ConcertReport = "application/json"), (String = "text/csv"))),
        (status = 403, description = "`admin_required`", body = Problem),
        (status = 404, description = "`concert_not_found`", body = Problem),
        (status = 422, description = "`invalid_field`: `format`", body = Problem)))]
pub async fn concert(
    deps: Data<Deps>,
    _: AdminUser,
    id: Path<Uuid>,
    query: Query<FormatQuery>,
) -> Result<HttpResponse, AppError> {
    let as_csv = wants_csv(query.format.as_deref())?;
    let report = statistics::concert_report(&deps.db, *id).await?;
    Ok(if as_csv {
        csv(concert_csv(&report))
    } else {
        HttpResponse::Ok().json(report)
    })
}

/// Points charged per UTC day and concert, from the ledger's own rows (admin).
#[utoipa::path(get, path = "/api/v1/admin/reports/settlement", tag = "reports", params(SettlementQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "JSON; with `format=csv`, `text/csv`: one line per day and concert",
            content((Settlement = "application/json"), (String = "text/csv"))),
        (status = 403, description = "`admin_required`", body = Problem),
        (status = 422, description = "`invalid_field`: `from`, `to` (not a date, before `from`, more than 366 days) or `format`", body = Problem)))]
pub async fn settlement(
    deps: Data<Deps>,
    _: AdminUser,
    query: Query<SettlementQuery>,
) -> Result<HttpResponse, AppError> {
    let as_csv = wants_csv(query.format.as_deref())?;
    let (from, to) = (day("from", &query.from)?, day("to", &query.to)?);
    let settlement = statistics::settlement(&deps.db, from, to).await?;
    Ok(if as_csv {
        csv(settlement_csv(&settlement))
    } else {
        HttpResponse::Ok().json(settlement)
    })
}
