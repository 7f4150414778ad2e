//! rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding: subject defaults, rule and reference validation
//! (upstream's pkg/apis/rbac/validation) and the tables. Who may do what with
//! them is crate::authz's business.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::print::column;
use super::validation::{validate_generic_object_meta, NameRule, Path};
use crate::strategy::{Column, FieldError, KindStrategy};

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Upstream's SetDefaults_Subject: users and groups live in the RBAC group,
/// service accounts in the core group.
fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for s in subjects.iter_mut().flatten() {
        if s.api_group.is_none() || s.api_group.as_deref() == Some("") {
            match s.kind.as_str() {
                "User" | "Group" => s.api_group = Some(GROUP.into()),
                _ => s.api_group = Some(String::new()),
            }
        }
    }
}

fn validate_rules(rules: &[PolicyRule], namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let rules_path = Path::new("rules");
        let path = rules_path.index(i);
        if rule.verbs.is_empty() {
            errs.push(FieldError::required(
                &path.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    &path.child("nonResourceURLs"),
                    urls,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !resources.is_empty() || !groups.is_empty() {
                errs.push(FieldError::invalid(
                    &path.child("nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if groups.is_empty() {
            errs.push(FieldError::required(
                &path.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if resources.is_empty() {
            errs.push(FieldError::required(
                &path.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

fn validate_role_ref(role_ref: &RoleRef, cluster_only: bool) -> Vec<FieldError> {
    let path = Path::new("roleRef");
    let mut errs = Vec::new();
    if role_ref.api_group != GROUP {
        errs.push(FieldError::not_supported(
            &path.child("apiGroup"),
            &role_ref.api_group,
            &[GROUP],
        ));
    }
    let kinds: &[&str] = if cluster_only {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("kind"),
            &role_ref.kind,
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for msg in NameRule::PathSegment.check(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                &path.child("name"),
                &role_ref.name,
                msg,
            ));
        }
    }
    errs
}

fn validate_subjects(subjects: &[Subject], namespace_required: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let subjects_path = Path::new("subjects");
        let path = subjects_path.index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(&path.child("name"), ""));
        }
        let group = s.api_group.as_deref().unwrap_or("");
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        &path.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if namespace_required && s.namespace.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(&path.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    errs.push(FieldError::not_supported(
                        &path.child("apiGroup"),
                        group,
                        &[GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &path.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid("roleRef", new, "cannot change roleRef")]
}

fn meta_errors(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    validate_generic_object_meta(meta, namespaced, NameRule::PathSegment)
}

/// The "Created At" column of roles (upstream prints the timestamp, not an age).
fn created_at_columns() -> Vec<Column> {
    vec![
        Column::name(),
        column(
            "Created At",
            "date",
            0,
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
    ]
}

fn created_at_cells(meta: &ObjectMeta) -> Vec<Value> {
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    vec![
        Value::from(meta.name.clone().unwrap_or_default()),
        Value::from(created),
    ]
}

fn binding_columns() -> Vec<Column> {
    vec![
        Column::name(),
        column(
            "Role",
            "string",
            0,
            "RoleRef is the reference to the role the binding grants.",
        ),
        Column::age(),
        column("Users", "string", 1, "Users in the binding"),
        column("Groups", "string", 1, "Groups in the binding"),
        column(
            "ServiceAccounts",
            "string",
            1,
            "ServiceAccounts in the binding",
        ),
    ]
}

fn binding_cells(
    meta: &ObjectMeta,
    role_ref: &RoleRef,
    subjects: &[Subject],
    age: &str,
) -> Vec<Value> {
    let of_kind = |kind: &str| -> String {
        subjects
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| match (kind, s.namespace.as_deref()) {
                ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        Value::from(meta.name.clone().unwrap_or_default()),
        Value::from(format!("{}/{}", role_ref.kind, role_ref.name)),
        Value::from(age),
        Value::from(of_kind("User")),
        Value::from(of_kind("Group")),
        Value::from(of_kind("ServiceAccount")),
    ]
}

pub struct RoleStrategy;

impl KindStrategy for RoleStrategy {
    type Object = Role;

    fn validate(&self, role: &Role) -> Vec<FieldError> {
        let mut errs = meta_errors(&role.metadata, true);
        errs.extend(validate_rules(
            role.rules.as_deref().unwrap_or_default(),
            true,
        ));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        created_at_columns()
    }

    fn cells(&self, role: &Role, _age: &str) -> Vec<Value> {
        created_at_cells(&role.metadata)
    }
}

pub struct ClusterRoleStrategy;

impl KindStrategy for ClusterRoleStrategy {
    type Object = ClusterRole;

    fn validate(&self, role: &ClusterRole) -> Vec<FieldError> {
        let mut errs = meta_errors(&role.metadata, false);
        errs.extend(validate_rules(
            role.rules.as_deref().unwrap_or_default(),
            false,
        ));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        created_at_columns()
    }

    fn cells(&self, role: &ClusterRole, _age: &str) -> Vec<Value> {
        created_at_cells(&role.metadata)
    }
}

pub struct RoleBindingStrategy;

impl KindStrategy for RoleBindingStrategy {
    type Object = RoleBinding;

    fn default(&self, b: &mut RoleBinding) {
        default_subjects(&mut b.subjects);
    }

    fn validate(&self, b: &RoleBinding) -> Vec<FieldError> {
        let mut errs = meta_errors(&b.metadata, true);
        errs.extend(validate_role_ref(&b.role_ref, false));
        errs.extend(validate_subjects(
            b.subjects.as_deref().unwrap_or_default(),
            false,
        ));
        errs
    }

    fn validate_update(&self, new: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        binding_columns()
    }

    fn cells(&self, b: &RoleBinding, age: &str) -> Vec<Value> {
        let mut subjects = b.subjects.clone().unwrap_or_default();
        // A service account without a namespace is in the binding's.
        for s in subjects.iter_mut().filter(|s| s.kind == "ServiceAccount") {
            if s.namespace.as_deref().unwrap_or("").is_empty() {
                s.namespace = b.metadata.namespace.clone();
            }
        }
        binding_cells(&b.metadata, &b.role_ref, &subjects, age)
    }
}

pub struct ClusterRoleBindingStrategy;

impl KindStrategy for ClusterRoleBindingStrategy {
    type Object = ClusterRoleBinding;

    fn default(&self, b: &mut ClusterRoleBinding) {
        default_subjects(&mut b.subjects);
    }

    fn validate(&self, b: &ClusterRoleBinding) -> Vec<FieldError> {
        let mut errs = meta_errors(&b.metadata, false);
        errs.extend(validate_role_ref(&b.role_ref, true));
        errs.extend(validate_subjects(
            b.subjects.as_deref().unwrap_or_default(),
            true,
        ));
        errs
    }

    fn validate_update(
        &self,
        new: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        binding_columns()
    }

    fn cells(&self, b: &ClusterRoleBinding, age: &str) -> Vec<Value> {
        binding_cells(
            &b.metadata,
            &b.role_ref,
            b.subjects.as_deref().unwrap_or_default(),
            age,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn rules_need_verbs_and_groups_and_no_urls_in_roles() {
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "default"},
            "rules": [
                {"resources": ["pods"]},
                {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            ]
        }))
        .unwrap();
        assert_eq!(
            messages(RoleStrategy.validate(&role)),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].nonResourceURLs: Invalid value: [\"/healthz\"]: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let cluster: ClusterRole = serde_json::from_value(json!({
            "metadata": {"name": "system:x"},
            "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
        }))
        .unwrap();
        assert!(ClusterRoleStrategy.validate(&cluster).is_empty());
    }

    #[test]
    fn bindings_default_subject_groups_and_keep_role_ref() {
        let mut b: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "x"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "default"},
            ]
        }))
        .unwrap();
        ClusterRoleBindingStrategy.default(&mut b);
        let subjects = b.subjects.clone().unwrap();
        assert_eq!(subjects[0].api_group.as_deref(), Some(GROUP));
        assert_eq!(subjects[1].api_group.as_deref(), Some(""));
        assert_eq!(
            messages(ClusterRoleBindingStrategy.validate(&b)),
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[1].namespace: Required value",
            ]
        );
        let mut changed = b.clone();
        changed.role_ref.name = "y".into();
        assert!(
            messages(ClusterRoleBindingStrategy.validate_update(&changed, &b))
                .iter()
                .any(|m| m.contains("cannot change roleRef"))
        );
    }

    #[test]
    fn binding_table_lists_subjects_by_kind() {
        let b: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "dev"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice", "apiGroup": GROUP},
                {"kind": "User", "name": "bob", "apiGroup": GROUP},
                {"kind": "ServiceAccount", "name": "default"},
            ]
        }))
        .unwrap();
        assert_eq!(
            RoleBindingStrategy.cells(&b, "3m"),
            vec![
                json!("b"),
                json!("ClusterRole/view"),
                json!("3m"),
                json!("alice, bob"),
                json!(""),
                json!("dev/default"),
            ]
        );
    }
}
