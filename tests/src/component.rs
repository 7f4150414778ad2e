//! Any workspace binary (kube-scheduler, kube-controller-manager, kubelet,
//! kube-proxy) as a child process of a test, logging to a file of its own.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::apiserver::bin_dir;

/// A running component; dropping it kills the process (SIGKILL) and reaps it.
pub struct ComponentProcess {
    pub name: String,
    child: Child,
    log_path: PathBuf,
}

impl ComponentProcess {
    /// Start `binary` (a name under the workspace's target dir) with `args`,
    /// writing stdout and stderr to `<log_dir>/<log_name>.log`.
    pub fn start(binary: &str, log_name: &str, log_dir: &Path, args: &[String]) -> Result<Self> {
        let path = bin_dir().join(binary);
        if !path.is_file() {
            bail!(
                "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
                path.display()
            );
        }
        let log_path = log_dir.join(format!("{log_name}.log"));
        let log = File::create(&log_path)?;
        let child = Command::new(&path)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", path.display()))?;
        Ok(Self {
            name: log_name.to_string(),
            child,
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill with SIGKILL, as a crash would, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ask the process to stop with SIGTERM and wait for it.
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's PID, which we have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ComponentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
