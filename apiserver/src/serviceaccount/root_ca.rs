//! The `kube-root-ca.crt` ConfigMap in every namespace: the CA that pods
//! trust to reach the apiserver (mounted with their token as `ca.crt`).
//! Upstream's controller-manager publishes it; here the apiserver does, as it
//! makes each namespace's `default` ServiceAccount, so that it exists from
//! the moment the namespace does, and is corrected at each start (a changed
//! CA reaches every namespace).

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::handler::{create_object, Api, WriteOptions};

pub const NAME: &str = "kube-root-ca.crt";
pub const KEY: &str = "ca.crt";

/// The CA bundle pods should trust: the client CA of a cluster whose CA
/// signs everything, else the serving certificate itself (self-signed or
/// with its chain), else nothing (no secure port).
pub fn bundle(
    config: &crate::config::Config,
    service_ip: std::net::IpAddr,
) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = match (&config.client_ca_file, &config.tls_cert_file) {
        (Some(ca), _) => ca.clone(),
        (None, Some(cert)) => cert.clone(),
        (None, None) if config.secure_port != 0 => crate::tls::self_signed(config, service_ip)?.0,
        (None, None) => return Ok(String::new()),
    };
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Make `namespace`'s ConfigMap hold the current bundle.
pub async fn publish(api: &Api, namespace: &str) -> ApiResult<()> {
    let info = api
        .registry
        .find("", "v1", "configmaps")
        .expect("configmaps are registered");
    let key = crate::meta::key(&api.prefix, info, Some(namespace), NAME);
    let data = json!({ KEY: api.root_ca });
    match api.store.get(&key).await? {
        None => {
            let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": NAME}, "data": data});
            match Box::pin(create_object(
                api,
                info,
                Some(namespace),
                body,
                WriteOptions::internal(),
            ))
            .await
            {
                Err(e) if e.code != 409 => Err(e),
                _ => Ok(()),
            }
        }
        Some(kv) => {
            let Ok(mut cm) = serde_json::from_slice::<Value>(&kv.value) else {
                return Ok(());
            };
            if cm["data"] == data {
                return Ok(());
            }
            cm["data"] = data;
            let bytes = serde_json::to_vec(&cm).unwrap_or_default();
            // A concurrent change wins; the next start corrects it.
            if let Err(e) = api.store.update(&key, bytes, kv.mod_revision).await {
                tracing::warn!(namespace, error = %e, "could not update {NAME}");
            }
            Ok(())
        }
    }
}

/// Publish in every namespace (at start).
pub async fn publish_all(api: &Api) -> ApiResult<()> {
    let (namespaces, _) = api.cache.list(&format!("{}/namespaces/", api.prefix));
    for ns in namespaces {
        let ns = ns.value();
        if crate::meta::deletion_timestamp(&ns).is_some() {
            continue;
        }
        if let Some(name) = crate::meta::name(&ns) {
            publish(api, name).await?;
        }
    }
    Ok(())
}
