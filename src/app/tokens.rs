//! Access tokens: HS256 JWTs with the algorithm pinned and `exp`, `iat`, `sub`, `role` checked.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AppError;
use crate::domain::user::Role;

const ISSUER: &str = "imticket";
/// Clock skew tolerated between API instances, for `exp` and `iat`.
const LEEWAY_SECS: u64 = 30;

/// Who is calling: the verified subject of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    role: Role,
    iat: i64,
    exp: i64,
    iss: String,
}

pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
}

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenService {
    pub fn new(secret: &SecretString, ttl: Duration) -> Self {
        let key = secret.expose_secret().as_bytes();
        // Only HS256 is accepted: a token that names another algorithm (including `none`)
        // is rejected before its signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> Result<IssuedToken, AppError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id,
            role,
            iat: now,
            exp: now + ttl as i64,
            iss: ISSUER.to_owned(),
        };
        let access_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(anyhow::Error::new(e).context("sign access token")))?;
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
        })
    }

    /// Verifies signature, algorithm, issuer, expiry and issue time. Every failure is the same
    /// 401 to the client; the reason is not echoed (and the token itself is never logged).
    pub fn verify(&self, token: &str) -> Result<Principal, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid_token("the access token is invalid or expired"))?;
        let now = chrono::Utc::now().timestamp();
        if data.claims.iat > now + LEEWAY_SECS as i64 {
            return Err(invalid_token("the access token is not valid yet"));
        }
        Ok(Principal {
            user_id: data.claims.sub,
            role: data.claims.role,
        })
    }
}

pub fn invalid_token(detail: &str) -> AppError {
    AppError::unauthorized("invalid_token", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(secret: &str, ttl: u64) -> TokenService {
        TokenService::new(&SecretString::from(secret.to_owned()), Duration::from_secs(ttl))
    }

    #[test]
    fn issued_tokens_verify() {
        let tokens = service(&"k".repeat(32), 60);
        let id = Uuid::now_v7();
        let issued = tokens.issue(id, Role::Admin).unwrap();
        assert_eq!(issued.expires_in, 60);
        assert_eq!(
            tokens.verify(&issued.access_token).unwrap(),
            Principal {
                user_id: id,
                role: Role::Admin
            }
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let issued = service(&"a".repeat(32), 60).issue(Uuid::now_v7(), Role::User).unwrap();
        assert!(service(&"b".repeat(32), 60).verify(&issued.access_token).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        let tokens = service(&"k".repeat(32), 60);
        for bad in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
            assert!(tokens.verify(bad).is_err(), "{bad:?}");
        }
    }
}
