//! The processes under test: a fresh etcd (the e2e harness's) and the release
//! kube-apiserver built next to this binary, both on free loopback ports.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e_tests::etcd::EtcdProcess;
use tempfile::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// etcd plus one kube-apiserver on it; dropping it kills both (by PID).
pub struct Cluster {
    pub apiserver: ApiServer,
    pub etcd: EtcdProcess,
}

impl Cluster {
    /// etcd always runs (the raw-etcd comparison needs it); the apiserver
    /// stores in it, or with `embedded` in its own embedded store.
    pub fn start(embedded: bool) -> Result<Cluster> {
        let etcd = EtcdProcess::start().context("starting etcd")?;
        let apiserver =
            ApiServer::start(&etcd.endpoint, embedded).context("starting kube-apiserver")?;
        Ok(Cluster { apiserver, etcd })
    }
}

/// A kube-apiserver child process, killed when dropped.
pub struct ApiServer {
    /// e.g. `http://127.0.0.1:40123`
    pub url: String,
    child: Child,
    dir: TempDir,
}

impl ApiServer {
    fn start(etcd_endpoint: &str, embedded: bool) -> Result<ApiServer> {
        let binary = apiserver_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("apiserver-bench-")
            .tempdir()?;
        let port = free_loopback_port()?;
        let log = File::create(dir.path().join("apiserver.log"))?;
        let mut command = Command::new(&binary);
        command
            .arg(if embedded {
                format!("--data-dir={}", dir.path().join("data").display())
            } else {
                format!("--etcd-servers={etcd_endpoint}")
            })
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Unset, the server keeps its own default level, as deployed.
        if let Ok(level) = std::env::var("APISERVER_RUST_LOG") {
            command.env("RUST_LOG", level);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut server = ApiServer {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn client(&self) -> Result<kube::Client> {
        let mut config = kube::Config::new(self.url.parse()?);
        config.default_namespace = "default".into();
        Ok(kube::Client::try_from(config)?)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("kube-apiserver exited with {status}:\n{}", self.log());
            }
            if e2e_tests::apiserver::http_get_ok(&self.url, "/healthz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready in {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // Errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// target/<profile>/kube-apiserver, beside this benchmark's own binary.
fn apiserver_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the benchmark binary")?;
    let binary = exe
        .parent()
        .map(|dir| dir.join("kube-apiserver"))
        .context("the benchmark binary has no directory")?;
    if !binary.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --release -p apiserver -p apiserver-bench)",
            binary.display()
        );
    }
    Ok(binary)
}

/// The etcd binary the harness runs (the first `etcd` on PATH), for its version.
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("etcd"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| Path::new("/usr/bin/etcd").to_path_buf())
}

/// A loopback port that was free a moment ago (the kernel picks it).
fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}
