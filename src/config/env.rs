//! Reading variables: typed values with one-line errors naming the variable, a record of every
//! name asked for (so a variable that nothing reads can be reported), `NAME=value` files, and
//! URLs shown without their password.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// `IMTICKET_ENV`.
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// `IMTICKET_*` variables that are not the processes' configuration but are read elsewhere,
/// so they are never reported as unread: the settings of `scripts/run.sh` and
/// `scripts/scale-out.sh` (whose processes inherit them), of `scripts/redis-cluster.sh`, and the
/// operator CLI's env file.
pub const READ_ELSEWHERE: [&str; 20] = [
    "IMTICKET_DOTENV",
    "IMTICKET_DATA_DIR",
    "IMTICKET_PG_PORT",
    "IMTICKET_REDIS_PORT",
    "IMTICKET_PROFILE",
    "IMTICKET_ENV_FILE",
    "IMTICKET_API_PROCESSES",
    "IMTICKET_API_FIRST_PORT",
    "IMTICKET_WORKERS_PER_ROLE",
    "IMTICKET_LB_ADDR",
    "IMTICKET_LB_STATS_ADDR",
    "IMTICKET_RUN_REDIS",
    "IMTICKET_RUN_PGBOUNCER",
    "IMTICKET_CLUSTER_MASTERS",
    "IMTICKET_CLUSTER_REPLICAS",
    "IMTICKET_CLUSTER_NODE_TIMEOUT",
    "IMTICKET_CLUSTER_BIND",
    "IMTICKET_CLUSTER_PORTS",
    "IMTICKET_CLUSTER_HOSTS",
    "IMTICKET_CLUSTER_ASK",
];

/// A source of variables (the process environment, a test's map, an operator's files) and
/// the names asked of it.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    asked: RefCell<BTreeSet<String>>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            asked: RefCell::default(),
        }
    }

    /// Every name asked for so far.
    pub fn asked(&self) -> BTreeSet<String> {
        self.asked.borrow().clone()
    }

    /// The raw value, empty included.
    pub fn raw(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        (self.lookup)(name)
    }

    /// A set, non-empty value; an empty variable counts as unset so `FOO=` means "default".
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    pub fn parsed<T: FromStr>(&self, name: &'static str, default: &str, expected: &str) -> Result<T, ConfigError> {
        let raw = self.get(name).unwrap_or_else(|| default.to_owned());
        raw.trim()
            .parse()
            .map_err(|_| ConfigError::new(name, format!("expected {expected}, got {raw:?}")))
    }

    /// One of `choices` (case-sensitive), or `default` when unset.
    pub fn choice(
        &self,
        name: &'static str,
        default: &'static str,
        choices: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        choices.iter().copied().find(|c| *c == raw.trim()).ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "expected {}, got {raw:?}",
                    choices
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )
        })
    }

    pub fn number<T>(&self, name: &'static str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "expected a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    pub fn seconds(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_secs)
    }

    pub fn millis(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_millis)
    }
}

/// The `IMTICKET_*` names among `present` that no setting read (`asked`) and nothing else
/// reads ([`READ_ELSEWHERE`]), each with the closest name that is read, if one is close: a
/// typo must not pass silently.
pub fn unread_variables<'a>(
    present: impl IntoIterator<Item = &'a str>,
    asked: &BTreeSet<String>,
) -> Vec<(String, Option<String>)> {
    let mut unread: Vec<(String, Option<String>)> = present
        .into_iter()
        .filter(|name| name.starts_with("IMTICKET_"))
        .filter(|name| !asked.contains(*name) && !READ_ELSEWHERE.contains(name))
        .map(|name| {
            let closest = asked
                .iter()
                .map(|known| (distance(name, known), known))
                .filter(|(d, known)| *d <= 3.max(known.len() / 8))
                .min()
                .map(|(_, known)| known.clone());
            (name.to_owned(), closest)
        })
        .collect();
    unread.sort();
    unread.dedup();
    unread
}

/// Levenshtein distance over bytes (variable names are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Parses a file of `NAME=value` lines (what `scripts/run.sh` writes to `.data/run.env`, and
/// the format of `.env`): blank lines and `#` comments are skipped, an `export ` prefix and
/// quotes around the value are allowed. The error names the first malformed line.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let valid_name = |name: &str| {
            name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let Some((name, value)) = line.split_once('=').filter(|(name, _)| valid_name(name.trim())) else {
            return Err(format!("line {}: expected NAME=value", n + 1));
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.push((name.trim().to_owned(), unquoted.to_owned()));
    }
    Ok(vars)
}

/// A server URL fit for messages: the password, if any, replaced by `***`.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_variables_are_named_with_the_closest_known_one() {
        let asked: BTreeSet<String> = ["IMTICKET_HOLD_TTL_SECONDS", "IMTICKET_HTTP_ADDR", "DATABASE_URL"]
            .map(str::to_owned)
            .into();
        let present = [
            "IMTICKET_HOLD_TTL_SECOND",
            "IMTICKET_HTTP_ADDR",
            "IMTICKET_DATA_DIR",
            "IMTICKET_SOMETHING_ELSE_ENTIRELY",
            "PATH",
        ];
        assert_eq!(
            unread_variables(present, &asked),
            vec![
                (
                    "IMTICKET_HOLD_TTL_SECOND".to_owned(),
                    Some("IMTICKET_HOLD_TTL_SECONDS".to_owned())
                ),
                ("IMTICKET_SOMETHING_ELSE_ENTIRELY".to_owned(), None),
            ]
        );
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn env_files_are_name_value_lines() {
        let vars = parse_env_file(
            "# written by scripts/run.sh\n\nDATABASE_URL=postgres://p@h:1/db?x=1\nexport REDIS_URL=\"redis://h:2\"\nEMPTY=\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            [
                ("DATABASE_URL".to_owned(), "postgres://p@h:1/db?x=1".to_owned()),
                ("REDIS_URL".to_owned(), "redis://h:2".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            parse_env_file("A=1\nnot a setting\n").unwrap_err(),
            "line 2: expected NAME=value"
        );
        assert_eq!(parse_env_file("=1").unwrap_err(), "line 1: expected NAME=value");
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            url_without_password("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            url_without_password("postgres://app:p@ss@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(url_without_password("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            url_without_password("redis://127.0.0.1:56379"),
            "redis://127.0.0.1:56379"
        );
    }
}
