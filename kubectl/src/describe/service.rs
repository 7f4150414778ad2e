//! `describe svc`. Endpoints come from the Service's Endpoints object (this cluster
//! serves no EndpointSlices).

use k8s_openapi::api::core::v1::{Endpoints, Event, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{annotations_multiline, events, format_selector, labels_multiline, Writer};

pub fn describe_service(
    svc: &Service,
    endpoints: Option<&Endpoints>,
    svc_events: Option<&[Event]>,
) -> String {
    let mut w = Writer::default();
    let meta = &svc.metadata;
    let spec = svc.spec.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!("Selector:\t{}\n", format_selector(spec.selector.as_ref())),
    );
    w.write(
        0,
        &format!("Type:\t{}\n", spec.type_.clone().unwrap_or_default()),
    );
    if let Some(p) = &spec.ip_family_policy {
        w.write(0, &format!("IP Family Policy:\t{p}\n"));
    }
    match spec.ip_families.as_ref().filter(|f| !f.is_empty()) {
        Some(f) => w.write(0, &format!("IP Families:\t{}\n", f.join(","))),
        None => w.write(0, "IP Families:\t<none>\n"),
    }
    w.write(
        0,
        &format!("IP:\t{}\n", spec.cluster_ip.clone().unwrap_or_default()),
    );
    match spec.cluster_ips.as_ref().filter(|f| !f.is_empty()) {
        Some(ips) => w.write(0, &format!("IPs:\t{}\n", ips.join(","))),
        None => w.write(0, "IPs:\t<none>\n"),
    }
    if let Some(ips) = spec.external_ips.as_ref().filter(|f| !f.is_empty()) {
        w.write(0, &format!("External IPs:\t{}\n", ips.join(",")));
    }
    if let Some(ip) = spec.load_balancer_ip.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Desired LoadBalancer IP:\t{ip}\n"));
    }
    if let Some(n) = spec.external_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("External Name:\t{n}\n"));
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.clone())
        .unwrap_or_default();
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|i| {
                i.ip.clone()
                    .or_else(|| i.hostname.clone())
                    .unwrap_or_default()
            })
            .collect();
        w.write(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for p in spec.ports.iter().flatten() {
        let name = p
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "<unset>".into());
        let protocol = p.protocol.clone().unwrap_or_default();
        w.write(0, &format!("Port:\t{name}\t{}/{protocol}\n", p.port));
        let target = match &p.target_port {
            Some(IntOrString::Int(i)) => i.to_string(),
            Some(IntOrString::String(s)) => s.clone(),
            None => "0".into(),
        };
        w.write(0, &format!("TargetPort:\t{target}/{protocol}\n"));
        if let Some(a) = &p.app_protocol {
            w.write(0, &format!("AppProtocol:\t{a}\n"));
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            w.write(0, &format!("NodePort:\t{name}\t{np}/{protocol}\n"));
        }
        w.write(
            0,
            &format!(
                "Endpoints:\t{}\n",
                format_endpoints(endpoints, p.name.as_deref().unwrap_or(""))
            ),
        );
    }
    w.write(
        0,
        &format!(
            "Session Affinity:\t{}\n",
            spec.session_affinity.clone().unwrap_or_default()
        ),
    );
    if let Some(p) = spec
        .external_traffic_policy
        .as_ref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("External Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = &spec.internal_traffic_policy {
        w.write(0, &format!("Internal Traffic Policy:\t{p}\n"));
    }
    if let Some(n) = spec.health_check_node_port.filter(|n| *n != 0) {
        w.write(0, &format!("HealthCheck NodePort:\t{n}\n"));
    }
    if let Some(r) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        w.write(
            0,
            &format!("LoadBalancer Source Ranges:\t{}\n", r.join(",")),
        );
    }
    if let Some(t) = &spec.traffic_distribution {
        w.write(0, &format!("Traffic Distribution:\t{t}\n"));
    }
    events(&mut w, svc_events);
    w.finish()
}

/// The endpoints of one service port: `ip:port` for up to three, then `+ N more...`.
fn format_endpoints(endpoints: Option<&Endpoints>, port_name: &str) -> String {
    let subsets = endpoints
        .and_then(|e| e.subsets.clone())
        .unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut count = 0;
    for ss in &subsets {
        let addresses = ss.addresses.clone().unwrap_or_default();
        let ports = ss.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| a.ip.clone()));
            continue;
        }
        for port in ports
            .iter()
            .filter(|p| p.name.as_deref().unwrap_or("") == port_name)
        {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| format!("{}:{}", a.ip, port.port)));
        }
    }
    let more = list.len() > MAX;
    list.truncate(MAX);
    let text = list.join(",");
    if more {
        format!("{text} + {} more...", count - MAX)
    } else {
        text
    }
}
