//! Pod spec validation shared by Pod and the ReplicationController template
//! (upstream's ValidatePodSpec and friends), and the Pod update rules.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec, PodTemplateSpec, Toleration, Volume};
use serde_json::Value;

use super::container::{
    validate_containers, validate_ephemeral_containers, validate_id, validate_init_containers,
    ContainerEnv,
};
use super::{
    inclusive_range_error, invalid_each, is_dns1123_subdomain, is_label_value, is_qualified_name,
    regex_error, validate_annotations, validate_dns1123_label, validate_enum, validate_ip,
    validate_labels, validate_qualified_name, NameRule, Path,
};
use crate::registry::kinds::defaults::volume_source_keys;
use crate::registry::kinds::quantity::parse_quantity;
use crate::strategy::FieldError;

const MAX_INT32: i64 = i32::MAX as i64;
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_CHARS: usize = 2048;
const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Where a pod spec sits: in a Pod (stricter) or in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecContext {
    Pod,
    Template,
}

/// Upstream's ValidatePodTemplateSpec: template labels, annotations and spec.
pub fn validate_pod_template_spec(template: &PodTemplateSpec, path: &Path) -> Vec<FieldError> {
    let meta = template.metadata.as_ref();
    let mut errs = validate_labels(meta.and_then(|m| m.labels.as_ref()), &path.child("labels"));
    errs.extend(validate_annotations(
        meta.and_then(|m| m.annotations.as_ref()),
        &path.child("annotations"),
    ));
    let Some(spec) = template.spec.as_ref() else {
        errs.push(FieldError::required(&path.child("spec"), ""));
        return errs;
    };
    let spec_path = path.child("spec");
    errs.extend(validate_pod_spec(spec, &spec_path, SpecContext::Template));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Upstream's ValidatePodSpec (the parts this server enforces).
pub fn validate_pod_spec(spec: &PodSpec, path: &Path, ctx: SpecContext) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let grace = spec.termination_grace_period_seconds;
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("");
    let (volumes, volume_errs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
    );
    errs.extend(volume_errs);
    let env = ContainerEnv {
        volumes: &volumes,
        grace,
        ctx,
    };
    errs.extend(validate_containers(
        &spec.containers,
        &env,
        &path.child("containers"),
    ));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &env,
        &path.child("initContainers"),
    ));
    errs.extend(validate_ephemeral_containers(
        spec,
        &env,
        &path.child("ephemeralContainers"),
    ));
    errs.extend(validate_host_network_ports(spec, path, ctx));
    errs.extend(validate_restart_policy(
        restart_policy,
        &path.child("restartPolicy"),
    ));
    errs.extend(validate_dns_policy(
        spec.dns_policy.as_deref().unwrap_or(""),
        &path.child("dnsPolicy"),
    ));
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(
        spec,
        &path.child("securityContext"),
    ));
    errs.extend(validate_dns_config(
        spec.dns_config.as_ref(),
        spec.dns_policy.as_deref(),
        &path.child("dnsConfig"),
    ));
    errs.extend(validate_gates(spec, path));
    errs.extend(validate_spec_names(spec, path));
    if let Some(deadline) = spec.active_deadline_seconds {
        if !(1..=MAX_INT32).contains(&deadline) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                deadline,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    errs.extend(validate_host_aliases(spec, &path.child("hostAliases")));
    errs
}

fn validate_spec_names(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let subdomain_fields = [
        ("serviceAccountName", spec.service_account_name.as_deref()),
        ("nodeName", spec.node_name.as_deref()),
        ("priorityClassName", spec.priority_class_name.as_deref()),
    ];
    for (field, value) in subdomain_fields {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            errs.extend(invalid_each(
                &path.child(field),
                v,
                NameRule::Dns1123Subdomain.check(v, false),
            ));
        }
    }
    for (field, value) in [
        ("hostname", spec.hostname.as_deref()),
        ("subdomain", spec.subdomain.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            errs.extend(validate_dns1123_label(&path.child(field), v));
        }
    }
    errs
}

// ---- volumes ----

/// Validates volumes and returns the names of the valid ones.
fn validate_volumes(volumes: &[Volume], path: &Path) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        let mut own = validate_volume_source(volume, &p);
        if volume.name.is_empty() {
            own.push(FieldError::required(&name_path, ""));
        } else {
            own.extend(validate_dns1123_label(&name_path, &volume.name));
        }
        if names.contains(&volume.name) {
            own.push(FieldError::duplicate(&name_path, &volume.name));
        }
        if own.is_empty() {
            names.insert(volume.name.clone());
        }
        errs.extend(own);
    }
    (names, errs)
}

fn validate_volume_source(volume: &Volume, path: &Path) -> Vec<FieldError> {
    let keys: Vec<String> = volume_source_keys(volume).collect();
    let mut errs: Vec<FieldError> = keys
        .iter()
        .skip(1)
        .map(|k| FieldError::forbidden(&path.child(k), "may not specify more than 1 volume type"))
        .collect();
    if keys.is_empty() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    if let Some(host_path) = &volume.host_path {
        let p = path.child("hostPath");
        if host_path.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(validate_no_backsteps(&p.child("path"), &host_path.path));
        }
        let types = [
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if let Some(t) = host_path.type_.as_deref().filter(|t| !types.contains(t)) {
            errs.push(FieldError::not_supported(&p.child("type"), t, &types));
        }
    }
    if let Some(secret) = &volume.secret {
        let p = path.child("secret");
        if secret.secret_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        errs.extend(validate_file_mode(
            &p.child("defaultMode"),
            secret.default_mode,
        ));
    }
    if let Some(config_map) = &volume.config_map {
        let p = path.child("configMap");
        if config_map.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        errs.extend(validate_file_mode(
            &p.child("defaultMode"),
            config_map.default_mode,
        ));
    }
    if let Some(claim) = &volume.persistent_volume_claim {
        if claim.claim_name.is_empty() {
            errs.push(FieldError::required(
                &path.child("persistentVolumeClaim").child("claimName"),
                "",
            ));
        }
    }
    if let Some(limit) = volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_ref())
    {
        if parse_quantity(&limit.0).is_none_or(|q| q < 0) {
            errs.push(FieldError::forbidden(
                &path.child("emptyDir").child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    errs
}

fn validate_file_mode(path: &Path, mode: Option<i32>) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR)],
        _ => Vec::new(),
    }
}

fn validate_no_backsteps(path: &Path, target: &str) -> Vec<FieldError> {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// Sub-paths of volume mounts: relative, without "..".
pub(super) fn validate_local_descending_path(path: &Path, target: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(validate_no_backsteps(path, target));
    errs
}
// ---- policies ----

fn validate_restart_policy(policy: &str, path: &Path) -> Vec<FieldError> {
    validate_enum(path, Some(policy), &["Always", "OnFailure", "Never"])
}

fn validate_dns_policy(policy: &str, path: &Path) -> Vec<FieldError> {
    validate_enum(
        path,
        Some(policy),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    )
}

fn validate_host_network_ports(spec: &PodSpec, path: &Path, ctx: SpecContext) -> Vec<FieldError> {
    if spec.host_network != Some(true) {
        return Vec::new();
    }
    let mut errs = Vec::new();
    for (ci, c) in spec.containers.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            // Templates may leave it 0: the Pod's defaulting fills it in.
            if (ctx == SpecContext::Pod || host_port != 0) && host_port != port.container_port {
                errs.push(FieldError::invalid(
                    &path
                        .child("containers")
                        .index(ci)
                        .child("ports")
                        .index(pi)
                        .child("hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

// ---- security, DNS, scheduling ----

fn validate_pod_security_context(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let Some(sc) = &spec.security_context else {
        return Vec::new();
    };
    let mut errs = validate_id(&path.child("runAsUser"), sc.run_as_user);
    errs.extend(validate_id(&path.child("runAsGroup"), sc.run_as_group));
    errs.extend(validate_id(&path.child("fsGroup"), sc.fs_group));
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(validate_id(
            &path.child("supplementalGroups").index(i),
            Some(*g),
        ));
    }
    errs
}

fn validate_dns_config(
    config: Option<&PodDNSConfig>,
    policy: Option<&str>,
    path: &Path,
) -> Vec<FieldError> {
    if policy == Some("None") {
        let Some(c) = config else {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        };
        if c.nameservers.as_ref().is_none_or(|n| n.is_empty()) {
            return vec![FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(config) = config else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let nameservers = config.nameservers.as_deref().unwrap_or_default();
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            nameservers,
            format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(validate_ip(&path.child("nameservers").index(i), ns));
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches,
            format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_CHARS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches,
            format!("must not have more than {MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list"),
        ));
    }
    for (i, search) in searches
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_str() != ".")
    {
        let search = search.strip_suffix('.').unwrap_or(search);
        errs.extend(invalid_each(
            &path.child("searches").index(i),
            search,
            subdomain_with_underscore(search),
        ));
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// Search domains may contain '_' (upstream's relaxed DNS search validation).
fn subdomain_with_underscore(value: &str) -> Vec<String> {
    let label_ok = |l: &str| {
        let l = l.strip_prefix('_').unwrap_or(l);
        let b = l.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_')
    };
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(super::max_len_error(253));
    }
    if !value.split('.').all(label_ok) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
            "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    errs
}

fn validate_gates(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(validate_qualified_name(
            &path.child("readinessGates").index(i).child("conditionType"),
            &gate.condition_type,
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let scheduling_gates_path = path.child("schedulingGates");
        let p = scheduling_gates_path.index(i);
        errs.extend(validate_qualified_name(&p, &gate.name));
        if !seen.insert(gate.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &gate.name));
        }
    }
    errs
}

/// Upstream's ValidateTolerations.
pub fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let operator = t.operator.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        if !key.is_empty() {
            errs.extend(invalid_each(&p.child("key"), key, is_qualified_name(key)));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                &p.child("operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

fn validate_host_aliases(spec: &PodSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.index(i);
        errs.extend(validate_ip(&p.child("ip"), &alias.ip));
        for (j, hostname) in alias.hostnames.iter().flatten().enumerate() {
            errs.extend(invalid_each(
                &p.child("hostnames").index(j),
                hostname,
                is_dns1123_subdomain(hostname),
            ));
        }
    }
    errs
}

// ---- updates ----

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Upstream's ValidatePodUpdate spec rules: only images, a shrinking
/// activeDeadlineSeconds, added tolerations and removed scheduling gates.
pub fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let path = Path::new("spec");
    let mut errs = Vec::new();
    for (field, new_list, old_list) in [
        (
            "containers",
            new.containers.as_slice(),
            old.containers.as_slice(),
        ),
        (
            "initContainers",
            new.init_containers.as_deref().unwrap_or_default(),
            old.init_containers.as_deref().unwrap_or_default(),
        ),
    ] {
        let p = path.child(field);
        if new_list.len() != old_list.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    if let Some(err) = validate_active_deadline_update(
        new.active_deadline_seconds,
        old.active_deadline_seconds,
        &path,
    ) {
        let stop = err.kind != crate::strategy::FieldErrorType::Invalid
            || err.detail != "must not update from a positive integer to nil value";
        errs.push(err);
        if stop {
            return errs;
        }
    }
    errs.extend(validate_only_added_tolerations(
        new.tolerations.as_deref().unwrap_or_default(),
        old.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    errs.extend(validate_only_deleted_scheduling_gates(
        new,
        old,
        &path.child("schedulingGates"),
    ));
    let munged = munge_updatable_fields(new, old);
    let (old_value, new_value) = (semantic(old), semantic(&munged));
    if old_value != new_value {
        let mut diff = Vec::new();
        json_diff(&old_value, &new_value, "", &mut diff);
        errs.push(FieldError::forbidden(
            &path,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                diff.join("\n")
            ),
        ));
    }
    errs
}

fn validate_active_deadline_update(
    new: Option<i64>,
    old: Option<i64>,
    path: &Path,
) -> Option<FieldError> {
    let p = path.child("activeDeadlineSeconds");
    match (new, old) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => Some(FieldError::invalid(
            &p,
            n,
            inclusive_range_error(0, MAX_INT32),
        )),
        (Some(n), Some(o)) if o < n => Some(FieldError::invalid(
            &p,
            n,
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => Some(FieldError::invalid(
            &p,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => None,
    }
}

fn validate_only_added_tolerations(
    new: &[Toleration],
    old: &[Toleration],
    path: &Path,
) -> Vec<FieldError> {
    for o in old {
        let kept = new.iter().any(|n| {
            let mut candidate = o.clone();
            candidate.toleration_seconds = n.toleration_seconds;
            &candidate == n
        });
        if !kept {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, path)
}

fn validate_only_deleted_scheduling_gates(
    new: &PodSpec,
    old: &PodSpec,
    path: &Path,
) -> Vec<FieldError> {
    let old_names: BTreeSet<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    new.scheduling_gates
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, g)| !old_names.contains(g.name.as_str()))
        .map(|(i, g)| {
            FieldError::forbidden(
                &path.index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            )
        })
        .collect()
}

/// The new spec with every field an update may change reset to the old value.
fn munge_updatable_fields(new: &PodSpec, old: &PodSpec) -> PodSpec {
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged
        .init_containers
        .iter_mut()
        .flatten()
        .zip(old.init_containers.iter().flatten())
    {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    let was_negative = old.termination_grace_period_seconds.is_some_and(|g| g < 0);
    if was_negative && munged.termination_grace_period_seconds == Some(1) {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    munged
}

/// JSON with nulls and empty lists/maps dropped: upstream's semantic equality
/// treats nil and empty alike.
fn semantic<T: serde::Serialize>(value: &T) -> Value {
    prune(serde_json::to_value(value).unwrap_or(Value::Null))
}

fn prune(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty_value(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// "-"/"+" lines for every leaf that differs, a rough stand-in for upstream's cmp.Diff.
fn json_diff(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            for k in keys {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                json_diff(
                    o.get(k).unwrap_or(&Value::Null),
                    n.get(k).unwrap_or(&Value::Null),
                    &child,
                    out,
                );
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                json_diff(ov, nv, &format!("{path}[{i}]"), out);
            }
        }
        _ if old != new => {
            out.push(format!("- {path}: {old}"));
            out.push(format!("+ {path}: {new}"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds::defaults::default_pod_spec;
    use serde_json::json;

    fn spec(value: Value) -> PodSpec {
        let mut s: PodSpec = serde_json::from_value(value).unwrap();
        default_pod_spec(&mut s);
        s
    }

    fn errors(s: &PodSpec) -> Vec<String> {
        validate_pod_spec(s, &Path::new("spec"), SpecContext::Pod)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_plain_spec_is_valid() {
        let s = spec(
            json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}),
        );
        assert_eq!(errors(&s), Vec::<String>::new());
    }

    #[test]
    fn containers_are_required() {
        let s = spec(json!({"containers": []}));
        assert_eq!(errors(&s), vec!["spec.containers: Required value"]);
    }

    #[test]
    fn container_name_and_image() {
        let s =
            spec(json!({"containers": [{"name": "", "image": ""}, {"name": "Web", "image": "x"}]}));
        let errs = errors(&s);
        assert_eq!(errs[0], "spec.containers[0].name: Required value");
        assert_eq!(errs[1], "spec.containers[0].image: Required value");
        assert!(errs[2].starts_with(
            "spec.containers[1].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
        ));
    }

    #[test]
    fn duplicate_container_names() {
        let s =
            spec(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}));
        assert_eq!(
            errors(&s),
            vec!["spec.containers[1].name: Duplicate value: \"a\""]
        );
    }

    #[test]
    fn port_ranges_and_protocols() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x", "ports": [
            {"containerPort": 70000},
            {"containerPort": 80, "protocol": "HTTP"},
            {"containerPort": 81, "hostPort": 8080},
            {"containerPort": 82, "hostPort": 8080}
        ]}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[3].hostPort: Duplicate value: \"TCP//8080\"",
            ]
        );
    }

    #[test]
    fn restart_and_dns_policies() {
        let mut s = spec(json!({"containers": [{"name": "a", "image": "x"}]}));
        s.restart_policy = Some("Sometimes".into());
        s.dns_policy = Some("Nope".into());
        assert_eq!(
            errors(&s),
            vec![
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Nope\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn volume_mounts_must_name_a_volume() {
        let s = spec(
            json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
        );
        assert_eq!(
            errors(&s),
            vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]
        );
    }

    #[test]
    fn volumes_have_one_source() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x"}],
            "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]}));
        assert_eq!(
            errors(&s),
            vec!["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]
        );
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "100m"}, "requests": {"cpu": "200m", "memory": "-1"}}}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"200m\": must be less than or equal to cpu limit of 100m",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn probes_need_one_handler_and_liveness_success_one() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x",
            "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}},
            "readinessProbe": {}}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            ]
        );
    }

    #[test]
    fn init_containers_rules() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x"}],
            "initContainers": [{"name": "a", "image": "y", "readinessProbe": {"exec": {"command": ["x"]}}}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.initContainers[0].name: Duplicate value: \"a\"",
                "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            ]
        );
    }

    #[test]
    fn env_value_from_needs_exactly_one_source() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x", "env": [
            {"name": "A", "valueFrom": {}},
            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}
        ]}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.bogus\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
            ]
        );
    }

    #[test]
    fn tolerations_rules() {
        let s = spec(json!({"containers": [{"name": "a", "image": "x"}],
            "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v"}]}));
        assert_eq!(
            errors(&s),
            vec![
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            ]
        );
    }

    #[test]
    fn template_ctx_allows_unset_host_port_on_host_network() {
        let s = spec(
            json!({"hostNetwork": true, "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}]}),
        );
        assert!(validate_pod_spec(&s, &Path::new("spec"), SpecContext::Template).is_empty());
        assert_eq!(
            errors(&s),
            vec!["spec.containers[0].ports[0].hostPort: Invalid value: 0: must match `containerPort` when `hostNetwork` is true"]
        );
    }

    #[test]
    fn updates_may_change_images_only() {
        let old = spec(json!({"containers": [{"name": "a", "image": "nginx:1"}]}));
        let mut new = old.clone();
        new.containers[0].image = Some("nginx:2".into());
        assert!(validate_pod_spec_update(&new, &old).is_empty());
        new.restart_policy = Some("Never".into());
        let errs = validate_pod_spec_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        ));
        assert!(errs[0].detail.contains("+ restartPolicy: \"Never\""));
    }

    #[test]
    fn updates_may_not_add_containers_or_raise_deadlines() {
        let old =
            spec(json!({"activeDeadlineSeconds": 10, "containers": [{"name": "a", "image": "x"}]}));
        let mut new = old.clone();
        new.containers.push(new.containers[0].clone());
        assert_eq!(
            validate_pod_spec_update(&new, &old)[0].to_string(),
            "spec.containers: Forbidden: pod updates may not add or remove containers"
        );
        let mut new = old.clone();
        new.active_deadline_seconds = Some(20);
        assert_eq!(
            validate_pod_spec_update(&new, &old)[0].to_string(),
            "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"
        );
        new.active_deadline_seconds = Some(5);
        assert!(validate_pod_spec_update(&new, &old).is_empty());
    }

    #[test]
    fn tolerations_may_only_be_added() {
        let old = spec(json!({"containers": [{"name": "a", "image": "x"}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}));
        let mut new = old.clone();
        let mut extra = new.tolerations.as_ref().unwrap()[0].clone();
        extra.key = Some("other".into());
        new.tolerations.as_mut().unwrap().push(extra);
        new.tolerations.as_mut().unwrap()[0].toleration_seconds = Some(10);
        assert!(validate_pod_spec_update(&new, &old).is_empty());
        new.tolerations = None;
        assert_eq!(
            validate_pod_spec_update(&new, &old)[0].to_string(),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
    }
}
