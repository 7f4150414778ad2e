//! The kubelet's flags (upstream names) and the configuration they make.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};

/// How pods are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeMode {
    /// Real containers through CRI.
    Remote,
    /// Hollow kubelet (kubemark-style): pods go Running at once, no
    /// containers. For scale benchmarks only.
    Fake,
}

#[derive(Args, Clone, Debug)]
pub struct KubeletFlags {
    /// Path to a kubeconfig file with the API server's address.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The node's name (default: the machine's hostname).
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The node's IP address (default: the first non-loopback IPv4 address).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The CRI runtime's unix socket (path or unix:// URL).
    #[arg(long, default_value = "unix:///run/containerd/containerd.sock")]
    pub container_runtime_endpoint: String,
    /// A directory of image tarballs (OCI layout or docker-archive) to import
    /// at start, for clusters without a registry.
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    /// The kubelet's own files: pod volumes and container logs.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Parent cgroup of the pod cgroups (`<cgroup-root>/kubepods/pod<uid>`).
    #[arg(long, default_value = "/")]
    pub cgroup_root: String,
    /// The kubelet HTTP server's port (0 = any free port).
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// The address the kubelet HTTP server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// The /healthz and /metrics port (0 = any free port).
    #[arg(long, default_value_t = 10248)]
    pub healthz_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub healthz_bind_address: IpAddr,
    /// How often the node status is checked (and posted when it changed).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: Duration,
    /// How often running pods' configMap and projected volumes are written
    /// again (ConfigMap changes, renewed tokens).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub sync_frequency: Duration,
    /// DNS server IPs given to pods with dnsPolicy ClusterFirst.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<IpAddr>,
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Maximum number of pods on this node (capacity "pods").
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// `remote` runs containers through CRI; `fake` is a hollow kubelet for
    /// scale benchmarks.
    #[arg(long, value_enum, default_value_t = RuntimeMode::Remote)]
    pub runtime: RuntimeMode,
    /// The `ctr` binary used to import --image-dir tarballs.
    #[arg(long, default_value = "ctr")]
    pub ctr_path: PathBuf,
    /// The server's certificate (PEM). With it and --tls-private-key-file the
    /// server on --port speaks HTTPS (else plain HTTP).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle whose client certificates authenticate (CN = user, O =
    /// groups), as the apiserver's kubelet client certificate does.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Whether requests without credentials are let through (as
    /// system:anonymous) to authorization, instead of getting 401.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// AlwaysAllow, or Webhook: ask the apiserver (SubjectAccessReview)
    /// whether the user may use the node's API (nodes/proxy, nodes/log, ...).
    #[arg(long, value_enum, default_value_t = AuthorizationMode::AlwaysAllow)]
    pub authorization_mode: AuthorizationMode,
    /// How long an allowed Webhook answer is reused.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    /// How long a denied Webhook answer is reused.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
}

/// Who may use the kubelet's API (--authorization-mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthorizationMode {
    #[value(name = "AlwaysAllow")]
    AlwaysAllow,
    #[value(name = "Webhook")]
    Webhook,
}

/// The server's TLS and who may use it.
#[derive(Clone, Debug)]
pub struct ServerAuth {
    /// (certificate, key); None: plain HTTP, no authentication.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub client_ca_file: Option<PathBuf>,
    pub anonymous: bool,
    pub mode: AuthorizationMode,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    component_base::parse_duration(s).map_err(|e| e.to_string())
}

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub kubeconfig: Option<PathBuf>,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub runtime_endpoint: String,
    pub image_dir: Option<PathBuf>,
    pub root_dir: PathBuf,
    pub cgroup_root: String,
    pub port: u16,
    pub address: IpAddr,
    pub healthz_port: u16,
    pub healthz_bind_address: IpAddr,
    pub node_status_update_frequency: Duration,
    pub sync_frequency: Duration,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub max_pods: u32,
    pub runtime: RuntimeMode,
    pub ctr_path: PathBuf,
    pub server_auth: ServerAuth,
}

impl KubeletFlags {
    pub fn into_config(self) -> Result<Config> {
        let node_name = match self.hostname_override {
            Some(n) if !n.trim().is_empty() => n.trim().to_lowercase(),
            _ => hostname()?.to_lowercase(),
        };
        let node_ip = match self.node_ip {
            Some(ip) => ip,
            None => first_host_ipv4().ok_or_else(|| {
                Error::Config("no non-loopback IPv4 address found; pass --node-ip".into())
            })?,
        };
        let tls = match (self.tls_cert_file, self.tls_private_key_file) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "--tls-cert-file and --tls-private-key-file go together".into(),
                ))
            }
        };
        if tls.is_none()
            && (self.client_ca_file.is_some()
                || self.authorization_mode != AuthorizationMode::AlwaysAllow)
        {
            return Err(Error::Config(
                "--client-ca-file and --authorization-mode=Webhook need --tls-cert-file and --tls-private-key-file".into(),
            ));
        }
        Ok(Config {
            server_auth: ServerAuth {
                tls,
                client_ca_file: self.client_ca_file,
                anonymous: self.anonymous_auth,
                mode: self.authorization_mode,
                authorized_ttl: self.authorization_webhook_cache_authorized_ttl,
                unauthorized_ttl: self.authorization_webhook_cache_unauthorized_ttl,
            },
            kubeconfig: self.kubeconfig,
            node_name,
            node_ip,
            runtime_endpoint: self.container_runtime_endpoint,
            image_dir: self.image_dir,
            root_dir: self.root_dir,
            cgroup_root: self.cgroup_root,
            port: self.port,
            address: self.address,
            healthz_port: self.healthz_port,
            healthz_bind_address: self.healthz_bind_address,
            node_status_update_frequency: self.node_status_update_frequency,
            sync_frequency: self.sync_frequency,
            cluster_dns: self.cluster_dns,
            cluster_domain: self.cluster_domain,
            max_pods: self.max_pods,
            runtime: self.runtime,
            ctr_path: self.ctr_path,
        })
    }
}

fn hostname() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| Error::Config(format!("read hostname: {e}")))?;
    Ok(name.trim().to_string())
}

/// The first non-loopback IPv4 address of an interface that is up.
fn first_host_ipv4() -> Option<IpAddr> {
    let mut found = None;
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifap) != 0 {
            return None;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
            let lo = ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0;
            if up
                && !lo
                && !ifa.ifa_addr.is_null()
                && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                found = Some(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
                break;
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: KubeletFlags,
    }

    #[test]
    fn defaults_are_upstreams() {
        let cli = Cli::parse_from([
            "kubelet",
            "--hostname-override=Node-A",
            "--node-ip=10.0.0.5",
        ]);
        let c = cli.flags.into_config().unwrap();
        assert_eq!(c.node_name, "node-a");
        assert_eq!(c.port, 10250);
        assert_eq!(c.healthz_port, 10248);
        assert_eq!(c.max_pods, 110);
        assert_eq!(c.runtime, RuntimeMode::Remote);
        assert_eq!(c.node_status_update_frequency, Duration::from_secs(10));
        assert!(c.cluster_dns.is_empty());
    }

    #[test]
    fn cluster_dns_is_a_list() {
        let cli = Cli::parse_from([
            "kubelet",
            "--hostname-override=n",
            "--node-ip=10.0.0.5",
            "--cluster-dns=10.96.0.10,10.96.0.11",
            "--runtime=fake",
        ]);
        let c = cli.flags.into_config().unwrap();
        assert_eq!(c.cluster_dns.len(), 2);
        assert_eq!(c.runtime, RuntimeMode::Fake);
    }
}
