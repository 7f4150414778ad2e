//! core/v1 Namespace: the name label and "kubernetes" finalizer, Active
//! phase, validation, field selectors and the table.

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
use serde_json::Value;

use super::print::column;
use super::validation::{
    invalid_each, is_qualified_name, validate_kube_finalizer_name, validate_object_meta, NameRule,
    Path,
};
use crate::strategy::{Column, FieldError, KindStrategy};

/// The label every namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The finalizer the namespace controller removes once the namespace is empty.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

pub struct NamespaceStrategy;

impl KindStrategy for NamespaceStrategy {
    type Object = Namespace;

    fn default(&self, ns: &mut Namespace) {
        set_name_label(ns);
        let status = ns.status.get_or_insert_with(NamespaceStatus::default);
        if status.phase.as_deref().is_none_or(str::is_empty) {
            status.phase = Some("Active".to_string());
        }
    }

    /// Only namespaces/NAME/finalize changes spec.finalizers.
    fn prepare_for_update(&self, new: &mut Namespace, old: &Namespace) {
        let kept = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        new.spec.get_or_insert_with(Default::default).finalizers = kept;
    }

    /// spec.finalizers (the namespace controller's cleanup) hold a deletion.
    fn has_pending_finalizers(&self, ns: &Namespace) -> bool {
        ns.spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| !f.is_empty())
    }

    fn prepare_for_delete(&self, ns: &mut Namespace) {
        ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
    }

    fn prepare_for_create(&self, ns: &mut Namespace) {
        ns.status = Some(NamespaceStatus {
            phase: Some("Active".to_string()),
            ..Default::default()
        });
        let finalizers = ns
            .spec
            .get_or_insert_with(NamespaceSpec::default)
            .finalizers
            .get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.to_string());
        }
        // The name may only be known now (generateName).
        set_name_label(ns);
    }

    fn validate(&self, ns: &Namespace) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&ns.metadata, false, NameRule::Dns1123Label);
        let spec_path = Path::new("spec");
        let path = spec_path.child("finalizers");
        for finalizer in ns.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
            errs.extend(invalid_each(&path, finalizer, is_qualified_name(finalizer)));
            errs.extend(validate_kube_finalizer_name(&path, finalizer));
        }
        errs
    }

    fn field_attrs(&self, ns: &Namespace) -> Vec<(&'static str, String)> {
        let phase = ns
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        // Upstream also keeps a bare "name" field for old clients.
        vec![
            ("status.phase", phase),
            ("name", ns.metadata.name.clone().unwrap_or_default()),
        ]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Status", "string", 0, "The status of the namespace"),
            Column::age(),
        ]
    }

    fn cells(&self, ns: &Namespace, age: &str) -> Vec<Value> {
        vec![
            Value::from(ns.metadata.name.clone().unwrap_or_default()),
            Value::from(
                ns.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
            ),
            Value::from(age),
        ]
    }
}

fn set_name_label(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(NAME_LABEL.to_string(), name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(value: Value) -> Namespace {
        let mut n: Namespace = serde_json::from_value(value).unwrap();
        NamespaceStrategy.default(&mut n);
        n
    }

    #[test]
    fn spec_finalizers_hold_deletion_and_survive_ordinary_updates() {
        let mut old = ns(json!({"metadata": {"name": "a"}}));
        NamespaceStrategy.prepare_for_create(&mut old);
        assert!(NamespaceStrategy.has_pending_finalizers(&old));
        let mut new = ns(json!({"metadata": {"name": "a"}, "spec": {"finalizers": []}}));
        NamespaceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(
            new.spec.unwrap().finalizers,
            Some(vec!["kubernetes".to_string()])
        );
        let mut deleting = old.clone();
        NamespaceStrategy.prepare_for_delete(&mut deleting);
        assert_eq!(
            deleting.status.unwrap().phase.as_deref(),
            Some("Terminating")
        );
        let done = ns(json!({"metadata": {"name": "a"}, "spec": {"finalizers": []}}));
        assert!(!NamespaceStrategy.has_pending_finalizers(&done));
    }

    #[test]
    fn create_sets_finalizer_phase_and_label() {
        let mut n = ns(json!({"metadata": {"name": "team-a"}}));
        NamespaceStrategy.prepare_for_create(&mut n);
        assert_eq!(
            n.spec.as_ref().unwrap().finalizers.as_deref(),
            Some(&["kubernetes".to_string()][..])
        );
        assert_eq!(n.status.as_ref().unwrap().phase.as_deref(), Some("Active"));
        assert_eq!(n.metadata.labels.as_ref().unwrap()[NAME_LABEL], "team-a");
        assert!(NamespaceStrategy.validate(&n).is_empty());
        assert_eq!(
            NamespaceStrategy.cells(&n, "4s"),
            vec![json!("team-a"), json!("Active"), json!("4s")]
        );
    }

    #[test]
    fn names_are_dns_labels_and_cluster_scoped() {
        let n = ns(json!({"metadata": {"name": "team.a", "namespace": "x"}}));
        let errs: Vec<String> = NamespaceStrategy
            .validate(&n)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "metadata.name: Invalid value: \"team.a\": must not contain dots",
                "metadata.namespace: Forbidden: not allowed on this type",
            ]
        );
    }

    #[test]
    fn spec_finalizers_must_be_known_or_qualified() {
        let n = ns(json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}}));
        let errs: Vec<String> = NamespaceStrategy
            .validate(&n)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }

    #[test]
    fn field_attrs() {
        let n = ns(json!({"metadata": {"name": "a"}}));
        assert_eq!(
            NamespaceStrategy.field_attrs(&n),
            vec![
                ("status.phase", "Active".to_string()),
                ("name", "a".to_string())
            ]
        );
    }
}
