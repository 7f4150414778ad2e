//! `describe` for ConfigMaps, Namespaces and ServiceAccounts (kubectl 1.33's layout).

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, ServiceAccount};

use super::{annotations_multiline, events, labels_multiline, Writer};

pub fn describe_config_map(cm: &ConfigMap, cm_events: Option<&[Event]>) -> String {
    let mut w = Writer::default();
    let meta = &cm.metadata;
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(0, "\nData\n====\n");
    for (k, v) in cm.data.iter().flatten() {
        w.write(0, &format!("{k}:\n----\n{v}\n\n"));
    }
    w.write(0, "\nBinaryData\n====\n");
    for (k, v) in cm.binary_data.iter().flatten() {
        w.write(0, &format!("{k}: {} bytes\n", v.0.len()));
    }
    w.write(0, "\n");
    events(&mut w, cm_events);
    w.finish()
}

/// Namespaces; this cluster serves no ResourceQuotas or LimitRanges, so (as kubectl
/// does when the server has none) those sections are left out.
pub fn describe_namespace(ns: &Namespace) -> String {
    let mut w = Writer::default();
    let meta = &ns.metadata;
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    let phase = ns
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    w.write(0, &format!("Status:\t{phase}\n"));
    w.finish()
}

pub fn describe_service_account(sa: &ServiceAccount, sa_events: Option<&[Event]>) -> String {
    let mut w = Writer::default();
    let meta = &sa.metadata;
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or("")),
    );
    w.write(
        0,
        &format!("Namespace:\t{}\n", meta.namespace.as_deref().unwrap_or("")),
    );
    labels_multiline(&mut w, "Labels", meta.labels.as_ref());
    annotations_multiline(&mut w, "Annotations", meta.annotations.as_ref());
    let pull: Vec<String> = sa
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect();
    let mountable: Vec<String> = sa
        .secrets
        .iter()
        .flatten()
        .filter_map(|s| s.name.clone())
        .collect();
    // This cluster keeps no token Secrets.
    for (header, names) in [
        ("Image pull secrets:", pull),
        ("Mountable secrets:", mountable),
        ("Tokens:", Vec::new()),
    ] {
        if names.is_empty() {
            w.write(0, &format!("{header}\t<none>\n"));
        }
        for (i, name) in names.iter().enumerate() {
            let prefix = if i == 0 {
                header.to_string()
            } else {
                " ".repeat(19)
            };
            w.write(0, &format!("{prefix}\t{name}\n"));
        }
    }
    events(&mut w, sa_events);
    w.finish()
}
