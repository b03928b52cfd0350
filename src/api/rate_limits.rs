//! Rate limits over HTTP: who the client is (its IP, believing `X-Forwarded-For` only from a
//! trusted proxy), the per-IP limit on every request ([`limit_every_request`], a middleware),
//! the per-route limits handlers ask for ([`limit`]), and the IETF `RateLimit-Policy` /
//! `RateLimit` headers on every answer of a limited route, 429 included.

use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpRequest, ResponseError};
use ipnet::IpNet;

use crate::app::{AppError, Deps};
use crate::domain::rate_limit::{Limited, Policy};

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The decisions made for one request, in the order they were made.
#[derive(Default, Clone)]
struct Decisions(Vec<Limited>);

/// The client's address: the socket's peer, unless that peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` that is not a trusted proxy itself (the left-most
/// entries are whatever the client wrote, so they are never believed first). A header that
/// does not parse is not believed past the last proxy that could be trusted.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut ip = peer?;
    if !is_trusted(&ip) {
        return Some(ip);
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(hop) => {
                ip = hop;
                if !is_trusted(&hop) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(ip)
}

/// The client's address as a rate-limit subject.
pub fn client_of(req: &HttpRequest, deps: &Deps) -> String {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let peer = req.peer_addr().map(|a| a.ip());
    client_ip(peer, &forwarded, &deps.limits.settings().trusted_proxies)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// Counts this request under `policy` for `subject`; 429 `rate_limited` when over. The decision
/// is remembered for the response's headers.
pub async fn limit(req: &HttpRequest, deps: &Deps, policy: Policy, subject: &str) -> Result<(), AppError> {
    remember(req, deps.limits.hit(policy, subject).await)
}

/// Asks without counting (failed logins are counted when they fail, with [`limit`]).
pub async fn ask(req: &HttpRequest, deps: &Deps, policy: Policy, subject: &str) -> Result<(), AppError> {
    remember(req, deps.limits.ask(policy, subject).await)
}

fn remember(req: &HttpRequest, decided: Result<Option<Limited>, AppError>) -> Result<(), AppError> {
    let limited = match &decided {
        Ok(limited) => *limited,
        Err(err) => err.rate_limit.as_deref().copied(),
    };
    if let Some(limited) = limited {
        let mut extensions = req.extensions_mut();
        let mut decisions = extensions.remove::<Decisions>().unwrap_or_default();
        decisions.0.retain(|d| d.policy != limited.policy);
        decisions.0.push(limited);
        extensions.insert(decisions);
    }
    decided.map(drop)
}

/// The per-IP limit (`ip_all`) on every request but the operational ones (a load balancer's
/// health checks and Prometheus must never be limited), and the headers of every decision
/// made for the request on its answer.
pub async fn limit_every_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let operational = ["/health/", "/metrics", "/openapi.json"]
        .iter()
        .any(|p| req.path().starts_with(p));
    if !operational && let Some(deps) = req.app_data::<Data<Deps>>().cloned() {
        let client = client_of(req.request(), &deps);
        if let Err(err) = limit(req.request(), &deps, Policy::IpAll, &client).await {
            let mut response = err.error_response();
            add_headers(req.request(), response.headers_mut());
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    let mut res = next.call(req).await?;
    let request = res.request().clone();
    add_headers(&request, res.headers_mut());
    Ok(res.map_into_left_body())
}

fn add_headers(req: &HttpRequest, headers: &mut actix_web::http::header::HeaderMap) {
    let Some(decisions) = req.extensions().get::<Decisions>().cloned() else {
        return;
    };
    let policy = decisions
        .0
        .iter()
        .map(|l| format!("\"{}\";q={};w={}", l.policy, l.quota.count, l.quota.window.as_secs()))
        .collect::<Vec<_>>()
        .join(", ");
    let state = decisions
        .0
        .iter()
        .map(|l| {
            format!(
                "\"{}\";r={};t={}",
                l.policy,
                l.decision.remaining,
                l.decision.reset_secs()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Straight from a client: its socket, whatever it claims.
        assert_eq!(
            client_ip(Some(ip("203.0.113.7")), &["1.2.3.4"], &trusted),
            Some(ip("203.0.113.7"))
        );
        // Through our proxy: the right-most untrusted hop, not the spoofable left-most one.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["1.2.3.4, 198.51.100.9, 10.0.0.5"], &trusted),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["1.2.3.4", "198.51.100.9"], &trusted),
            Some(ip("198.51.100.9")),
            "several header lines are one list"
        );
        // Garbage after the proxy: not believed past it.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["evil, 10.0.0.9, nonsense"], &trusted),
            Some(ip("10.0.0.2"))
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(Some(ip("10.0.0.2")), &[], &trusted), Some(ip("10.0.0.2")));
        // Nobody trusted: the header never counts.
        assert_eq!(client_ip(Some(ip("10.0.0.2")), &["1.2.3.4"], &[]), Some(ip("10.0.0.2")));
    }
}
