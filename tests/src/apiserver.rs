//! A kube-apiserver process for tests, on a free loopback port, with a
//! kubeconfig for kubectl and kube-rs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::etcd::{free_loopback_addr, EtcdProcess};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the workspace's built binaries (target/debug or
/// target/release), found from the running executable: a test in
/// target/<profile>/deps/, or a program (the benchmark) in target/<profile>/.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable's directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A running kube-apiserver; dropping it kills the process.
pub struct ApiServerProcess {
    /// e.g. `http://127.0.0.1:40123`
    pub url: String,
    child: Child,
    dir: TempDir,
}

impl ApiServerProcess {
    /// Start kube-apiserver against `etcd_endpoints` and wait for /healthz.
    pub fn start(etcd_endpoints: &[String], extra_args: &[&str]) -> Result<Self> {
        let store = format!("--etcd-servers={}", etcd_endpoints.join(","));
        Self::start_with_store(&store, extra_args)
    }

    /// Start kube-apiserver on the embedded store, in a directory of its own.
    pub fn start_embedded(extra_args: &[&str]) -> Result<Self> {
        Self::start_with_store("--data-dir=", extra_args)
    }

    /// Start kube-apiserver on the embedded store in `data_dir` (which
    /// outlives this process, for restarts).
    pub fn start_embedded_in(data_dir: &Path, extra_args: &[&str]) -> Result<Self> {
        Self::start_with_store(&format!("--data-dir={}", data_dir.display()), extra_args)
    }

    /// Kill the process with SIGKILL, as a crash would, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `store_flag` is `--etcd-servers=...`, or `--data-dir=` (completed with
    /// a directory inside this server's temporary directory).
    fn start_with_store(store_flag: &str, extra_args: &[&str]) -> Result<Self> {
        // The free port is picked before the server binds it: a test running
        // beside may take it first. Try again with another.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once(store_flag, extra_args) {
                Err(e) if e.to_string().contains("Address already in use") => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("tried"))
    }

    fn start_once(store_flag: &str, extra_args: &[&str]) -> Result<Self> {
        let binary = bin_dir().join("kube-apiserver");
        if !binary.is_file() {
            bail!(
                "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("apiserver-test-")
            .tempdir()?;
        let addr = free_loopback_addr()?;
        let log = File::create(dir.path().join("apiserver.log"))?;
        let store_flag = if store_flag == "--data-dir=" {
            format!("--data-dir={}", dir.path().join("data").display())
        } else {
            store_flag.to_string()
        };
        // The plain port (loopback) for the tests; the secure port only when a
        // test asks for it (several servers run at once).
        let secure_off = (!extra_args.iter().any(|a| a.starts_with("--secure-port")))
            .then_some("--secure-port=0");
        let child = Command::new(&binary)
            .arg(store_flag)
            .arg(format!("--port={}", addr.port()))
            .args(secure_off)
            .args(extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let url = format!("http://{addr}");
        let mut me = Self { url, child, dir };
        me.write_kubeconfig()?;
        me.wait_ready()?;
        Ok(me)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("kube-apiserver exited with {status}:\n{}", self.log());
            }
            if http_get_ok(&self.url, "/healthz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready in {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\ncurrent-context: test\nusers:\n- name: test\n  user: {{}}\n",
            self.url
        );
        std::fs::write(self.kubeconfig(), cfg)?;
        Ok(())
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A kube-rs client for this server.
    pub async fn client(&self) -> Result<kube::Client> {
        let config = kube::Config::new(self.url.parse()?);
        Ok(kube::Client::try_from(config)?)
    }
}

impl Drop for ApiServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.0 GET on loopback; true on a 200.
pub fn http_get_ok(base: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Some(hostport) = base.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(hostport) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200")
}

/// An apiserver on etcd (or on its embedded store).
pub struct TestCluster {
    pub apiserver: ApiServerProcess,
    /// `None` when the apiserver runs on its embedded store.
    pub etcd: Option<EtcdProcess>,
    /// The certificates of a secure cluster (see `SecureApiServer`).
    pub certs: Option<tempfile::TempDir>,
}

impl TestCluster {
    /// An apiserver on a fresh etcd.
    pub fn start() -> Result<Self> {
        let etcd = EtcdProcess::start()?;
        let apiserver = ApiServerProcess::start(&etcd.endpoints(), &[])?;
        Ok(Self {
            apiserver,
            etcd: Some(etcd),
            certs: None,
        })
    }

    /// An apiserver on its embedded store.
    pub fn start_embedded() -> Result<Self> {
        let apiserver = ApiServerProcess::start_embedded(&[])?;
        Ok(Self {
            apiserver,
            etcd: None,
            certs: None,
        })
    }

    /// Run the real kubectl of the given minor version (27..=33) against
    /// this cluster.
    pub fn kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.kubectl_stdin(minor, args, None)
    }

    pub fn kubectl_stdin(&self, minor: u32, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let bin = kubectl_path(minor);
        let mut cmd = Command::new(&bin);
        cmd.arg(format!(
            "--kubeconfig={}",
            self.apiserver.kubeconfig().display()
        ))
        .args(args)
        .env("HOME", self.apiserver.dir())
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }
}

/// Where the real kubectl 1.<minor> is installed.
pub fn kubectl_path(minor: u32) -> PathBuf {
    PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"))
}
