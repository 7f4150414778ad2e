//! Pod spec defaults (upstream's SetDefaults_PodSpec, SetDefaults_Container,
//! SetDefaults_Volume, SetDefaults_Probe, ... and the declarative `+default`
//! markers), shared by Pod and the ReplicationController template, plus the
//! few defaults upstream applies to Pods only (SetDefaults_Pod).

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EphemeralContainer, HTTPGetAction, Lifecycle,
    PodSecurityContext, PodSpec, Probe, Volume,
};

pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// 0644, the default file mode of secret, configMap, downwardAPI and projected volumes.
const DEFAULT_VOLUME_MODE: i32 = 0o644;
const SERVICE_ACCOUNT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Sets `field` to `value` when it is unset or empty.
fn default_str(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Sets a numeric `field` when unset or zero, as upstream's `== 0` checks.
fn default_num<T: Default + PartialEq + Copy>(field: &mut Option<T>, value: T) {
    if field.is_none_or(|v| v == T::default()) {
        *field = Some(value);
    }
}

/// Defaults for any pod spec: a Pod's or a pod template's.
pub fn default_pod_spec(spec: &mut PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    default_str(&mut spec.scheduler_name, DEFAULT_SCHEDULER_NAME);
    for volume in spec.volumes.iter_mut().flatten() {
        default_volume(volume);
    }
    for container in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        default_container(container);
    }
    for container in spec.ephemeral_containers.iter_mut().flatten() {
        default_ephemeral_container(container);
    }
}

/// Defaults upstream applies to Pods but not to templates.
pub fn default_pod_only(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    for container in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        default_requests_to_limits(container);
        if host_network {
            // With host networking every container port is a host port.
            for port in container.ports.iter_mut().flatten() {
                default_num(&mut port.host_port, port.container_port);
            }
        }
    }
    spec.enable_service_links.get_or_insert(true);
}

/// Limits without requests: requests default to the limits.
fn default_requests_to_limits(container: &mut Container) {
    let Some(resources) = container.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.as_ref().filter(|l| !l.is_empty()) else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(Default::default);
    for (name, quantity) in limits {
        requests
            .entry(name.clone())
            .or_insert_with(|| quantity.clone());
    }
}

/// Upstream picks Always for `:latest` or untagged images, IfNotPresent
/// otherwise (including digests and unparsable references).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag a docker reference resolves to: its explicit tag, "latest" when it
/// has neither tag nor digest, `None` for a digest-only or invalid reference.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !is_valid_repository(repository) || tag.is_some_and(str::is_empty) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, None) => Some("latest".to_string()),
        (None, Some(_)) => None,
    }
}

/// Path components after an optional registry host must be lowercase.
fn is_valid_repository(repository: &str) -> bool {
    let mut parts: Vec<&str> = repository.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            parts.remove(0);
        }
    }
    !parts.is_empty()
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
}

/// Field-by-field defaults of `Container`, also used for ephemeral containers
/// (a distinct type with the same fields).
macro_rules! default_container_fields {
    ($c:expr) => {{
        let c = $c;
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            c.image_pull_policy =
                Some(image_pull_policy(c.image.as_deref().unwrap_or("")).to_string());
        }
        default_str(&mut c.termination_message_path, TERMINATION_MESSAGE_PATH);
        default_str(&mut c.termination_message_policy, "File");
        default_ports(c.ports.as_deref_mut());
        default_env(c.env.as_deref_mut());
        for probe in [
            &mut c.liveness_probe,
            &mut c.readiness_probe,
            &mut c.startup_probe,
        ]
        .into_iter()
        .flatten()
        {
            default_probe(probe);
        }
        if let Some(lifecycle) = c.lifecycle.as_mut() {
            default_lifecycle(lifecycle);
        }
    }};
}

pub fn default_container(container: &mut Container) {
    default_container_fields!(container);
}

fn default_ephemeral_container(container: &mut EphemeralContainer) {
    default_container_fields!(container);
}

fn default_ports(ports: Option<&mut [ContainerPort]>) {
    for port in ports.into_iter().flatten() {
        default_str(&mut port.protocol, "TCP");
    }
}

fn default_env(env: Option<&mut [EnvVar]>) {
    for var in env.into_iter().flatten() {
        if let Some(field_ref) = var.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_str(&mut field_ref.api_version, "v1");
        }
    }
}

fn default_probe(probe: &mut Probe) {
    default_num(&mut probe.timeout_seconds, 1);
    default_num(&mut probe.period_seconds, 10);
    default_num(&mut probe.success_threshold, 1);
    default_num(&mut probe.failure_threshold, 3);
    if let Some(http) = probe.http_get.as_mut() {
        default_http_get(http);
    }
}

fn default_lifecycle(lifecycle: &mut Lifecycle) {
    for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
        .into_iter()
        .flatten()
    {
        if let Some(http) = handler.http_get.as_mut() {
            default_http_get(http);
        }
    }
}

fn default_http_get(http: &mut HTTPGetAction) {
    default_str(&mut http.path, "/");
    default_str(&mut http.scheme, "HTTP");
}

fn default_volume(volume: &mut Volume) {
    if !has_volume_source(volume) {
        volume.empty_dir = Some(Default::default());
    }
    if let Some(host_path) = volume.host_path.as_mut() {
        host_path.type_.get_or_insert_with(String::new);
    }
    if let Some(secret) = volume.secret.as_mut() {
        secret.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(config_map) = volume.config_map.as_mut() {
        config_map.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(downward) = volume.downward_api.as_mut() {
        downward.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for item in downward.items.iter_mut().flatten() {
            if let Some(field_ref) = item.field_ref.as_mut() {
                default_str(&mut field_ref.api_version, "v1");
            }
        }
    }
    if let Some(projected) = volume.projected.as_mut() {
        projected.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for source in projected.sources.iter_mut().flatten() {
            for item in source
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(field_ref) = item.field_ref.as_mut() {
                    default_str(&mut field_ref.api_version, "v1");
                }
            }
            if let Some(token) = source.service_account_token.as_mut() {
                token
                    .expiration_seconds
                    .get_or_insert(SERVICE_ACCOUNT_TOKEN_EXPIRATION_SECONDS);
            }
        }
    }
    if let Some(spec) = volume
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
        .map(|t| &mut t.spec)
    {
        default_str(&mut spec.volume_mode, "Filesystem");
    }
}

/// Whether any volume source is set (anything besides the name).
pub fn has_volume_source(volume: &Volume) -> bool {
    volume_source_keys(volume).next().is_some()
}

/// The JSON names of the sources a volume sets (e.g. "emptyDir", "secret").
pub fn volume_source_keys(volume: &Volume) -> impl Iterator<Item = String> {
    let keys: Vec<String> = match serde_json::to_value(volume) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "name")
            .collect(),
        _ => Vec::new(),
    };
    keys.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn pod_spec_defaults() {
        let mut s = spec(
            json!({"containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}),
        );
        default_pod_spec(&mut s);
        assert_eq!(s.restart_policy.as_deref(), Some("Always"));
        assert_eq!(s.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(s.termination_grace_period_seconds, Some(30));
        assert_eq!(s.scheduler_name.as_deref(), Some("default-scheduler"));
        assert!(s.security_context.is_some());
        assert_eq!(s.enable_service_links, None, "pod-only default");
        let c = &s.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        assert_eq!(
            c.ports.as_ref().unwrap()[0].protocol.as_deref(),
            Some("TCP")
        );
        default_pod_only(&mut s);
        assert_eq!(s.enable_service_links, Some(true));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/team/app"), "Always");
        assert_eq!(
            image_pull_policy("localhost:5000/team/app:v1"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx:latest@sha256:abcd"), "Always");
        assert_eq!(image_pull_policy("Nginx"), "IfNotPresent");
    }

    #[test]
    fn probes_and_volumes() {
        let mut s = spec(json!({
            "containers": [{"name": "c", "image": "x", "livenessProbe": {"httpGet": {"port": 80}}}],
            "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cm"}}, {"name": "h", "hostPath": {"path": "/x"}}]
        }));
        default_pod_spec(&mut s);
        let probe = s.containers[0].liveness_probe.as_ref().unwrap();
        assert_eq!(
            (
                probe.timeout_seconds,
                probe.period_seconds,
                probe.success_threshold,
                probe.failure_threshold
            ),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let http = probe.http_get.as_ref().unwrap();
        assert_eq!(
            (http.path.as_deref(), http.scheme.as_deref()),
            (Some("/"), Some("HTTP"))
        );
        let volumes = s.volumes.as_ref().unwrap();
        assert!(volumes[0].empty_dir.is_some());
        assert_eq!(
            volumes[1].config_map.as_ref().unwrap().default_mode,
            Some(420)
        );
        assert_eq!(
            volumes[2].host_path.as_ref().unwrap().type_.as_deref(),
            Some("")
        );
    }

    #[test]
    fn requests_default_to_limits_on_pods() {
        let mut s = spec(json!({"containers": [{"name": "c", "image": "x",
            "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}}]}));
        default_pod_only(&mut s);
        let requests = s.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert_eq!(requests["cpu"].0, "100m");
        assert_eq!(requests["memory"].0, "64Mi");
    }

    #[test]
    fn host_network_ports_become_host_ports() {
        let mut s = spec(
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]}),
        );
        default_pod_only(&mut s);
        assert_eq!(
            s.containers[0].ports.as_ref().unwrap()[0].host_port,
            Some(8080)
        );
    }
}
