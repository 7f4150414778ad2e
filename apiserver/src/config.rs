//! Command-line configuration, with upstream's flag names.

use std::net::IpAddr;

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "kube-apiserver", about = "The Kubernetes API server")]
pub struct Config {
    /// etcd servers to connect to (scheme://ip:port), comma separated. Without
    /// them the embedded store in --data-dir is used.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// The embedded store's directory (used when --etcd-servers is not given).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,

    /// The prefix of every key in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,

    /// The address of the secure (TLS) port. Loopback by default while the
    /// API has no authentication (upstream listens on 0.0.0.0).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// The port for HTTPS (0: none).
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,

    /// The serving certificate (PEM; intermediates after it). Without it and
    /// --tls-private-key-file, a self-signed one is made in --cert-dir.
    #[arg(long)]
    pub tls_cert_file: Option<std::path::PathBuf>,

    /// The serving certificate's private key (PEM).
    #[arg(long)]
    pub tls_private_key_file: Option<std::path::PathBuf>,

    /// CA bundle (PEM) that signs client certificates: a client certificate it
    /// verifies authenticates its CN as the user and its O values as groups.
    #[arg(long)]
    pub client_ca_file: Option<std::path::PathBuf>,

    /// Static bearer tokens, CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<std::path::PathBuf>,

    /// Authorizers for the secure port, in order, comma separated:
    /// AlwaysAllow, AlwaysDeny, Node, RBAC (e.g. "Node,RBAC").
    #[arg(long, value_delimiter = ',', default_value = "AlwaysAllow")]
    pub authorization_mode: Vec<String>,

    /// The private key (ECDSA P-256, PKCS#8 PEM) that signs service account
    /// tokens. Without it one is made in --cert-dir/sa.key.
    #[arg(long)]
    pub service_account_signing_key_file: Option<std::path::PathBuf>,

    /// Public keys (PEM) whose service account tokens are also accepted
    /// (e.g. the previous signing key during a rotation). Repeatable.
    #[arg(long)]
    pub service_account_key_file: Vec<std::path::PathBuf>,

    /// The `iss` of the tokens this server issues (the first) and accepts.
    #[arg(long, default_value = "https://kubernetes.default.svc.cluster.local")]
    pub service_account_issuer: Vec<String>,

    /// Audiences a token must be meant for (default: the first issuer).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,

    /// Where the self-signed serving certificate is kept (apiserver.crt/.key).
    #[arg(long, default_value = "/var/run/kubernetes")]
    pub cert_dir: std::path::PathBuf,

    /// The client certificate (PEM) the apiserver shows kubelets. With it,
    /// kubelets are reached over HTTPS (else plain HTTP, for kubelets
    /// started without TLS).
    #[arg(long)]
    pub kubelet_client_certificate: Option<std::path::PathBuf>,

    /// The private key of --kubelet-client-certificate.
    #[arg(long)]
    pub kubelet_client_key: Option<std::path::PathBuf>,

    /// The CA bundle that signs kubelets' serving certificates (required
    /// with --kubelet-client-certificate: kubelets are always verified).
    #[arg(long)]
    pub kubelet_certificate_authority: Option<std::path::PathBuf>,

    /// The address published in the `kubernetes` Endpoints (default: the bind address).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,

    /// The port for plain HTTP, which bypasses authentication and
    /// authorization (0: none, the default). Only on --insecure-bind-address.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// The address of the plain HTTP port: loopback only.
    #[arg(long, default_value = "127.0.0.1")]
    pub insecure_bind_address: IpAddr,

    /// The CIDR from which Service cluster IPs are allocated.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,

    /// The port range for NodePort Services, inclusive ("30000-32767").
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,

    /// How often the store's history is compacted ("5m", "30s", "0" = never).
    #[arg(long, default_value = "5m")]
    pub etcd_compaction_interval: String,

    /// How many events the watch cache keeps for watches that resume from an
    /// older resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    pub watch_cache_size: usize,

    /// Seconds a new pod tolerates its node's not-ready NoExecute taint
    /// (upstream's DefaultTolerationSeconds admission).
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,

    /// Seconds a new pod tolerates its node's unreachable NoExecute taint.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
}

impl Config {
    /// `--etcd-compaction-interval` as a duration; `None` when disabled.
    pub fn compaction_interval(&self) -> anyhow::Result<Option<std::time::Duration>> {
        let d = component_base::parse_duration(&self.etcd_compaction_interval)?;
        Ok((!d.is_zero()).then_some(d))
    }
}
