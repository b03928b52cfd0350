//! HAProxy in front of real API processes, with the project's own configuration
//! (`scripts/haproxy/haproxy.cfg` and the servers file `scripts/haproxy/servers.sh` writes), in
//! a temporary directory on free ports. Killed when dropped, and by the reaper if the test
//! process dies first.
//!
//! A missing binary fails the test with an install hint; nothing is skipped silently.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{self, free_port};

pub struct Haproxy {
    dir: tempfile::TempDir,
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    stats: SocketAddr,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/haproxy").join(name)
}

impl Haproxy {
    /// In front of `servers`, which its stats name `api1`, `api2`, … in that order.
    pub fn start(servers: &[SocketAddr]) -> Self {
        Self::start_from(servers, None)
    }

    /// Like [`Haproxy::start`], connecting to the servers from `source` (what they must trust
    /// in `IMTICKET_TRUSTED_PROXIES`).
    pub fn start_from(servers: &[SocketAddr], source: Option<IpAddr>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("haproxy-")
            .tempdir_in(servers::scratch_dir())
            .unwrap();
        let mut writer = Command::new("bash");
        writer
            .arg(script("servers.sh"))
            .args(servers.iter().map(ToString::to_string));
        if let Some(source) = source {
            writer.env("LB_SOURCE", source.to_string());
        }
        let written = writer.output().unwrap();
        assert!(
            written.status.success(),
            "servers.sh: {}",
            String::from_utf8_lossy(&written.stderr)
        );
        let servers_file = dir.path().join("servers.cfg");
        std::fs::write(&servers_file, written.stdout).unwrap();

        // Free ports can be taken by a parallel test before HAProxy binds them: try others.
        for _ in 0..5 {
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let stats: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
            let mut child = Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(script("haproxy.cfg"))
                .arg("-f")
                .arg(&servers_file)
                .env("LB_BIND", addr.to_string())
                .env("LB_STATS_BIND", stats.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "could not start haproxy ({e}). The load-balancer tests start their own HAProxy: install it \
                         with `apt-get install -y haproxy` (or run scripts/test.sh, which does)."
                    )
                });
            servers::reap(child.id());
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(addr).is_ok() && TcpStream::connect(stats).is_ok() {
                    return Self {
                        dir,
                        child,
                        addr,
                        stats,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break; // most likely a port taken meanwhile
                }
                assert!(
                    Instant::now() < deadline,
                    "haproxy did not come up:\n{}",
                    Self::log_of(&dir)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("haproxy did not start:\n{}", Self::log_of(&dir));
    }

    fn log_of(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// What HAProxy logged: health changes of its servers and every request that went wrong.
    pub fn log(&self) -> String {
        Self::log_of(&self.dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One server's row of the stats page (`/stats;csv`), by column name (`status`, `stot`,
    /// `hrsp_5xx`, `econ`, `wretr`, …).
    pub async fn server_stats(&self, server: &str) -> Option<std::collections::HashMap<String, String>> {
        let csv = reqwest::get(format!("http://{}/stats;csv", self.stats))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|row| row.first() == Some(&"api") && row.get(1) == Some(&server))
            .map(|row| {
                header
                    .iter()
                    .zip(row)
                    .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
                    .collect()
            })
    }

    /// How HAProxy's health checks see `server`: `UP`, `DOWN`, `UP 1/2` (failing), …
    pub async fn state(&self, server: &str) -> Option<String> {
        self.server_stats(server).await?.remove("status")
    }

    /// Waits until HAProxy sees `server` in `state`.
    pub async fn wait_for(&self, server: &str, state: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = self.state(server).await;
            if now.as_deref() == Some(state) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy saw {server} as {now:?}, not {state}, for {timeout:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
