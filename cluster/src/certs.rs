//! The cluster's certificates (`DIR/pki`): a CA made once at the first `up`,
//! the apiserver's serving certificate for every name and address clients
//! use, the admin's client certificate (O=system:masters) in
//! `DIR/kubeconfig`, and one client certificate per component (scheduler,
//! controller-manager, kube-proxy, kube-dns, each node's kubelet) in
//! `DIR/kubeconfigs/<component>.conf`, all with the CA embedded, so nothing
//! needs `insecure-skip-tls-verify`. `cluster certs rotate` issues them all
//! again from the same CA.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use component_base::pki::{Ca, CertKey};

use crate::layout::Layout;

/// How long the CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long the serving and client certificates are valid.
pub const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The CA of `layout`, made if missing.
pub fn ca(layout: &Layout) -> anyhow::Result<Ca> {
    let dir = layout.pki();
    if dir.join("ca.crt").exists() {
        return Ca::load(CertKey::read(&dir, "ca")?).context("reading the cluster CA");
    }
    let ca = Ca::generate("mini-kubernetes-ca", CA_VALIDITY)?;
    ca.cert_key.write(&dir, "ca")?;
    Ok(ca)
}

/// The apiserver's serving certificate for `ips` (plus the `kubernetes`
/// Service's names and `service_ip`), written to `DIR/pki/apiserver.{crt,key}`.
pub fn apiserver(
    layout: &Layout,
    ca: &Ca,
    ips: &[IpAddr],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dns = component_base::pki::APISERVER_DNS_NAMES;
    let pair = ca.issue_serving("kube-apiserver", &dns, ips, CERT_VALIDITY)?;
    Ok(pair.write(&layout.pki(), "apiserver")?)
}

/// Who a client certificate says its holder is: CN = user, O = groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The kubeconfig's name under `DIR/kubeconfigs/` (and the key pair's
    /// under `DIR/pki/`).
    pub component: String,
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    fn new(component: &str, user: &str, groups: &[&str]) -> Self {
        Self {
            component: component.to_string(),
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }
}

/// The identity of every component of a cluster with `nodes`, each the user
/// the apiserver's bootstrap RBAC policy binds its role to (upstream's names).
pub fn component_identities(nodes: &[String]) -> Vec<Identity> {
    let mut out = vec![
        Identity::new(
            "kube-controller-manager",
            "system:kube-controller-manager",
            &[],
        ),
        Identity::new("kube-scheduler", "system:kube-scheduler", &[]),
        Identity::new("kube-proxy", "system:kube-proxy", &[]),
        Identity::new("kube-dns", "system:kube-dns", &[]),
    ];
    out.extend(nodes.iter().map(|n| {
        Identity::new(
            &format!("kubelet-{n}"),
            &format!("system:node:{n}"),
            &["system:nodes"],
        )
    }));
    out
}

/// Issue a client certificate for the admin (O=system:masters, into
/// `DIR/kubeconfig`) and for each of `identities` (into
/// `DIR/kubeconfigs/<component>.conf`), all valid for [`CERT_VALIDITY`].
pub fn write_kubeconfigs(
    layout: &Layout,
    ca: &Ca,
    server: &str,
    identities: &[Identity],
) -> anyhow::Result<()> {
    let admin = ca.issue_client("kubernetes-admin", &["system:masters"], CERT_VALIDITY)?;
    admin.write(&layout.pki(), "admin")?;
    write_kubeconfig(
        &layout.kubeconfig(),
        server,
        &ca.cert_key.cert_pem,
        "admin",
        &admin,
    )?;
    let dir = layout.kubeconfigs();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for id in identities {
        let groups: Vec<&str> = id.groups.iter().map(String::as_str).collect();
        let pair = ca.issue_client(&id.user, &groups, CERT_VALIDITY)?;
        pair.write(&layout.pki(), &id.component)?;
        write_kubeconfig(
            &layout.component_kubeconfig(&id.component),
            server,
            &ca.cert_key.cert_pem,
            &id.component,
            &pair,
        )?;
    }
    Ok(())
}

fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user_name: &str,
    user: &CertKey,
) -> anyhow::Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mini-kubernetes\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: mini-kubernetes\n  context:\n    cluster: mini-kubernetes\n    user: {user_name}\n    namespace: default\ncurrent-context: mini-kubernetes\nusers:\n- name: {user_name}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(ca_pem),
        b64(&user.cert_pem),
        b64(&user.key_pem)
    );
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(cfg.as_bytes()))
        .with_context(|| format!("write {}", path.display()))
}
