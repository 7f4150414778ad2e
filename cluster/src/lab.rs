//! The lab network of a cluster on one machine: a host bridge with the
//! control plane's address, and for a multi-node cluster one network
//! namespace per node joined to that bridge by a veth pair.
//!
//! ```text
//!   host: mk8s-lab 10.250.0.1/24 (apiserver, kube-dns, host kube-proxy)
//!     |-- veth -- netns mk8s-<hash>-1: eth0 10.250.0.11  containerd, kubelet, kube-proxy
//!     |-- veth -- netns mk8s-<hash>-2: eth0 10.250.0.12  ...
//! ```
//!
//! Nothing in the lab has a default route, and the host drops whatever would
//! be forwarded between the lab bridge and any other interface (an nft table
//! of its own), so no lab packet leaves the machine. Pod CIDR routes between
//! nodes are kube-proxy's (`--configure-pod-routes`, docs/networking.md).

use std::net::Ipv4Addr;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{command, netsafety, Error, Result};

/// The host bridge of the lab.
pub const LAB_BRIDGE: &str = "mk8s-lab";
/// The lab subnet; the host is .1, node i is .(10 + i).
pub const LAB_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 0);
pub const LAB_PREFIX_LEN: u8 = 24;
/// The host's address on the lab bridge: where nodes and pods reach the
/// apiserver and the cluster DNS server.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
/// The nft table (family ip) that keeps lab traffic on this machine.
pub const FIREWALL_TABLE: &str = "mk8s-lab";
/// Most nodes a lab holds (addresses .11 to .250).
pub const MAX_NODES: u32 = 240;

/// The lab CIDR as text.
pub fn lab_cidr() -> String {
    format!("{LAB_NETWORK}/{LAB_PREFIX_LEN}")
}

/// One node of a multi-node lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNode {
    /// 1-based.
    pub index: u32,
    pub name: String,
    /// The network namespace, /run/netns/<netns>.
    pub netns: String,
    pub ip: Ipv4Addr,
    /// The host end of the node's veth pair (on [`LAB_BRIDGE`]).
    pub veth: String,
}

impl LabNode {
    /// Node `index` (1-based) of the lab whose data lives in `data_dir`:
    /// namespace and veth names carry a hash of the directory, so that two
    /// labs (a test's and a user's) never share a name.
    pub fn new(data_dir: &Path, index: u32) -> Self {
        let hash = dir_hash(data_dir);
        let o = LAB_NETWORK.octets();
        Self {
            index,
            name: format!("node-{index}"),
            netns: format!("{}{index}", netns_prefix(data_dir)),
            ip: Ipv4Addr::new(o[0], o[1], o[2], 10 + index as u8),
            veth: format!("mkv{}-{index}", &hash[..6]),
        }
    }
}

fn dir_hash(data_dir: &Path) -> String {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()))
}

/// Namespaces of `data_dir`'s lab are named `<prefix><index>`.
fn netns_prefix(data_dir: &Path) -> String {
    format!("mk8s-{}-", &dir_hash(data_dir)[..8])
}

/// The lab nodes of `data_dir` whose namespaces exist now (whatever state
/// the rest of the cluster is in).
pub fn existing_nodes(data_dir: &Path) -> Vec<LabNode> {
    let prefix = netns_prefix(data_dir);
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut nodes: Vec<LabNode> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let index = name.strip_prefix(&prefix)?.parse().ok()?;
            Some(LabNode::new(data_dir, index))
        })
        .collect();
    nodes.sort_by_key(|n| n.index);
    nodes
}

/// The host bridge with the host's lab address, and the firewall table.
/// Idempotent.
pub fn ensure_host() -> Result<()> {
    if command::run("ip", &["link", "show", "dev", LAB_BRIDGE]).is_err() {
        command::run("ip", &["link", "add", LAB_BRIDGE, "type", "bridge"])?;
    }
    let addr = format!("{HOST_IP}/{LAB_PREFIX_LEN}");
    let present = command::run("ip", &["-o", "-4", "addr", "show", "dev", LAB_BRIDGE])?;
    if !present.contains(&format!(" {addr} ")) {
        command::run("ip", &["addr", "add", &addr, "dev", LAB_BRIDGE])?;
    }
    command::run("ip", &["link", "set", "dev", LAB_BRIDGE, "up"])?;
    install_firewall()
}

/// Drop anything forwarded between the lab bridge and another interface:
/// lab packets never leave the machine, outside packets never enter the lab.
/// Traffic bridged between nodes (seen here through br_netfilter) stays
/// allowed.
fn install_firewall() -> Result<()> {
    let rules = format!(
        "table ip {FIREWALL_TABLE}\n\
         delete table ip {FIREWALL_TABLE}\n\
         table ip {FIREWALL_TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter - 10; policy accept;\n\
         \t\tiifname \"{LAB_BRIDGE}\" oifname != \"{LAB_BRIDGE}\" drop\n\
         \t\toifname \"{LAB_BRIDGE}\" iifname != \"{LAB_BRIDGE}\" drop\n\
         \t}}\n\
         }}\n"
    );
    nft_apply(None, &rules)
}

/// Run `nft -f -` with `rules` (inside `netns` when given).
pub(crate) fn nft_apply(netns: Option<&str>, rules: &str) -> Result<()> {
    use std::io::Write;
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = std::process::Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg("nft");
            c
        }
        None => std::process::Command::new("nft"),
    };
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command {
            command: "nft -f -".into(),
            detail: e.to_string(),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(rules.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        command: "nft -f -".into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: "nft -f -".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Create node `node`'s namespace, wire it to the host bridge, give it its
/// address and the safety routes. Idempotent: an existing namespace is
/// reused.
pub fn add_node(node: &LabNode, service_cidr: &str, cluster_cidr: &str) -> Result<()> {
    let ns = node.netns.as_str();
    if !Path::new("/run/netns").join(ns).exists() {
        command::run("ip", &["netns", "add", ns])?;
    }
    let inside = |args: &[&str]| command::run_in(Some(ns), args[0], &args[1..]);
    if command::run("ip", &["link", "show", "dev", &node.veth]).is_err() {
        command::run(
            "ip",
            &[
                "link", "add", &node.veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
    }
    command::run(
        "ip",
        &["link", "set", "dev", &node.veth, "master", LAB_BRIDGE],
    )?;
    command::run("ip", &["link", "set", "dev", &node.veth, "up"])?;
    inside(&["ip", "link", "set", "dev", "lo", "up"])?;
    let addr = format!("{}/{LAB_PREFIX_LEN}", node.ip);
    let present = inside(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
    if !present.contains(&format!(" {addr} ")) {
        inside(&["ip", "addr", "add", &addr, "dev", "eth0"])?;
    }
    inside(&["ip", "link", "set", "dev", "eth0", "up"])?;
    // Pods' packets are routed through the node.
    inside(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
    netsafety::ensure_blackhole_routes_in(Some(ns), "mk8s-blackhole", service_cidr, cluster_cidr)
}

/// Remove a node's namespace (its veth pair, bridges, routes and nft tables
/// go with it). A missing one is fine.
pub fn remove_node(node: &LabNode) -> Result<()> {
    if Path::new("/run/netns").join(&node.netns).exists() {
        command::run("ip", &["netns", "del", &node.netns])?;
    }
    // The kernel frees the namespace (and the veth with it) asynchronously,
    // so the link may vanish between the check and the delete.
    if command::run("ip", &["link", "show", "dev", &node.veth]).is_ok() {
        if let Err(e) = command::run("ip", &["link", "del", "dev", &node.veth]) {
            if command::run("ip", &["link", "show", "dev", &node.veth]).is_ok() {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Remove the host side: the firewall table and the bridge (routes through
/// it go with it).
pub fn remove_host() -> Result<()> {
    let _ = command::run("nft", &["delete", "table", "ip", FIREWALL_TABLE]);
    netsafety::remove_blackhole_bridge(LAB_BRIDGE)
}

/// Routes on this machine that overlap the lab subnet and are not the lab's
/// own: the lab cannot be built here without breaking them.
pub fn conflicting_routes() -> Vec<String> {
    let Ok(routes) = command::run("ip", &["-o", "-4", "route", "show", "table", "all"]) else {
        return Vec::new();
    };
    routes
        .lines()
        .filter(|line| !line.contains(&format!("dev {LAB_BRIDGE} ")))
        .filter(|line| {
            let dest = line
                .split_whitespace()
                .find(|w| w.contains('.') || *w == "default")
                .unwrap_or("");
            overlaps_lab(dest)
        })
        .map(str::to_string)
        .collect()
}

fn overlaps_lab(dest: &str) -> bool {
    if dest == "default" || dest.is_empty() {
        return false;
    }
    let (ip, len) = dest.split_once('/').unwrap_or((dest, "32"));
    let (Ok(ip), Ok(len)) = (ip.parse::<Ipv4Addr>(), len.parse::<u8>()) else {
        return false;
    };
    let shorter = len.min(LAB_PREFIX_LEN);
    let mask = |l: u8| if l == 0 { 0 } else { u32::MAX << (32 - l) };
    u32::from(ip) & mask(shorter) == u32::from(LAB_NETWORK) & mask(shorter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_fit_and_differ_per_data_dir() {
        let a = LabNode::new(Path::new("/var/lib/mini-kubernetes"), 3);
        let b = LabNode::new(Path::new("/tmp/other"), 3);
        assert_eq!(a.name, "node-3");
        assert_eq!(a.ip, Ipv4Addr::new(10, 250, 0, 13));
        assert!(a.veth.len() <= 15, "{}", a.veth);
        assert_ne!(a.netns, b.netns);
        assert_ne!(a.veth, b.veth);
    }

    #[test]
    fn overlap_with_the_lab_subnet() {
        assert!(overlaps_lab("10.250.0.0/24"));
        assert!(overlaps_lab("10.0.0.0/8"));
        assert!(overlaps_lab("10.250.0.7"));
        assert!(!overlaps_lab("10.251.0.0/16"));
        assert!(!overlaps_lab("192.0.2.0/24"));
        assert!(!overlaps_lab("default"));
        assert!(!overlaps_lab("local"));
    }
}
