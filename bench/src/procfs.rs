//! Reading /proc: process CPU time and memory, the machine's busy time, the
//! CPU model. Shared by every benchmark program of this crate.

/// The first `model name` line of /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
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

/// Busy CPU seconds of the whole machine from /proc/stat's `cpu` line
/// (user + nice + system + irq + softirq + steal; idle and iowait excluded).
fn busy_seconds_from_stat(stat: &str, ticks_per_second: f64) -> Option<f64> {
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

/// Busy CPU seconds of the whole machine so far (every process, kernel included).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_seconds_from_stat(&stat, clock_ticks())
}

/// One line naming the machine for a report: "machine: 2 vCPU <model>, kernel <release>".
pub fn machine_line() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("machine: {cpus} vCPU {model}, kernel {}", kernel.trim())
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
    fn reads_machine_busy_time() {
        let stat = "cpu  100 10 50 1000 20 5 5 10 0 0\ncpu0 50 5 25 500 10 2 3 5 0 0\n";
        assert_eq!(busy_seconds_from_stat(stat, 100.0), Some(1.8));
        assert_eq!(busy_seconds_from_stat("intr 1 2", 100.0), None);
    }

    #[test]
    fn this_process_has_memory() {
        let (rss, hwm) = process_memory(std::process::id()).expect("own status");
        assert!(rss > 0 && hwm >= rss);
    }
}
