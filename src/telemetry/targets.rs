//! Prometheus file-based discovery: while a process runs, `<dir>/<service>-<pid>.json` names
//! its metrics address, so Prometheus (`file_sd_configs`) finds every API and worker process of
//! a host however many there are and whichever ports they took.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The file of one process; removed when dropped (a process killed with -9 leaves its file,
/// which the next process to start in the directory removes).
pub struct Target {
    path: PathBuf,
}

impl Target {
    /// Writes the file for `service` (`imticket-api`, `imticket-worker`) at `addr`, with the
    /// labels `service` and `roles`.
    pub fn register(dir: &Path, service: &str, roles: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        remove_dead(dir);
        let pid = std::process::id();
        let path = dir.join(format!("{service}-{pid}.json"));
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            std::net::IpAddr::V4(v4) => v4.to_string(),
        };
        let body = serde_json::json!([{
            "targets": [format!("{host}:{}", addr.port())],
            "labels": {"service": service, "roles": roles, "pid": pid.to_string()},
        }]);
        // Written whole, then renamed: Prometheus never reads half a file.
        let partial = dir.join(format!(".{service}-{pid}.json.partial"));
        std::fs::write(&partial, body.to_string()).with_context(|| format!("write {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("write {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes the files of processes that no longer run (`<name>-<pid>.json` without
/// `/proc/<pid>`).
fn remove_dead(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_lives_as_long_as_its_guard_and_dead_ones_are_swept() {
        let dir = std::env::temp_dir().join(format!("imticket-targets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // A pid that cannot be running (above the kernel's pid_max).
        let stale = dir.join("imticket-worker-99999999.json");
        std::fs::write(&stale, "[]").unwrap();
        let target = Target::register(&dir, "imticket-worker", "payment", "0.0.0.0:9471".parse().unwrap()).unwrap();
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target.path).unwrap()).unwrap();
        assert_eq!(written[0]["targets"][0], "127.0.0.1:9471");
        assert_eq!(written[0]["labels"]["roles"], "payment");
        assert!(!stale.exists(), "the file of a dead process is removed");
        let path = target.path.clone();
        drop(target);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
