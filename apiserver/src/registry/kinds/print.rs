//! Small helpers shared by the kinds' table columns and cells (upstream's
//! pkg/printers/internalversion conventions).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

use crate::strategy::Column;

/// A column with upstream's description.
pub const fn column(
    name: &'static str,
    type_: &'static str,
    priority: i32,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

/// Upstream's `labels.FormatLabels`: "k=v,k2=v2" sorted by key, "<none>" when empty.
pub fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    let pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if pairs.is_empty() {
        "<none>".to_string()
    } else {
        pairs.join(",")
    }
}

/// Container names and images, each joined by ",".
pub fn layout_container_cells(containers: &[Container]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or(""))
        .collect();
    (names.join(","), images.join(","))
}

/// The value, or "<none>" when it is empty.
pub fn or_none(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => "<none>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_or_none() {
        let labels = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]);
        assert_eq!(format_labels(Some(&labels)), "a=1,b=2");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(or_none(Some("")), "<none>");
    }
}
