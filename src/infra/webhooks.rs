//! Sending webhooks: one HTTP POST per attempt, and the guard that keeps an endpoint from
//! pointing the service at its own network (SSRF): every address the endpoint's host resolves
//! to must be public, at registration and again before each attempt. The client connects only
//! to addresses its own resolver ([`PublicOnly`]) found public: a host whose DNS answers a
//! public address to the check and a private one to the connection (DNS rebinding) is refused.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Url;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The endpoint answered; `retry_after` is its `Retry-After` in seconds, if any.
    Status { code: u16, retry_after: Option<Duration> },
    /// No answer (refused, timed out, not allowed).
    Failed(String),
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    allow_private: bool,
}

/// Whether `ip` is an address of the public internet (not loopback, private, link-local,
/// unique-local, multicast, unspecified, broadcast, documentation or shared address space).
pub fn is_public(ip: IpAddr) -> bool {
    const V4: &[&str] = &["100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4"];
    const V6: &[&str] = &["fc00::/7", "fe80::/10", "2001:db8::/32", "64:ff9b:1::/48"];
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || V4
                    .iter()
                    .filter_map(|n| n.parse::<ipnet::Ipv4Net>().ok())
                    .any(|n| n.contains(&v4)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_multicast()
                    || v6.is_unspecified()
                    || V6
                        .iter()
                        .filter_map(|n| n.parse::<ipnet::Ipv6Net>().ok())
                        .any(|n| n.contains(&v6)))
            }
        },
    }
}

/// The client's resolver when private targets are refused: the system's answer, refused whole
/// if any address in it is not public. The connection uses exactly the addresses it returns,
/// so nothing resolved between the check and the connection can slip through.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip())) {
                return Err(format!("{host:?} resolves to an address that is not public").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl WebhookClient {
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder();
        if !allow_private {
            http = http.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        let http = http
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect could lead anywhere the guard did not look.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("ImTicket-Webhooks/1")
            .build()?;
        Ok(Self { http, allow_private })
    }

    /// Refuses a URL that is not `http(s)://host…`, or whose host resolves to an address that
    /// is not public (unless `IMTICKET_WEBHOOK_ALLOW_PRIVATE`). The reason, for the admin.
    pub async fn check_target(&self, url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|_| "url: not an absolute URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("url: must be http:// or https://".to_owned());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("url: must not carry credentials".to_owned());
        }
        let host = parsed.host_str().ok_or_else(|| "url: has no host".to_owned())?;
        let port = parsed.port_or_known_default().unwrap_or(443);
        if self.allow_private {
            return Ok(parsed);
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| format!("url: the host {host:?} does not resolve"))?
                .map(|a| a.ip())
                .collect(),
        };
        if addrs.is_empty() || addrs.iter().any(|ip| !is_public(*ip)) {
            return Err(format!(
                "url: {host:?} is not a public address (loopback, private and link-local targets are refused)"
            ));
        }
        Ok(parsed)
    }

    /// POSTs `body` to `url` with `headers`, after checking the target again (its DNS may have
    /// changed since registration).
    pub async fn send(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (Answer, Duration) {
        let started = Instant::now();
        let target = match self.check_target(url).await {
            Ok(target) => target,
            Err(reason) => return (Answer::Failed(reason), started.elapsed()),
        };
        let mut request = self
            .http
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let answer = match request.send().await {
            Ok(response) => Answer::Status {
                code: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            Err(err) if err.is_timeout() => Answer::Failed("timed out".to_owned()),
            Err(err) if err.is_connect() => Answer::Failed(connect_failure(&err)),
            Err(_) => Answer::Failed("the request failed".to_owned()),
        };
        (answer, started.elapsed())
    }
}

/// Why a connection failed: the resolver's refusal when it was that, else "could not connect".
fn connect_failure(err: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if text.contains("is not public") {
            return format!("refused: {text}");
        }
        source = cause.source();
    }
    "could not connect".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn targets_are_checked_before_anything_is_sent() {
        let guarded = WebhookClient::new(Duration::from_secs(1), false).unwrap();
        for (url, why) in [
            ("http://127.0.0.1:9/hook", "not a public address"),
            ("http://[::1]/hook", "not a public address"),
            ("http://169.254.169.254/latest/meta-data", "not a public address"),
            ("ftp://example.com/", "http:// or https://"),
            ("http://user:pw@example.com/", "credentials"),
            ("/relative", "absolute"),
        ] {
            let refused = guarded.check_target(url).await.unwrap_err();
            assert!(refused.contains(why), "{url}: {refused}");
        }
        let open = WebhookClient::new(Duration::from_secs(1), true).unwrap();
        assert!(open.check_target("http://127.0.0.1:9/hook").await.is_ok());
    }

    #[tokio::test]
    async fn the_connection_itself_goes_only_to_public_addresses() {
        // `localhost` resolves to loopback: the guarded client's own resolver refuses it, so
        // the request fails before any connection, whatever a check before it said.
        let guarded = WebhookClient::new(Duration::from_secs(2), false).unwrap();
        let refused = guarded.http.post("http://localhost:9/hook").send().await.unwrap_err();
        assert!(connect_failure(&refused).contains("is not public"), "{refused:?}");
    }
}
