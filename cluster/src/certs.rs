//! The cluster's certificates (`DIR/pki`): a CA made once at the first `up`,
//! the apiserver's serving certificate for every name and address clients
//! use and its client certificate for kubelets, each kubelet's serving
//! certificate, the admin's client certificate (O=system:masters) in
//! `DIR/kubeconfig`, and one client certificate per component (scheduler,
//! controller-manager, kube-proxy, kube-dns, each node's kubelet) in
//! `DIR/kubeconfigs/<component>.conf`, all with the CA embedded, so nothing
//! needs `insecure-skip-tls-verify`. `cluster certs rotate` issues them all
//! again from the same CA.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
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

/// Where the apiserver's serving certificate is.
pub fn apiserver(layout: &Layout) -> (PathBuf, PathBuf) {
    pair_paths(layout, "apiserver")
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

/// A node as its certificates see it.
pub struct NodeCert {
    pub name: String,
    pub ip: IpAddr,
}

/// Where the apiserver's kubelet client certificate is.
pub fn apiserver_kubelet_client(layout: &Layout) -> (PathBuf, PathBuf) {
    pair_paths(layout, "apiserver-kubelet-client")
}

/// Where a node's kubelet serving certificate is (a directory of their
/// own, so that no node name can make it collide with a client
/// certificate's file).
pub fn kubelet_serving(layout: &Layout, node: &str) -> (PathBuf, PathBuf) {
    let dir = layout.pki().join(SERVING_DIR);
    (
        dir.join(format!("kubelet-{node}.crt")),
        dir.join(format!("kubelet-{node}.key")),
    )
}

const SERVING_DIR: &str = "serving";

fn pair_paths(layout: &Layout, name: &str) -> (PathBuf, PathBuf) {
    let dir = layout.pki();
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

/// Issue every certificate but the CA, all valid for [`CERT_VALIDITY`]: the
/// apiserver's serving certificate (for `apiserver_ips`) and its kubelet
/// client certificate (CN kube-apiserver-kubelet-client, bound to
/// system:kubelet-api-admin), each kubelet's serving certificate (its name
/// and address), the admin's client certificate (O=system:masters) into
/// `DIR/kubeconfig`, and each component's (see [`component_identities`])
/// into `DIR/kubeconfigs/<component>.conf`.
pub fn issue_all(
    layout: &Layout,
    ca: &Ca,
    server: &str,
    apiserver_ips: &[IpAddr],
    nodes: &[NodeCert],
) -> anyhow::Result<()> {
    let dir = layout.pki();
    let dns = component_base::pki::APISERVER_DNS_NAMES;
    ca.issue_serving("kube-apiserver", &dns, apiserver_ips, CERT_VALIDITY)?
        .write(&dir, "apiserver")?;
    ca.issue_client("kube-apiserver-kubelet-client", &[], CERT_VALIDITY)?
        .write(&dir, "apiserver-kubelet-client")?;
    for node in nodes {
        ca.issue_serving(&node.name, &[node.name.as_str()], &[node.ip], CERT_VALIDITY)?
            .write(&dir.join(SERVING_DIR), &format!("kubelet-{}", node.name))?;
    }
    let admin = ca.issue_client("kubernetes-admin", &["system:masters"], CERT_VALIDITY)?;
    admin.write(&dir, "admin")?;
    write_kubeconfig(
        &layout.kubeconfig(),
        server,
        &ca.cert_key.cert_pem,
        "admin",
        &admin,
    )?;
    let confs = layout.kubeconfigs();
    std::fs::create_dir_all(&confs).with_context(|| format!("create {}", confs.display()))?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    for id in component_identities(&names) {
        let groups: Vec<&str> = id.groups.iter().map(String::as_str).collect();
        let pair = ca.issue_client(&id.user, &groups, CERT_VALIDITY)?;
        pair.write(&dir, &id.component)?;
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

/// Certificates closer than this to their end are flagged by `cluster status`.
pub const RENEW_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);

/// When a cluster's certificates end (Unix seconds).
#[derive(Debug)]
pub struct Expiries {
    /// The certificate that ends first (the CA aside): its name and end.
    pub first: Option<(String, i64)>,
    pub ca: Option<i64>,
}

/// When the certificates in `DIR/pki` end.
pub fn expiries(layout: &Layout) -> anyhow::Result<Expiries> {
    use rustls_pki_types::pem::PemObject;
    let end_of = |path: &Path| -> Option<i64> {
        let pem = std::fs::read(path).ok()?;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).ok()?;
        component_base::tls::not_after(&der)
    };
    let dir = layout.pki();
    let mut first: Option<(String, i64)> = None;
    let serving = std::fs::read_dir(dir.join(SERVING_DIR))
        .into_iter()
        .flatten()
        .flatten();
    let entries = std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))?;
    for entry in entries.flatten().chain(serving) {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".crt") else {
            continue;
        };
        if stem == "ca" {
            continue;
        }
        if let Some(end) = end_of(&path) {
            if first.as_ref().is_none_or(|(_, e)| end < *e) {
                first = Some((stem.to_string(), end));
            }
        }
    }
    Ok(Expiries {
        first,
        ca: end_of(&dir.join("ca.crt")),
    })
}

/// `cluster certs issue`: everything [`issue_all`] makes, for a cluster
/// whose apiserver is at `apiserver` (port 6443) and whose nodes are
/// `nodes`, in `layout` (the CA is made there if missing).
pub fn issue_for_machines(
    layout: &Layout,
    apiserver: IpAddr,
    nodes: &[(String, IpAddr)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&layout.dir)
        .with_context(|| format!("create {}", layout.dir.display()))?;
    let ca = ca(layout)?;
    let server = match apiserver {
        IpAddr::V6(ip) => format!("https://[{ip}]:6443"),
        IpAddr::V4(ip) => format!("https://{ip}:6443"),
    };
    let mut ips = vec![apiserver, IpAddr::from([127, 0, 0, 1])];
    let first_service_ip: IpAddr = crate::up::FIRST_SERVICE_IP.parse()?;
    ips.push(first_service_ip);
    let nodes: Vec<NodeCert> = nodes
        .iter()
        .map(|(name, ip)| NodeCert {
            name: name.clone(),
            ip: *ip,
        })
        .collect();
    issue_all(layout, &ca, &server, &ips, &nodes)?;
    println!(
        "Certificates in {} and kubeconfigs in {} (admin: {}), for {server}.",
        layout.pki().display(),
        layout.kubeconfigs().display(),
        layout.kubeconfig().display()
    );
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
    component_base::pki::write_private(path, &cfg)
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn user_of(cert: &Path) -> (String, Vec<String>) {
        let pem = std::fs::read(cert).unwrap();
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        component_base::tls::certificate_user(&der).unwrap()
    }

    #[test]
    fn every_component_gets_its_identity_and_a_kubeconfig_for_the_apiserver() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let nodes = [
            ("vm1".to_string(), "192.168.56.11".parse().unwrap()),
            ("vm2".to_string(), "192.168.56.12".parse().unwrap()),
        ];
        issue_for_machines(&layout, "192.168.56.10".parse().unwrap(), &nodes).unwrap();
        let pki = layout.pki();
        assert_eq!(
            user_of(&pki.join("kubelet-vm2.crt")),
            ("system:node:vm2".into(), vec!["system:nodes".into()])
        );
        assert_eq!(
            user_of(&pki.join("admin.crt")),
            ("kubernetes-admin".into(), vec!["system:masters".into()])
        );
        assert_eq!(
            user_of(&pki.join("apiserver-kubelet-client.crt")).0,
            "kube-apiserver-kubelet-client"
        );
        for id in component_identities(&["vm1".into(), "vm2".into()]) {
            assert_eq!(
                user_of(&pki.join(format!("{}.crt", id.component))).0,
                id.user
            );
            let conf = std::fs::read_to_string(layout.component_kubeconfig(&id.component)).unwrap();
            assert!(
                conf.contains("server: https://192.168.56.10:6443\n"),
                "{conf}"
            );
            assert!(conf.contains("certificate-authority-data: "));
        }
        // cluster status reads when they end: a year, the CA ten.
        let ends = expiries(&layout).unwrap();
        let now = jiff::Timestamp::now().as_second();
        let (_, end) = ends.first.unwrap();
        let year = CERT_VALIDITY.as_secs() as i64;
        assert!((end - now - year).abs() < 3 * 3600, "{end} vs {now}");
        assert!(ends.ca.unwrap() - now > 9 * year);
        // The CA stays across a second issue; the certificates are new.
        let ca_before = std::fs::read(pki.join("ca.crt")).unwrap();
        let admin_before = std::fs::read(pki.join("admin.crt")).unwrap();
        issue_for_machines(&layout, "192.168.56.10".parse().unwrap(), &nodes).unwrap();
        assert_eq!(std::fs::read(pki.join("ca.crt")).unwrap(), ca_before);
        assert_ne!(std::fs::read(pki.join("admin.crt")).unwrap(), admin_before);
    }
}
