//! Services and Endpoints -> the proxier's view: one [`ServicePort`] per
//! port of a Service, with the ready endpoints that serve it (upstream's
//! ServicePortMap + EndpointsMap, built from core/v1 Endpoints since this
//! apiserver serves no EndpointSlices). Data that cannot be proxied —
//! headless and ExternalName Services, IPv6, ports out of range, an
//! Endpoints port that matches no Service port — is skipped with a log,
//! never an error.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Endpoints, Service};

/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// `<namespace>/<name>` of a Service (and of its Endpoints).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
}

impl ServiceName {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The name of the object `meta` describes (namespace "default" when unset).
    pub fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self::new(
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The transport protocols a Service port may use, as nft spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// From the API's spelling; a missing protocol is TCP (the default).
    fn parse(p: Option<&str>) -> Option<Self> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// One port of one Service with the endpoints that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub service: ServiceName,
    /// The port's name ("" for a Service's single unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// spec.externalIPs and status.loadBalancer.ingress IPs: reached like a
    /// NodePort (masqueraded).
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` with its timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// Ready endpoints, sorted, without duplicates.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name:port` as upstream logs a ServicePortName.
    pub fn display_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}", self.service)
        } else {
            format!("{}:{}", self.service, self.port_name)
        }
    }
}

/// The ports of `svc` that this proxier serves, with their endpoints from
/// `endpoints` (the Service's Endpoints object, if any). Empty for
/// Services that are not proxied (headless, ExternalName, no IPv4
/// ClusterIP).
pub fn service_ports(svc: &Service, endpoints: Option<&Endpoints>) -> Vec<ServicePort> {
    let service = ServiceName::of(&svc.metadata);
    let Some(spec) = &svc.spec else {
        tracing::warn!(%service, "Service without spec: skipped");
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        tracing::debug!(%service, "ExternalName Service: not proxied");
        return Vec::new();
    }
    let cluster_ip = match spec.cluster_ip.as_deref() {
        None | Some("") => {
            tracing::debug!(%service, "Service without a ClusterIP yet: skipped");
            return Vec::new();
        }
        Some("None") => {
            tracing::debug!(%service, "headless Service: not proxied");
            return Vec::new();
        }
        Some(ip) => match ip.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => {
                tracing::info!(%service, clusterIP = ip, "ClusterIP is not IPv4: skipped");
                return Vec::new();
            }
        },
    };
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(
            svc.status
                .iter()
                .filter_map(|s| s.load_balancer.as_ref())
                .flat_map(|lb| lb.ingress.iter().flatten())
                .filter_map(|i| i.ip.as_deref()),
        )
        .filter_map(|ip| match ip.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                tracing::info!(%service, ip, "external IP is not IPv4: skipped");
                None
            }
        })
        .collect();
    external_ips.sort();
    external_ips.dedup();
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });

    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let port_name = p.name.clone().unwrap_or_default();
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
            tracing::warn!(%service, port = %port_name, protocol = ?p.protocol, "unknown protocol: port skipped");
            continue;
        };
        let Some(port) = u16::try_from(p.port).ok().filter(|p| *p != 0) else {
            tracing::warn!(%service, port = p.port, "port out of range: skipped");
            continue;
        };
        let node_port = match p.node_port {
            None | Some(0) => None,
            Some(n) => match u16::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    tracing::warn!(%service, nodePort = n, "nodePort out of range: ignored");
                    None
                }
            },
        };
        out.push(ServicePort {
            service: service.clone(),
            endpoints: ready_endpoints(&service, endpoints, &port_name, protocol),
            port_name,
            protocol,
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            affinity_timeout,
        });
    }
    // Two ports of one Service may not share (protocol, port); if the API
    // let such a Service through, keep the first.
    let mut seen = BTreeSet::new();
    out.retain(|sp| {
        let fresh = seen.insert((sp.protocol, sp.port));
        if !fresh {
            tracing::warn!(%service, port = sp.port, "duplicate Service port: skipped");
        }
        fresh
    });
    out
}

/// The ready addresses of the Endpoints subsets that carry a port named
/// `port_name` with `protocol` (targetPorts, named or not, are already
/// resolved to numbers there).
fn ready_endpoints(
    service: &ServiceName,
    endpoints: Option<&Endpoints>,
    port_name: &str,
    protocol: Protocol,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in endpoints.iter().flat_map(|e| e.subsets.iter().flatten()) {
        let Some(port) = subset.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = u16::try_from(port.port).ok().filter(|p| *p != 0) else {
            tracing::warn!(%service, port = port.port, "Endpoints port out of range: skipped");
            continue;
        };
        for address in subset.addresses.iter().flatten() {
            match address.ip.parse::<Ipv4Addr>() {
                Ok(ip) if !ip.is_unspecified() => out.push(Endpoint { ip, port }),
                _ => {
                    tracing::info!(%service, ip = %address.ip, "endpoint address is not a usable IPv4 address: skipped")
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn eps(v: serde_json::Value) -> Endpoints {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn named_ports_match_endpoints_ports_by_name() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "type": "NodePort",
                "sessionAffinity": "ClientIP",
                "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP"}]}}));
        let e = eps(json!({"metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.244.2.2"}, {"ip": "10.244.1.2"}, {"ip": "fd00::1"}],
                "notReadyAddresses": [{"ip": "10.244.3.2"}],
                "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]}]}));
        let ports = service_ports(&s, Some(&e));
        assert_eq!(ports.len(), 2);
        let http = &ports[0];
        assert_eq!(http.node_port, Some(30080));
        assert_eq!(http.affinity_timeout, Some(DEFAULT_AFFINITY_TIMEOUT));
        assert_eq!(
            http.endpoints,
            vec![
                Endpoint {
                    ip: "10.244.1.2".parse().unwrap(),
                    port: 8080
                },
                Endpoint {
                    ip: "10.244.2.2".parse().unwrap(),
                    port: 8080
                }
            ]
        );
        assert_eq!(ports[1].protocol, Protocol::Udp);
        assert_eq!(ports[1].endpoints[0].port, 5353);
    }

    #[test]
    fn unproxied_and_broken_services_are_skipped() {
        for s in [
            json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "example.org"}}),
            json!({"metadata": {"name": "v6"}, "spec": {"clusterIP": "fd00::10", "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "pending"}, "spec": {"ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "nospec"}}),
            json!({"metadata": {"name": "noports"}, "spec": {"clusterIP": "10.96.0.9"}}),
        ] {
            assert!(service_ports(&svc(s.clone()), None).is_empty(), "{s}");
        }
        // Bad ports are dropped one by one; the good one stays.
        let s = svc(
            json!({"metadata": {"name": "mixed"}, "spec": {"clusterIP": "10.96.0.9",
            "ports": [{"port": 70000}, {"port": 80, "protocol": "ICMP"}, {"port": 81}, {"port": 81, "name": "again"}]}}),
        );
        let ports = service_ports(&s, None);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 81);
        assert!(ports[0].endpoints.is_empty());
    }

    #[test]
    fn endpoints_without_the_port_give_no_endpoints() {
        let s = svc(json!({"metadata": {"name": "a", "namespace": "n"},
            "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "http", "port": 80}]}}));
        let e = eps(json!({"metadata": {"name": "a", "namespace": "n"},
            "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"name": "metrics", "port": 9090}]},
                        {"addresses": [{"ip": "10.244.0.6"}]}]}));
        assert!(service_ports(&s, Some(&e))[0].endpoints.is_empty());
    }

    #[test]
    fn external_ips_and_affinity_timeout() {
        let s = svc(json!({"metadata": {"name": "lb"},
            "spec": {"clusterIP": "10.96.0.8", "type": "LoadBalancer", "externalIPs": ["192.0.2.7", "bad"],
                "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                "ports": [{"port": 443, "nodePort": 31443}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}, {"hostname": "lb.example"}]}}}));
        let p = &service_ports(&s, None)[0];
        assert_eq!(p.service, ServiceName::new("default", "lb"));
        assert_eq!(
            p.external_ips,
            vec![
                "192.0.2.7".parse::<Ipv4Addr>().unwrap(),
                "192.0.2.9".parse().unwrap()
            ]
        );
        assert_eq!(p.affinity_timeout, Some(60));
    }
}
