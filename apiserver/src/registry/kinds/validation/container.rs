//! Container validation shared by regular, init and ephemeral containers
//! (upstream's validateContainerCommon and friends): names, images, ports,
//! environment, volume mounts, resources, probes and lifecycle hooks.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EphemeralContainer, HTTPGetAction,
    LifecycleHandler, PodSpec, Probe, ResourceRequirements, SecurityContext, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod_spec::{validate_local_descending_path, SpecContext};
use super::{
    inclusive_range_error, invalid_each, is_config_map_key, is_qualified_name, is_valid_port_name,
    is_valid_port_num, not_found, regex_error, validate_dns1123_label, validate_enum,
    validate_nonnegative, validate_port_num_or_name, validate_qualified_name, NameRule, Path,
    PROTOCOLS,
};
use crate::registry::kinds::quantity::{parse_quantity, QUANTITY_FORMAT_ERROR};
use crate::strategy::FieldError;

const INIT_ONLY_WITH_RESTART: &str =
    "may not be set for init containers without restartPolicy=Always";

/// What every container check needs from the pod spec.
pub(super) struct ContainerEnv<'a> {
    pub volumes: &'a BTreeSet<String>,
    pub grace: Option<i64>,
    pub ctx: SpecContext,
}

// ---- containers ----

pub(super) fn validate_containers(
    containers: &[Container],
    env: &ContainerEnv<'_>,
    path: &Path,
) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, env, &p));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        }
        errs.extend(validate_probes_and_lifecycle(c, env.grace, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(
        containers.iter().map(|c| c.ports.as_deref()),
        path,
    ));
    errs
}

pub(super) fn validate_init_containers(
    containers: &[Container],
    regular: &[Container],
    env: &ContainerEnv<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, env, &p));
        let restartable = c.restart_policy.as_deref() == Some("Always");
        if let Some(policy) = c.restart_policy.as_deref().filter(|_| !restartable) {
            errs.push(FieldError::not_supported(
                &p.child("restartPolicy"),
                policy,
                &["Always"],
            ));
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(&c.name);
        }
        // Init containers run one by one, so host ports only conflict within one.
        errs.extend(host_port_conflicts([c.ports.as_deref()].into_iter(), path));
        if restartable {
            errs.extend(validate_probes_and_lifecycle(c, env.grace, &p));
        } else {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, _) in set.into_iter().filter(|(_, present)| *present) {
                errs.push(FieldError::forbidden(
                    &p.child(field),
                    INIT_ONLY_WITH_RESTART,
                ));
            }
        }
    }
    errs
}

pub(super) fn validate_ephemeral_containers(
    spec: &PodSpec,
    env: &ContainerEnv<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();
    let others: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut all = others.clone();
    let mut errs = Vec::new();
    for (i, ec) in ephemeral.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(&as_container(ec), env, &p));
        if !all.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), &ec.name));
        }
        if let Some(target) = ec
            .target_container_name
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            if !others.contains(target) {
                errs.push(not_found(&p.child("targetContainerName"), target));
            }
        }
        let disallowed = [
            ("ports", ec.ports.as_ref().is_some_and(|v| !v.is_empty())),
            (
                "resources",
                ec.resources
                    .as_ref()
                    .is_some_and(|r| r != &ResourceRequirements::default()),
            ),
            ("livenessProbe", ec.liveness_probe.is_some()),
            ("readinessProbe", ec.readiness_probe.is_some()),
            ("startupProbe", ec.startup_probe.is_some()),
            ("lifecycle", ec.lifecycle.is_some()),
        ];
        for (field, _) in disallowed.into_iter().filter(|(_, set)| *set) {
            errs.push(FieldError::forbidden(
                &p.child(field),
                "cannot be set for an Ephemeral Container",
            ));
        }
    }
    errs
}

/// The fields an ephemeral container shares with a container.
fn as_container(ec: &EphemeralContainer) -> Container {
    Container {
        name: ec.name.clone(),
        image: ec.image.clone(),
        image_pull_policy: ec.image_pull_policy.clone(),
        termination_message_policy: ec.termination_message_policy.clone(),
        env: ec.env.clone(),
        env_from: ec.env_from.clone(),
        volume_mounts: ec.volume_mounts.clone(),
        security_context: ec.security_context.clone(),
        ..Default::default()
    }
}

/// Upstream's validateContainerCommon.
fn validate_container_common(
    c: &Container,
    env: &ContainerEnv<'_>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(&name_path, &c.name));
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    } else if env.ctx == SpecContext::Pod && image.trim() != image {
        errs.push(FieldError::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    errs.extend(validate_enum(
        &path.child("terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
    ));
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_env_from(
        c.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        env.volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_enum(
        &path.child("imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        &["Always", "IfNotPresent", "Never"],
    ));
    if let Some(resources) = &c.resources {
        errs.extend(validate_resources(resources, &path.child("resources")));
    }
    errs.extend(validate_container_security_context(
        c.security_context.as_ref(),
        &path.child("securityContext"),
    ));
    errs
}

fn validate_container_ports(ports: &[ContainerPort], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(&p.child("name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    port.container_port,
                    msg,
                ));
            }
        }
        if let Some(host_port) = port.host_port.filter(|&h| h != 0) {
            for msg in is_valid_port_num(i64::from(host_port)) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host_port, msg));
            }
        }
        errs.extend(validate_enum(
            &p.child("protocol"),
            port.protocol.as_deref(),
            &PROTOCOLS,
        ));
    }
    errs
}

/// Two containers may not claim the same protocol/hostIP/hostPort.
fn host_port_conflicts<'a>(
    ports_per_container: impl Iterator<Item = Option<&'a [ContainerPort]>>,
    path: &Path,
) -> Vec<FieldError> {
    let mut seen = BTreeSet::new();
    let mut errs = Vec::new();
    for (ci, ports) in ports_per_container.enumerate() {
        for (pi, port) in ports.unwrap_or_default().iter().enumerate() {
            let Some(host_port) = port.host_port.filter(|&h| h != 0) else {
                continue;
            };
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

// ---- environment ----

const DOWNWARD_ENV_FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const RESOURCE_ENV_FIELDS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Relaxed names (upstream's default since 1.32): printable ASCII but '='.
fn is_env_var_name(name: &str) -> Vec<String> {
    if name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".into()]
    }
}

fn validate_env(vars: &[EnvVar], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        let p = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(invalid_each(
                &p.child("name"),
                &var.name,
                is_env_var_name(&var.name),
            ));
        }
        errs.extend(validate_env_value_from(var, &p.child("valueFrom")));
    }
    errs
}

fn validate_env_value_from(var: &EnvVar, path: &Path) -> Vec<FieldError> {
    let Some(from) = &var.value_from else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let mut sources = 0;
    if let Some(field_ref) = &from.field_ref {
        sources += 1;
        errs.extend(validate_field_ref(
            &field_ref.api_version,
            &field_ref.field_path,
            &path.child("fieldRef"),
        ));
    }
    if let Some(resource_ref) = &from.resource_field_ref {
        sources += 1;
        let resource_field_ref_path = path.child("resourceFieldRef");
        let p = resource_field_ref_path.child("resource");
        let resource = resource_ref.resource.as_str();
        let hugepages = resource.starts_with("requests.hugepages-")
            || resource.starts_with("limits.hugepages-");
        if resource.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !RESOURCE_ENV_FIELDS.contains(&resource) && !hugepages {
            errs.push(FieldError::not_supported(
                &p,
                resource,
                &RESOURCE_ENV_FIELDS,
            ));
        }
    }
    let key_refs = [
        (
            "configMapKeyRef",
            from.config_map_key_ref
                .as_ref()
                .map(|r| (r.name.as_str(), r.key.as_str())),
        ),
        (
            "secretKeyRef",
            from.secret_key_ref
                .as_ref()
                .map(|r| (r.name.as_str(), r.key.as_str())),
        ),
    ];
    for (field, key_ref) in key_refs {
        if let Some((name, key)) = key_ref {
            sources += 1;
            errs.extend(validate_key_selector(name, key, &path.child(field)));
        }
    }
    let has_value = var.value.as_deref().is_some_and(|v| !v.is_empty());
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if has_value {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

fn validate_field_ref(
    api_version: &Option<String>,
    field_path: &str,
    path: &Path,
) -> Vec<FieldError> {
    let api_version = api_version.as_deref().unwrap_or("");
    if api_version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    if api_version != "v1" {
        return vec![FieldError::invalid(
            &path.child("fieldPath"),
            field_path,
            format!("error converting fieldPath: unsupported pod version: {api_version}"),
        )];
    }
    if let Some((base, subscript)) = split_subscript(field_path) {
        return match base {
            "metadata.annotations" => validate_qualified_name(path, &subscript.to_lowercase()),
            "metadata.labels" => validate_qualified_name(path, subscript),
            _ => vec![FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )],
        };
    }
    if DOWNWARD_ENV_FIELDS.contains(&field_path) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            &path.child("fieldPath"),
            field_path,
            &DOWNWARD_ENV_FIELDS,
        )]
    }
}

/// "metadata.labels['app']" -> ("metadata.labels", "app").
fn split_subscript(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    Some((base, key))
}

fn validate_key_selector(name: &str, key: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = invalid_each(
        &path.child("name"),
        name,
        NameRule::Dns1123Subdomain.check(name, false),
    );
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        errs.extend(invalid_each(
            &path.child("key"),
            key,
            is_config_map_key(key),
        ));
    }
    errs
}

fn validate_env_from(sources: &[EnvFromSource], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let p = path.index(i);
        if let Some(prefix) = source.prefix.as_deref().filter(|x| !x.is_empty()) {
            errs.extend(invalid_each(
                &p.child("prefix"),
                prefix,
                is_env_var_name(prefix),
            ));
        }
        let refs = [
            (
                "configMapRef",
                source.config_map_ref.as_ref().map(|r| r.name.as_str()),
            ),
            (
                "secretRef",
                source.secret_ref.as_ref().map(|r| r.name.as_str()),
            ),
        ];
        let count = refs.iter().filter(|(_, r)| r.is_some()).count();
        for (field, name) in refs {
            let Some(name) = name else { continue };
            let field_path = p.child(field);
            let name_path = field_path.child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&name_path, ""));
            } else {
                errs.extend(invalid_each(
                    &name_path,
                    name,
                    NameRule::Dns1123Subdomain.check(name, true),
                ));
            }
        }
        match count {
            0 => errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            )),
        }
    }
    errs
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeSet<String>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(not_found(&p.child("name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        let sub_path = m.sub_path.as_deref().unwrap_or("");
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                &path.child("subPath"),
                sub_path,
            ));
        }
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                &path.child("subPathExpr"),
                expr,
            ));
        }
    }
    errs
}

// ---- resources ----

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Native resources are unprefixed or in the kubernetes.io namespace.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Requests may be below limits (overcommit) only for native, non-hugepage resources.
fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

fn validate_container_resource_name(name: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = invalid_each(path, name, is_qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        let standard = ["cpu", "memory", "ephemeral-storage", "storage", "pods"];
        if !standard.contains(&name) && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource type or fully qualified",
            ));
        }
        if !["cpu", "memory", "ephemeral-storage"].contains(&name) && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    }
    errs
}

/// A quantity's value in nano-units, or the errors it deserves.
fn validate_quantity(name: &str, raw: &str, path: &Path) -> Result<i128, Vec<FieldError>> {
    let Some(value) = parse_quantity(raw) else {
        return Err(vec![FieldError::invalid(path, raw, QUANTITY_FORMAT_ERROR)]);
    };
    let mut errs = Vec::new();
    if value < 0 {
        errs.push(FieldError::invalid(path, raw, super::IS_NEGATIVE));
    }
    if !is_native(name) && value % 1_000_000_000 != 0 {
        errs.push(FieldError::invalid(path, raw, "must be an integer"));
    }
    if errs.is_empty() {
        Ok(value)
    } else {
        Err(errs)
    }
}

fn validate_resources(resources: &ResourceRequirements, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = resources.limits.as_ref().unwrap_or(&empty);
    let requests = resources.requests.as_ref().unwrap_or(&empty);
    let mut limit_values = BTreeMap::new();
    for (name, q) in limits {
        let p = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        match validate_quantity(name, &q.0, &p) {
            Ok(v) => {
                limit_values.insert(name.as_str(), v);
            }
            Err(e) => errs.extend(e),
        }
    }
    for (name, q) in requests {
        let p = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let value = match validate_quantity(name, &q.0, &p) {
            Ok(v) => v,
            Err(e) => {
                errs.extend(e);
                continue;
            }
        };
        match (limits.get(name), limit_values.get(name.as_str())) {
            (Some(limit), Some(&limit_value)) => {
                if value != limit_value && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!("must be equal to {name} limit of {}", limit.0),
                    ));
                } else if value > limit_value {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!("must be less than or equal to {name} limit of {}", limit.0),
                    ));
                }
            }
            (Some(_), None) => {}
            (None, _) if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            (None, _) => {}
        }
    }
    let names = || limits.keys().chain(requests.keys());
    if names().any(|n| is_hugepages(n)) && !names().any(|n| n == "cpu" || n == "memory") {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

// ---- probes and lifecycle ----

fn validate_probes_and_lifecycle(
    c: &Container,
    grace: Option<i64>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(lifecycle) = &c.lifecycle {
        let p = path.child("lifecycle");
        if let Some(h) = &lifecycle.post_start {
            errs.extend(validate_lifecycle_handler(h, grace, &p.child("postStart")));
        }
        if let Some(h) = &lifecycle.pre_stop {
            errs.extend(validate_lifecycle_handler(h, grace, &p.child("preStop")));
        }
    }
    if let Some(probe) = &c.liveness_probe {
        let p = path.child("livenessProbe");
        errs.extend(validate_probe(probe, &p));
        errs.extend(require_success_threshold_one(probe, &p));
    }
    if let Some(probe) = &c.readiness_probe {
        let p = path.child("readinessProbe");
        errs.extend(validate_probe(probe, &p));
        if let Some(seconds) = probe.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                &p.child("terminationGracePeriodSeconds"),
                seconds,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(probe) = &c.startup_probe {
        let p = path.child("startupProbe");
        errs.extend(validate_probe(probe, &p));
        errs.extend(require_success_threshold_one(probe, &p));
    }
    errs
}

fn require_success_threshold_one(probe: &Probe, path: &Path) -> Vec<FieldError> {
    let threshold = probe.success_threshold.unwrap_or(0);
    if threshold != 1 {
        vec![FieldError::invalid(
            &path.child("successThreshold"),
            threshold,
            "must be 1",
        )]
    } else {
        Vec::new()
    }
}

fn validate_probe(probe: &Probe, path: &Path) -> Vec<FieldError> {
    let handlers: [(&str, bool); 4] = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ];
    let mut errs = validate_handler_count(&handlers, path);
    if let Some(exec) = &probe.exec {
        if exec.command.as_ref().is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(http) = &probe.http_get {
        errs.extend(validate_http_get(http, &path.child("httpGet")));
    }
    if let Some(tcp) = &probe.tcp_socket {
        errs.extend(validate_port_num_or_name(
            &tcp.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let Some(grpc) = &probe.grpc {
        errs.extend(validate_port_num_or_name(
            &IntOrString::Int(grpc.port),
            &path.child("grpc").child("port"),
        ));
    }
    let counters = [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ];
    for (field, value) in counters {
        errs.extend(validate_nonnegative(
            &path.child(field),
            i64::from(value.unwrap_or(0)),
        ));
    }
    if let Some(seconds) = probe.termination_grace_period_seconds.filter(|&s| s <= 0) {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            seconds,
            "must be greater than 0",
        ));
    }
    errs
}

fn validate_lifecycle_handler(
    handler: &LifecycleHandler,
    grace: Option<i64>,
    path: &Path,
) -> Vec<FieldError> {
    let handlers: [(&str, bool); 4] = [
        ("exec", handler.exec.is_some()),
        ("httpGet", handler.http_get.is_some()),
        ("tcpSocket", handler.tcp_socket.is_some()),
        ("sleep", handler.sleep.is_some()),
    ];
    let mut errs = validate_handler_count(&handlers, path);
    if let Some(exec) = &handler.exec {
        if exec.command.as_ref().is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(http) = &handler.http_get {
        errs.extend(validate_http_get(http, &path.child("httpGet")));
    }
    if let Some(tcp) = &handler.tcp_socket {
        errs.extend(validate_port_num_or_name(
            &tcp.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    if let (Some(sleep), Some(grace)) = (&handler.sleep, grace) {
        if sleep.seconds < 0 || sleep.seconds > grace {
            errs.push(FieldError::invalid(
                &path.child("sleep"),
                sleep.seconds,
                format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            ));
        }
    }
    errs
}

/// Exactly one handler type: the second and later are forbidden.
fn validate_handler_count(handlers: &[(&str, bool)], path: &Path) -> Vec<FieldError> {
    let set: Vec<&str> = handlers
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
    if set.is_empty() {
        return vec![FieldError::required(path, "must specify a handler type")];
    }
    set.iter()
        .skip(1)
        .map(|n| FieldError::forbidden(&path.child(n), "may not specify more than 1 handler type"))
        .collect()
}

fn validate_http_get(http: &HTTPGetAction, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if http.path.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(validate_port_num_or_name(&http.port, &path.child("port")));
    let scheme = http.scheme.as_deref().unwrap_or("");
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            &path.child("scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in http.http_headers.iter().flatten() {
        let ok = !header.name.is_empty()
            && header
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            errs.push(FieldError::invalid(
                &path.child("httpHeaders"),
                &header.name,
                regex_error(
                    "a valid HTTP header must consist of alphanumeric characters or '-'",
                    "[-A-Za-z0-9]+",
                    &["X-Header-Name"],
                ),
            ));
        }
    }
    errs
}

pub(super) fn validate_id(path: &Path, value: Option<i64>) -> Vec<FieldError> {
    match value {
        Some(v) if !(0..=i64::from(u32::MAX)).contains(&v) => {
            vec![FieldError::invalid(
                path,
                v,
                inclusive_range_error(0, i64::from(u32::MAX)),
            )]
        }
        _ => Vec::new(),
    }
}

fn validate_container_security_context(
    sc: Option<&SecurityContext>,
    path: &Path,
) -> Vec<FieldError> {
    let Some(sc) = sc else {
        return Vec::new();
    };
    let mut errs = validate_id(&path.child("runAsUser"), sc.run_as_user);
    errs.extend(validate_id(&path.child("runAsGroup"), sc.run_as_group));
    if sc.allow_privilege_escalation == Some(false) && sc.privileged == Some(true) {
        errs.push(FieldError::invalid(
            path,
            sc,
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    errs
}
