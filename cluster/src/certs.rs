//! The cluster's certificates (`DIR/pki`): a CA made once at the first `up`,
//! the apiserver's serving certificate for every name and address clients
//! use, and the admin's client certificate (O=system:masters), all put into
//! `DIR/kubeconfig` with the CA embedded, so neither our kubectl nor the
//! real one needs `insecure-skip-tls-verify`.

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

/// `DIR/kubeconfig` for the admin (client certificate, O=system:masters).
pub fn write_admin_kubeconfig(layout: &Layout, ca: &Ca, server: &str) -> anyhow::Result<()> {
    let admin = ca.issue_client("kubernetes-admin", &["system:masters"], CERT_VALIDITY)?;
    admin.write(&layout.pki(), "admin")?;
    write_kubeconfig(&layout.kubeconfig(), server, &ca.cert_key.cert_pem, &admin)
}

fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, user: &CertKey) -> anyhow::Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cfg = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mini-kubernetes\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: mini-kubernetes\n  context:\n    cluster: mini-kubernetes\n    user: admin\n    namespace: default\ncurrent-context: mini-kubernetes\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
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
