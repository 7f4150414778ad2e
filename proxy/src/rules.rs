//! Services and Endpoints -> the text of one nftables table, as upstream's
//! nftables proxier lays it out: a verdict map from `daddr . proto . port`
//! to a chain per Service port (so a packet's cost does not grow with the
//! number of Services), `numgen random` over per-endpoint chains that DNAT,
//! a mark for what must be masqueraded (hairpin, off-cluster clients,
//! NodePorts), and a set of Services without endpoints that are rejected at
//! once.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Endpoints, Service};

pub const TABLE: &str = "kube-proxy";
const MASQ_MARK: u32 = 0x4000;

/// One port of one Service, with the endpoints that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `<ns>/<name>:<port name>`, for chain names and logs.
    pub id: String,
    pub cluster_ip: Ipv4Addr,
    pub protocol: String,
    pub port: u16,
    pub node_port: Option<u16>,
    /// ClientIP affinity timeout in seconds.
    pub affinity: Option<u32>,
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// What the proxier needs to know besides the Services.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub cluster_cidr: Option<String>,
    /// CIDRs whose local addresses answer NodePorts.
    pub nodeport_addresses: Vec<String>,
}

/// The Service ports of `services` with their ready endpoints. Services
/// without a usable IPv4 ClusterIP (headless, ExternalName, IPv6) are skipped.
pub fn service_ports(services: &[Service], endpoints: &[Endpoints]) -> Vec<ServicePort> {
    let eps: BTreeMap<(String, String), &Endpoints> = endpoints
        .iter()
        .map(|e| {
            (
                (
                    e.metadata.namespace.clone().unwrap_or_default(),
                    e.metadata.name.clone().unwrap_or_default(),
                ),
                e,
            )
        })
        .collect();
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10800)
        });
        let ep = eps.get(&(ns.clone(), name.clone()));
        for p in spec.ports.iter().flatten() {
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let protocol = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            let port_name = p.name.clone().unwrap_or_default();
            let mut endpoints = Vec::new();
            for subset in ep.iter().flat_map(|e| e.subsets.iter().flatten()) {
                let ports = subset.ports.as_deref().unwrap_or_default();
                let Some(target) = ports.iter().find(|ep_port| {
                    ep_port.name.clone().unwrap_or_default() == port_name
                        && ep_port.protocol.as_deref().unwrap_or("TCP").to_lowercase() == protocol
                }) else {
                    continue;
                };
                let Ok(target) = u16::try_from(target.port) else {
                    continue;
                };
                for a in subset.addresses.iter().flatten() {
                    if let Ok(addr) = a.ip.parse::<Ipv4Addr>() {
                        endpoints.push((addr, target));
                    }
                }
            }
            endpoints.sort();
            endpoints.dedup();
            let node_port = p
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0);
            out.push(ServicePort {
                id: format!("{ns}/{name}:{port_name}"),
                cluster_ip: ip,
                protocol,
                port,
                node_port,
                affinity,
                endpoints,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id).then(a.port.cmp(&b.port)));
    out
}

/// A chain name from a service port id (nft names: letters, digits, `-_.`).
fn chain_name(prefix: &str, id: &str, port: u16, proto: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{clean}-{proto}{port}")
}

/// The whole table, replacing any previous one in the same transaction.
pub fn render(ports: &[ServicePort], settings: &Settings) -> String {
    let mut t = String::new();
    let w = &mut t;
    // Create-then-delete makes the delete succeed on a first sync, so the
    // whole replacement is one atomic transaction.
    let _ = writeln!(
        w,
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{"
    );
    let _ = writeln!(
        w,
        "\tchain nat-prerouting {{\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tjump services\n\t}}"
    );
    let _ = writeln!(
        w,
        "\tchain nat-output {{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}}"
    );
    let _ = writeln!(
        w,
        "\tchain nat-postrouting {{\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark & {MASQ_MARK:#x} == 0 return\n\t\tmeta mark set meta mark ^ {MASQ_MARK:#x}\n\t\tmasquerade fully-random\n\t}}"
    );
    let _ = writeln!(
        w,
        "\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark | {MASQ_MARK:#x}\n\t}}"
    );
    // Services without endpoints: refused at once (filter hooks run before
    // any routing towards the blackhole).
    let _ = writeln!(
        w,
        "\tset no-endpoint-services {{\n\t\ttype ipv4_addr . inet_proto . inet_service"
    );
    let empty: Vec<&ServicePort> = ports.iter().filter(|p| p.endpoints.is_empty()).collect();
    if !empty.is_empty() {
        let elems: Vec<String> = empty
            .iter()
            .map(|p| format!("{} . {} . {}", p.cluster_ip, p.protocol, p.port))
            .collect();
        let _ = writeln!(w, "\t\telements = {{ {} }}", elems.join(", "));
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(
        w,
        "\tset no-endpoint-nodeports {{\n\t\ttype inet_proto . inet_service"
    );
    let empty_np: Vec<String> = empty
        .iter()
        .filter_map(|p| p.node_port.map(|n| format!("{} . {n}", p.protocol)))
        .collect();
    if !empty_np.is_empty() {
        let _ = writeln!(w, "\t\telements = {{ {} }}", empty_np.join(", "));
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(
        w,
        "\tset nodeport-ips {{\n\t\ttype ipv4_addr\n\t\tflags interval"
    );
    if !settings.nodeport_addresses.is_empty() {
        let _ = writeln!(
            w,
            "\t\telements = {{ {} }}",
            settings.nodeport_addresses.join(", ")
        );
    }
    let _ = writeln!(w, "\t}}");
    for (hook, extra) in [("input", ""), ("forward", ""), ("output", "")] {
        let _ = writeln!(
            w,
            "\tchain filter-{hook} {{\n\t\ttype filter hook {hook} priority -110; policy accept;{extra}\n\t\tct state new ip daddr . meta l4proto . th dport @no-endpoint-services reject\n\t\tct state new ip daddr @nodeport-ips meta l4proto . th dport @no-endpoint-nodeports reject\n\t}}"
        );
    }

    // Per service port: the service chain, the external (NodePort) chain,
    // the endpoint chains, the affinity sets.
    let mut service_map = Vec::new();
    let mut nodeport_map = Vec::new();
    for p in ports.iter().filter(|p| !p.endpoints.is_empty()) {
        let svc = chain_name("svc", &p.id, p.port, &p.protocol);
        service_map.push(format!(
            "{} . {} . {} : goto {svc}",
            p.cluster_ip, p.protocol, p.port
        ));
        let _ = writeln!(w, "\tchain {svc} {{");
        if let Some(cidr) = &settings.cluster_cidr {
            let _ = writeln!(
                w,
                "\t\tip daddr {} ip saddr != {cidr} jump mark-for-masquerade",
                p.cluster_ip
            );
        }
        let seps: Vec<String> = (0..p.endpoints.len())
            .map(|i| format!("{}-ep{i}", chain_name("sep", &p.id, p.port, &p.protocol)))
            .collect();
        if p.affinity.is_some() {
            for sep in &seps {
                let _ = writeln!(w, "\t\tip saddr @{sep}-aff goto {sep}");
            }
        }
        let arms: Vec<String> = seps
            .iter()
            .enumerate()
            .map(|(i, sep)| format!("{i} : goto {sep}"))
            .collect();
        let _ = writeln!(
            w,
            "\t\tnumgen random mod {} vmap {{ {} }}\n\t}}",
            seps.len(),
            arms.join(", ")
        );
        if let Some(np) = p.node_port {
            let ext = chain_name("ext", &p.id, p.port, &p.protocol);
            nodeport_map.push(format!("{} . {np} : goto {ext}", p.protocol));
            let _ = writeln!(
                w,
                "\tchain {ext} {{\n\t\tjump mark-for-masquerade\n\t\tgoto {svc}\n\t}}"
            );
        }
        for (sep, (ip, port)) in seps.iter().zip(&p.endpoints) {
            if let Some(timeout) = p.affinity {
                let _ = writeln!(
                    w,
                    "\tset {sep}-aff {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
                );
            }
            let _ = writeln!(w, "\tchain {sep} {{");
            // Hairpin: a pod reaching itself through its Service.
            let _ = writeln!(w, "\t\tip saddr {ip} jump mark-for-masquerade");
            if p.affinity.is_some() {
                let _ = writeln!(w, "\t\tupdate @{sep}-aff {{ ip saddr }}");
            }
            let _ = writeln!(
                w,
                "\t\tmeta l4proto {} dnat to {ip}:{port}\n\t}}",
                p.protocol
            );
        }
    }
    let _ = writeln!(
        w,
        "\tmap service-ips {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict"
    );
    if !service_map.is_empty() {
        let _ = writeln!(w, "\t\telements = {{ {} }}", service_map.join(",\n\t\t\t"));
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(
        w,
        "\tmap service-nodeports {{\n\t\ttype inet_proto . inet_service : verdict"
    );
    if !nodeport_map.is_empty() {
        let _ = writeln!(w, "\t\telements = {{ {} }}", nodeport_map.join(",\n\t\t\t"));
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(
        w,
        "\tchain services {{\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports\n\t}}"
    );
    let _ = writeln!(w, "}}");
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ports_follow_named_endpoint_ports_and_skip_headless() {
        let services = vec![
            svc(json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.20", "type": "NodePort",
                    "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}})),
            svc(
                json!({"metadata": {"name": "headless", "namespace": "default"},
                "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
            ),
        ];
        let eps: Vec<Endpoints> = vec![serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.244.1.2"}, {"ip": "10.244.2.2"}],
                "notReadyAddresses": [{"ip": "10.244.3.2"}],
                "ports": [{"name": "http", "port": 8080}]}]
        }))
        .unwrap()];
        let ports = service_ports(&services, &eps);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].node_port, Some(30080));
        assert_eq!(
            ports[0].endpoints,
            vec![
                ("10.244.1.2".parse().unwrap(), 8080),
                ("10.244.2.2".parse().unwrap(), 8080)
            ]
        );
        let text = render(
            &ports,
            &Settings {
                cluster_cidr: Some("10.244.0.0/16".into()),
                nodeport_addresses: vec!["10.250.0.11/32".into()],
            },
        );
        assert!(text.contains("numgen random mod 2 vmap"));
        assert!(text.contains("dnat to 10.244.2.2:8080"));
        assert!(text.contains("10.96.0.20 . tcp . 80 : goto svc-default-web-http-tcp80"));
        assert!(text.contains("tcp . 30080 : goto ext-default-web-http-tcp80"));
    }

    #[test]
    fn services_without_endpoints_are_rejected() {
        let services = vec![svc(
            json!({"metadata": {"name": "lonely", "namespace": "ns"},
            "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 53, "protocol": "UDP"}]}}),
        )];
        let ports = service_ports(&services, &[]);
        let text = render(&ports, &Settings::default());
        assert!(text.contains("elements = { 10.96.0.30 . udp . 53 }"));
        assert!(!text.contains("svc-ns-lonely"));
    }
}
