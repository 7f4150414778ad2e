//! Host-gw pod routes (`--configure-pod-routes`, as flannel's host-gw
//! backend): for every other node with a podCIDR and an InternalIP on a
//! directly connected subnet, `ip route replace <podCIDR> via <InternalIP>`,
//! tagged with our own routing protocol number [`PROTO`] so that a restart
//! reconciles with what is in the kernel instead of duplicating, and
//! `--cleanup` finds them. Routes of other protocols are never touched.
//! kube-proxy owns these routes because it runs on every machine that must
//! reach pods, the control-plane host included (docs/networking.md).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Command;

use k8s_openapi::api::core::v1::Node;

use crate::netif::{Cidr, LocalAddr};

/// Our routes' protocol number (`proto 0x4b` = 75), outside the numbers
/// iproute2 and the routing daemons name in /etc/iproute2/rt_protos.
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
        .map_err(|e| err(format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// podCIDR -> next hop, for the nodes other than `me` whose InternalIP is
/// on one of the `local` subnets. Nodes with missing or unusable data are
/// skipped.
pub fn desired(nodes: &[Node], me: &str, local: &[LocalAddr]) -> BTreeMap<Cidr, Ipv4Addr> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let name = n.metadata.name.as_deref().unwrap_or_default();
        if name == me {
            continue;
        }
        let Some(cidr) = n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) else {
            continue;
        };
        let Ok(cidr) = cidr.parse::<Cidr>() else {
            tracing::debug!(node = name, cidr, "podCIDR is not IPv4: no route");
            continue;
        };
        let cidr = Cidr {
            ip: cidr.network(),
            len: cidr.len,
        };
        let Some(via) = n
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
        else {
            tracing::debug!(node = name, "no IPv4 InternalIP: no route");
            continue;
        };
        if !local
            .iter()
            .any(|a| !a.ip.is_loopback() && a.same_subnet(via) && a.ip != via)
        {
            tracing::debug!(node = name, %via, "InternalIP not on a connected subnet: no route");
            continue;
        }
        if let Some(other) = out.insert(cidr, via) {
            if other != via {
                tracing::warn!(%cidr, %via, %other, "two nodes claim one podCIDR");
            }
        }
    }
    out
}

/// Our routes now in the kernel: destination -> next hop (None when the
/// route is not a plain `via` route, so it gets replaced).
fn current() -> Result<BTreeMap<Cidr, Option<Ipv4Addr>>, RouteError> {
    let text = ip(&["-4", "-o", "route", "show", "table", "main", "proto", PROTO])?;
    Ok(parse_routes(&text))
}

fn parse_routes(text: &str) -> BTreeMap<Cidr, Option<Ipv4Addr>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(dest) = words.next() else { continue };
        // `ip route` prints a /32 as a bare address.
        let dest = if dest.contains('/') {
            dest.to_string()
        } else {
            format!("{dest}/32")
        };
        let Ok(dest) = dest.parse::<Cidr>() else {
            continue;
        };
        let via = words
            .skip_while(|w| *w != "via")
            .nth(1)
            .and_then(|v| v.parse().ok());
        out.insert(dest, via);
    }
    out
}

/// Make the kernel's routes of ours equal `want`; returns how many routes
/// there are. One bad route does not stop the others.
pub fn reconcile(want: &BTreeMap<Cidr, Ipv4Addr>) -> Result<usize, RouteError> {
    let have = current()?;
    let mut first_error = None;
    for (dest, via) in &have {
        if !want.contains_key(dest) {
            let dest_s = dest.to_string();
            match ip(&["route", "del", &dest_s, "proto", PROTO]) {
                Ok(_) => tracing::info!(dest = %dest, via = ?via, "pod route removed"),
                Err(e) => {
                    tracing::warn!("{e}");
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    for (dest, via) in want {
        if have.get(dest) != Some(&Some(*via)) {
            let (dest_s, via_s) = (dest.to_string(), via.to_string());
            match ip(&["route", "replace", &dest_s, "via", &via_s, "proto", PROTO]) {
                Ok(_) => tracing::info!(dest = %dest, %via, "pod route"),
                Err(e) => {
                    tracing::warn!("{e}");
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(want.len()),
    }
}

/// Remove every route of ours.
pub fn cleanup() -> Result<(), RouteError> {
    ip(&["-4", "route", "flush", "table", "main", "proto", PROTO]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, ip: &str) -> Node {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "Hostname", "address": name},
                                      {"type": "InternalIP", "address": ip}]}}),
        )
        .unwrap()
    }

    #[test]
    fn routes_to_other_nodes_on_connected_subnets() {
        let nodes = vec![
            node("n1", Some("10.244.0.0/24"), "10.250.0.11"),
            node("n2", Some("10.244.1.0/24"), "10.250.0.12"),
            node("n3", Some("10.244.2.7/24"), "10.250.0.13"),
            node("far", Some("10.244.3.0/24"), "192.0.2.9"),
            node("v6", Some("fd00:1::/64"), "10.250.0.14"),
            node("nocidr", None, "10.250.0.15"),
            node("badip", Some("10.244.4.0/24"), "garbage"),
        ];
        let local = [
            LocalAddr {
                ip: "10.250.0.11".parse().unwrap(),
                prefix_len: 24,
            },
            LocalAddr {
                ip: "127.0.0.1".parse().unwrap(),
                prefix_len: 8,
            },
        ];
        let want = desired(&nodes, "n1", &local);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            want,
            vec![
                ("10.244.1.0/24".to_string(), "10.250.0.12".to_string()),
                ("10.244.2.0/24".to_string(), "10.250.0.13".to_string()),
            ]
        );
    }

    #[test]
    fn parses_ip_route_output() {
        let text = "10.244.1.0/24 via 10.250.0.12 dev eth0 proto 75 \n10.244.9.9 via 10.250.0.13 dev eth0 proto 75\n10.244.2.0/24 dev eth0 proto 75 scope link\n";
        let routes = parse_routes(text);
        assert_eq!(routes.len(), 3);
        assert_eq!(
            routes[&"10.244.9.9/32".parse().unwrap()],
            Some("10.250.0.13".parse().unwrap())
        );
        assert_eq!(routes[&"10.244.2.0/24".parse().unwrap()], None);
    }
}
