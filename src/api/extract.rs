//! Request extractors whose failures are problem+json with a detail that names the field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::app::tokens::{Principal, invalid_token};
use crate::app::{AppError, Deps};
use crate::domain::user::Role;

/// Request bodies larger than this are refused before they are parsed (api.md: 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A seat plan upload's limit (an admin's `POST /halls/{id}/plans`, `PUT …/plans/{version}`):
/// 100,000 seats as JSON are about 12 MB.
pub const PLAN_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A JSON body. Unlike `actix_web::web::Json`, its errors say which field is wrong
/// (`email: invalid type: integer, expected a string`) and distinguish malformed JSON (400)
/// from well-formed JSON of the wrong shape (422). No text in it may contain U+0000, which
/// PostgreSQL cannot store (422 `description: must not contain U+0000`), so no handler has to
/// remember that rule.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json(req, payload);
        Box::pin(async move {
            let body = body.await?;
            let value = parse_json(&body)?;
            refuse_nul(&body)?;
            Ok(Json(value))
        })
    }
}

/// A JSON body whose text is only compared, never stored (the log-in's e-mail address and
/// password): U+0000 is let through, so such a log-in fails as any wrong address or password
/// does (401 `invalid_credentials`, as api.md promises for every failed log-in).
pub struct ComparedJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ComparedJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(ComparedJson) })
    }
}

/// The body's bytes, once its content type and size are acceptable.
fn read_json(req: &HttpRequest, payload: &mut Payload) -> impl Future<Output = Result<BytesMut, AppError>> + use<> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false);
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if !is_json {
            return Err(AppError::bad_request(
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        if declared_len.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(too_large(MAX_BODY_BYTES));
        }
        read_capped(&mut payload, MAX_BODY_BYTES).await
    }
}

/// The whole body, or `body_too_large` past `limit` (without reading further). The admission
/// middleware reads with it first; the extractors read what it buffered.
pub(super) async fn read_capped(payload: &mut Payload, limit: usize) -> Result<BytesMut, AppError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::bad_request("invalid_body", format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) fn too_large(limit: usize) -> AppError {
    AppError::bad_request("body_too_large", format!("the body exceeds the limit of {limit} bytes"))
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.is_empty() {
        return Err(AppError::bad_request(
            "malformed_json",
            "the body is empty; a JSON object is required",
        ));
    }
    // Syntax first, so a truncated document is a 400 even when its first element already has
    // the wrong type; then the shape, which must be an object (serde would otherwise accept an
    // array for a struct, matching fields by position).
    serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| malformed(&e))?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::validation("invalid_field", "the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                AppError::validation("invalid_field", field_detail(&path, &without_position(&inner)))
            }
            _ => malformed(&inner),
        }
    })?;
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// The refusal of text PostgreSQL cannot store. Said once, for bodies and query strings alike.
fn nul_refused(path: &str) -> AppError {
    AppError::validation("invalid_field", format!("{path}: must not contain U+0000"))
}

/// 422 naming the first string of a parsed body that contains U+0000. JSON can only spell that
/// character as the escape `\u0000` (a raw control byte is a syntax error), so a body without
/// the escape needs no second look.
pub(super) fn refuse_nul(body: &[u8]) -> Result<(), AppError> {
    const ESCAPE: &[u8] = br"\u0000";
    if !body.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    // The escape may be a literal `\\u0000` (an escaped backslash), so look at the text itself.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    match nul_path(&value, String::new()) {
        Some(path) => Err(nul_refused(&path)),
        None => Ok(()),
    }
}

/// The path (`description`, `sections[2].name`) of a string holding U+0000, in serde's spelling.
fn nul_path(value: &serde_json::Value, path: String) -> Option<String> {
    let inside = |key: &str| {
        let key = key.escape_debug().to_string();
        if path.is_empty() { key } else { format!("{path}.{key}") }
    };
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(inside(key))
            } else {
                nul_path(item, inside(key))
            }
        }),
        _ => None,
    }
}

fn malformed(err: &serde_json::Error) -> AppError {
    AppError::bad_request("malformed_json", format!("the body is not valid JSON: {err}"))
}

/// serde's message without serde_json's ` at line L column C`: once the detail names the field,
/// the position is noise (syntax errors keep it; there it is all a client has).
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// `path: reason`, the field's path first. serde reports a missing or duplicate field at the
/// enclosing object (path `.` at the top) and names the field in its message
/// (``missing field `name` ``); the field is moved into the path then:
/// `name: is required`, `sections[0].price: is required`.
fn field_detail(path: &str, message: &str) -> String {
    // An unknown field is reported with its key already on the path.
    let inside = |field: &str| {
        if path == "." {
            field.to_owned()
        } else if path == field || path.ends_with(&format!(".{field}")) {
            path.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{}: is required", inside(field));
    }
    for what in ["unknown field", "duplicate field"] {
        let named = message
            .strip_prefix(what)
            .and_then(|rest| rest.strip_prefix(" `"))
            .and_then(|rest| rest.split_once('`'));
        if let Some((field, rest)) = named {
            return format!("{}: {what}{rest}", inside(field));
        }
    }
    if path == "." {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

/// A whole number for a body field with a range (`#[serde(deserialize_with = "whole::<1, 10_000_000, _>")]`).
/// serde's own refusal of a fraction or of a number past `i64` reads `invalid type: floating
/// point 1e+20, expected i64`; this one names the range instead:
/// `amount: must be a whole number from 1 to 10000000`. A number with no fraction written as
/// one (`5.0`, which JSON Schema counts as an integer) is that integer. In-range checks stay with
/// the rule that owns them (the domain, or the use case), with their own messages.
pub fn whole<'de, const MIN: i64, const MAX: i64, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    struct Whole<const MIN: i64, const MAX: i64>;

    impl<const MIN: i64, const MAX: i64> Whole<MIN, MAX> {
        fn refuse<E: serde::de::Error>() -> E {
            E::custom(format_args!("must be a whole number from {MIN} to {MAX}"))
        }
    }

    impl<const MIN: i64, const MAX: i64> serde::de::Visitor<'_> for Whole<MIN, MAX> {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a whole number from {MIN} to {MAX}")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| Self::refuse())
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // Whole and inside i64 (whose maximum rounds up to 2^63, itself outside).
            if v.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&v) {
                #[allow(clippy::cast_possible_truncation)]
                return Ok(v as i64);
            }
            Err(Self::refuse())
        }
    }

    deserializer.deserialize_any(Whole::<MIN, MAX>)
}

/// A query string. Unlike `actix_web::web::Query`, whose errors only say "Query deserialize
/// error", a bad value is named (`page: invalid digit found in string`, 400 `invalid_query`).
pub struct Query<T>(pub T);

impl<T> std::ops::Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// The parameters, or 400 `invalid_query` naming the one that does not parse; a parameter
/// holding U+0000 is 422 `invalid_field`, as in a body (checked once the values parse, so a
/// number that does not is still the 400 api.md promises).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    let deserializer = serde_urlencoded::Deserializer::new(pairs);
    let value = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        AppError::bad_request("invalid_query", field_detail(&path, &err.into_inner().to_string()))
    })?;
    if let Some((name, _)) = pairs.into_iter().find(|(_, value)| value.contains('\0')) {
        return Err(nul_refused(&name.escape_debug().to_string()));
    }
    Ok(value)
}

/// An authenticated caller (`Authorization: Bearer <jwt>`).
pub struct AuthUser(pub Principal);

/// An authenticated caller with the admin role (403 otherwise).
pub struct AdminUser(pub Principal);

pub(super) fn bearer_principal(req: &HttpRequest) -> Result<Principal, AppError> {
    let deps = req
        .app_data::<actix_web::web::Data<Deps>>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("dependencies are not registered with the app")))?;
    let header = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        AppError::unauthorized("missing_token", "an access token is required (Authorization: Bearer …)")
    })?;
    let token = header
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, token)| token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid_token("the Authorization header must be `Bearer <token>`"))?;
    deps.tokens.verify(token)
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(bearer_principal(req).map(AuthUser))
    }
}

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(bearer_principal(req).and_then(|principal| match principal.role {
            Role::Admin => Ok(AdminUser(principal)),
            Role::User | Role::Viewer => Err(AppError::forbidden(
                "admin_required",
                "this operation requires an admin account",
            )),
        }))
    }
}

/// The `Idempotency-Key` header, if sent (400 `invalid_idempotency_key` if malformed).
pub struct IdempotencyHeader(pub Option<crate::domain::idempotency::IdempotencyKey>);

impl IdempotencyHeader {
    /// The key, or 400 `idempotency_key_required` for an endpoint that needs one.
    pub fn required(self) -> Result<crate::domain::idempotency::IdempotencyKey, AppError> {
        self.0.ok_or_else(|| {
            AppError::bad_request(
                "idempotency_key_required",
                "this request needs an Idempotency-Key header",
            )
        })
    }
}

impl FromRequest for IdempotencyHeader {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get("idempotency-key") {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| crate::domain::idempotency::IdempotencyKey::parse(v).ok())
                .map(Some)
                .ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key: must be 1 to 255 visible ASCII characters",
                    )
                }),
        };
        std::future::ready(parsed.map(IdempotencyHeader))
    }
}

/// An answer stored for idempotent replays, sent as it was.
pub fn answer(status: u16, body: serde_json::Value) -> actix_web::HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::OK);
    actix_web::HttpResponse::build(status).json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        count: u32,
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_json::<Body>(br#"{"email": 5, "count": 1}"#).unwrap_err();
        assert_eq!(err.code, "invalid_field");
        assert!(err.detail.starts_with("email:"), "{}", err.detail);
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_json::<Body>(br#"{"email": "a@b.c"}"#).unwrap_err();
        assert_eq!(err.code, "invalid_field");
        assert!(err.detail.contains("count"), "{}", err.detail);
    }

    #[test]
    fn out_of_range_numbers_are_named() {
        let err = parse_json::<Body>(br#"{"email": "a@b.c", "count": -1}"#).unwrap_err();
        assert!(err.detail.starts_with("count:"), "{}", err.detail);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        name: String,
        sections: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rows: i64,
        price: i64,
    }

    #[test]
    fn field_errors_lead_with_the_path_and_carry_no_position() {
        for (body, detail) in [
            (&br#"{"sections": []}"#[..], "name: is required"),
            (
                br#"{"name": "A", "sections": [{"rows": 1}]}"#,
                "sections[0].price: is required",
            ),
            (
                br#"{"name": "A", "sections": [{"rows": 1, "price": "x"}]}"#,
                r#"sections[0].price: invalid type: string "x", expected i64"#,
            ),
            (
                br#"{"name": "A", "sections": [], "extra": 1}"#,
                "extra: unknown field, expected `name` or `sections`",
            ),
            (
                br#"{"name": "A", "sections": [{"rows": 1, "price": 1, "seats": 2}]}"#,
                "sections[0].seats: unknown field, expected `rows` or `price`",
            ),
            (
                br#"{"name": "A", "name": "B", "sections": []}"#,
                "name: duplicate field",
            ),
        ] {
            let err = parse_json::<Nested>(body).unwrap_err();
            assert_eq!((err.code, err.detail.as_str()), ("invalid_field", detail));
        }
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let err = parse_json::<Body>(br#"{"email": "a@b.c",, "count": 1}"#).unwrap_err();
        assert_eq!(err.code, "malformed_json");
        assert!(err.detail.contains("line 1 column"), "{}", err.detail);
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Params {
        page: Option<i64>,
        mode: Option<String>,
        kind: String,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let err = parse_query::<Params>("kind=a&page=abc").unwrap_err();
        assert_eq!(
            (err.code, err.detail.as_str()),
            ("invalid_query", "page: invalid digit found in string")
        );
        let err = parse_query::<Params>("page=2").unwrap_err();
        assert_eq!((err.code, err.detail.as_str()), ("invalid_query", "kind: is required"));
        let ok = parse_query::<Params>("kind=a%20b&page=2&other=1").unwrap();
        assert_eq!((ok.kind.as_str(), ok.page, ok.mode), ("a b", Some(2), None));
    }

    #[test]
    fn text_with_nul_is_refused_naming_the_field() {
        let err = parse_json::<Nested>(br#"{"name": "a\u0000", "sections": []}"#)
            .and_then(|_| refuse_nul(br#"{"name": "a\u0000", "sections": []}"#))
            .unwrap_err();
        assert_eq!(
            (err.code, err.detail.as_str()),
            ("invalid_field", "name: must not contain U+0000")
        );
        let err = refuse_nul(br#"{"sections": [{"name": "ok"}, {"name": "\u0000"}]}"#).unwrap_err();
        assert_eq!(err.detail, "sections[1].name: must not contain U+0000");
        // An escaped backslash followed by `u0000` is text, not the character.
        assert!(refuse_nul(br#"{"name": "\\u0000"}"#).is_ok());
        let err = parse_query::<Params>("kind=a%00b").unwrap_err();
        assert_eq!(
            (err.code, err.detail.as_str()),
            ("invalid_field", "kind: must not contain U+0000")
        );
        // A number that does not parse is still the query's 400.
        assert_eq!(
            parse_query::<Params>("kind=a&page=%00").unwrap_err().code,
            "invalid_query"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Amount {
        #[serde(deserialize_with = "whole::<1, 10_000_000, _>")]
        amount: i64,
    }

    #[test]
    fn whole_numbers_name_their_range() {
        for body in [
            &br#"{"amount": 1e20}"#[..],
            br#"{"amount": 100000000000000000000}"#,
            br#"{"amount": 1.5}"#,
        ] {
            let err = parse_json::<Amount>(body).unwrap_err();
            assert_eq!(
                (err.code, err.detail.as_str()),
                ("invalid_field", "amount: must be a whole number from 1 to 10000000"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let err = parse_json::<Amount>(br#"{"amount": "5"}"#).unwrap_err();
        assert_eq!(
            err.detail,
            r#"amount: invalid type: string "5", expected a whole number from 1 to 10000000"#
        );
        // In i64, the value is the use case's to judge (with its own message); 5.0 is 5.
        assert_eq!(parse_json::<Amount>(br#"{"amount": 5.0}"#).unwrap().amount, 5);
        assert_eq!(parse_json::<Amount>(br#"{"amount": -3}"#).unwrap().amount, -3);
    }

    #[test]
    fn only_objects_are_accepted() {
        let err = parse_json::<Body>(br#"["a@b.c", 1]"#).unwrap_err();
        assert_eq!(
            (err.code, err.detail.as_str()),
            ("invalid_field", "the body must be a JSON object")
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        for body in [
            &b"{"[..],
            b"not json",
            b"",
            b"[1, 2",
            br#"{"email": "a@b.c", "count": 1} trailing"#,
        ] {
            let err = parse_json::<Body>(body).unwrap_err();
            assert_eq!(err.code, "malformed_json", "{:?}", String::from_utf8_lossy(body));
        }
    }
}
