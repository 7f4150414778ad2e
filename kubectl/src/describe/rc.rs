//! `describe rc` (and the Pod Template section).

use k8s_openapi::api::core::v1::{Event, PodTemplateSpec, ReplicationController};

use super::pod::{describe_containers, describe_volumes};
use super::{
    annotations_multiline, events, format_selector, labels_multiline, tolerations_multiline, Writer,
};

/// Pod counts by phase among the controller's own pods.
#[derive(Default, Clone, Copy)]
pub struct PodCounts {
    pub running: usize,
    pub waiting: usize,
    pub succeeded: usize,
    pub failed: usize,
}

pub fn describe_replication_controller(
    rc: &ReplicationController,
    counts: PodCounts,
    rc_events: Option<&[Event]>,
) -> String {
    let mut w = Writer::default();
    let meta = &rc.metadata;
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Selector:\t{}\n", format_selector(spec.selector.as_ref())),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            status.replicas,
            spec.replicas.unwrap_or(1)
        ),
    );
    w.write(
        0,
        &format!(
            "Pods Status:\t{} Running / {} Waiting / {} Succeeded / {} Failed\n",
            counts.running, counts.waiting, counts.succeeded, counts.failed
        ),
    );
    describe_pod_template(&mut w, spec.template.as_ref());
    if let Some(conditions) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.write(1, "----\t------\t------\n");
        for c in conditions {
            w.write(
                1,
                &format!(
                    "{} \t{}\t{}\n",
                    c.type_,
                    c.status,
                    c.reason.clone().unwrap_or_default()
                ),
            );
        }
    }
    events(&mut w, rc_events);
    w.finish()
}

pub fn describe_pod_template(w: &mut Writer, template: Option<&PodTemplateSpec>) {
    w.write(0, "Pod Template:\n");
    let Some(t) = template else {
        w.write(1, "<unset>");
        return;
    };
    let meta = t.metadata.clone().unwrap_or_default();
    let spec = t.spec.clone().unwrap_or_default();
    labels_multiline(w, "  Labels", meta.labels.as_ref());
    if meta.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        annotations_multiline(w, "  Annotations", meta.annotations.as_ref());
    }
    if let Some(sa) = spec.service_account_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(1, &format!("Service Account:\t{sa}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        describe_containers(w, "Init Containers", init, None, "  ");
    }
    describe_containers(w, "Containers", &spec.containers, None, "  ");
    describe_volumes(w, spec.volumes.as_deref(), "  ");
    if let Some(p) = spec.priority_class_name.as_ref().filter(|s| !s.is_empty()) {
        w.write(1, &format!("Priority Class Name:\t{p}\n"));
    }
    labels_multiline(w, "  Node-Selectors", spec.node_selector.as_ref());
    tolerations_multiline(w, "  Tolerations", spec.tolerations.as_ref());
}
