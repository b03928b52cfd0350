//! Accounts: e-mail addresses, passwords, display names and roles.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use super::InvalidField;

const MAX_EMAIL_LEN: usize = 254;
const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work one request can ask of the password hasher.
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;

/// A syntactically plausible e-mail address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let trimmed = raw.trim();
        let email = trimmed.to_lowercase();
        let invalid = |reason: &str| Err(InvalidField::new("email", reason));
        if email.is_empty() {
            return invalid("must not be empty");
        }
        // Characters as sent (api.md), not bytes, nor the lower-cased form (a few letters
        // lower-case to two characters).
        if trimmed.chars().count() > MAX_EMAIL_LEN {
            return invalid("must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid("must be an e-mail address like name@example.com");
        };
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return invalid("must be an e-mail address like name@example.com");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the length policy. Never printed.
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: SecretString) -> Result<Self, InvalidField> {
        let chars = raw.expose_secret().chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(InvalidField::new("password", "must be at least 8 characters"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(InvalidField::new("password", "must be at most 128 characters"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(InvalidField::new("name", "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(InvalidField::new("name", "must be at most 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidField::new("name", "must not contain control characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
    /// Reads the operator console, acts on nothing; an ordinary account in the REST API.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = InvalidField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(InvalidField::new("role", format!("unknown role {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse("  Fan@Example.COM ").unwrap().as_str(), "fan@example.com");
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "fan@",
            "a@b@c",
            "fan@.com",
            "fa n@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn password_policy() {
        assert!(Password::parse(SecretString::from("1234567")).is_err());
        assert!(Password::parse(SecretString::from("12345678")).is_ok());
        assert!(Password::parse(SecretString::from("x".repeat(129))).is_err());
        // Characters, not bytes: eight multi-byte characters are enough.
        assert!(Password::parse(SecretString::from("ééééééé")).is_err());
        assert!(Password::parse(SecretString::from("éééééééé")).is_ok());
        let printed = format!("{:?}", Password::parse(SecretString::from("hunter2hunter2")).unwrap());
        assert!(!printed.contains("hunter2"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("  ").is_err());
        assert!(UserName::parse(&"n".repeat(101)).is_err());
        assert!(UserName::parse("bell\u{7}").is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::User, Role::Admin, Role::Viewer] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
