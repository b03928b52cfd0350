//! The process's own CPU, memory and file descriptors, read from Linux's `/proc/self` (no
//! crate: three small files), in the names Prometheus's client libraries use, so the usual
//! dashboards and alerts work on them: `process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`. Sampled with the other resource gauges
//! ([`crate::infra::resource_gauges`]); elsewhere than Linux nothing is reported.

use std::sync::OnceLock;

/// Clock ticks per second of `/proc/self/stat`'s times: `sysconf(_SC_CLK_TCK)`, which is 100
/// on every Linux architecture this runs on (it is fixed by the kernel's `USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;
/// The page size `statm` counts in (4 KiB on x86-64 and most arm64 kernels; see [`page_size`]).
const DEFAULT_PAGE: u64 = 4096;

/// What one reading found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Reads `/proc/self` and sets the gauges; does nothing where it cannot be read.
pub fn record() {
    let Some(sample) = read() else { return };
    // A counter by meaning (the kernel's running total), exported as a gauge: the `metrics`
    // crate's counters count whole numbers and CPU time is fractional. `rate()` reads it alike.
    metrics::gauge!("process_cpu_seconds_total").set(sample.cpu_seconds);
    metrics::gauge!("process_resident_memory_bytes").set(sample.resident_bytes as f64);
    metrics::gauge!("process_virtual_memory_bytes").set(sample.virtual_bytes as f64);
    if let Some(open) = sample.open_fds {
        metrics::gauge!("process_open_fds").set(open as f64);
    }
    if let Some(max) = sample.max_fds {
        metrics::gauge!("process_max_fds").set(max as f64);
    }
    if let Some(start) = sample.start_time_seconds {
        metrics::gauge!("process_start_time_seconds").set(start);
    }
}

pub fn read() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let (utime, stime, start_ticks) = parse_stat(&stat)?;
    let (size_pages, resident_pages) = parse_statm(&statm)?;
    let page = page_size();
    let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_fds(&l));
    let start_time_seconds = boot_time().map(|boot| boot + start_ticks as f64 / TICKS_PER_SECOND);
    Some(Sample {
        cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
        resident_bytes: resident_pages * page,
        virtual_bytes: size_pages * page,
        open_fds,
        max_fds,
        start_time_seconds,
    })
}

/// `utime`, `stime` and `starttime` (fields 14, 15 and 22). The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses: fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)?, field(15)?, field(22)?))
}

/// Total program size and resident set size, in pages.
fn parse_statm(statm: &str) -> Option<(u64, u64)> {
    let mut fields = statm.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// The page size, from the kernel's own report of this process (`KernelPageSize` in
/// `/proc/self/smaps_rollup` is not there on older kernels; `MMUPageSize` of the first
/// mapping in `smaps` is), read once.
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        std::fs::read_to_string("/proc/self/smaps")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("KernelPageSize:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(DEFAULT_PAGE, |kib| kib * 1024)
    })
}

/// The system's boot time (`btime` in `/proc/stat`), seconds since the epoch, read once.
fn boot_time() -> Option<f64> {
    static BOOT: OnceLock<Option<f64>> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 300 0 0 0 250 50 0 0 20 0 9 0 777 0 0";
        assert_eq!(parse_stat(stat), Some((250, 50, 777)));
        assert_eq!(parse_statm("1000 200 50 1 0 300 0\n"), Some((1000, 200)));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
    }

    #[test]
    fn this_process_is_read() {
        let sample = read().unwrap();
        assert!(sample.resident_bytes > 1 << 20, "{sample:?}");
        assert!(sample.virtual_bytes >= sample.resident_bytes);
        assert!(sample.open_fds.unwrap() >= 3);
        assert!(sample.start_time_seconds.unwrap() > 1.6e9);
    }
}
