//! coordination.k8s.io/v1 Lease: spec validation and the table.

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

use super::print::column;
use super::validation::{
    invalid_each, is_qualified_name, validate_generic_object_meta, NameRule, Path,
};
use crate::strategy::{Column, FieldError, KindStrategy};

/// Strategies defined by Kubernetes itself (unqualified names).
const LEASE_STRATEGIES: [&str; 1] = ["OldestEmulationVersion"];

pub struct LeaseStrategy;

impl KindStrategy for LeaseStrategy {
    type Object = Lease;

    fn validate(&self, lease: &Lease) -> Vec<FieldError> {
        let mut errs =
            validate_generic_object_meta(&lease.metadata, true, NameRule::Dns1123Subdomain);
        let Some(spec) = &lease.spec else {
            return errs;
        };
        let path = Path::new("spec");
        if let Some(d) = spec.lease_duration_seconds.filter(|&d| d <= 0) {
            errs.push(FieldError::invalid(
                &path.child("leaseDurationSeconds"),
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|&t| t < 0) {
            errs.push(FieldError::invalid(
                &path.child("leaseTransitions"),
                t,
                "must be greater than or equal to 0",
            ));
        }
        let strategy = spec.strategy.as_deref().unwrap_or("");
        if spec.strategy.is_some() {
            // Upstream nests the field name twice here.
            let strategy_path = path.child("strategy");
            let p = strategy_path.child("strategy");
            if strategy.contains('/') {
                errs.extend(invalid_each(&p, strategy, is_qualified_name(strategy)));
            } else if !LEASE_STRATEGIES.contains(&strategy) {
                errs.push(FieldError::not_supported(&p, strategy, &LEASE_STRATEGIES));
            }
        }
        if spec
            .preferred_holder
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && strategy.is_empty()
        {
            errs.push(FieldError::forbidden(
                &path.child("preferredHolder"),
                "may only be specified if `strategy` is defined",
            ));
        }
        errs
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Holder", "string", 0, "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
            Column::age(),
        ]
    }

    fn cells(&self, lease: &Lease, age: &str) -> Vec<Value> {
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        vec![
            Value::from(lease.metadata.name.clone().unwrap_or_default()),
            Value::from(holder),
            Value::from(age),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(spec: Value) -> Lease {
        serde_json::from_value(
            json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn valid_lease_and_table() {
        let l = lease(json!({"holderIdentity": "node-1", "leaseDurationSeconds": 40}));
        assert!(LeaseStrategy.validate(&l).is_empty());
        assert_eq!(
            LeaseStrategy.cells(&l, "2m"),
            vec![json!("node-1"), json!("node-1"), json!("2m")]
        );
    }

    #[test]
    fn spec_rules() {
        let l = lease(
            json!({"leaseDurationSeconds": 0, "leaseTransitions": -1, "preferredHolder": "x"}),
        );
        let errs: Vec<String> = LeaseStrategy
            .validate(&l)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
                "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
            ]
        );
        let l = lease(json!({"strategy": "Newest"}));
        assert_eq!(
            LeaseStrategy.validate(&l)[0].to_string(),
            "spec.strategy.strategy: Unsupported value: \"Newest\": supported values: \"OldestEmulationVersion\""
        );
    }
}
