//! The HTTP API's listener.

use std::net::SocketAddr;

use super::env::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `IMTICKET_HTTP_ADDR`: where the API listens (port 0 picks a free port).
    pub addr: SocketAddr,
}

impl HttpSettings {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            addr: env.parsed(
                "IMTICKET_HTTP_ADDR",
                "127.0.0.1:8080",
                "a socket address like 127.0.0.1:8080",
            )?,
        })
    }
}
