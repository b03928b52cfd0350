//! Access tokens: HS256 JWTs with the algorithm pinned and `exp`, `iat`, `sub`, `role` checked
//! (and `nbf`, when a token carries one).
//! Queue tokens (the waiting room's): the same key, their own audience `queue`. An access token
//! carries no audience, and a token with an audience is refused as an access token, so neither
//! kind can pass as the other.

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

/// Lifetime of a queue token: a line can be long, and the entry's state (waiting, active,
/// expired) lives in Redis and is checked on every use; the token only names the entry.
pub const QUEUE_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
const QUEUE_AUDIENCE: &str = "queue";
/// Lifetime of a queue-events token (`?token=` of `GET /queue/events`): it is in a URL, so it
/// lives only long enough to open the stream.
pub const QUEUE_EVENTS_TOKEN_TTL: Duration = Duration::from_secs(60);
const QUEUE_EVENTS_AUDIENCE: &str = "queue-events";

/// What a verified queue token says: whose entry, in which concert's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePass {
    pub user_id: Uuid,
    pub concert_id: Uuid,
    pub entry_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct QueueClaims {
    sub: Uuid,
    concert: Uuid,
    jti: Uuid,
    aud: String,
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
    queue_validation: Validation,
    queue_events_validation: Validation,
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
        // We never issue `nbf`, but a token that says it is not valid yet must not be accepted
        // (RFC 7519 §4.1.5); jsonwebtoken ignores the claim unless told otherwise.
        validation.validate_nbf = true;
        // jsonwebtoken refuses a token that carries an audience when none is expected: a queue
        // token can never pass as an access token.
        let mut queue_validation = validation.clone();
        queue_validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        queue_validation.set_audience(&[QUEUE_AUDIENCE]);
        let mut queue_events_validation = queue_validation.clone();
        queue_events_validation.set_audience(&[QUEUE_EVENTS_AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            queue_validation,
            queue_events_validation,
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

impl TokenService {
    fn issue_pass(&self, pass: QueuePass, audience: &str, ttl: Duration) -> Result<String, AppError> {
        let now = chrono::Utc::now().timestamp();
        let claims = QueueClaims {
            sub: pass.user_id,
            concert: pass.concert_id,
            jti: pass.entry_id,
            aud: audience.to_owned(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(anyhow::Error::new(e).context("sign queue token")))
    }

    pub fn issue_queue(&self, pass: QueuePass) -> Result<String, AppError> {
        self.issue_pass(pass, QUEUE_AUDIENCE, QUEUE_TOKEN_TTL)
    }

    /// A token for `GET /queue/events?token=` (a browser's `EventSource` cannot send
    /// `X-Queue-Token`): the same entry, audience `queue-events`, valid
    /// [`QUEUE_EVENTS_TOKEN_TTL`]. It passes nowhere else, and a queue token does not pass as it.
    pub fn issue_queue_events(&self, pass: QueuePass) -> Result<String, AppError> {
        self.issue_pass(pass, QUEUE_EVENTS_AUDIENCE, QUEUE_EVENTS_TOKEN_TTL)
    }

    /// Verifies a queue token (signature, algorithm, issuer, audience `queue`, expiry): every
    /// failure is the same 401 `invalid_queue_token`, never echoing the token.
    pub fn verify_queue(&self, token: &str) -> Result<QueuePass, AppError> {
        self.verify_pass(token, &self.queue_validation)
    }

    /// As [`Self::verify_queue`], for a queue-events token.
    pub fn verify_queue_events(&self, token: &str) -> Result<QueuePass, AppError> {
        self.verify_pass(token, &self.queue_events_validation)
    }

    fn verify_pass(&self, token: &str, validation: &Validation) -> Result<QueuePass, AppError> {
        let invalid = || AppError::unauthorized("invalid_queue_token", "the queue token is invalid or expired");
        let data = jsonwebtoken::decode::<QueueClaims>(token, &self.decoding, validation).map_err(|_| invalid())?;
        if data.claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 {
            return Err(invalid());
        }
        Ok(QueuePass {
            user_id: data.claims.sub,
            concert_id: data.claims.concert,
            entry_id: data.claims.jti,
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
    fn queue_and_access_tokens_never_pass_as_each_other() {
        let tokens = service(&"k".repeat(32), 60);
        let pass = QueuePass {
            user_id: Uuid::now_v7(),
            concert_id: Uuid::now_v7(),
            entry_id: Uuid::now_v7(),
        };
        let queue = tokens.issue_queue(pass).unwrap();
        assert_eq!(tokens.verify_queue(&queue).unwrap(), pass);
        assert_eq!(tokens.verify(&queue).unwrap_err().code, "invalid_token");
        let access = tokens.issue(pass.user_id, Role::User).unwrap().access_token;
        assert_eq!(tokens.verify_queue(&access).unwrap_err().code, "invalid_queue_token");
        let forged = service(&"x".repeat(32), 60).issue_queue(pass).unwrap();
        assert!(tokens.verify_queue(&forged).is_err());
        assert!(tokens.verify_queue("not.a.token").is_err());
    }

    #[test]
    fn a_token_before_its_nbf_is_rejected() {
        let secret = "k".repeat(32);
        let tokens = service(&secret, 60);
        let now = chrono::Utc::now().timestamp();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let access = |nbf: i64| {
            sign(
                serde_json::json!({"sub": Uuid::now_v7(), "role": "user", "iat": now, "exp": now + 600,
                                    "iss": ISSUER, "nbf": nbf}),
            )
        };
        assert!(tokens.verify(&access(now + 3600)).is_err());
        assert!(tokens.verify(&access(now + 10)).is_ok(), "within the leeway");
        assert!(tokens.verify(&access(now - 10)).is_ok());
        let queue = sign(
            serde_json::json!({"sub": Uuid::now_v7(), "concert": Uuid::now_v7(), "jti": Uuid::now_v7(),
                                            "aud": QUEUE_AUDIENCE, "iat": now, "exp": now + 600, "iss": ISSUER,
                                            "nbf": now + 3600}),
        );
        assert!(tokens.verify_queue(&queue).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        let tokens = service(&"k".repeat(32), 60);
        for bad in ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
            assert!(tokens.verify(bad).is_err(), "{bad:?}");
        }
    }
}
