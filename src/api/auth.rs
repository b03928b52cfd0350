//! `/api/v1/auth/*` and `/api/v1/users/me`.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::web::Data;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::Problem;
use super::extract::{AuthUser, ComparedJson, Json};
use super::rate_limits::{ask, client_of, limit};
use super::schemas;
use crate::app::auth::{self, Signup, User};
use crate::app::rate_limits::account_subject;
use crate::app::{AppError, Deps};
use crate::domain::rate_limit::Policy;
use crate::domain::user::Role;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(schema_with = schemas::email)]
    email: String,
    #[schema(schema_with = schemas::password)]
    password: SecretString,
    #[schema(schema_with = schemas::user_name, example = "Ada")]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    id: Uuid,
    email: String,
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String)]
    password: SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    id: Uuid,
    email: String,
    name: String,
    role: Role,
}

impl From<User> for MeResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role,
        }
    }
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, body = SignupResponse),
        (status = 409, description = "`email_taken`", body = Problem),
        (status = 422, description = "`invalid_field`: a rule of the body (the detail names the field)", body = Problem),
    ))]
pub async fn signup(
    req: HttpRequest,
    deps: Data<Deps>,
    Json(body): Json<SignupRequest>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::SignupIp, &client_of(&req, &deps)).await?;
    let user = auth::signup(
        &deps,
        Signup {
            email: body.email,
            password: body.password,
            name: body.name,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(SignupResponse {
        id: user.id,
        email: user.email,
        name: user.name,
    }))
}

/// Exchange e-mail and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "`invalid_credentials`: a wrong, unknown or malformed e-mail address or password", body = Problem),
    ))]
pub async fn login(
    req: HttpRequest,
    deps: Data<Deps>,
    ComparedJson(body): ComparedJson<LoginRequest>,
) -> Result<HttpResponse, AppError> {
    limit(&req, &deps, Policy::LoginIp, &client_of(&req, &deps)).await?;
    // Brute force on one account: refused at its limit before the password is looked at,
    // whoever is asking; only failures count.
    let account = account_subject(&body.email);
    ask(&req, &deps, Policy::LoginAccount, &account).await?;
    let token = match auth::login(&deps, &body.email, &body.password).await {
        Err(err) if err.code == "invalid_credentials" => {
            limit(&req, &deps, Policy::LoginAccount, &account).await?;
            return Err(err);
        }
        other => other?,
    };
    Ok(HttpResponse::Ok().json(LoginResponse {
        access_token: token.access_token,
        token_type: "Bearer",
        expires_in: token.expires_in,
    }))
}

/// The caller's account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = MeResponse),
    ))]
pub async fn me(deps: Data<Deps>, AuthUser(principal): AuthUser) -> Result<HttpResponse, AppError> {
    let user = auth::current_user(&deps, principal).await?;
    Ok(HttpResponse::Ok().json(MeResponse::from(user)))
}
