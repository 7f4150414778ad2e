//! A throwaway etcd server for tests: loopback ports, a temporary data
//! directory, killed when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tempfile::TempDir;

/// How long etcd may take to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Starts retried when a picked port was taken before etcd bound it.
const PORT_ATTEMPTS: usize = 5;

/// A running etcd; dropping it kills the process and removes its data.
pub struct EtcdProcess {
    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    child: Child,
    log_path: PathBuf,
    // Fields drop after Drop::drop has killed the process, so etcd never
    // sees its directory vanish while running.
    dir: TempDir,
}

impl EtcdProcess {
    /// Starts `etcd` (found on PATH) and waits until it serves requests.
    pub fn start() -> Result<EtcdProcess> {
        let binary = find_on_path("etcd").context(
            "etcd not found on PATH (Debian: apt-get install etcd-server, which installs /usr/bin/etcd)",
        )?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_once(&binary) {
                Ok(etcd) => return Ok(etcd),
                Err(StartError::PortTaken(err)) => last_error = Some(err),
                Err(StartError::Failed(err)) => return Err(err),
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!(
                "etcd found no free ports in {PORT_ATTEMPTS} attempts"
            )))
    }

    /// The client URLs, as a store's `connect` takes them.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }

    /// The directory holding etcd's data and its log (`etcd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// etcd's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn start_once(binary: &Path) -> std::result::Result<EtcdProcess, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("etcd-test-")
            .tempdir()
            .context("create etcd's temporary directory")?;
        let client = free_loopback_addr()?;
        let peer = free_loopback_addr()?;
        let log_path = dir.path().join("etcd.log");
        let log = File::create(&log_path).context("create etcd's log file")?;
        let log_err = log.try_clone().context("duplicate etcd's log file")?;
        let client_url = format!("http://{client}");
        let peer_url = format!("http://{peer}");
        let child = Command::new(binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .arg("--initial-cluster-state=new")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut etcd = EtcdProcess {
            endpoint: client_url,
            child,
            log_path,
            dir,
        };
        etcd.wait_ready(client)?;
        Ok(etcd)
    }

    /// Polls until etcd accepts connections and reports itself healthy.
    fn wait_ready(&mut self, client: SocketAddr) -> std::result::Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("poll etcd")? {
                let log = self.log();
                let err = anyhow::anyhow!("etcd exited with {status} before serving:\n{log}");
                return Err(if log.contains("address already in use") {
                    StartError::PortTaken(err)
                } else {
                    StartError::Failed(err)
                });
            }
            if is_healthy(client) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Failed(anyhow::anyhow!(
                    "etcd did not serve within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Errors mean it is already gone; nothing else to do in a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    /// Another process bound a port between our probe and etcd's bind.
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(err: anyhow::Error) -> Self {
        StartError::Failed(err)
    }
}

/// A loopback port that was free a moment ago (the kernel picks it).
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a loopback port")?;
    listener.local_addr().context("read the bound port")
}

/// A TCP connect, then etcd's `/health` over HTTP on the client port.
fn is_healthy(addr: SocketAddr) -> bool {
    let timeout = Duration::from_secs(1);
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return false;
    }
    health_ok(&response)
}

/// etcd answers `{"health":"true"}` once it has a leader and serves reads.
fn health_ok(response: &str) -> bool {
    response.starts_with("HTTP/1.") && response.contains(r#""health":"true""#)
}

/// The first `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_ok_needs_a_true_health() {
        assert!(health_ok(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{\"health\":\"true\",\"reason\":\"\"}"
        ));
        assert!(!health_ok(
            "HTTP/1.0 503 Service Unavailable\r\n\r\n{\"health\":\"false\"}"
        ));
        assert!(!health_ok(""));
    }

    #[test]
    fn free_loopback_addr_is_bindable() {
        let addr = free_loopback_addr().expect("pick a port");
        assert!(addr.ip().is_loopback());
        TcpListener::bind(addr).expect("the picked port is free");
    }

    #[test]
    fn find_on_path_misses_unknown_binaries() {
        assert_eq!(find_on_path("no-such-binary-for-etcd-tests"), None);
    }

    #[test]
    fn start_serves_and_drop_kills() {
        let etcd = EtcdProcess::start().expect("start etcd");
        let addr: SocketAddr = etcd
            .endpoint
            .trim_start_matches("http://")
            .parse()
            .expect("endpoint is host:port");
        assert!(is_healthy(addr), "etcd not healthy after start");
        let dir = etcd.dir().to_path_buf();
        drop(etcd);
        assert!(!is_healthy(addr), "etcd still serving after drop");
        assert!(!dir.exists(), "data directory left behind");
    }
}
