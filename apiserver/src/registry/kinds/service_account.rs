//! core/v1 ServiceAccount: name validation and the table.

use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::Value;

use super::print::column;
use super::validation::{validate_object_meta, NameRule};
use crate::strategy::{Column, FieldError, KindStrategy};

pub struct ServiceAccountStrategy;

impl KindStrategy for ServiceAccountStrategy {
    type Object = ServiceAccount;

    fn validate(&self, sa: &ServiceAccount) -> Vec<FieldError> {
        validate_object_meta(&sa.metadata, true, NameRule::Dns1123Subdomain)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Secrets", "string", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret"),
            Column::age(),
        ]
    }

    fn cells(&self, sa: &ServiceAccount, age: &str) -> Vec<Value> {
        vec![
            Value::from(sa.metadata.name.clone().unwrap_or_default()),
            Value::from(sa.secrets.as_ref().map_or(0, Vec::len)),
            Value::from(age),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_name_and_prints_secret_count() {
        let sa: ServiceAccount = serde_json::from_value(
            json!({"metadata": {"name": "default", "namespace": "default"}}),
        )
        .unwrap();
        assert!(ServiceAccountStrategy.validate(&sa).is_empty());
        assert_eq!(
            ServiceAccountStrategy.cells(&sa, "1d"),
            vec![json!("default"), json!(0), json!("1d")]
        );
        let bad: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "Bad_", "namespace": "default"}}))
                .unwrap();
        assert_eq!(ServiceAccountStrategy.validate(&bad).len(), 1);
    }
}
