//! The `kube-dns` Service in kube-system: ClusterIP 10.96.0.10 (the pods'
//! nameserver), without a selector, its Endpoints naming the address where
//! `cluster up` runs kube-dns on the host. kube-proxy DNATs to it like to any
//! other Service (docs/dns.md).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

use crate::up::CLUSTER_DNS_IP;

const NAMESPACE: &str = "kube-system";
const NAME: &str = "kube-dns";

/// Create the Service if missing and point its Endpoints at `server`.
pub async fn publish(client: &kube::Client, server: Ipv4Addr) -> anyhow::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    if services.get_opt(NAME).await?.is_none() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": NAME, "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
            "spec": {
                "clusterIP": CLUSTER_DNS_IP,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        }))?;
        services.create(&PostParams::default(), &svc).await?;
    }
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
    let eps = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": NAME, "labels": {"k8s-app": "kube-dns"}},
        "subsets": [{
            "addresses": [{"ip": server.to_string()}],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        }],
    });
    match endpoints.get_opt(NAME).await? {
        None => {
            endpoints
                .create(&PostParams::default(), &serde_json::from_value(eps)?)
                .await?;
        }
        Some(_) => {
            endpoints
                .patch(NAME, &PatchParams::default(), &Patch::Merge(&eps))
                .await?;
        }
    }
    Ok(())
}
