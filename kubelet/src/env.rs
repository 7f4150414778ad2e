//! A container's environment, as upstream's kubelet makes it
//! (kubelet_pods.go makeEnvironmentVariables, envvars/envvars.go): the
//! Docker-link service variables, then envFrom, then env (with `$(VAR)`
//! expansion and valueFrom fieldRef / resourceFieldRef / configMapKeyRef).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Service};

use crate::resources;

/// What the environment may refer to, fetched before it is made.
pub struct EnvInputs<'a> {
    pub pod_ips: Vec<String>,
    pub host_ip: String,
    /// Services of the pod's namespace and the default namespace.
    pub services: Vec<&'a Service>,
    /// ConfigMaps by name in the pod's namespace; `None` = not found.
    pub config_maps: &'a HashMap<String, Option<ConfigMap>>,
    pub node_cpu_milli: i64,
    pub node_memory_bytes: i64,
}

/// An ordered list of variables where a later definition replaces the value
/// of an earlier one in place.
#[derive(Default)]
struct EnvList {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    fn set(&mut self, k: String, v: String) {
        match self.index.get(&k) {
            Some(&i) => self.vars[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.vars.len());
                self.vars.push((k, v));
            }
        }
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.index.get(k).map(|&i| self.vars[i].1.as_str())
    }
}

/// The container's variables in order, or a message for
/// CreateContainerConfigError.
pub fn make_env(
    pod: &Pod,
    container: &Container,
    inputs: &EnvInputs,
) -> Result<Vec<(String, String)>, String> {
    let mut env = EnvList::default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    for (k, v) in service_env(namespace, links, &inputs.services) {
        env.set(k, v);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match inputs.config_maps.get(&r.name).and_then(|c| c.as_ref()) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        env.set(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            if !r.optional.unwrap_or(false) {
                return Err(format!("secret \"{}\" not found", r.name));
            }
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(value) = env_value(pod, container, var, inputs, &env)? {
            env.set(var.name.clone(), value);
        }
    }
    Ok(env.vars)
}

fn env_value(
    pod: &Pod,
    container: &Container,
    var: &EnvVar,
    inputs: &EnvInputs,
    env: &EnvList,
) -> Result<Option<String>, String> {
    if let Some(v) = &var.value {
        return Ok(Some(expand(v, |k| env.get(k).map(str::to_string))));
    }
    let Some(from) = &var.value_from else {
        return Ok(Some(String::new()));
    };
    if let Some(f) = &from.field_ref {
        return field_value(pod, &f.field_path, inputs).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_value(container, &r.resource, r.divisor.as_ref(), inputs).map(Some);
    }
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional.unwrap_or(false);
        return match inputs.config_maps.get(&r.name).and_then(|c| c.as_ref()) {
            Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(format!(
                    "couldn't find key {} in ConfigMap {}/{}",
                    r.key,
                    pod.metadata.namespace.as_deref().unwrap_or("default"),
                    r.name
                )),
            },
            None if optional => Ok(None),
            None => Err(format!("configmap \"{}\" not found", r.name)),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        if r.optional.unwrap_or(false) {
            return Ok(None);
        }
        return Err(format!("secret \"{}\" not found", r.name));
    }
    Ok(Some(String::new()))
}

/// A downward-API field of the pod.
pub fn field_value(pod: &Pod, path: &str, inputs: &EnvInputs) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let bracketed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = bracketed("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(k) = bracketed("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => inputs.host_ip.clone(),
        "status.podIP" => inputs.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => inputs.pod_ips.join(","),
        other => return Err(format!("unsupported fieldRef {other:?}")),
    })
}

fn resource_value(
    container: &Container,
    resource: &str,
    divisor: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    inputs: &EnvInputs,
) -> Result<String, String> {
    let r = container.resources.as_ref();
    let divisor = divisor
        .and_then(|d| component_base::quantity::to_f64(&d.0).ok())
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    let value = match resource {
        "limits.cpu" => {
            resources::milli_cpu(r, true).unwrap_or(inputs.node_cpu_milli) as f64 / 1000.0
        }
        "requests.cpu" => resources::milli_cpu(r, false).unwrap_or(0) as f64 / 1000.0,
        "limits.memory" => {
            resources::memory_bytes(r, true).unwrap_or(inputs.node_memory_bytes) as f64
        }
        "requests.memory" => resources::memory_bytes(r, false).unwrap_or(0) as f64,
        other => return Err(format!("unsupported resourceFieldRef {other:?}")),
    };
    Ok(((value / divisor).ceil() as i64).to_string())
}

/// `$(VAR)` expansion as upstream's third_party/forked/golang/expansion:
/// `$$` is a literal `$`, unknown references stay as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// The Docker-link variables: every service of the pod's namespace (when
/// enableServiceLinks) and the master `kubernetes` service of `default`.
pub fn service_env(namespace: &str, links: bool, services: &[&Service]) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
        let name = svc.metadata.name.clone().unwrap_or_default();
        if ns == "default" && name == "kubernetes" && !chosen.contains_key(&name) {
            chosen.insert(name.clone(), svc);
        }
        if links && ns == namespace {
            chosen.insert(name, svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in chosen {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let ports = spec.ports.as_deref().unwrap_or_default();
        let prefix = name.to_uppercase().replace('-', "_");
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        if let Some(first) = ports.first() {
            out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{prefix}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        for (i, p) in ports.iter().enumerate() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let url = format!("{}://{host}:{}", proto.to_lowercase(), p.port);
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((format!("{pp}_PROTO"), proto.to_lowercase()));
            out.push((format!("{pp}_PORT"), p.port.to_string()));
            out.push((format!("{pp}_ADDR"), ip.to_string()));
            out.push((pp, url));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn docker_link_variables() {
        let a = svc(
            "web",
            "nginx-svc",
            "10.96.0.20",
            json!([{"name": "http", "port": 80, "protocol": "TCP"}]),
        );
        let k = svc(
            "default",
            "kubernetes",
            "10.96.0.1",
            json!([{"name": "https", "port": 443}]),
        );
        let other = svc("other", "x", "10.96.0.30", json!([{"port": 1}]));
        let headless = svc("web", "h", "None", json!([{"port": 1}]));
        let env: HashMap<_, _> = service_env("web", true, &[&a, &k, &other, &headless])
            .into_iter()
            .collect();
        assert_eq!(env["NGINX_SVC_SERVICE_HOST"], "10.96.0.20");
        assert_eq!(env["NGINX_SVC_SERVICE_PORT"], "80");
        assert_eq!(env["NGINX_SVC_SERVICE_PORT_HTTP"], "80");
        assert_eq!(env["NGINX_SVC_PORT"], "tcp://10.96.0.20:80");
        assert_eq!(env["NGINX_SVC_PORT_80_TCP"], "tcp://10.96.0.20:80");
        assert_eq!(env["NGINX_SVC_PORT_80_TCP_PROTO"], "tcp");
        assert_eq!(env["NGINX_SVC_PORT_80_TCP_PORT"], "80");
        assert_eq!(env["NGINX_SVC_PORT_80_TCP_ADDR"], "10.96.0.20");
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
        assert_eq!(env["KUBERNETES_PORT_443_TCP"], "tcp://10.96.0.1:443");
        assert!(!env.contains_key("X_SERVICE_HOST"));
        assert!(!env.contains_key("H_SERVICE_HOST"));
        // Without service links only the master service is there.
        let env = service_env("web", false, &[&a, &k]);
        assert!(env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")));
    }

    #[test]
    fn expansion() {
        let look = |k: &str| (k == "A").then(|| "1".to_string());
        assert_eq!(expand("x$(A)y", look), "x1y");
        assert_eq!(expand("$(B)", look), "$(B)");
        assert_eq!(expand("$$(A)", look), "$(A)");
        assert_eq!(expand("$", look), "$");
        assert_eq!(expand("é$(A", look), "é$(A");
    }

    #[test]
    fn field_refs_and_config_maps() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
                "resources": {"limits": {"memory": "64Mi"}},
                "env": [
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                    {"name": "BOTH", "value": "$(NAME)-$(COLOR)"}
                ]}]}
        }))
        .unwrap();
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"color": "blue"}}))
                .unwrap();
        let cms = HashMap::from([("cfg".to_string(), Some(cm))]);
        let inputs = EnvInputs {
            pod_ips: vec!["10.244.1.5".into()],
            host_ip: "192.168.1.2".into(),
            services: vec![],
            config_maps: &cms,
            node_cpu_milli: 2000,
            node_memory_bytes: 1 << 30,
        };
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let env: HashMap<_, _> = make_env(&pod, c, &inputs).unwrap().into_iter().collect();
        assert_eq!(env["NAME"], "p");
        assert_eq!(env["NS"], "ns");
        assert_eq!(env["IP"], "10.244.1.5");
        assert_eq!(env["NODE"], "n1");
        assert_eq!(env["APP"], "web");
        assert_eq!(env["MEM"], "64");
        assert_eq!(env["COLOR"], "blue");
        assert_eq!(env["BOTH"], "p-blue");

        let missing = HashMap::from([("cfg".to_string(), None)]);
        let inputs = EnvInputs {
            pod_ips: vec![],
            host_ip: String::new(),
            services: vec![],
            config_maps: &missing,
            node_cpu_milli: 2000,
            node_memory_bytes: 1 << 30,
        };
        assert_eq!(
            make_env(&pod, c, &inputs).unwrap_err(),
            "configmap \"cfg\" not found"
        );
    }
}
