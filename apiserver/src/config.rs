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

    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// The address published in the `kubernetes` Endpoints (default: the bind address).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,

    /// The port for plain HTTP (no authentication yet; TLS comes later).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

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
}

impl Config {
    /// `--etcd-compaction-interval` as a duration; `None` when disabled.
    pub fn compaction_interval(&self) -> anyhow::Result<Option<std::time::Duration>> {
        let d = parse_duration(&self.etcd_compaction_interval)?;
        Ok((!d.is_zero()).then_some(d))
    }
}

/// A Go-style duration: "5m", "30s", "1h30m", "250ms", or "0".
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => anyhow::bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
        total += n * factor;
        rest = tail;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("0").unwrap().is_zero());
        assert!(parse_duration("5x").is_err());
    }
}
