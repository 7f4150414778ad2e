//! What the benchmark ran on: CPU, memory, kernel, etcd's version, process memory.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The machine and software versions, for the report's header.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub etcd_version: String,
}

impl Machine {
    pub fn probe(etcd_binary: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            memory: status_field(&meminfo, "MemTotal").map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib as f64 / (1 << 20) as f64),
            ),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            etcd_version: etcd_version(etcd_binary),
        }
    }
}

/// The first `model name` line of /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `etcd --version`, joined on one line ("etcd Version: 3.4.23, Git SHA: ...").
fn etcd_version(binary: &Path) -> String {
    match Command::new(binary).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("unknown ({e})"),
    }
}

/// A `Name:   123 kB` field of /proc/meminfo or /proc/PID/status, in KiB.
pub fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Resident and peak resident memory of a process, in KiB.
pub fn process_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((
        status_field(&status, "VmRSS")?,
        status_field(&status, "VmHWM")?,
    ))
}

/// User + system CPU time a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_seconds_from_stat(&stat, clock_ticks())
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The command
/// name may hold spaces, so fields are counted after its closing paren.
fn cpu_seconds_from_stat(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

/// The PID of a direct child of this process whose command name is `comm`
/// (e.g. the etcd that the harness started), by scanning /proc.
pub fn child_pid_named(comm: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, ppid) = name_and_parent(&stat)?;
            (ppid == me && name == comm).then_some(pid)
        })
}

/// The command name and parent PID of a /proc/PID/stat line.
fn name_and_parent(stat: &str) -> Option<(&str, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let ppid = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((name, ppid))
}

/// Linux reports CPU times in USER_HZ, 100 on every architecture we run on.
fn clock_ticks() -> f64 {
    100.0
}

/// The processes whose CPU time the benchmark attributes per phase.
#[derive(Debug, Clone, Copy)]
pub struct Pids {
    pub apiserver: u32,
    pub etcd: Option<u32>,
}

/// CPU seconds used so far by the apiserver, etcd and this benchmark, and
/// by the whole machine (to see other processes' load), at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    pub apiserver: f64,
    pub etcd: f64,
    pub bench: f64,
    pub machine: f64,
    pub at: Instant,
}

impl Pids {
    pub fn cpu(&self) -> CpuSnapshot {
        CpuSnapshot {
            apiserver: process_cpu_seconds(self.apiserver).unwrap_or(0.0),
            etcd: self.etcd.and_then(process_cpu_seconds).unwrap_or(0.0),
            bench: process_cpu_seconds(std::process::id()).unwrap_or(0.0),
            machine: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| machine_busy_seconds(&s, clock_ticks()))
                .unwrap_or(0.0),
            at: Instant::now(),
        }
    }
}

impl CpuSnapshot {
    /// CPU milliseconds per operation since `before`, then how many cores
    /// each process kept busy, and the rest of the machine ("others").
    pub fn per_op_since(&self, before: &CpuSnapshot, ops: usize) -> String {
        let per = |now: f64, then: f64| {
            if ops == 0 {
                0.0
            } else {
                (now - then) * 1000.0 / ops as f64
            }
        };
        let secs = self.at.saturating_duration_since(before.at).as_secs_f64();
        let cores = |now: f64, then: f64| if secs > 0.0 { (now - then) / secs } else { 0.0 };
        let ours = (self.apiserver - before.apiserver)
            + (self.etcd - before.etcd)
            + (self.bench - before.bench);
        let others = ((self.machine - before.machine) - ours).max(0.0);
        format!(
            "ms/op: apiserver {:.2}, etcd {:.2}, bench {:.2}; cores busy: apiserver {:.2}, etcd {:.2}, bench {:.2}, other processes {:.2}",
            per(self.apiserver, before.apiserver),
            per(self.etcd, before.etcd),
            per(self.bench, before.bench),
            cores(self.apiserver, before.apiserver),
            cores(self.etcd, before.etcd),
            cores(self.bench, before.bench),
            if secs > 0.0 { others / secs } else { 0.0 },
        )
    }
}

/// Busy CPU seconds of the whole machine from /proc/stat's `cpu` line
/// (user + nice + system + irq + softirq + steal; idle and iowait excluded).
fn machine_busy_seconds(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let get = |i: usize| fields.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Some(busy / ticks_per_second)
}

/// A report row with a process's resident memory now and at its peak.
pub fn memory_row(measure: &str, pid: Option<u32>) -> crate::report::Row {
    let result = match pid.and_then(process_memory) {
        Some((rss, hwm)) => format!(
            "{} (peak {})",
            crate::stats::bytes(rss * 1024),
            crate::stats::bytes(hwm * 1024)
        ),
        None => "unknown (process gone?)".into(),
    };
    crate::report::Row::info(measure, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tkube-apiserver\nVmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\n";
        assert_eq!(status_field(status, "VmRSS"), Some(40960));
        assert_eq!(status_field(status, "VmHWM"), Some(51200));
        assert_eq!(status_field(status, "VmSwap"), None);
        // A field whose name merely starts the same is not a match.
        assert_eq!(status_field("VmRSSx: 5 kB\n", "VmRSS"), None);
    }

    #[test]
    fn reads_cpu_model() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Some CPU @ 2.00GHz\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Some CPU @ 2.00GHz"));
        assert_eq!(cpu_model(""), None);
    }

    #[test]
    fn reads_cpu_time_after_a_name_with_spaces() {
        let stat = "42 (kube api) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(cpu_seconds_from_stat(stat, 100.0), Some(3.0));
        assert_eq!(cpu_seconds_from_stat("garbage", 100.0), None);
    }

    #[test]
    fn reads_name_and_parent() {
        let stat = "42 (kube api) S 7 2 3";
        assert_eq!(name_and_parent(stat), Some(("kube api", 7)));
        assert_eq!(name_and_parent("42 x"), None);
    }

    #[test]
    fn cpu_per_op_and_cores() {
        let t0 = Instant::now();
        let before = CpuSnapshot {
            apiserver: 1.0,
            etcd: 2.0,
            bench: 0.5,
            machine: 10.0,
            at: t0,
        };
        let after = CpuSnapshot {
            apiserver: 3.0,
            etcd: 3.0,
            bench: 1.5,
            machine: 16.0,
            at: t0 + std::time::Duration::from_secs(4),
        };
        assert_eq!(
            after.per_op_since(&before, 1000),
            "ms/op: apiserver 2.00, etcd 1.00, bench 1.00; cores busy: apiserver 0.50, etcd 0.25, bench 0.25, other processes 0.50"
        );
        assert!(after
            .per_op_since(&before, 0)
            .starts_with("ms/op: apiserver 0.00, etcd 0.00, bench 0.00;"));
    }

    #[test]
    fn reads_machine_busy_time() {
        let stat = "cpu  100 10 50 1000 20 5 5 10 0 0\ncpu0 50 5 25 500 10 2 3 5 0 0\n";
        assert_eq!(machine_busy_seconds(stat, 100.0), Some(1.8));
        assert_eq!(machine_busy_seconds("intr 1 2", 100.0), None);
    }

    #[test]
    fn this_process_has_memory() {
        let (rss, hwm) = process_memory(std::process::id()).expect("own status");
        assert!(rss > 0 && hwm >= rss);
    }
}
