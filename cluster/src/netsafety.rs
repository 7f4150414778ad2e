//! Network safety (shared/DESIGN.md): before anything sends to a service or pod address,
//! the service CIDR and the cluster CIDR are routed to a local bridge with no ports, so
//! that a packet no DNAT rule and no more specific route claims dies on this machine
//! instead of following the default route off it. More specific routes (a node's pod
//! CIDR via its IP) and kube-proxy's DNAT still win.
//!
//! Each process routes through a bridge of its own (`mkbh-<pid>`), added with
//! `ip route append`, so concurrent test runs never remove each other's routes: when
//! one bridge goes, its routes go with it and the others' stay.

use std::sync::Mutex;

use crate::{command, procfs, Error, Result};

/// Name prefix of the per-process blackhole bridges.
pub const BLACKHOLE_PREFIX: &str = "mkbh-";

/// How many [`BlackholeRoutes`] of this process are alive.
static USERS: Mutex<usize> = Mutex::new(0);

/// Proof that the CIDRs are blackholed; the last one of the process to drop removes the
/// bridge (and so its routes). `std::mem::forget` keeps them for good.
#[derive(Debug)]
pub struct BlackholeRoutes {
    bridge: String,
}

impl BlackholeRoutes {
    /// The bridge the CIDRs are routed to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }
}

impl Drop for BlackholeRoutes {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users = users.saturating_sub(1);
        if *users == 0 {
            if let Err(e) = remove_blackhole_bridge(&self.bridge) {
                tracing::warn!("remove blackhole bridge: {e}");
            }
        }
    }
}

/// This process's blackhole bridge.
pub fn process_bridge() -> String {
    format!("{BLACKHOLE_PREFIX}{}", std::process::id())
}

/// Route `service_cidr` and `cluster_cidr` (e.g. 10.96.0.0/12, 10.244.0.0/16) to this
/// process's port-less bridge; idempotent. Also removes blackhole bridges of processes
/// that no longer run (after ours is in place).
pub fn ensure_blackhole_routes(service_cidr: &str, cluster_cidr: &str) -> Result<BlackholeRoutes> {
    let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
    let bridge = process_bridge();
    ensure_blackhole_routes_on(&bridge, service_cidr, cluster_cidr)?;
    *users += 1;
    drop(users);
    remove_stale_bridges();
    Ok(BlackholeRoutes { bridge })
}

/// The same on a bridge of the caller's naming that stays until
/// [`remove_blackhole_bridge`] (for a lab that outlives the process that made it).
pub fn ensure_blackhole_routes_on(
    bridge: &str,
    service_cidr: &str,
    cluster_cidr: &str,
) -> Result<()> {
    ensure_blackhole_routes_in(None, bridge, service_cidr, cluster_cidr)
}

/// The same inside network namespace `netns` (a name under /run/netns; None: this
/// process's own), e.g. a lab node's.
pub fn ensure_blackhole_routes_in(
    netns: Option<&str>,
    bridge: &str,
    service_cidr: &str,
    cluster_cidr: &str,
) -> Result<()> {
    if bridge.is_empty() || bridge.len() > 15 {
        return Err(Error::Invalid(format!(
            "bridge name {bridge:?} must have 1 to 15 characters"
        )));
    }
    for cidr in [service_cidr, cluster_cidr] {
        if !is_ipv4_cidr(cidr) {
            return Err(Error::Invalid(format!("{cidr:?} is not an IPv4 CIDR")));
        }
    }
    let ip = |args: &[&str]| command::run_in(netns, "ip", args);
    if ip(&["link", "show", "dev", bridge]).is_err() {
        // Another thread or process may create it at the same moment: re-check on error.
        if let Err(e) = ip(&["link", "add", bridge, "type", "bridge"]) {
            if ip(&["link", "show", "dev", bridge]).is_err() {
                return Err(e);
            }
        }
    }
    ip(&["link", "set", "dev", bridge, "up"])?;
    for cidr in [service_cidr, cluster_cidr] {
        let present = ip(&["-o", "route", "show", cidr, "dev", bridge])?;
        if present.trim().is_empty() {
            // append, not add: another process's bridge may carry the same route.
            ip(&["route", "append", cidr, "dev", bridge])?;
        }
    }
    Ok(())
}

/// Delete a blackhole bridge; its routes go with it. A missing bridge is fine.
pub fn remove_blackhole_bridge(bridge: &str) -> Result<()> {
    if command::run("ip", &["link", "show", "dev", bridge]).is_err() {
        return Ok(());
    }
    command::run("ip", &["link", "del", "dev", bridge]).map(|_| ())
}

/// `mkbh-<pid>` bridges whose process is gone.
fn remove_stale_bridges() {
    let Ok(links) = command::run("ip", &["-o", "link", "show", "type", "bridge"]) else {
        return;
    };
    for line in links.lines() {
        // "12: mkbh-123: <BROADCAST,...> ..."
        let Some(name) = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap_or(n))
        else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(BLACKHOLE_PREFIX)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !procfs::running(pid) {
            let _ = remove_blackhole_bridge(name);
        }
    }
}

fn is_ipv4_cidr(cidr: &str) -> bool {
    cidr.split_once('/').is_some_and(|(ip, len)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cidr_check() {
        assert!(super::is_ipv4_cidr("10.96.0.0/12"));
        assert!(!super::is_ipv4_cidr("10.96.0.0"));
        assert!(!super::is_ipv4_cidr("10.96.0.0/33"));
        assert!(!super::is_ipv4_cidr("dev eth0"));
    }
}
