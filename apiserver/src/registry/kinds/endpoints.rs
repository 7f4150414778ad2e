//! core/v1 Endpoints: port protocol default, validation and the table.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};
use serde_json::Value;

use super::print::column;
use super::service::validate_non_special_ip;
use super::validation::{
    is_valid_port_num, validate_dns1123_label, validate_ip, validate_object_meta,
    validate_qualified_name, NameRule, Path, PROTOCOLS,
};
use crate::strategy::{Column, FieldError, KindStrategy};

/// At most this many addresses are listed before " + N more...".
const MAX_LISTED: usize = 3;

pub struct EndpointsStrategy;

impl KindStrategy for EndpointsStrategy {
    type Object = Endpoints;

    fn default(&self, endpoints: &mut Endpoints) {
        for port in endpoints
            .subsets
            .iter_mut()
            .flatten()
            .flat_map(|s| s.ports.iter_mut().flatten())
        {
            if port.protocol.as_deref().is_none_or(str::is_empty) {
                port.protocol = Some("TCP".to_string());
            }
        }
    }

    fn validate(&self, endpoints: &Endpoints) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&endpoints.metadata, true, NameRule::Dns1123Subdomain);
        let path = Path::new("subsets");
        for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
            let p = path.index(i);
            let ready = subset.addresses.as_deref().unwrap_or_default();
            let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
            if ready.is_empty() && not_ready.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (j, address) in ready.iter().enumerate() {
                errs.extend(validate_address(address, &p.child("addresses").index(j)));
            }
            for (j, address) in not_ready.iter().enumerate() {
                errs.extend(validate_address(
                    address,
                    &p.child("notReadyAddresses").index(j),
                ));
            }
            let ports = subset.ports.as_deref().unwrap_or_default();
            for (j, port) in ports.iter().enumerate() {
                errs.extend(validate_port(
                    port,
                    ports.len() > 1,
                    &p.child("ports").index(j),
                ));
            }
        }
        errs
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Endpoints", "string", 0, "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
            Column::age(),
        ]
    }

    fn cells(&self, endpoints: &Endpoints, age: &str) -> Vec<Value> {
        vec![
            Value::from(endpoints.metadata.name.clone().unwrap_or_default()),
            Value::from(format_endpoints(endpoints)),
            Value::from(age),
        ]
    }
}

fn validate_address(address: &EndpointAddress, path: &Path) -> Vec<FieldError> {
    let ip_path = path.child("ip");
    let mut errs = validate_ip(&ip_path, &address.ip);
    if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validate_dns1123_label(&path.child("hostname"), hostname));
    }
    if let Some(node) = &address.node_name {
        let msgs = NameRule::Dns1123Subdomain.check(node, false);
        errs.extend(
            msgs.into_iter()
                .map(|m| FieldError::invalid(&path.child("nodeName"), node, m)),
        );
    }
    errs.extend(validate_non_special_ip(&ip_path, &address.ip));
    errs
}

fn validate_port(port: &EndpointPort, require_name: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = port.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(&path.child("name"), name));
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
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(
            &path.child("appProtocol"),
            app_protocol,
        ));
    }
    errs
}

/// Upstream's formatEndpoints: "ip:port" per ready address and port, the first
/// three, then " + N more..."; bare IPs for port-less subsets; "<none>".
fn format_endpoints(endpoints: &Endpoints) -> String {
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut listed = Vec::new();
    let mut count = 0usize;
    for subset in subsets {
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        let ports = subset.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            count += addresses.len();
            listed.extend(addresses.iter().map(|a| a.ip.clone()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            listed.extend(addresses.iter().map(|a| join_host_port(&a.ip, port.port)));
        }
    }
    let more = listed.len() > MAX_LISTED;
    listed.truncate(MAX_LISTED);
    let text = listed.join(",");
    if more {
        format!("{text} + {} more...", count - MAX_LISTED)
    } else {
        text
    }
}

/// Go's net.JoinHostPort: IPv6 hosts in brackets.
fn join_host_port(host: &str, port: i32) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ if host.contains(':') => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(value: Value) -> Endpoints {
        let mut e: Endpoints = serde_json::from_value(value).unwrap();
        EndpointsStrategy.default(&mut e);
        e
    }

    fn with_subsets(subsets: Value) -> Endpoints {
        endpoints(json!({"metadata": {"name": "web", "namespace": "default"}, "subsets": subsets}))
    }

    #[test]
    fn defaults_protocol_and_validates() {
        let e =
            with_subsets(json!([{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}]));
        assert_eq!(
            e.subsets.as_ref().unwrap()[0].ports.as_ref().unwrap()[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
        assert!(EndpointsStrategy.validate(&e).is_empty());
    }

    #[test]
    fn validation_messages() {
        let e = with_subsets(
            json!([{"ports": [{"port": 80}]}, {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 0}]}]),
        );
        let errs: Vec<String> = EndpointsStrategy
            .validate(&e)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
                "subsets[1].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[1].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn table_lists_three_then_more() {
        let e = with_subsets(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}]),
        );
        assert_eq!(format_endpoints(&e), "10.0.0.1:80,10.0.0.2:80");
        let e = with_subsets(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}, {"ip": "10.0.0.5"}],
            "ports": [{"port": 80}]}]),
        );
        assert_eq!(
            format_endpoints(&e),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
        );
        let e = with_subsets(json!([{"addresses": [{"ip": "fd00::1"}]}]));
        assert_eq!(format_endpoints(&e), "fd00::1");
        let e = with_subsets(json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]));
        assert_eq!(format_endpoints(&e), "[fd00::1]:53");
        assert_eq!(format_endpoints(&with_subsets(json!([]))), "<none>");
        assert_eq!(
            EndpointsStrategy.cells(&with_subsets(json!([])), "1m"),
            vec![json!("web"), json!("<none>"), json!("1m")]
        );
    }
}
