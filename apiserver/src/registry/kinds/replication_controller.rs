//! core/v1 ReplicationController: defaults (replicas, selector and labels from
//! the template), validation, field selectors and the table.

use k8s_openapi::api::core::v1::{ReplicationController, ReplicationControllerStatus};
use serde_json::Value;

use super::defaults::default_pod_spec;
use super::print::{column, format_labels, layout_container_cells};
use super::validation::pod_spec::validate_pod_template_spec;
use super::validation::{
    validate_non_empty_selector, validate_nonnegative, validate_object_meta, NameRule, Path,
};
use crate::strategy::{Column, FieldError, KindStrategy};

pub struct ReplicationControllerStrategy;

impl KindStrategy for ReplicationControllerStrategy {
    fn tracks_generation(&self) -> bool {
        true
    }

    type Object = ReplicationController;

    fn default(&self, rc: &mut ReplicationController) {
        let Some(spec) = rc.spec.as_mut() else {
            return;
        };
        spec.replicas.get_or_insert(1);
        let Some(template) = spec.template.as_mut() else {
            return;
        };
        if let Some(pod_spec) = template.spec.as_mut() {
            default_pod_spec(pod_spec);
        }
        let Some(labels) = template.metadata.as_ref().and_then(|m| m.labels.clone()) else {
            return;
        };
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            rc.metadata.labels = Some(labels);
        }
    }

    /// Upstream starts with an empty status and generation 1.
    fn prepare_for_create(&self, rc: &mut ReplicationController) {
        rc.status = Some(ReplicationControllerStatus::default());
        rc.metadata.generation = Some(1);
    }

    fn validate(&self, rc: &ReplicationController) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&rc.metadata, true, NameRule::Dns1123Subdomain);
        errs.extend(validate_spec(rc));
        errs
    }

    fn validate_update(
        &self,
        new: &ReplicationController,
        _old: &ReplicationController,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(validate_status(new.status.as_ref()));
        errs
    }

    fn field_attrs(&self, rc: &ReplicationController) -> Vec<(&'static str, String)> {
        let replicas = rc.status.as_ref().map_or(0, |s| s.replicas);
        vec![("status.replicas", replicas.to_string())]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Desired", "integer", 0, "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
            column("Current", "integer", 0, "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
            column("Ready", "integer", 0, "The number of ready replicas for this replication controller."),
            Column::age(),
            column("Containers", "string", 1, "Names of each container in the template."),
            column("Images", "string", 1, "Images referenced by each container in the template."),
            column("Selector", "string", 1, "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ]
    }

    fn cells(&self, rc: &ReplicationController, age: &str) -> Vec<Value> {
        let spec = rc.spec.clone().unwrap_or_default();
        let status = rc.status.clone().unwrap_or_default();
        let containers = spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let (names, images) = layout_container_cells(&containers);
        vec![
            Value::from(rc.metadata.name.clone().unwrap_or_default()),
            Value::from(spec.replicas.unwrap_or(1)),
            Value::from(status.replicas),
            Value::from(status.ready_replicas.unwrap_or(0)),
            Value::from(age),
            Value::from(names),
            Value::from(images),
            Value::from(format_labels(spec.selector.as_ref())),
        ]
    }
}

/// Upstream's ValidateReplicationControllerSpec.
fn validate_spec(rc: &ReplicationController) -> Vec<FieldError> {
    let path = Path::new("spec");
    let spec = rc.spec.clone().unwrap_or_default();
    let mut errs = validate_nonnegative(
        &path.child("minReadySeconds"),
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
    );
    errs.extend(validate_non_empty_selector(
        spec.selector.as_ref(),
        &path.child("selector"),
    ));
    errs.extend(validate_nonnegative(
        &path.child("replicas"),
        i64::from(spec.replicas.unwrap_or(1)),
    ));
    let template_path = path.child("template");
    let Some(template) = &spec.template else {
        errs.push(FieldError::required(&template_path, ""));
        return errs;
    };
    let template_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.clone().unwrap_or_default();
    let matches = selector
        .iter()
        .all(|(k, v)| template_labels.get(k) == Some(v));
    if !selector.is_empty() && !matches {
        errs.push(FieldError::invalid(
            &template_path.child("metadata").child("labels"),
            &template_labels,
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &template_path));
    let pod_spec = template.spec.clone().unwrap_or_default();
    let restart_policy = pod_spec.restart_policy.as_deref().unwrap_or("");
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &template_path.child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if pod_spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &template_path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

/// Upstream's ValidateReplicationControllerStatus (checked on updates).
fn validate_status(status: Option<&ReplicationControllerStatus>) -> Vec<FieldError> {
    let Some(status) = status else {
        return Vec::new();
    };
    let path = Path::new("status");
    let replicas = status.replicas;
    let fully_labeled = status.fully_labeled_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let counters = [
        ("replicas", i64::from(replicas)),
        ("fullyLabeledReplicas", i64::from(fully_labeled)),
        ("readyReplicas", i64::from(ready)),
        ("availableReplicas", i64::from(available)),
        (
            "observedGeneration",
            status.observed_generation.unwrap_or(0),
        ),
    ];
    let mut errs: Vec<FieldError> = counters
        .iter()
        .flat_map(|(field, value)| validate_nonnegative(&path.child(field), *value))
        .collect();
    let too_many = "cannot be greater than status.replicas";
    for (field, value) in [
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ] {
        if value > replicas {
            errs.push(FieldError::invalid(&path.child(field), value, too_many));
        }
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(value: Value) -> ReplicationController {
        let mut r: ReplicationController = serde_json::from_value(value).unwrap();
        ReplicationControllerStrategy.default(&mut r);
        r
    }

    fn nginx() -> Value {
        json!({"metadata": {"name": "nginx", "namespace": "default"},
               "spec": {"template": {"metadata": {"labels": {"app": "nginx"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}})
    }

    fn errors(r: &ReplicationController) -> Vec<String> {
        ReplicationControllerStrategy
            .validate(r)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn defaults_come_from_the_template() {
        let r = rc(nginx());
        let spec = r.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "nginx");
        assert_eq!(r.metadata.labels.as_ref().unwrap()["app"], "nginx");
        let pod_spec = spec.template.as_ref().unwrap().spec.as_ref().unwrap();
        assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            pod_spec.enable_service_links, None,
            "templates get no pod-only defaults"
        );
        assert!(errors(&r).is_empty());
    }

    #[test]
    fn explicit_selector_and_labels_are_kept() {
        let mut v = nginx();
        v["spec"]["selector"] = json!({"app": "nginx"});
        v["metadata"]["labels"] = json!({"team": "web"});
        let r = rc(v);
        assert_eq!(r.metadata.labels.as_ref().unwrap().len(), 1);
        assert_eq!(r.metadata.labels.as_ref().unwrap()["team"], "web");
    }

    #[test]
    fn selector_must_match_template_labels() {
        let mut v = nginx();
        v["spec"]["selector"] = json!({"app": "other"});
        assert_eq!(
            errors(&rc(v)),
            vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"nginx\"}: `selector` does not match template `labels`"]
        );
    }

    #[test]
    fn selector_required_replicas_nonnegative_restart_always() {
        let mut v = nginx();
        v["spec"]["template"]["metadata"] = json!({});
        v["spec"]["replicas"] = json!(-1);
        v["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            errors(&rc(v)),
            vec![
                "spec.selector: Required value",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
    }

    #[test]
    fn template_spec_paths() {
        let mut v = nginx();
        v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        assert_eq!(
            errors(&rc(v)),
            vec!["spec.template.spec.containers[0].image: Required value"]
        );
    }

    #[test]
    fn status_checked_on_update() {
        let mut r = rc(nginx());
        r.status = Some(ReplicationControllerStatus {
            replicas: 1,
            ready_replicas: Some(2),
            ..Default::default()
        });
        let errs: Vec<String> = ReplicationControllerStrategy
            .validate_update(&r, &r)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]
        );
    }

    #[test]
    fn table_row() {
        let mut r = rc(nginx());
        r.status = Some(ReplicationControllerStatus {
            replicas: 1,
            ready_replicas: Some(1),
            ..Default::default()
        });
        assert_eq!(
            ReplicationControllerStrategy.cells(&r, "2m"),
            vec![
                json!("nginx"),
                json!(1),
                json!(1),
                json!(1),
                json!("2m"),
                json!("nginx"),
                json!("nginx:1.25"),
                json!("app=nginx")
            ]
        );
        assert_eq!(ReplicationControllerStrategy.columns().len(), 8);
        assert_eq!(
            ReplicationControllerStrategy.field_attrs(&r),
            vec![("status.replicas", "1".to_string())]
        );
    }
}
