//! Finding and ending processes through /proc.

use std::time::{Duration, Instant};

/// The argument vector of a process; None when it is gone or a zombie (empty cmdline).
pub(crate) fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Whether `pid` still runs: present and not a zombie. A killed process whose parent
/// has not reaped it yet is a zombie, and `kill -0` would still succeed on it.
pub(crate) fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Every process whose argument vector satisfies `matches`.
pub(crate) fn find(matches: impl Fn(&[String]) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| cmdline(*pid).is_some_and(|args| matches(&args)))
        .collect()
}

pub(crate) fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; callers only pass PIDs of
    // processes they identified as their own.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Wait until none of `pids` runs any more; returns those still running at the deadline.
pub(crate) fn wait_gone(pids: &[i32], timeout: Duration) -> Vec<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| running(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
