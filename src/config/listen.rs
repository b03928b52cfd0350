//! Where a process serves: `HOST:PORT`, or `HOST:FIRST-LAST` for "the first free port of these"
//! (so several processes with one environment can share a host).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A host and a range of ports (one port when `first == last`; port 0 asks the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub host: IpAddr,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// `127.0.0.1:9100`, `0.0.0.0:9470-9489`, `[::1]:9470-9489`. At most 1,000 ports.
    pub fn parse(text: &str) -> Option<Self> {
        let (host, ports) = text.trim().rsplit_once(':')?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let host: IpAddr = host.parse().ok()?;
        let (first, last) = match ports.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let port = ports.parse().ok()?;
                (port, port)
            }
        };
        (first <= last && last - first < 1000 && (first > 0 || last == 0)).then_some(Self { host, first, last })
    }

    /// Every address of the range, in order.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        (self.first..=self.last).map(|port| SocketAddr::new(self.host, port))
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        if self.first == self.last {
            write!(f, "{host}:{}", self.first)
        } else {
            write!(f, "{host}:{}-{}", self.first, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_ports_parse_and_print_back() {
        for text in ["127.0.0.1:9100", "0.0.0.0:9470-9489", "[::1]:9470-9471", "127.0.0.1:0"] {
            assert_eq!(PortRange::parse(text).map(|r| r.to_string()).as_deref(), Some(text));
        }
        let range = PortRange::parse("127.0.0.1:9470-9472").unwrap();
        assert_eq!(range.addrs().count(), 3);
        for bad in [
            "9100",
            "localhost:9100",
            "127.0.0.1:9489-9470",
            "127.0.0.1:1-5000",
            "127.0.0.1:0-3",
            "127.0.0.1:x",
        ] {
            assert_eq!(PortRange::parse(bad), None, "{bad}");
        }
    }
}
