//! `--publish-service <ns>/<name>`: kube-dns makes the Service that pods
//! reach it by (`kube-system/kube-dns`, ClusterIP 10.96.0.10 in the default
//! layout) and its Endpoints itself. The Service has no selector, so the
//! endpoints controller leaves the Endpoints alone; they point at the
//! address kube-dns listens on, and kube-proxy DNATs the ClusterIP there.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub namespace: String,
    pub name: String,
    /// The Service's ClusterIP (None: the apiserver picks one).
    pub cluster_ip: Option<IpAddr>,
    /// Where the Endpoints point: the address kube-dns serves DNS on.
    pub address: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("--publish-service wants <namespace>/<name>, not {0:?}")]
    BadName(String),
    #[error(
        "--dns-bind-address {0} is a wildcard address: give --publish-address, the address pods reach kube-dns at"
    )]
    NoAddress(SocketAddr),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("Service {0} exists with ClusterIP {1}, not {2}: delete it first (a ClusterIP cannot change)")]
    WrongClusterIp(String, String, IpAddr),
}

impl Publish {
    /// From the flags: `ns/name`, the wanted ClusterIP, the address to
    /// publish (default: the DNS bind address, unless it is a wildcard).
    pub fn from_flags(
        service: &str,
        cluster_ip: Option<IpAddr>,
        publish_address: Option<IpAddr>,
        bind: SocketAddr,
    ) -> Result<Self, PublishError> {
        let Some((namespace, name)) = service
            .split_once('/')
            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        else {
            return Err(PublishError::BadName(service.to_string()));
        };
        let ip = match publish_address {
            Some(ip) => ip,
            None if bind.ip().is_unspecified() => return Err(PublishError::NoAddress(bind)),
            None => bind.ip(),
        };
        Ok(Publish {
            namespace: namespace.to_string(),
            name: name.to_string(),
            cluster_ip,
            address: SocketAddr::new(ip, bind.port()),
        })
    }

    fn labels() -> Value {
        json!({"k8s-app": "kube-dns", "kubernetes.io/name": "kube-dns"})
    }

    /// The Service's spec: DNS on port 53 (UDP and TCP) to the port kube-dns
    /// listens on, no selector.
    fn service_spec(&self) -> Value {
        let port = self.address.port();
        let mut spec = json!({
            "type": "ClusterIP",
            "selector": null,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port},
            ],
        });
        if let Some(ip) = self.cluster_ip {
            spec["clusterIP"] = json!(ip.to_string());
        }
        spec
    }

    fn subsets(&self) -> Value {
        let port = self.address.port();
        json!([{
            "addresses": [{"ip": self.address.ip().to_string()}],
            "ports": [
                {"name": "dns", "port": port, "protocol": "UDP"},
                {"name": "dns-tcp", "port": port, "protocol": "TCP"},
            ],
        }])
    }

    /// Create or update the Service and its Endpoints once.
    pub async fn apply(&self, client: &Client) -> Result<(), PublishError> {
        let api = |what: &str| {
            let what = format!("{what} {}/{}", self.namespace, self.name);
            move |source| PublishError::Api { what, source }
        };
        let services: Api<Service> = Api::namespaced(client.clone(), &self.namespace);
        match services.get_opt(&self.name).await.map_err(api("get Service"))? {
            None => {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": self.name, "namespace": self.namespace, "labels": Self::labels()},
                    "spec": self.service_spec(),
                }))
                .expect("a Service literal");
                services
                    .create(&PostParams::default(), &svc)
                    .await
                    .map_err(api("create Service"))?;
            }
            Some(existing) => {
                let current = existing.spec.as_ref().and_then(|s| s.cluster_ip.clone());
                if let (Some(want), Some(have)) = (self.cluster_ip, current.as_deref()) {
                    if have.parse::<IpAddr>().ok() != Some(want) {
                        return Err(PublishError::WrongClusterIp(
                            format!("{}/{}", self.namespace, self.name),
                            have.to_string(),
                            want,
                        ));
                    }
                }
                let patch = json!({"metadata": {"labels": Self::labels()}, "spec": self.service_spec()});
                services
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api("update Service"))?;
            }
        }
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &self.namespace);
        match endpoints.get_opt(&self.name).await.map_err(api("get Endpoints"))? {
            None => {
                let ep: Endpoints = serde_json::from_value(json!({
                    "metadata": {"name": self.name, "namespace": self.namespace, "labels": Self::labels()},
                    "subsets": self.subsets(),
                }))
                .expect("an Endpoints literal");
                endpoints
                    .create(&PostParams::default(), &ep)
                    .await
                    .map_err(api("create Endpoints"))?;
            }
            Some(_) => {
                // A merge patch replaces the whole subsets list.
                let patch = json!({"metadata": {"labels": Self::labels()}, "subsets": self.subsets()});
                endpoints
                    .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api("update Endpoints"))?;
            }
        }
        Ok(())
    }

    /// [`Publish::apply`] until it succeeds (the apiserver may not be up
    /// yet), backing off up to 10 s between tries.
    pub async fn apply_until_done(self, client: Client) {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.apply(&client).await {
                Ok(()) => {
                    tracing::info!(
                        service = %format!("{}/{}", self.namespace, self.name),
                        cluster_ip = ?self.cluster_ip,
                        endpoint = %self.address,
                        "published the DNS Service"
                    );
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "publishing the DNS Service; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let bind: SocketAddr = "172.30.0.1:53".parse().unwrap();
        let p = Publish::from_flags("kube-system/kube-dns", "10.96.0.10".parse().ok(), None, bind)
            .unwrap();
        assert_eq!(p.namespace, "kube-system");
        assert_eq!(p.address, bind);
        assert!(Publish::from_flags("kube-dns", None, None, bind).is_err());
        let any: SocketAddr = "0.0.0.0:53".parse().unwrap();
        assert!(Publish::from_flags("a/b", None, None, any).is_err());
        let p = Publish::from_flags("a/b", None, "10.1.2.3".parse().ok(), any).unwrap();
        assert_eq!(p.address.to_string(), "10.1.2.3:53");
        let spec: k8s_openapi::api::core::v1::ServiceSpec =
            serde_json::from_value(p.service_spec()).unwrap();
        assert_eq!(spec.ports.unwrap().len(), 2);
    }
}
