//! The cluster domain's records, computed on each query from the reflector
//! stores of Services and Endpoints, as the Kubernetes DNS specification
//! (kubernetes/dns docs/specification.md, schema 1.0.1) and CoreDNS's
//! `kubernetes` plugin (with `pods insecure`) give them:
//!
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA = the ClusterIP; for a headless
//!   Service the ready endpoint IPs (none ready: NXDOMAIN); ExternalName:
//!   CNAME to the external name.
//! - `<hostname>.<svc>.<ns>.svc.<zone>`: the endpoint(s) with that hostname
//!   (an endpoint without one is named by its dashed IP, `10-244-1-5`).
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for each named port; the
//!   target is the Service's name, or each endpoint's name when headless.
//!   SRV on the Service's own name lists every port.
//! - PTR for ClusterIPs and for headless Services' ready endpoints.
//! - `a-b-c-d.<ns>.pod.<zone>`: A a.b.c.d (no lookup, as `pods insecure`).
//! - `dns-version.<zone>` TXT: the schema version.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Service};
use kube::runtime::reflector::{ObjectRef, Store};

/// The version of the DNS schema these records follow.
pub const SCHEMA_VERSION: &str = "1.0.1";

/// An ExternalName pointing into the zone is followed this many times at most
/// (Services may point at each other in a loop).
const MAX_CNAME_CHAIN: usize = 8;

/// What a query gets from the zone.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The name exists (NOERROR). `answers` may be empty: the name has no
    /// record of the asked type (NODATA).
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name does not exist in the zone.
    NxDomain,
    /// Not a name this server is authoritative for.
    NotOurs,
}

impl Answer {
    fn found(answers: Vec<Record>) -> Self {
        Answer::Found {
            answers,
            additionals: Vec::new(),
        }
    }

    fn nodata() -> Self {
        Answer::found(Vec::new())
    }
}

/// The cluster domain, answered from the reflectors' stores.
pub struct Zone {
    /// Lowercase, fully qualified (`cluster.local.`).
    origin: Name,
    /// The origin's labels, lowercase, root last.
    labels: Vec<String>,
    ttl: u32,
    serial: u32,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
}

/// The labels of `name`, lowercase.
fn labels_of(name: &Name) -> Vec<String> {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect()
}

/// An endpoint's IP in a name: `10.244.1.5` -> `10-244-1-5` (`:` for IPv6).
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The inverse of [`dashed`] for IPv4 (pod names `a-b-c-d`).
fn undashed(label: &str) -> Option<IpAddr> {
    label
        .replace('-', ".")
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(IpAddr::V4)
}

fn is_headless(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> bool {
    matches!(spec.cluster_ip.as_deref(), None | Some("") | Some("None"))
}

fn cluster_ips(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// A/AAAA for `ip` when `qtype` asks for that family.
fn address(owner: &Name, ttl: u32, ip: IpAddr, qtype: RecordType) -> Option<Record> {
    let rdata = match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(v4)),
        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v6)),
        _ => return None,
    };
    Some(Record::from_rdata(owner.clone(), ttl, rdata))
}

/// One ready endpoint address: its IP and its name inside the Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    ip: IpAddr,
    hostname: String,
}

impl Zone {
    pub fn new(
        domain: &str,
        ttl: u32,
        services: Store<Service>,
        endpoints: Store<Endpoints>,
    ) -> Result<Self, hickory_proto::ProtoError> {
        let mut origin = Name::from_ascii(domain.trim_end_matches('.'))?.to_lowercase();
        origin.set_fqdn(true);
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(Zone {
            labels: labels_of(&origin),
            origin,
            ttl,
            serial,
            services,
            endpoints,
        })
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Whether `name` lies inside the cluster domain.
    pub fn contains(&self, name: &Name) -> bool {
        self.origin.zone_of(name)
    }

    /// The zone's SOA, for the authority section of negative answers (its
    /// minimum is the TTL, as CoreDNS sets it).
    pub fn soa(&self) -> Record {
        let child = |label: &str| {
            Name::from_ascii(label)
                .and_then(|n| n.append_domain(&self.origin))
                .unwrap_or_else(|_| self.origin.clone())
        };
        Record::from_rdata(
            self.origin.clone(),
            self.ttl,
            RData::SOA(SOA::new(
                child("ns.dns"),
                child("hostmaster"),
                self.serial,
                7200,
                1800,
                86400,
                self.ttl,
            )),
        )
    }

    /// The answer for `qname`/`qtype`. `qname` is used as the owner of the
    /// answers (so the asker's spelling comes back); matching ignores case.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let mut answer = self.answer_one(qname, qtype);
        // Follow ExternalNames that point back into the zone, as CoreDNS does.
        for _ in 0..MAX_CNAME_CHAIN {
            let Answer::Found {
                answers,
                additionals,
            } = &mut answer
            else {
                break;
            };
            let Some(target) = dangling_cname(answers, qtype) else {
                break;
            };
            if !self.contains(&target) {
                break;
            }
            match self.answer_one(&target, qtype) {
                Answer::Found {
                    answers: more,
                    additionals: extra,
                } => {
                    answers.extend(more);
                    additionals.extend(extra);
                }
                _ => break,
            }
        }
        answer
    }

    fn answer_one(&self, qname: &Name, qtype: RecordType) -> Answer {
        let labels = labels_of(qname);
        if labels.len() > 2 && labels[labels.len() - 2..] == ["in-addr", "arpa"]
            || labels.len() > 2 && labels[labels.len() - 2..] == ["ip6", "arpa"]
        {
            return self.reverse(qname, qtype);
        }
        if !self.contains(qname) {
            return Answer::NotOurs;
        }
        let rest: Vec<&str> = labels[..labels.len() - self.labels.len()]
            .iter()
            .map(String::as_str)
            .collect();
        match rest.as_slice() {
            [] => self.apex(qtype),
            ["dns-version"] => self.version(qname, qtype),
            ["svc"] | ["pod"] => Answer::nodata(),
            [ns, "svc"] => {
                if self.namespace_has_services(ns) {
                    Answer::nodata()
                } else {
                    Answer::NxDomain
                }
            }
            [_, "pod"] => Answer::nodata(),
            [ip, _, "pod"] => match undashed(ip) {
                Some(ip) => {
                    Answer::found(address(qname, self.ttl, ip, qtype).into_iter().collect())
                }
                None => Answer::NxDomain,
            },
            [svc, ns, "svc"] => self.service(qname, ns, svc, qtype),
            [host, svc, ns, "svc"] if !host.starts_with('_') => {
                self.endpoint_name(qname, ns, svc, host, qtype)
            }
            [port, proto, svc, ns, "svc"] => {
                match (port.strip_prefix('_'), proto.strip_prefix('_')) {
                    (Some(port), Some(proto)) => {
                        self.named_port(qname, ns, svc, port, proto, qtype)
                    }
                    _ => Answer::NxDomain,
                }
            }
            _ => Answer::NxDomain,
        }
    }

    fn apex(&self, qtype: RecordType) -> Answer {
        match qtype {
            RecordType::SOA | RecordType::ANY => Answer::found(vec![self.soa()]),
            _ => Answer::nodata(),
        }
    }

    fn version(&self, qname: &Name, qtype: RecordType) -> Answer {
        match qtype {
            RecordType::TXT | RecordType::ANY => Answer::found(vec![Record::from_rdata(
                qname.clone(),
                self.ttl,
                RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])),
            )]),
            _ => Answer::nodata(),
        }
    }

    /// The name of the Service `svc` in `ns` inside the zone.
    fn service_name(&self, ns: &str, svc: &str) -> Option<Name> {
        Name::from_ascii(format!("{svc}.{ns}.svc"))
            .and_then(|n| n.append_domain(&self.origin))
            .ok()
    }

    /// An endpoint's name inside its Service.
    fn endpoint_fqdn(&self, ns: &str, svc: &str, hostname: &str) -> Option<Name> {
        Name::from_ascii(format!("{hostname}.{svc}.{ns}.svc"))
            .and_then(|n| n.append_domain(&self.origin))
            .ok()
    }

    fn namespace_has_services(&self, ns: &str) -> bool {
        self.services
            .state()
            .iter()
            .any(|s| s.metadata.namespace.as_deref() == Some(ns))
    }

    fn find_service(&self, ns: &str, svc: &str) -> Option<std::sync::Arc<Service>> {
        self.services.get(&ObjectRef::new(svc).within(ns))
    }

    fn subsets(&self, ns: &str, svc: &str) -> Vec<EndpointSubset> {
        self.endpoints
            .get(&ObjectRef::new(svc).within(ns))
            .and_then(|e| e.subsets.clone())
            .unwrap_or_default()
    }

    /// The ready addresses of one subset (not-ready ones too when the
    /// Service asks for them to be published).
    fn ready(&self, service: &Service, subset: &EndpointSubset) -> Vec<Endpoint> {
        let tolerate = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false)
            || service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("service.alpha.kubernetes.io/tolerate-unready-endpoints"))
                .is_some_and(|v| v == "true");
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .filter(|_| tolerate);
        let mut out: Vec<Endpoint> = subset
            .addresses
            .iter()
            .flatten()
            .chain(not_ready)
            .filter_map(|a| {
                let ip: IpAddr = a.ip.parse().ok()?;
                let hostname = a
                    .hostname
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_else(|| dashed(ip));
                Some(Endpoint { ip, hostname })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every ready endpoint of the Service, over all subsets.
    fn all_ready(&self, service: &Service, ns: &str, svc: &str) -> Vec<Endpoint> {
        let set: BTreeSet<Endpoint> = self
            .subsets(ns, svc)
            .iter()
            .flat_map(|s| self.ready(service, s))
            .collect();
        set.into_iter().collect()
    }

    fn service(&self, qname: &Name, ns: &str, svc: &str, qtype: RecordType) -> Answer {
        let Some(service) = self.find_service(ns, svc) else {
            return Answer::NxDomain;
        };
        let Some(spec) = service.spec.as_ref() else {
            return Answer::NxDomain;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            let Some(target) = spec
                .external_name
                .as_deref()
                .and_then(|n| Name::from_ascii(n.trim_end_matches('.')).ok())
                .map(|mut n| {
                    n.set_fqdn(true);
                    n
                })
            else {
                return Answer::nodata();
            };
            return Answer::found(vec![Record::from_rdata(
                qname.clone(),
                self.ttl,
                RData::CNAME(CNAME(target)),
            )]);
        }
        let ready = if is_headless(spec) {
            let ready = self.all_ready(&service, ns, svc);
            if ready.is_empty() {
                // Spec 1.0.1: a headless Service without ready endpoints has
                // no name.
                return Answer::NxDomain;
            }
            Some(ready)
        } else {
            None
        };
        if qtype == RecordType::SRV {
            return self.srv(qname, &service, ns, svc, |_, _| true);
        }
        let ips: Vec<IpAddr> = match ready {
            Some(ready) => {
                let ips: BTreeSet<IpAddr> = ready.into_iter().map(|e| e.ip).collect();
                ips.into_iter().collect()
            }
            None => cluster_ips(spec),
        };
        Answer::found(
            ips.into_iter()
                .filter_map(|ip| address(qname, self.ttl, ip, qtype))
                .collect(),
        )
    }

    fn endpoint_name(
        &self,
        qname: &Name,
        ns: &str,
        svc: &str,
        host: &str,
        qtype: RecordType,
    ) -> Answer {
        let Some(service) = self.find_service(ns, svc) else {
            return Answer::NxDomain;
        };
        let ips: BTreeSet<IpAddr> = self
            .all_ready(&service, ns, svc)
            .into_iter()
            .filter(|e| e.hostname == host)
            .map(|e| e.ip)
            .collect();
        if ips.is_empty() {
            return Answer::NxDomain;
        }
        Answer::found(
            ips.into_iter()
                .filter_map(|ip| address(qname, self.ttl, ip, qtype))
                .collect(),
        )
    }

    fn named_port(
        &self,
        qname: &Name,
        ns: &str,
        svc: &str,
        port: &str,
        proto: &str,
        qtype: RecordType,
    ) -> Answer {
        let Some(service) = self.find_service(ns, svc) else {
            return Answer::NxDomain;
        };
        let matches = |name: Option<&str>, protocol: Option<&str>| {
            name.is_some_and(|n| n.eq_ignore_ascii_case(port))
                && protocol.unwrap_or("TCP").eq_ignore_ascii_case(proto)
        };
        match self.srv(qname, &service, ns, svc, matches) {
            Answer::Found { answers, .. } if answers.is_empty() => Answer::NxDomain,
            Answer::Found {
                answers,
                additionals,
            } if qtype == RecordType::SRV || qtype == RecordType::ANY => Answer::Found {
                answers,
                additionals,
            },
            Answer::Found { .. } => Answer::nodata(),
            other => other,
        }
    }

    /// SRV records for the Service's ports that `wanted(name, protocol)`
    /// selects, with the targets' addresses as additionals.
    fn srv(
        &self,
        qname: &Name,
        service: &Service,
        ns: &str,
        svc: &str,
        wanted: impl Fn(Option<&str>, Option<&str>) -> bool,
    ) -> Answer {
        let Some(spec) = service.spec.as_ref() else {
            return Answer::NxDomain;
        };
        // (target, port, address of the target)
        let mut targets: Vec<(Name, u16, IpAddr)> = Vec::new();
        if is_headless(spec) {
            for subset in self.subsets(ns, svc) {
                for p in subset.ports.iter().flatten() {
                    if !wanted(p.name.as_deref(), p.protocol.as_deref()) {
                        continue;
                    }
                    let Ok(port) = u16::try_from(p.port) else {
                        continue;
                    };
                    for e in self.ready(service, &subset) {
                        if let Some(target) = self.endpoint_fqdn(ns, svc, &e.hostname) {
                            targets.push((target, port, e.ip));
                        }
                    }
                }
            }
        } else if let Some(target) = self.service_name(ns, svc) {
            for p in spec.ports.iter().flatten() {
                if !wanted(p.name.as_deref(), p.protocol.as_deref()) {
                    continue;
                }
                let Ok(port) = u16::try_from(p.port) else {
                    continue;
                };
                for ip in cluster_ips(spec) {
                    targets.push((target.clone(), port, ip));
                }
            }
        }
        targets.sort();
        targets.dedup();
        // Equal priority; the weight shares 100 among the targets (CoreDNS).
        let weight = u16::try_from(100 / targets.len().max(1))
            .unwrap_or(1)
            .max(1);
        let mut answers: Vec<Record> = Vec::new();
        let mut additionals: Vec<Record> = Vec::new();
        for (target, port, ip) in targets {
            let srv = Record::from_rdata(
                qname.clone(),
                self.ttl,
                RData::SRV(SRV::new(0, weight, port, target.clone())),
            );
            if !answers.contains(&srv) {
                answers.push(srv);
            }
            if let Some(a) = address(&target, self.ttl, ip, RecordType::ANY) {
                if !additionals.contains(&a) {
                    additionals.push(a);
                }
            }
        }
        Answer::Found {
            answers,
            additionals,
        }
    }

    /// PTR for a ClusterIP or a headless Service's endpoint. Other reverse
    /// names are not ours (CoreDNS falls through to the next plugin).
    fn reverse(&self, qname: &Name, qtype: RecordType) -> Answer {
        let Ok(net) = qname.parse_arpa_name() else {
            return Answer::NotOurs;
        };
        let ip = net.addr();
        if net.prefix_len() != net.max_prefix_len() {
            return Answer::NotOurs;
        }
        let mut targets: BTreeSet<Name> = BTreeSet::new();
        for service in self.services.state() {
            let (Some(ns), Some(svc), Some(spec)) = (
                service.metadata.namespace.as_deref(),
                service.metadata.name.as_deref(),
                service.spec.as_ref(),
            ) else {
                continue;
            };
            if spec.type_.as_deref() == Some("ExternalName") {
                continue;
            }
            if is_headless(spec) {
                for e in self.all_ready(&service, ns, svc) {
                    if e.ip == ip {
                        targets.extend(self.endpoint_fqdn(ns, svc, &e.hostname));
                    }
                }
            } else if cluster_ips(spec).contains(&ip) {
                targets.extend(self.service_name(ns, svc));
            }
        }
        if targets.is_empty() {
            return Answer::NotOurs;
        }
        if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
            return Answer::nodata();
        }
        Answer::found(
            targets
                .into_iter()
                .map(|t| Record::from_rdata(qname.clone(), self.ttl, RData::PTR(PTR(t))))
                .collect(),
        )
    }
}

/// The target of a CNAME that ends `answers` when the asker wanted another
/// type: the name still to be resolved.
pub fn dangling_cname(answers: &[Record], qtype: RecordType) -> Option<Name> {
    if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
        return None;
    }
    match answers.last().map(|r| &r.data) {
        Some(RData::CNAME(CNAME(target))) => Some(target.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn store<K>(objects: Vec<serde_json::Value>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
    {
        let mut writer: Writer<K> = Writer::default();
        for o in objects {
            writer.apply_watcher_event(&Event::Apply(serde_json::from_value(o).unwrap()));
        }
        writer.as_reader()
    }

    fn zone() -> Zone {
        let services = store::<Service>(vec![
            json!({"metadata": {"name": "nginx", "namespace": "default"},
                "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}}),
            json!({"metadata": {"name": "db", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"name": "empty", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.test"}}),
            json!({"metadata": {"name": "alias", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "nginx.default.svc.cluster.local"}}),
        ]);
        let endpoints = store::<Endpoints>(vec![json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "subsets": [{
                "addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.5"}],
                "notReadyAddresses": [{"ip": "10.244.3.5"}],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]})]);
        Zone::new("cluster.local", 30, services, endpoints).unwrap()
    }

    fn ask(z: &Zone, name: &str, qtype: RecordType) -> Answer {
        z.answer(&Name::from_ascii(name).unwrap(), qtype)
    }

    fn rdata(a: &Answer) -> Vec<String> {
        match a {
            Answer::Found { answers, .. } => answers.iter().map(|r| r.data.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cluster_ip_service() {
        let z = zone();
        let q = "nginx.default.svc.cluster.local.";
        assert_eq!(rdata(&ask(&z, q, RecordType::A)), ["10.96.0.20"]);
        assert_eq!(
            rdata(&ask(&z, "NGINX.Default.svc.cluster.local.", RecordType::A)),
            ["10.96.0.20"]
        );
        assert!(rdata(&ask(&z, q, RecordType::AAAA)).is_empty(), "NODATA");
        assert_eq!(
            rdata(&ask(
                &z,
                "_http._tcp.nginx.default.svc.cluster.local.",
                RecordType::SRV
            )),
            ["0 100 80 nginx.default.svc.cluster.local."]
        );
        assert_eq!(
            rdata(&ask(&z, q, RecordType::SRV)),
            [
                "0 50 80 nginx.default.svc.cluster.local.",
                "0 50 81 nginx.default.svc.cluster.local."
            ]
        );
        assert_eq!(
            ask(
                &z,
                "_http._udp.nginx.default.svc.cluster.local.",
                RecordType::SRV
            ),
            Answer::NxDomain
        );
        assert_eq!(
            rdata(&ask(&z, "20.0.96.10.in-addr.arpa.", RecordType::PTR)),
            ["nginx.default.svc.cluster.local."]
        );
    }

    #[test]
    fn headless_service() {
        let z = zone();
        assert_eq!(
            rdata(&ask(&z, "db.prod.svc.cluster.local.", RecordType::A)),
            ["10.244.1.5", "10.244.2.5"]
        );
        assert_eq!(
            rdata(&ask(&z, "db-0.db.prod.svc.cluster.local.", RecordType::A)),
            ["10.244.1.5"]
        );
        assert_eq!(
            rdata(&ask(
                &z,
                "10-244-2-5.db.prod.svc.cluster.local.",
                RecordType::A
            )),
            ["10.244.2.5"]
        );
        assert_eq!(
            ask(&z, "10-244-3-5.db.prod.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        let Answer::Found {
            answers,
            additionals,
        } = ask(&z, "_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV)
        else {
            panic!()
        };
        let srv: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(
            srv,
            [
                "0 50 5432 10-244-2-5.db.prod.svc.cluster.local.",
                "0 50 5432 db-0.db.prod.svc.cluster.local.",
            ]
        );
        assert_eq!(additionals.len(), 2);
        assert_eq!(
            rdata(&ask(&z, "5.1.244.10.in-addr.arpa.", RecordType::PTR)),
            ["db-0.db.prod.svc.cluster.local."]
        );
        assert_eq!(
            ask(&z, "empty.prod.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn external_names_pods_and_the_rest() {
        let z = zone();
        assert_eq!(
            rdata(&ask(&z, "ext.default.svc.cluster.local.", RecordType::A)),
            ["example.test."]
        );
        assert_eq!(
            rdata(&ask(&z, "alias.default.svc.cluster.local.", RecordType::A)),
            ["nginx.default.svc.cluster.local.", "10.96.0.20"]
        );
        assert_eq!(
            rdata(&ask(&z, "10-244-7-9.any.pod.cluster.local.", RecordType::A)),
            ["10.244.7.9"]
        );
        assert_eq!(
            ask(&z, "nope.any.pod.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            rdata(&ask(&z, "dns-version.cluster.local.", RecordType::TXT)),
            ["1.0.1"]
        );
        assert_eq!(
            ask(&z, "nope.default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            ask(&z, "nope.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert!(rdata(&ask(&z, "prod.svc.cluster.local.", RecordType::A)).is_empty());
        assert_eq!(
            ask(&z, "a.b.c.d.e.f.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(ask(&z, "example.com.", RecordType::A), Answer::NotOurs);
        assert_eq!(
            ask(&z, "cluster.localhost.", RecordType::A),
            Answer::NotOurs
        );
        assert_eq!(
            ask(&z, "9.9.9.9.in-addr.arpa.", RecordType::PTR),
            Answer::NotOurs
        );
        assert_eq!(rdata(&ask(&z, "cluster.local.", RecordType::SOA)).len(), 1);
    }
}
