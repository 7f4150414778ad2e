//! `kubectl cluster-info`: where the control plane and the cluster services answer.

use kube::api::ListParams;
use serde_json::Value;

use crate::discovery::ResourceInfo;
use crate::error::Result;
use crate::out;
use crate::session::{to_value, Session};

pub async fn run(session: &Session) -> Result<()> {
    let services = ResourceInfo {
        group: String::new(),
        version: "v1".into(),
        plural: "services".into(),
        singular: "service".into(),
        kind: "Service".into(),
        namespaced: true,
        verbs: vec![],
        short_names: vec![],
        categories: vec![],
        subresources: vec![],
    };
    let lp = ListParams::default().labels("kubernetes.io/cluster-service=true");
    let list = session
        .api(&services, Some("kube-system"))
        .list(&lp)
        .await?;
    let server = session.server.trim_end_matches('/');
    let mut text = format!("Kubernetes control plane is running at {server}\n");
    for svc in list.items.iter().map(to_value) {
        let name = svc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let shown = svc
            .pointer("/metadata/labels/kubernetes.io~1name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        let port = svc
            .pointer("/spec/ports/0")
            .map(|p| match p.get("name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => format!(":{n}"),
                _ => p
                    .get("port")
                    .and_then(Value::as_i64)
                    .map(|n| format!(":{n}"))
                    .unwrap_or_default(),
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "{shown} is running at {server}/api/v1/namespaces/kube-system/services/{name}{port}/proxy\n"
        ));
    }
    text.push_str(
        "\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n",
    );
    out::print(&text);
    Ok(())
}
