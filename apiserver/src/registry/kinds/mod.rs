//! Every kind this apiserver serves, with its strategy (upstream's
//! pkg/registry/<group>/<kind>/strategy.go, defaults, validation and table
//! printers, one file per kind) and the helpers they share.

pub mod age;
pub mod config_map;
pub mod defaults;
pub mod endpoints;
pub mod event;
pub mod lease;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod print;
pub mod quantity;
pub mod rbac;
pub mod replication_controller;
pub mod service;
pub mod service_account;
pub mod validation;

pub use age::{age_between, age_since, human_duration};

use crate::registry::ResourceInfo;
use crate::strategy::Typed;

/// All served resources, in discovery order.
pub fn all() -> Vec<ResourceInfo> {
    vec![
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Namespace",
            plural: "namespaces",
            singular: "namespace",
            namespaced: false,
            short_names: &["ns"],
            categories: &[],
            subresources: &["status", "finalize"],
            has_status: true,
            definition: "io.k8s.api.core.v1.Namespace",
            strategy: Box::new(Typed(namespace::NamespaceStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Pod",
            plural: "pods",
            singular: "pod",
            namespaced: true,
            short_names: &["po"],
            categories: &["all"],
            subresources: &["status", "binding", "log", "exec", "attach", "portforward"],
            has_status: true,
            definition: "io.k8s.api.core.v1.Pod",
            strategy: Box::new(Typed(pod::PodStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "ReplicationController",
            plural: "replicationcontrollers",
            singular: "replicationcontroller",
            namespaced: true,
            short_names: &["rc"],
            categories: &["all"],
            subresources: &["status", "scale"],
            has_status: true,
            definition: "io.k8s.api.core.v1.ReplicationController",
            strategy: Box::new(Typed(replication_controller::ReplicationControllerStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Service",
            plural: "services",
            singular: "service",
            namespaced: true,
            short_names: &["svc"],
            categories: &["all"],
            subresources: &["status"],
            has_status: true,
            definition: "io.k8s.api.core.v1.Service",
            strategy: Box::new(Typed(service::ServiceStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Endpoints",
            plural: "endpoints",
            singular: "endpoints",
            namespaced: true,
            short_names: &["ep"],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.core.v1.Endpoints",
            strategy: Box::new(Typed(endpoints::EndpointsStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Node",
            plural: "nodes",
            singular: "node",
            namespaced: false,
            short_names: &["no"],
            categories: &[],
            subresources: &["status"],
            has_status: true,
            definition: "io.k8s.api.core.v1.Node",
            strategy: Box::new(Typed(node::NodeStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "Event",
            plural: "events",
            singular: "event",
            namespaced: true,
            short_names: &["ev"],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.core.v1.Event",
            strategy: Box::new(Typed(event::EventStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "ConfigMap",
            plural: "configmaps",
            singular: "configmap",
            namespaced: true,
            short_names: &["cm"],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.core.v1.ConfigMap",
            strategy: Box::new(Typed(config_map::ConfigMapStrategy)),
        },
        ResourceInfo {
            group: "",
            version: "v1",
            kind: "ServiceAccount",
            plural: "serviceaccounts",
            singular: "serviceaccount",
            namespaced: true,
            short_names: &["sa"],
            categories: &[],
            subresources: &["token"],
            has_status: false,
            definition: "io.k8s.api.core.v1.ServiceAccount",
            strategy: Box::new(Typed(service_account::ServiceAccountStrategy)),
        },
        ResourceInfo {
            group: "coordination.k8s.io",
            version: "v1",
            kind: "Lease",
            plural: "leases",
            singular: "lease",
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.coordination.v1.Lease",
            strategy: Box::new(Typed(lease::LeaseStrategy)),
        },
        ResourceInfo {
            group: rbac::GROUP,
            version: "v1",
            kind: "ClusterRole",
            plural: "clusterroles",
            singular: "clusterrole",
            namespaced: false,
            short_names: &[],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.rbac.v1.ClusterRole",
            strategy: Box::new(Typed(rbac::ClusterRoleStrategy)),
        },
        ResourceInfo {
            group: rbac::GROUP,
            version: "v1",
            kind: "ClusterRoleBinding",
            plural: "clusterrolebindings",
            singular: "clusterrolebinding",
            namespaced: false,
            short_names: &[],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.rbac.v1.ClusterRoleBinding",
            strategy: Box::new(Typed(rbac::ClusterRoleBindingStrategy)),
        },
        ResourceInfo {
            group: rbac::GROUP,
            version: "v1",
            kind: "Role",
            plural: "roles",
            singular: "role",
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.rbac.v1.Role",
            strategy: Box::new(Typed(rbac::RoleStrategy)),
        },
        ResourceInfo {
            group: rbac::GROUP,
            version: "v1",
            kind: "RoleBinding",
            plural: "rolebindings",
            singular: "rolebinding",
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            has_status: false,
            definition: "io.k8s.api.rbac.v1.RoleBinding",
            strategy: Box::new(Typed(rbac::RoleBindingStrategy)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_lists_kinds_in_order() {
        let plurals: Vec<&str> = all().iter().map(|r| r.plural).collect();
        assert_eq!(
            plurals,
            [
                "namespaces",
                "pods",
                "replicationcontrollers",
                "services",
                "endpoints",
                "nodes",
                "events",
                "configmaps",
                "serviceaccounts",
                "leases",
                "clusterroles",
                "clusterrolebindings",
                "roles",
                "rolebindings"
            ]
        );
    }

    #[test]
    fn every_kind_has_matching_columns_and_cells() {
        for r in all() {
            let obj = json!({"metadata": {"name": "x", "namespace": "default"}});
            let normalized = match r.strategy.normalize(&obj) {
                Ok((v, _)) => v,
                // Kinds with required fields (e.g. Event.involvedObject) need more.
                Err(_) => {
                    json!({"metadata": {"name": "x", "namespace": "default"}, "involvedObject": {}})
                }
            };
            let cells = r.strategy.cells(&normalized, "1s");
            assert_eq!(cells.len(), r.strategy.columns().len(), "{}", r.plural);
        }
    }

    #[test]
    fn strategies_work_through_json() {
        let registry = all();
        let pods = registry.iter().find(|r| r.plural == "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
        pods.strategy.default(&mut pod).unwrap();
        pods.strategy.prepare_for_create(&mut pod).unwrap();
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert!(pods.strategy.validate(&pod).is_empty());
    }
}
