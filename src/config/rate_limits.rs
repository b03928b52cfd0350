//! Rate limits: each policy's quota (or off), the switch for all of them, and the proxies whose
//! `X-Forwarded-For` is believed.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::env::{ConfigError, Env};
use crate::domain::rate_limit::{Policy, Quota};

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// `IMTICKET_RATE_LIMITS`: `off` turns every policy off (load tests).
    pub enabled: bool,
    /// `IMTICKET_RATE_LIMIT_<POLICY>`: `<count>/<seconds>`, or `off` (None).
    pub quotas: BTreeMap<Policy, Option<Quota>>,
    /// `IMTICKET_TRUSTED_PROXIES`: comma-separated CIDRs (or single addresses). A request from
    /// one of these is attributed to the right-most address of `X-Forwarded-For` that is not
    /// itself a trusted proxy; from anyone else, to its socket's peer.
    pub trusted_proxies: Vec<IpNet>,
}

impl RateLimitSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let enabled = env.choice("IMTICKET_RATE_LIMITS", "on", &["on", "off"])? == "on";
        let mut quotas = BTreeMap::new();
        for policy in Policy::ALL {
            let name = variable(policy);
            let quota = match env.get(name) {
                None => Some(policy.default_quota()),
                Some(v) if v.trim() == "off" => None,
                Some(v) => Some(Quota::parse(&v).ok_or_else(|| {
                    ConfigError::new(
                        name,
                        format!("expected <count>/<seconds> (e.g. 30/60, seconds up to 86400) or `off`, got {v:?}"),
                    )
                })?),
            };
            quotas.insert(policy, quota);
        }
        let trusted_proxies = match env.get("IMTICKET_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            ConfigError::new(
                                "IMTICKET_TRUSTED_PROXIES",
                                format!("expected comma-separated CIDRs like 10.0.0.0/8, got {s:?}"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            enabled,
            quotas,
            trusted_proxies,
        })
    }

    /// The quota in force for `policy`; `None` when it is off (or all are).
    pub fn quota(&self, policy: Policy) -> Option<Quota> {
        if !self.enabled {
            return None;
        }
        self.quotas.get(&policy).copied().flatten()
    }
}

/// `IMTICKET_RATE_LIMIT_<POLICY>`.
fn variable(policy: Policy) -> &'static str {
    match policy {
        Policy::SignupIp => "IMTICKET_RATE_LIMIT_SIGNUP_IP",
        Policy::LoginIp => "IMTICKET_RATE_LIMIT_LOGIN_IP",
        Policy::LoginAccount => "IMTICKET_RATE_LIMIT_LOGIN_ACCOUNT",
        Policy::UserWrites => "IMTICKET_RATE_LIMIT_USER_WRITES",
        Policy::QueueStatus => "IMTICKET_RATE_LIMIT_QUEUE_STATUS",
        Policy::IpAll => "IMTICKET_RATE_LIMIT_IP_ALL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(vars: &[(&str, &str)]) -> Result<RateLimitSettings, ConfigError> {
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        RateLimitSettings::read(&Env::new(&lookup))
    }

    #[test]
    fn every_policy_is_settable_and_off_is_off() {
        let s = read(&[]).unwrap();
        assert!(s.enabled);
        assert_eq!(s.quota(Policy::LoginIp), Some(Policy::LoginIp.default_quota()));
        let s = read(&[
            ("IMTICKET_RATE_LIMIT_LOGIN_IP", "7/30"),
            ("IMTICKET_RATE_LIMIT_IP_ALL", "off"),
        ])
        .unwrap();
        assert_eq!(s.quota(Policy::LoginIp), Some(Quota::new(7, Duration::from_secs(30))));
        assert_eq!(s.quota(Policy::IpAll), None);
        let s = read(&[("IMTICKET_RATE_LIMITS", "off")]).unwrap();
        assert!(Policy::ALL.iter().all(|p| s.quota(*p).is_none()));
        let err = read(&[("IMTICKET_RATE_LIMIT_USER_WRITES", "lots")]).unwrap_err();
        assert_eq!(err.var, "IMTICKET_RATE_LIMIT_USER_WRITES");
        assert_eq!(
            read(&[("IMTICKET_RATE_LIMITS", "maybe")]).unwrap_err().var,
            "IMTICKET_RATE_LIMITS"
        );
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let s = read(&[("IMTICKET_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(
            read(&[("IMTICKET_TRUSTED_PROXIES", "proxy.local")]).unwrap_err().var,
            "IMTICKET_TRUSTED_PROXIES"
        );
    }
}
