//! What the benchmark ran on: CPU, memory, kernel, etcd's version, process memory.

pub use apiserver_bench::procfs::child_pid_named;
use apiserver_bench::procfs::{
    cpu_model, machine_busy_seconds, process_cpu_seconds, process_memory, status_field,
};

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
            machine: machine_busy_seconds().unwrap_or(0.0),
            at: Instant::now(),
        }
    }
}

impl CpuSnapshot {
    /// CPU milliseconds per operation since `before`, then how many cores
    /// each process kept busy, and the rest of the machine ("others").
    /// CPU milliseconds per operation since `before`: apiserver, etcd, bench.
    pub fn ms_per_op(&self, before: &CpuSnapshot, ops: usize) -> [f64; 3] {
        let per = |now: f64, then: f64| {
            if ops == 0 {
                0.0
            } else {
                (now - then) * 1000.0 / ops as f64
            }
        };
        [
            per(self.apiserver, before.apiserver),
            per(self.etcd, before.etcd),
            per(self.bench, before.bench),
        ]
    }

    pub fn per_op_since(&self, before: &CpuSnapshot, ops: usize) -> String {
        let [apiserver, etcd, bench] = self.ms_per_op(before, ops);
        let secs = self.at.saturating_duration_since(before.at).as_secs_f64();
        let cores = |now: f64, then: f64| if secs > 0.0 { (now - then) / secs } else { 0.0 };
        let ours = (self.apiserver - before.apiserver)
            + (self.etcd - before.etcd)
            + (self.bench - before.bench);
        let others = ((self.machine - before.machine) - ours).max(0.0);
        format!(
            "ms/op: apiserver {apiserver:.2}, etcd {etcd:.2}, bench {bench:.2}; cores busy: apiserver {:.2}, etcd {:.2}, bench {:.2}, other processes {:.2}",
            cores(self.apiserver, before.apiserver),
            cores(self.etcd, before.etcd),
            cores(self.bench, before.bench),
            if secs > 0.0 { others / secs } else { 0.0 },
        )
    }
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
}
