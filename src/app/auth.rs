//! Sign-up, log-in, the current user, and the bootstrap admin account.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::Deps;
use super::error::{AppError, OnConstraint};
use super::tokens::{IssuedToken, Principal};
use crate::domain::user::{Email, Password, Role, UserName};
use crate::infra::postgres::users::{self, NewUser, UserRow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl TryFrom<UserRow> for User {
    type Error = AppError;

    fn try_from(row: UserRow) -> Result<Self, AppError> {
        let role = row
            .role
            .parse::<Role>()
            .map_err(|e| AppError::internal(anyhow::Error::new(e).context("stored user role")))?;
        Ok(User {
            id: row.id,
            email: row.email,
            name: row.name,
            role,
        })
    }
}

pub struct Signup {
    pub email: String,
    pub password: SecretString,
    pub name: String,
}

#[tracing::instrument(name = "sign up", skip_all)]
pub async fn signup(deps: &Deps, input: Signup) -> Result<User, AppError> {
    let email = Email::parse(&input.email)?;
    let password = Password::parse(input.password)?;
    let name = UserName::parse(&input.name)?;
    create_user(deps, &email, &password, &name, Role::User).await
}

async fn create_user(
    deps: &Deps,
    email: &Email,
    password: &Password,
    name: &UserName,
    role: Role,
) -> Result<User, AppError> {
    let password_hash = deps.hasher.hash(password.expose()).await?;
    let id = Uuid::now_v7();
    let mut tx = deps.db.begin().await.context("begin sign-up")?;
    let new_user = NewUser {
        id,
        email: email.as_str(),
        name: name.as_str(),
        role: role.as_str(),
        password_hash: &password_hash,
    };
    users::insert_with_wallet(&mut tx, &new_user)
        .await
        .on_constraint("users_email_key", || {
            AppError::conflict("email_taken", "an account with this e-mail address already exists")
        })?;
    tx.commit().await.context("commit sign-up")?;
    tracing::info!(user_id = %id, role = role.as_str(), "account created");
    Ok(User {
        id,
        email: email.to_string(),
        name: name.as_str().to_owned(),
        role,
    })
}

#[tracing::instrument(name = "log in", skip_all)]
pub async fn login(deps: &Deps, email: &str, password: &SecretString) -> Result<IssuedToken, AppError> {
    let user = authenticate(deps, email, password).await?;
    deps.tokens.issue(user.id, user.role)
}

/// The account of an e-mail address and password (401 `invalid_credentials` otherwise): the
/// check behind the API's log-in and the console's.
pub async fn authenticate(deps: &Deps, email: &str, password: &SecretString) -> Result<User, AppError> {
    let invalid = || AppError::unauthorized("invalid_credentials", "the e-mail address or password is wrong");
    // A malformed address cannot belong to an account; it still costs one hash verification,
    // so the response time does not tell which addresses are well-formed accounts.
    let row = match Email::parse(email) {
        Ok(email) => {
            let mut conn = deps.db.read().await.context("acquire connection for log-in")?;
            users::find_by_email(&mut conn, email.as_str()).await?
        }
        Err(_) => None,
    };
    let matches = deps
        .hasher
        .verify(password.expose_secret(), row.as_ref().map(|r| r.password_hash.as_str()))
        .await?;
    match row {
        Some(row) if matches => {
            let user = User::try_from(row)?;
            tracing::info!(user_id = %user.id, "logged in");
            Ok(user)
        }
        _ => Err(invalid()),
    }
}

/// The caller's account. A valid token for an account that no longer exists is a 401.
pub async fn current_user(deps: &Deps, principal: Principal) -> Result<User, AppError> {
    let mut conn = deps.db.read().await.context("acquire connection")?;
    let row = users::find_by_id(&mut conn, principal.user_id).await?;
    row.map(User::try_from)
        .transpose()?
        .ok_or_else(|| super::tokens::invalid_token("the account of this token no longer exists"))
}

/// Creates the admin account named by `IMTICKET_BOOTSTRAP_ADMIN_EMAIL` and `…_PASSWORD`, or
/// promotes an existing account with that address to admin. An existing account's password
/// is left alone: the variable seeds a new deployment, it does not reset passwords. Safe when
/// several API instances start at once.
#[tracing::instrument(name = "bootstrap admin", skip_all)]
pub async fn bootstrap_admin(deps: &Deps) -> anyhow::Result<()> {
    let Some(admin) = &deps.config.auth.bootstrap_admin else {
        return Ok(());
    };
    let email = Email::parse(&admin.email).context("IMTICKET_BOOTSTRAP_ADMIN_EMAIL")?;
    let password = Password::parse(admin.password.clone()).context("IMTICKET_BOOTSTRAP_ADMIN_PASSWORD")?;
    let name = UserName::parse("Administrator")?;
    match create_user(deps, &email, &password, &name, Role::Admin).await {
        Ok(_) => Ok(()),
        Err(err) if err.code == "email_taken" => {
            let mut conn = deps.db.write().await.context("acquire connection")?;
            let row = users::find_by_email(&mut conn, email.as_str())
                .await?
                .context("bootstrap admin vanished")?;
            if users::promote_to_admin(&mut conn, row.id).await? {
                tracing::info!(user_id = %row.id, "existing account promoted to admin");
            }
            conn.commit().await.context("commit admin promotion")?;
            Ok(())
        }
        Err(err) => Err(anyhow::anyhow!("create bootstrap admin: {err}")),
    }
}
