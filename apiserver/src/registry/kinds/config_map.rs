//! core/v1 ConfigMap: key validation, size limit, immutability and the table.

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use super::print::column;
use super::validation::{
    invalid_each, is_config_map_key, too_long, validate_object_meta, NameRule, Path,
};
use crate::strategy::{Column, FieldError, KindStrategy};

/// Upstream's MaxSecretSize, also the ConfigMap limit.
const MAX_SIZE: usize = 1024 * 1024;
const IMMUTABLE: &str = "field is immutable when `immutable` is set";

pub struct ConfigMapStrategy;

impl KindStrategy for ConfigMapStrategy {
    type Object = ConfigMap;

    fn validate(&self, cm: &ConfigMap) -> Vec<FieldError> {
        let mut errs = validate_object_meta(&cm.metadata, true, NameRule::Dns1123Subdomain);
        let mut total = 0usize;
        for (key, value) in cm.data.iter().flatten() {
            let data_path = Path::new("data");
            let p = data_path.key(key);
            errs.extend(invalid_each(&p, key, is_config_map_key(key)));
            if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(key)) {
                errs.push(FieldError::invalid(
                    &p,
                    key,
                    "duplicate of key present in binaryData",
                ));
            }
            total += value.len();
        }
        for (key, value) in cm.binary_data.iter().flatten() {
            errs.extend(invalid_each(
                &Path::new("binaryData").key(key),
                key,
                is_config_map_key(key),
            ));
            total += value.0.len();
        }
        if total > MAX_SIZE {
            errs.push(too_long(&Path::new(""), MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if old.immutable == Some(true) {
            if new.immutable != Some(true) {
                errs.push(FieldError::forbidden(&Path::new("immutable"), IMMUTABLE));
            }
            if new.data != old.data {
                errs.push(FieldError::forbidden(&Path::new("data"), IMMUTABLE));
            }
            if new.binary_data != old.binary_data {
                errs.push(FieldError::forbidden(&Path::new("binaryData"), IMMUTABLE));
            }
        }
        errs.extend(self.validate(new));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            column("Data", "string", 0, "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
            Column::age(),
        ]
    }

    fn cells(&self, cm: &ConfigMap, age: &str) -> Vec<Value> {
        let count = cm.data.as_ref().map_or(0, |d| d.len())
            + cm.binary_data.as_ref().map_or(0, |d| d.len());
        vec![
            Value::from(cm.metadata.name.clone().unwrap_or_default()),
            Value::from(count),
            Value::from(age),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(value: Value) -> ConfigMap {
        serde_json::from_value(value).unwrap()
    }

    fn errors(c: &ConfigMap) -> Vec<String> {
        ConfigMapStrategy
            .validate(c)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn keys_are_validated() {
        let c = cm(json!({"metadata": {"name": "cfg", "namespace": "default"},
            "data": {"good.key": "1", "bad key": "2", "dup": "x"}, "binaryData": {"dup": "eA=="}}));
        assert_eq!(
            errors(&c),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
            ]
        );
        assert_eq!(
            ConfigMapStrategy.cells(&c, "9s"),
            vec![json!("cfg"), json!(4), json!("9s")]
        );
    }

    #[test]
    fn size_limit() {
        let c = cm(
            json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"k": "x".repeat(MAX_SIZE + 1)}}),
        );
        assert_eq!(
            errors(&c),
            vec![": Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn immutable_config_maps() {
        let old = cm(
            json!({"metadata": {"name": "cfg", "namespace": "default"}, "immutable": true, "data": {"k": "1"}}),
        );
        let new = cm(
            json!({"metadata": {"name": "cfg", "namespace": "default"}, "immutable": true, "data": {"k": "2"}}),
        );
        let errs: Vec<String> = ConfigMapStrategy
            .validate_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
    }
}
