//! Host-gw pod routes (`--configure-pod-routes`): for every other node with
//! a podCIDR and an InternalIP on a directly connected subnet, a route
//! `<podCIDR> via <InternalIP>`, tagged with routing protocol [`PROTO`] so
//! that a restart reconciles instead of duplicating and `--cleanup` finds
//! them. kube-proxy owns these routes because it runs on every machine that
//! must reach pods, the control-plane host included (docs/networking.md).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;

use k8s_openapi::api::core::v1::Node;

/// Our routes' protocol number (`ip route ... proto 75`).
pub const PROTO: &str = "75";

#[derive(Debug, thiserror::Error)]
#[error("ip {args}: {detail}")]
pub struct RouteError {
    args: String,
    detail: String,
}

fn ip(args: &[&str]) -> Result<String, RouteError> {
    let err = |detail: String| RouteError {
        args: args.join(" "),
        detail,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// podCIDR -> next hop for the nodes other than `me`.
pub fn desired(
    nodes: &[Node],
    me: &str,
    connected: &[(Ipv4Addr, u8)],
) -> BTreeMap<String, Ipv4Addr> {
    let mut out = BTreeMap::new();
    for n in nodes {
        if n.metadata.name.as_deref() == Some(me) {
            continue;
        }
        let Some(cidr) = n.spec.as_ref().and_then(|s| s.pod_cidr.clone()) else {
            continue;
        };
        let Some(via) = n
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .and_then(|a| a.address.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        if connected
            .iter()
            .any(|(net, len)| same_subnet(*net, via, *len))
        {
            out.insert(cidr, via);
        }
    }
    out
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    };
    u32::from(a) & mask == u32::from(b) & mask
}

/// This machine's IPv4 addresses with their prefix lengths.
pub fn connected() -> Result<Vec<(Ipv4Addr, u8)>, RouteError> {
    let text = ip(&["-o", "-4", "addr", "show"])?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            let (addr, len) = cidr.split_once('/')?;
            Some((addr.parse().ok()?, len.parse().ok()?))
        })
        .filter(|(a, _): &(Ipv4Addr, u8)| !a.is_loopback())
        .collect())
}

/// Our routes now in the kernel: destination -> next hop.
fn current() -> Result<BTreeMap<String, Ipv4Addr>, RouteError> {
    let text = ip(&["-o", "-4", "route", "show", "proto", PROTO])?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let dest = words.next()?.to_string();
            let via = words.skip_while(|w| *w != "via").nth(1)?.parse().ok()?;
            Some((dest, via))
        })
        .collect())
}

/// Make the kernel's routes of ours equal `want`.
pub fn reconcile(want: &BTreeMap<String, Ipv4Addr>) -> Result<usize, RouteError> {
    let have = current()?;
    for (dest, via) in &have {
        if want.get(dest) != Some(via) {
            ip(&["route", "del", dest, "proto", PROTO])?;
        }
    }
    for (dest, via) in want {
        if have.get(dest) != Some(via) {
            ip(&[
                "route",
                "replace",
                dest,
                "via",
                &via.to_string(),
                "proto",
                PROTO,
            ])?;
            tracing::info!(%dest, %via, "pod route");
        }
    }
    Ok(want.len())
}

/// Remove every route of ours.
pub fn cleanup() -> Result<(), RouteError> {
    ip(&["route", "flush", "proto", PROTO]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_to_other_nodes_on_connected_subnets() {
        let node = |name: &str, cidr: &str, ip: &str| -> Node {
            serde_json::from_value(
                json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr},
                "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}),
            )
            .unwrap()
        };
        let nodes = vec![
            node("n1", "10.244.0.0/24", "10.250.0.11"),
            node("n2", "10.244.1.0/24", "10.250.0.12"),
            node("far", "10.244.2.0/24", "192.168.9.9"),
        ];
        let want = desired(&nodes, "n1", &[("10.250.0.11".parse().unwrap(), 24)]);
        assert_eq!(want.len(), 1);
        assert_eq!(
            want["10.244.1.0/24"],
            "10.250.0.12".parse::<Ipv4Addr>().unwrap()
        );
    }
}
