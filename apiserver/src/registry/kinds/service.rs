//! core/v1 Service: defaults (type, ports, traffic policies, IP families),
//! validation, field selectors and the table. ClusterIP and NodePort
//! allocation belong to the server; [`patch_allocated_values`] helps it keep
//! them across updates.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
    SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};

use super::print::{column, format_labels};
use super::validation::{
    is_valid_port_num, validate_cidr, validate_dns1123_label, validate_dns1123_subdomain,
    validate_ip, validate_labels, validate_object_meta, validate_port_num_or_name,
    validate_qualified_name, NameRule, Path, FIELD_IMMUTABLE, PROTOCOLS,
};
use crate::strategy::{Column, FieldError, KindStrategy};

const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i32 = 10800;
const MAX_CLIENT_IP_TIMEOUT_SECONDS: i32 = 86400;
const LB_ONLY: &str = "may only be used when `type` is 'LoadBalancer'";

pub struct ServiceStrategy;

impl KindStrategy for ServiceStrategy {
    type Object = Service;

    fn default(&self, svc: &mut Service) {
        let spec = svc.spec.get_or_insert_with(Default::default);
        default_session_affinity(spec);
        if spec.type_.as_deref().is_none_or(str::is_empty) {
            spec.type_ = Some("ClusterIP".to_string());
        }
        for port in spec.ports.iter_mut().flatten() {
            default_port(port);
        }
        if externally_accessible(spec)
            && spec
                .external_traffic_policy
                .as_deref()
                .is_none_or(str::is_empty)
        {
            spec.external_traffic_policy = Some("Cluster".to_string());
        }
        let type_ = spec.type_.clone().unwrap_or_default();
        if spec.internal_traffic_policy.is_none() && type_ != "ExternalName" {
            spec.internal_traffic_policy = Some("Cluster".to_string());
        }
        if type_ == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
            default_ingress_ip_mode(svc.status.as_mut());
        }
        if let Some(spec) = svc.spec.as_mut() {
            sync_cluster_ips(spec);
            default_ip_families(spec);
        }
    }

    /// Upstream starts with an empty status (`{"loadBalancer": {}}`).
    fn prepare_for_create(&self, svc: &mut Service) {
        svc.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus::default()),
            ..Default::default()
        });
    }

    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&svc.metadata, true, NameRule::Dns1035Label);
        let empty = ServiceSpec::default();
        errs.extend(validate_spec(svc.spec.as_ref().unwrap_or(&empty)));
        errs
    }

    /// Judges the update as it will be stored: the server keeps allocated
    /// values the update omits (see [`patch_allocated_values`]).
    fn validate_update(&self, new: &Service, old: &Service) -> Vec<FieldError> {
        let mut new = new.clone();
        patch_allocated_values(&mut new, old);
        let empty = ServiceSpec::default();
        let (n, o) = (
            new.spec.as_ref().unwrap_or(&empty),
            old.spec.as_ref().unwrap_or(&empty),
        );
        let mut errs = validate_cluster_ips_update(n, o);
        errs.extend(validate_ip_families_update(n, o));
        if type_of(n) == "LoadBalancer"
            && type_of(o) == "LoadBalancer"
            && n.load_balancer_class != o.load_balancer_class
        {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("loadBalancerClass"),
                &n.load_balancer_class,
                "may not change once set",
            ));
        }
        if needs_health_check(n)
            && needs_health_check(o)
            && n.health_check_node_port != o.health_check_node_port
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("healthCheckNodePort"),
                FIELD_IMMUTABLE,
            ));
        }
        errs.extend(self.validate(&new));
        errs
    }

    fn field_attrs(&self, svc: &Service) -> Vec<(&'static str, String)> {
        let spec = svc.spec.as_ref();
        vec![
            (
                "spec.clusterIP",
                spec.and_then(|s| s.cluster_ip.clone()).unwrap_or_default(),
            ),
            (
                "spec.type",
                spec.and_then(|s| s.type_.clone()).unwrap_or_default(),
            ),
        ]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Type", "string", 0, TYPE_DOC),
            column("Cluster-IP", "string", 0, CLUSTER_IP_DOC),
            column("External-IP", "string", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system."),
            column("Port(s)", "string", 0, "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
            Column::age(),
            column("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"),
        ]
    }

    fn cells(&self, svc: &Service, age: &str) -> Vec<Value> {
        let spec = svc.spec.clone().unwrap_or_default();
        let cluster_ip = spec
            .cluster_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .cloned();
        let ports = port_string(spec.ports.as_deref().unwrap_or_default());
        vec![
            Value::from(svc.metadata.name.clone().unwrap_or_default()),
            Value::from(type_of(&spec)),
            Value::from(cluster_ip.unwrap_or_else(|| "<none>".to_string())),
            Value::from(external_ip(svc)),
            Value::from(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports
            }),
            Value::from(age),
            Value::from(format_labels(spec.selector.as_ref())),
        ]
    }
}

const TYPE_DOC: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const CLUSTER_IP_DOC: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";

fn type_of(spec: &ServiceSpec) -> String {
    spec.type_.clone().unwrap_or_default()
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips
        .as_deref()
        .is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

/// Upstream's service.ExternallyAccessible.
fn externally_accessible(spec: &ServiceSpec) -> bool {
    match type_of(spec).as_str() {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => spec
            .external_ips
            .as_ref()
            .is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

/// LoadBalancer services with a Local policy get a health check node port.
fn needs_health_check(spec: &ServiceSpec) -> bool {
    type_of(spec) == "LoadBalancer" && spec.external_traffic_policy.as_deref() == Some("Local")
}

// ---- defaults ----

fn default_session_affinity(spec: &mut ServiceSpec) {
    if spec.session_affinity.as_deref().is_none_or(str::is_empty) {
        spec.session_affinity = Some("None".to_string());
    }
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .is_some_and(|c| c.timeout_seconds.is_some());
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
}

fn default_port(port: &mut ServicePort) {
    if port.protocol.as_deref().is_none_or(str::is_empty) {
        port.protocol = Some("TCP".to_string());
    }
    let unset = match &port.target_port {
        None => true,
        Some(IntOrString::Int(0)) => true,
        Some(IntOrString::String(s)) => s.is_empty(),
        Some(IntOrString::Int(_)) => false,
    };
    if unset {
        port.target_port = Some(IntOrString::Int(port.port));
    }
}

fn default_ingress_ip_mode(status: Option<&mut ServiceStatus>) {
    let ingress = status
        .and_then(|s| s.load_balancer.as_mut())
        .and_then(|lb| lb.ingress.as_mut());
    for entry in ingress.into_iter().flatten() {
        if entry.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && entry.ip_mode.is_none() {
            entry.ip_mode = Some("VIP".to_string());
        }
    }
}

/// Old clients set only `clusterIP`: mirror it into `clusterIPs`.
fn sync_cluster_ips(spec: &mut ServiceSpec) {
    let cluster_ip = spec.cluster_ip.clone().unwrap_or_default();
    if !cluster_ip.is_empty() && spec.cluster_ips.as_ref().is_none_or(|ips| ips.is_empty()) {
        spec.cluster_ips = Some(vec![cluster_ip]);
    }
}

/// IP family fields for a single-stack IPv4 cluster: SingleStack, or
/// RequireDualStack for selectorless headless services (which take every
/// family the cluster has); families from the given IPs, else IPv4.
fn default_ip_families(spec: &mut ServiceSpec) {
    if type_of(spec) == "ExternalName" {
        return;
    }
    let selectorless_headless =
        is_headless(spec) && spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if spec.ip_family_policy.is_none() {
        let policy = if selectorless_headless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.ip_family_policy = Some(policy.to_string());
    }
    if spec.ip_families.as_ref().is_none_or(|f| f.is_empty()) {
        let families: Vec<String> = spec
            .cluster_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .map(|ip| if ip.is_ipv6() { "IPv6" } else { "IPv4" }.to_string())
            .collect();
        spec.ip_families = Some(if families.is_empty() {
            vec!["IPv4".to_string()]
        } else {
            families
        });
    }
}

/// Upstream's REST layer keeps allocated values when an update omits them:
/// clusterIP(s) and node ports (matched by port number and protocol) and the
/// health check node port. Call before validating an update.
pub fn patch_allocated_values(new: &mut Service, old: &Service) {
    let (Some(n), Some(o)) = (new.spec.as_mut(), old.spec.as_ref()) else {
        return;
    };
    let needs_cluster_ip = |s: &ServiceSpec| type_of(s) != "ExternalName";
    if needs_cluster_ip(n)
        && needs_cluster_ip(o)
        && n.cluster_ip.as_deref().is_none_or(str::is_empty)
    {
        n.cluster_ip.clone_from(&o.cluster_ip);
        n.cluster_ips.clone_from(&o.cluster_ips);
    }
    let needs_node_ports =
        |s: &ServiceSpec| matches!(type_of(s).as_str(), "NodePort" | "LoadBalancer");
    if needs_node_ports(n) && needs_node_ports(o) {
        for port in n.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) != 0 {
                continue;
            }
            let previous = o
                .ports
                .iter()
                .flatten()
                .find(|p| p.port == port.port && p.protocol == port.protocol);
            port.node_port = previous.and_then(|p| p.node_port);
        }
    }
    if needs_health_check(n) && needs_health_check(o) && n.health_check_node_port.unwrap_or(0) == 0
    {
        n.health_check_node_port = o.health_check_node_port;
    }
}

// ---- validation ----

/// Upstream's ValidateService, spec part.
fn validate_spec(spec: &ServiceSpec) -> Vec<FieldError> {
    let path = Path::new("spec");
    let type_ = type_of(spec);
    let headless = is_headless(spec);
    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut errs = Vec::new();
    if ports.is_empty() && !headless && type_ != "ExternalName" {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    errs.extend(validate_type_specific(spec, &path));
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            &path.child("ports").index(i),
        ));
    }
    errs.extend(validate_labels(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    errs.extend(validate_session_affinity(spec, &path));
    errs.extend(validate_cluster_ips(spec, &path));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let external_ips_path = path.child("externalIPs");
        let p = external_ips_path.index(i);
        let ip_errs = validate_ip(&p, ip);
        if ip_errs.is_empty() {
            errs.extend(validate_non_special_ip(&p, ip));
        } else {
            errs.extend(ip_errs);
        }
    }
    match type_.as_str() {
        "" => errs.push(FieldError::required(&path.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    errs.extend(validate_port_uniqueness(spec, &path));
    errs.extend(validate_load_balancer_fields(spec, &path));
    errs.extend(validate_traffic_policies(spec, &path));
    errs
}

fn validate_type_specific(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match type_of(spec).as_str() {
        t @ ("LoadBalancer" | "NodePort") if is_headless(spec) => errs.push(FieldError::invalid(
            &path.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {t} services"),
        )),
        "ExternalName" => {
            let not_for_external_name = "may not be set for ExternalName services";
            if spec.cluster_ips.as_ref().is_some_and(|ips| !ips.is_empty()) {
                errs.push(FieldError::forbidden(
                    &path.child("clusterIPs"),
                    not_for_external_name,
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilies"),
                    not_for_external_name,
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilyPolicy"),
                    not_for_external_name,
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(&path.child("externalName"), ""));
            } else {
                errs.extend(validate_dns1123_subdomain(
                    &path.child("externalName"),
                    cname,
                ));
            }
        }
        _ => {}
    }
    errs
}

fn validate_service_port(
    port: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = port.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(&path.child("name"), name));
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for msg in is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(&path.child("port"), port.port, msg));
    }
    match port.protocol.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&path.child("protocol"), "")),
        p if PROTOCOLS.contains(&p) => {}
        p => errs.push(FieldError::not_supported(
            &path.child("protocol"),
            p,
            &PROTOCOLS,
        )),
    }
    let target = port.target_port.clone().unwrap_or(IntOrString::Int(0));
    errs.extend(validate_port_num_or_name(
        &target,
        &path.child("targetPort"),
    ));
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(
            &path.child("appProtocol"),
            app_protocol,
        ));
    }
    errs
}

fn validate_session_affinity(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let p = path.child("sessionAffinity");
    let config_path = path.child("sessionAffinityConfig");
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => vec![FieldError::required(&p, "")],
        "None" if spec.session_affinity_config.is_some() => {
            vec![FieldError::forbidden(
                &config_path,
                "must not be set when session affinity is None",
            )]
        }
        "None" => Vec::new(),
        "ClientIP" => {
            let when = "when session affinity type is ClientIP";
            let Some(config) = &spec.session_affinity_config else {
                return vec![FieldError::required(&config_path, when)];
            };
            let Some(client_ip) = &config.client_ip else {
                return vec![FieldError::required(&config_path.child("clientIP"), when)];
            };
            let client_ip_path = config_path.child("clientIP");
            let timeout_path = client_ip_path.child("timeoutSeconds");
            match client_ip.timeout_seconds {
                None => vec![FieldError::required(&timeout_path, when)],
                Some(t) if t <= 0 || t > MAX_CLIENT_IP_TIMEOUT_SECONDS => {
                    vec![FieldError::invalid(
                        &timeout_path,
                        t,
                        format!(
                            "must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT_SECONDS}"
                        ),
                    )]
                }
                Some(_) => Vec::new(),
            }
        }
        other => vec![FieldError::not_supported(&p, other, &["ClientIP", "None"])],
    }
}

/// Upstream's ValidateServiceClusterIPsRelatedFields.
fn validate_cluster_ips(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    if type_of(spec) == "ExternalName" {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let ips_path = path.child("clusterIPs");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ips = spec.cluster_ips.as_deref().unwrap_or_default();
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => errs.push(FieldError::required(&ips_path, "")),
            Some(first) if first != cluster_ip => errs.push(FieldError::invalid(
                &ips_path,
                ips,
                "first value must match `clusterIP`",
            )),
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            ips,
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        let ip_families_path = path.child("ipFamilies");
        let p = ip_families_path.index(i);
        if family != "IPv4" && family != "IPv6" {
            errs.push(FieldError::not_supported(&p, family, &["IPv4", "IPv6"]));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(&p, family));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref() {
        let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !supported.contains(&policy) {
            errs.push(FieldError::not_supported(
                &path.child("ipFamilyPolicy"),
                policy,
                &supported,
            ));
        }
    }
    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips,
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let ip_errs = validate_ip(&ips_path.index(i), ip);
        invalid_ips |= !ip_errs.is_empty();
        errs.extend(ip_errs);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips,
            "may only hold up to 2 values",
        ));
    }
    if invalid_ips {
        return errs;
    }
    if ips.len() > 1 && !is_dual_stack(ips) {
        errs.push(FieldError::invalid(
            &ips_path,
            ips,
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (ip, family)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            let v6 = ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
            let expected = match (family.as_str(), v6) {
                ("IPv4", true) => "IPv4",
                ("IPv6", false) => "IPv6",
                _ => continue,
            };
            errs.push(FieldError::invalid(
                &ips_path.index(i),
                ip,
                format!("expected an {expected} value as indicated by `ipFamilies[{i}]`"),
            ));
        }
    }
    errs
}

/// Exactly one IPv4 and one IPv6 address.
fn is_dual_stack(ips: &[String]) -> bool {
    let v6 = ips
        .iter()
        .filter(|ip| ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6()))
        .count();
    ips.len() == 2 && v6 == 1
}

/// Upstream's ValidateNonSpecialIP (external IPs, endpoint addresses).
pub fn validate_non_special_ip(path: &Path, value: &str) -> Vec<FieldError> {
    let Ok(ip) = value.parse::<IpAddr>() else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a valid IP address",
        )];
    };
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xffc0 == 0xfe80, s & 0xff0f == 0xff02)
        }
    };
    if link_local {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

fn validate_port_uniqueness(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ports = spec.ports.as_deref().unwrap_or_default();
    let cluster_ip_type = type_of(spec) == "ClusterIP";
    let mut node_ports = BTreeSet::new();
    let mut service_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let ports_path = path.child("ports");
        let p = ports_path.index(i);
        let protocol = port.protocol.clone().unwrap_or_default();
        if let Some(node_port) = port.node_port.filter(|&n| n != 0) {
            if cluster_ip_type {
                errs.push(FieldError::forbidden(
                    &p.child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if !node_ports.insert((protocol.clone(), node_port)) {
                errs.push(FieldError::duplicate(&p.child("nodePort"), node_port));
            }
        }
        if !service_ports.insert((protocol.clone(), port.port)) {
            errs.push(FieldError::duplicate(
                &p,
                json!({"port": port.port, "protocol": protocol}),
            ));
        }
    }
    errs
}

fn validate_load_balancer_fields(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lb = type_of(spec) == "LoadBalancer";
    let ranges = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    if !ranges.is_empty() {
        // Upstream spells this path with a capital L.
        let p = path.child("LoadBalancerSourceRanges");
        if !lb {
            errs.push(FieldError::forbidden(&p, LB_ONLY));
        }
        for (i, range) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(&p.index(i), range.trim()));
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && !lb {
        errs.push(FieldError::forbidden(
            &path.child("allocateLoadBalancerNodePorts"),
            LB_ONLY,
        ));
    }
    if lb && spec.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    match (&spec.load_balancer_class, lb) {
        (Some(class), true) => errs.extend(validate_qualified_name(
            &path.child("loadBalancerClass"),
            class,
        )),
        (Some(_), false) => errs.push(FieldError::forbidden(
            &path.child("loadBalancerClass"),
            LB_ONLY,
        )),
        (None, _) => {}
    }
    errs
}

fn validate_traffic_policies(spec: &ServiceSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let etp_path = path.child("externalTrafficPolicy");
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &etp_path,
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(&etp_path, ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            &etp_path,
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc_path = path.child("healthCheckNodePort");
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else {
        // Upstream also requires it here; this server validates before it
        // allocates, so an unset port (0) is left to the allocator.
        for msg in is_valid_port_num(i64::from(hc))
            .into_iter()
            .filter(|_| hc != 0)
        {
            errs.push(FieldError::invalid(&hc_path, hc, msg));
        }
    }
    let itp_path = path.child("internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(
            type_of(spec).as_str(),
            "NodePort" | "LoadBalancer" | "ClusterIP"
        ) =>
        {
            errs.push(FieldError::required(&itp_path, ""))
        }
        Some(itp) if itp != "Cluster" && itp != "Local" => errs.push(FieldError::not_supported(
            &itp_path,
            itp,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if let Some(td) = spec
        .traffic_distribution
        .as_deref()
        .filter(|td| *td != "PreferClose")
    {
        errs.push(FieldError::not_supported(
            &path.child("trafficDistribution"),
            td,
            &["PreferClose"],
        ));
    }
    errs
}

/// Primary cluster IPs may not change; a secondary may be added or released.
fn validate_cluster_ips_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    if type_of(new) == "ExternalName"
        || type_of(old) == "ExternalName"
        || (is_headless(new) && is_headless(old))
    {
        return Vec::new();
    }
    let spec_path = Path::new("spec");
    let path = spec_path.child("clusterIPs");
    let n = new.cluster_ips.as_deref().unwrap_or_default();
    let o = old.cluster_ips.as_deref().unwrap_or_default();
    let changed = "may not change once set";
    let mut errs = Vec::new();
    if n.len() == o.len() {
        for (i, (a, b)) in o.iter().zip(n).enumerate() {
            if a != b {
                errs.push(FieldError::invalid(&path.index(i), n, changed));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                &path.index(0),
                n,
                "primary clusterIP can not be unset",
            ));
        }
        if !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(&path.index(0), n, changed));
        }
        if n.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                &new.ip_family_policy,
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(&path.index(0), n, changed));
    }
    errs
}

/// The primary IP family may not change (except for headless services).
fn validate_ip_families_update(new: &ServiceSpec, old: &ServiceSpec) -> Vec<FieldError> {
    if type_of(new) == "ExternalName"
        || type_of(old) == "ExternalName"
        || is_headless(new)
        || is_headless(old)
    {
        return Vec::new();
    }
    let spec_path = Path::new("spec");
    let ip_families_path = spec_path.child("ipFamilies");
    let path = ip_families_path.index(0);
    let n = new.ip_families.as_deref().unwrap_or_default();
    let o = old.ip_families.as_deref().unwrap_or_default();
    let changed = "may not change once set";
    let mut errs = Vec::new();
    if n.len() == o.len() {
        if o.iter().zip(n).any(|(a, b)| a != b) {
            errs.push(FieldError::invalid(&path, n, changed));
        }
    } else if o.len() > n.len() {
        if !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(&path, n, changed));
        }
        if n.len() == 1 && new.ip_family_policy.as_deref() != Some("SingleStack") {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                &new.ip_family_policy,
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(&path, n, changed));
    }
    errs
}

// ---- table ----

/// "80/TCP", "80:30080/TCP", joined by ",".
fn port_string(ports: &[ServicePort]) -> String {
    ports
        .iter()
        .map(|p| {
            let protocol = p.protocol.as_deref().unwrap_or("");
            match p.node_port.filter(|&n| n > 0) {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p.port),
                None => format!("{}/{protocol}", p.port),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's getServiceExternalIP (server-side tables are always "wide").
fn external_ip(svc: &Service) -> String {
    let spec = svc.spec.clone().unwrap_or_default();
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    match type_of(&spec).as_str() {
        "ClusterIP" | "NodePort" if !external_ips.is_empty() => external_ips.join(","),
        "ClusterIP" | "NodePort" => "<none>".to_string(),
        "LoadBalancer" => {
            let lb_ips: BTreeSet<String> = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.ip.clone()
                        .filter(|ip| !ip.is_empty())
                        .or_else(|| i.hostname.clone().filter(|h| !h.is_empty()))
                })
                .collect();
            let mut all: Vec<String> = lb_ips.into_iter().collect();
            all.extend(external_ips);
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(value: Value) -> Service {
        let mut s: Service = serde_json::from_value(value).unwrap();
        ServiceStrategy.default(&mut s);
        s
    }

    fn web() -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    }

    fn errors(s: &Service) -> Vec<String> {
        ServiceStrategy
            .validate(s)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn cluster_ip_defaults() {
        let s = svc(web());
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.external_traffic_policy, None);
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(spec.ip_families.as_deref(), Some(&["IPv4".to_string()][..]));
        let port = &spec.ports.as_ref().unwrap()[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert_eq!(port.target_port, Some(IntOrString::Int(80)));
        assert!(errors(&s).is_empty());
    }

    #[test]
    fn node_port_and_load_balancer_defaults() {
        let mut v = web();
        v["spec"]["type"] = json!("LoadBalancer");
        v["spec"]["ports"][0]["targetPort"] = json!("http");
        let s = svc(v);
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            spec.ports.as_ref().unwrap()[0].target_port,
            Some(IntOrString::String("http".into()))
        );
        assert!(errors(&s).is_empty());
    }

    #[test]
    fn headless_and_external_name() {
        let mut v = web();
        v["spec"] = json!({"clusterIP": "None"});
        let s = svc(v);
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ips.as_deref(), Some(&["None".to_string()][..]));
        assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert!(errors(&s).is_empty(), "{:?}", errors(&s));
        let e = svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                           "spec": {"type": "ExternalName", "externalName": "example.com."}}));
        assert_eq!(e.spec.as_ref().unwrap().ip_families, None);
        assert!(errors(&e).is_empty(), "{:?}", errors(&e));
    }

    #[test]
    fn name_must_be_dns1035() {
        let mut v = web();
        v["metadata"]["name"] = json!("1web");
        assert!(errors(&svc(v))[0]
            .starts_with("metadata.name: Invalid value: \"1web\": a DNS-1035 label"));
    }

    #[test]
    fn ports_rules() {
        let mut v = web();
        v["spec"]["ports"] = json!([{"port": 80, "name": "http"}, {"port": 70000, "name": "http", "protocol": "ICMP"}, {"port": 80, "name": "x"}]);
        assert_eq!(
            errors(&svc(v)),
            vec![
                "spec.ports[1].name: Duplicate value: \"http\"",
                "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}",
            ]
        );
        let mut v = web();
        v["spec"]["ports"] = json!([]);
        assert_eq!(errors(&svc(v)), vec!["spec.ports: Required value"]);
        let mut v = web();
        v["spec"]["ports"] = json!([{"port": 80}, {"port": 81}]);
        assert_eq!(
            errors(&svc(v)),
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[1].name: Required value"
            ]
        );
    }

    #[test]
    fn type_and_cluster_ip_syntax() {
        let mut v = web();
        v["spec"]["type"] = json!("Bogus");
        v["spec"]["clusterIP"] = json!("10.96.0.300");
        assert_eq!(
            errors(&svc(v)),
            vec![
                "spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "spec.type: Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ]
        );
    }

    #[test]
    fn node_port_forbidden_on_cluster_ip() {
        let mut v = web();
        v["spec"]["ports"][0]["nodePort"] = json!(30080);
        assert_eq!(
            errors(&svc(v)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn cluster_ip_is_immutable() {
        let mut v = web();
        v["spec"]["clusterIP"] = json!("10.96.0.10");
        let old = svc(v.clone());
        v["spec"]["clusterIP"] = json!("10.96.0.11");
        v["spec"]["clusterIPs"] = json!(["10.96.0.11"]);
        let new = svc(v);
        let errs: Vec<String> = ServiceStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
        );
    }

    #[test]
    fn allocated_values_survive_updates() {
        let mut v = web();
        v["spec"]["type"] = json!("NodePort");
        v["spec"]["clusterIP"] = json!("10.96.0.10");
        v["spec"]["ports"][0]["nodePort"] = json!(30080);
        let old = svc(v);
        let mut new = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}));
        patch_allocated_values(&mut new, &old);
        let spec = new.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(30080));
        assert!(ServiceStrategy.validate_update(&new, &old).is_empty());
    }

    #[test]
    fn table_rows() {
        let mut v = web();
        v["spec"]["type"] = json!("NodePort");
        v["spec"]["clusterIP"] = json!("10.96.0.10");
        v["spec"]["ports"] = json!([{"port": 80, "nodePort": 30080, "name": "http"}, {"port": 53, "protocol": "UDP", "name": "dns"}]);
        let s = svc(v);
        assert_eq!(
            ServiceStrategy.cells(&s, "1h"),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("1h"),
                json!("app=web")
            ]
        );
        let mut lb = web();
        lb["spec"]["type"] = json!("LoadBalancer");
        lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
        assert_eq!(
            ServiceStrategy.cells(&svc(lb.clone()), "1h")[3],
            json!("192.0.2.1")
        );
        lb["status"] = json!({});
        assert_eq!(ServiceStrategy.cells(&svc(lb), "1h")[3], json!("<pending>"));
        assert_eq!(ServiceStrategy.columns().len(), 7);
    }

    #[test]
    fn field_attrs() {
        let mut v = web();
        v["spec"]["clusterIP"] = json!("10.96.0.10");
        assert_eq!(
            ServiceStrategy.field_attrs(&svc(v)),
            vec![
                ("spec.clusterIP", "10.96.0.10".to_string()),
                ("spec.type", "ClusterIP".to_string())
            ]
        );
    }
}
