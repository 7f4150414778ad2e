//! `describe pod`, and the container and volume sections pod templates share.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EnvVar, Event, Pod, PodSpec, Probe,
    ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{annotations_multiline, events, labels_multiline, time, tolerations_multiline, Writer};
use crate::output::age_since;

pub fn describe_pod(pod: &Pod, pod_events: Option<&[Event]>) -> String {
    let mut w = Writer::default();
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
    if let Some(p) = spec.priority {
        w.write(0, &format!("Priority:\t{p}\n"));
    }
    if let Some(p) = spec.priority_class_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Priority Class Name:\t{p}\n"));
    }
    if let Some(r) = spec.runtime_class_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Runtime Class Name:\t{r}\n"));
    }
    if let Some(sa) = spec.service_account_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        None => w.write(0, "Node:\t<none>\n"),
        Some(node) => w.write(
            0,
            &format!(
                "Node:\t{node}/{}\n",
                status.host_ip.as_deref().unwrap_or("")
            ),
        ),
    }
    if status.start_time.is_some() {
        w.write(
            0,
            &format!("Start Time:\t{}\n", time(status.start_time.as_ref())),
        );
    }
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    let phase = status.phase.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_some() && phase != "Failed" && phase != "Succeeded" {
        w.write(
            0,
            &format!(
                "Status:\tTerminating (lasts {})\n",
                age_since(
                    meta.deletion_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .as_deref()
                )
            ),
        );
        w.write(
            0,
            &format!(
                "Termination Grace Period:\t{}s\n",
                meta.deletion_grace_period_seconds.unwrap_or(0)
            ),
        );
    } else {
        w.write(0, &format!("Status:\t{phase}\n"));
    }
    if let Some(r) = status.reason.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Reason:\t{r}\n"));
    }
    if let Some(m) = status.message.as_ref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Message:\t{m}\n"));
    }
    w.write(
        0,
        &format!("IP:\t{}\n", status.pod_ip.as_deref().unwrap_or("")),
    );
    let ips = status.pod_ips.clone().unwrap_or_default();
    if ips.is_empty() {
        w.write(0, "IPs:\t<none>\n");
    } else {
        w.write(0, "IPs:\n");
        for ip in ips {
            w.write(1, &format!("IP:\t{}\n", ip.ip));
        }
    }
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        w.write(
            0,
            &format!("Controlled By:\t{}/{}\n", owner.kind, owner.name),
        );
    }
    if let Some(n) = status
        .nominated_node_name
        .as_ref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("NominatedNodeName:\t{n}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        describe_containers(
            &mut w,
            "Init Containers",
            init,
            status.init_container_statuses.as_deref(),
            "",
        );
    }
    describe_containers(
        &mut w,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref(),
        "",
    );
    if let Some(gates) = spec.readiness_gates.as_ref().filter(|g| !g.is_empty()) {
        w.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let s = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == g.condition_type)
                .map(|c| c.status.clone())
                .unwrap_or_else(|| "<none>".into());
            w.write(1, &format!("{} \t{s} \n", g.condition_type));
        }
    }
    if let Some(conditions) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.write(1, &format!("{} \t{} \n", c.type_, c.status));
        }
    }
    describe_volumes(&mut w, spec.volumes.as_deref(), "");
    let qos = status
        .qos_class
        .clone()
        .unwrap_or_else(|| qos_class(&spec).to_string());
    w.write(0, &format!("QoS Class:\t{qos}\n"));
    labels_multiline(&mut w, "Node-Selectors", spec.node_selector.as_ref());
    tolerations_multiline(&mut w, "Tolerations", spec.tolerations.as_ref());
    events(&mut w, pod_events);
    w.finish()
}

/// The Containers (or Init Containers) section; `space` is `"  "` in pod templates.
pub fn describe_containers(
    w: &mut Writer,
    label: &str,
    containers: &[Container],
    statuses: Option<&[ContainerStatus]>,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.write(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let status = statuses.into_iter().flatten().find(|s| s.name == c.name);
        w.write(1, &format!("{name_indent}{}:\n", c.name));
        if let Some(s) = status {
            w.write(
                2,
                &format!(
                    "Container ID:\t{}\n",
                    s.container_id.as_deref().unwrap_or("")
                ),
            );
        }
        w.write(
            2,
            &format!("Image:\t{}\n", c.image.as_deref().unwrap_or("")),
        );
        if let Some(s) = status {
            w.write(2, &format!("Image ID:\t{}\n", s.image_id));
        }
        let ports = c.ports.clone().unwrap_or_default();
        let describe_ports = |host: bool| -> String {
            ports
                .iter()
                .map(|p| {
                    let number = if host {
                        p.host_port.unwrap_or(0)
                    } else {
                        p.container_port
                    };
                    let mut s = format!("{number}/{}", p.protocol.as_deref().unwrap_or(""));
                    if let Some(n) = p.name.as_ref().filter(|n| !n.is_empty()) {
                        s = format!("{s} ({n})");
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let port_text = describe_ports(false);
        if port_text.contains(',') {
            w.write(2, &format!("Ports:\t{port_text}\n"));
        } else {
            w.write(2, &format!("Port:\t{}\n", or_none(&port_text)));
        }
        let host_text = describe_ports(true);
        if host_text.contains(',') {
            w.write(2, &format!("Host Ports:\t{host_text}\n"));
        } else {
            w.write(2, &format!("Host Port:\t{}\n", or_none(&host_text)));
        }
        for (title, items) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(items) = items.as_ref().filter(|i| !i.is_empty()) {
                w.write(2, &format!("{title}:\n"));
                for item in items {
                    for line in item.split('\n') {
                        w.write(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(s) = status {
            describe_state(w, "State", s.state.as_ref());
            if s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
            {
                describe_state(w, "Last State", s.last_state.as_ref());
            }
            w.write(
                2,
                &format!("Ready:\t{}\n", if s.ready { "True" } else { "False" }),
            );
            w.write(2, &format!("Restart Count:\t{}\n", s.restart_count));
        }
        describe_resources(w, c.resources.as_ref(), 2);
        for (title, probe) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                w.write(2, &format!("{title}:\t{}\n", describe_probe(p)));
            }
        }
        if let Some(from) = c.env_from.as_ref().filter(|e| !e.is_empty()) {
            w.write(2, "Environment Variables from:\n");
            for e in from {
                let (name, kind, optional) = if let Some(cm) = &e.config_map_ref {
                    (cm.name.clone(), "ConfigMap", cm.optional.unwrap_or(false))
                } else if let Some(s) = &e.secret_ref {
                    (s.name.clone(), "Secret", s.optional.unwrap_or(false))
                } else {
                    (String::new(), "", false)
                };
                match e.prefix.as_ref().filter(|p| !p.is_empty()) {
                    None => w.write(3, &format!("{name}\t{kind}\tOptional: {optional}\n")),
                    Some(p) => w.write(
                        3,
                        &format!("{name}\t{kind} with prefix '{p}'\tOptional: {optional}\n"),
                    ),
                }
            }
        }
        describe_env(w, c.env.as_deref());
        let mut mounts = c.volume_mounts.clone().unwrap_or_default();
        if mounts.is_empty() {
            w.write(2, "Mounts:\t<none>\n");
        } else {
            w.write(2, "Mounts:\n");
            mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
            for m in mounts {
                let mut flags = vec![if m.read_only == Some(true) {
                    "ro".to_string()
                } else {
                    "rw".to_string()
                }];
                if let Some(sub) = m.sub_path.as_ref().filter(|s| !s.is_empty()) {
                    flags.push(format!("path={sub:?}"));
                }
                w.write(
                    3,
                    &format!("{} from {} ({})\n", m.mount_path, m.name, flags.join(",")),
                );
            }
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

fn describe_state(w: &mut Writer, name: &str, state: Option<&ContainerState>) {
    let state = state.cloned().unwrap_or_default();
    if let Some(r) = &state.running {
        w.write(2, &format!("{name}:\tRunning\n"));
        w.write(3, &format!("Started:\t{}\n", time(r.started_at.as_ref())));
    } else if let Some(wt) = &state.waiting {
        w.write(2, &format!("{name}:\tWaiting\n"));
        if let Some(r) = wt.reason.as_ref().filter(|r| !r.is_empty()) {
            w.write(3, &format!("Reason:\t{r}\n"));
        }
    } else if let Some(t) = &state.terminated {
        w.write(2, &format!("{name}:\tTerminated\n"));
        if let Some(r) = t.reason.as_ref().filter(|r| !r.is_empty()) {
            w.write(3, &format!("Reason:\t{r}\n"));
        }
        if let Some(m) = t.message.as_ref().filter(|m| !m.is_empty()) {
            w.write(3, &format!("Message:\t{m}\n"));
        }
        w.write(3, &format!("Exit Code:\t{}\n", t.exit_code));
        if let Some(s) = t.signal.filter(|s| *s > 0) {
            w.write(3, &format!("Signal:\t{s}\n"));
        }
        w.write(3, &format!("Started:\t{}\n", time(t.started_at.as_ref())));
        w.write(3, &format!("Finished:\t{}\n", time(t.finished_at.as_ref())));
    } else {
        w.write(2, &format!("{name}:\tWaiting\n"));
    }
}

fn describe_resources(w: &mut Writer, r: Option<&ResourceRequirements>, level: usize) {
    let Some(r) = r else { return };
    for (title, list) in [("Limits", &r.limits), ("Requests", &r.requests)] {
        if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
            w.write(level, &format!("{title}:\n"));
            for (name, q) in list {
                w.write(level + 1, &format!("{name}:\t{}\n", q.0));
            }
        }
    }
}

fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

fn describe_probe(p: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.success_threshold.unwrap_or(1),
        p.failure_threshold.unwrap_or(3)
    );
    if let Some(e) = &p.exec {
        return format!(
            "exec [{}] {attrs}",
            e.command.clone().unwrap_or_default().join(" ")
        );
    }
    if let Some(h) = &p.http_get {
        let scheme = h
            .scheme
            .clone()
            .unwrap_or_else(|| "HTTP".into())
            .to_lowercase();
        let host = h.host.clone().unwrap_or_default();
        return format!(
            "http-get {scheme}://{host}:{}{} {attrs}",
            int_or_string(&h.port),
            h.path.clone().unwrap_or_default()
        );
    }
    if let Some(t) = &p.tcp_socket {
        return format!(
            "tcp-socket {}:{} {attrs}",
            t.host.clone().unwrap_or_default(),
            int_or_string(&t.port)
        );
    }
    if let Some(g) = &p.grpc {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            g.port,
            g.service.clone().unwrap_or_default()
        );
    }
    format!("unknown {attrs}")
}

fn describe_env(w: &mut Writer, env: Option<&[EnvVar]>) {
    let env = env.unwrap_or_default();
    if env.is_empty() {
        w.write(2, "Environment:\t<none>\n");
        return;
    }
    w.write(2, "Environment:\n");
    for e in env {
        let Some(from) = &e.value_from else {
            for (i, line) in e.value.clone().unwrap_or_default().split('\n').enumerate() {
                if i == 0 {
                    w.write(3, &format!("{}:\t{line}\n", e.name));
                } else {
                    w.write(3, &format!("\t{line}\n"));
                }
            }
            continue;
        };
        if let Some(f) = &from.field_ref {
            w.write(
                3,
                &format!(
                    "{}:\t ({}:{})\n",
                    e.name,
                    f.api_version.clone().unwrap_or_else(|| "v1".into()),
                    f.field_path
                ),
            );
        } else if let Some(r) = &from.resource_field_ref {
            w.write(3, &format!("{}:\t ({})\n", e.name, r.resource));
        } else if let Some(s) = &from.secret_key_ref {
            w.write(
                3,
                &format!(
                    "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    e.name,
                    s.key,
                    s.name,
                    s.optional.unwrap_or(false)
                ),
            );
        } else if let Some(c) = &from.config_map_key_ref {
            w.write(
                3,
                &format!(
                    "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    e.name,
                    c.key,
                    c.name,
                    c.optional.unwrap_or(false)
                ),
            );
        }
    }
}

/// The Volumes section; `space` is `"  "` in pod templates.
pub fn describe_volumes(w: &mut Writer, volumes: Option<&[Volume]>, space: &str) {
    let volumes = volumes.unwrap_or_default();
    if volumes.is_empty() {
        w.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.write(1, &format!("{name_indent}{}:\n", v.name));
        if let Some(h) = &v.host_path {
            w.write(
                2,
                &format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    h.path,
                    h.type_.clone().unwrap_or_else(|| "<none>".into())
                ),
            );
        } else if let Some(e) = &v.empty_dir {
            w.write(
                2,
                &format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{}\n",
                    e.medium.clone().unwrap_or_default(),
                    e.size_limit.as_ref().map(|q| q.0.clone()).unwrap_or_else(|| "<unset>".into())
                ),
            );
        } else if let Some(s) = &v.secret {
            w.write(
                2,
                &format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    s.secret_name.clone().unwrap_or_default(),
                    s.optional.unwrap_or(false)
                ),
            );
        } else if let Some(c) = &v.config_map {
            w.write(
                2,
                &format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    c.name,
                    c.optional.unwrap_or(false)
                ),
            );
        } else if let Some(p) = &v.persistent_volume_claim {
            w.write(
                2,
                &format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    p.claim_name,
                    p.read_only.unwrap_or(false)
                ),
            );
        } else if let Some(p) = &v.projected {
            w.write(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for s in p.sources.iter().flatten() {
                if let Some(sec) = &s.secret {
                    w.write(
                        2,
                        &format!(
                            "SecretName:\t{}\n    Optional:\t{}\n",
                            sec.name,
                            sec.optional.unwrap_or(false)
                        ),
                    );
                } else if s.downward_api.is_some() {
                    w.write(2, "DownwardAPI:\ttrue\n");
                } else if let Some(cm) = &s.config_map {
                    w.write(
                        2,
                        &format!(
                            "ConfigMapName:\t{}\n    Optional:\t{}\n",
                            cm.name,
                            cm.optional.unwrap_or(false)
                        ),
                    );
                } else if let Some(t) = &s.service_account_token {
                    w.write(
                        2,
                        &format!(
                            "TokenExpirationSeconds:\t{}\n",
                            t.expiration_seconds.unwrap_or(3607)
                        ),
                    );
                }
            }
        } else {
            w.write(1, "<unknown>\n");
        }
    }
}

/// The QoS class upstream computes when the status does not carry one.
fn qos_class(spec: &PodSpec) -> &'static str {
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = c.resources.clone().unwrap_or_default();
        let requests = r.requests.unwrap_or_default();
        let limits = r.limits.unwrap_or_default();
        for name in ["cpu", "memory"] {
            if requests.contains_key(name) || limits.contains_key(name) {
                any = true;
            }
            match (requests.get(name), limits.get(name)) {
                (_, None) => guaranteed = false,
                (Some(req), Some(lim)) if req.0 != lim.0 => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
