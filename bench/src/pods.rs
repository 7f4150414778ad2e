//! The objects the benchmark writes: one realistic pod shape, and the
//! namespaces that keep each phase's pods apart.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

/// A pod like a controller would create: labels, one container with ports,
/// resources, env and probes. About 1 KiB as JSON.
pub fn pod(namespace: &str, name: &str) -> Result<Pod> {
    let value = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "bench", "tier": "web", "release": "stable"},
            "annotations": {"bench.example.com/purpose": "apiserver throughput"}
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "benchmark"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "128Mi"}
                },
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 5}
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30
        }
    });
    serde_json::from_value(value).context("the benchmark pod does not parse as a Pod")
}

/// Creates namespace `name` (an existing one is fine).
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name}
    }))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("create namespace {name}")),
    }
}

/// Creates pod `name` in `namespace`.
pub async fn create(api: &Api<Pod>, namespace: &str, name: &str) -> Result<()> {
    api.create(&PostParams::default(), &pod(namespace, name)?)
        .await
        .with_context(|| format!("create pod {namespace}/{name}"))?;
    Ok(())
}

/// How many pods the cluster stores, in every namespace.
pub async fn count_all(client: &kube::Client) -> Result<usize> {
    let all: Api<Pod> = Api::all(client.clone());
    let page = all
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await?;
    let rest = page.metadata.remaining_item_count.unwrap_or(0).max(0) as usize;
    Ok(page.items.len() + rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_has_name_namespace_and_a_container() {
        let p = pod("ns1", "p1").expect("valid pod");
        assert_eq!(p.metadata.name.as_deref(), Some("p1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns1"));
        let spec = p.spec.expect("spec");
        assert_eq!(spec.containers.len(), 1);
        let size = serde_json::to_vec(&pod("ns1", "p1").expect("valid pod"))
            .expect("serialize")
            .len();
        assert!((600..2048).contains(&size), "pod is {size} bytes");
    }
}
