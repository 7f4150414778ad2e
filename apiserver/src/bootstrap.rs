//! Objects every cluster has from its first start: the system namespaces
//! (each gets its `default` ServiceAccount through admission) and the
//! `kubernetes` Service with its Endpoints at the first address of the
//! service range.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::handler::{create_object, Api, WriteOptions};

pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Create what is missing; existing objects are left as they are.
pub async fn run(api: &Api, advertise: IpAddr, port: u16) -> ApiResult<()> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            api,
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        // Namespaces made by an older version may lack their ServiceAccount.
        ensure(
            api,
            "serviceaccounts",
            Some(ns),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        )
        .await?;
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    ensure(
        api,
        "services",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": api.services.first_ip.to_string(),
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
            },
        }),
    )
    .await?;
    if advertise.is_loopback() || advertise.is_unspecified() {
        // Endpoints may not hold loopback addresses (as upstream validates);
        // pods reach the apiserver once it advertises a routable address.
        tracing::info!(%advertise, "no kubernetes Endpoints: set --advertise-address to a routable address");
        return Ok(());
    }
    ensure(
        api,
        "endpoints",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": advertise.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
    )
    .await?;
    Ok(())
}

async fn ensure(api: &Api, plural: &str, ns: Option<&str>, obj: Value) -> ApiResult<()> {
    let info = api
        .registry
        .find("", "v1", plural)
        .expect("core kinds are registered");
    // Existing objects are left alone (creating again would also trip over
    // addresses they hold, e.g. the kubernetes Service's ClusterIP).
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key = crate::meta::key(&api.prefix, info, ns, name);
    if api.store.get(&key).await?.is_some() {
        return Ok(());
    }
    match create_object(api, info, ns, obj, WriteOptions::internal()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
