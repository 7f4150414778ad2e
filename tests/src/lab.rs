//! A whole cluster made by `cluster up`, inside a network namespace of the
//! test's own (its ports, routes, bridges and nft tables stay in there; the
//! mount namespace is the host's, as for a real node), so that it never
//! collides with the machine or another test. Dropping it runs
//! `cluster down --purge` and removes the namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cluster::lab::LabNode;
use tempfile::TempDir;

use crate::apiserver::{bin_dir, kubectl_path};

pub struct LabCluster {
    /// The namespace the whole cluster runs in (the "host" of the lab).
    pub netns: String,
    pub data: PathBuf,
    pub nodes: u32,
    _dir: TempDir,
    running: bool,
}

impl LabCluster {
    /// A namespace, ready for `up`.
    pub fn new(nodes: u32) -> Self {
        let netns = format!("mklab{}", std::process::id());
        run("ip", &["netns", "add", &netns]);
        run("ip", &["-n", &netns, "link", "set", "lo", "up"]);
        let dir = tempfile::Builder::new()
            .prefix("mk-lab-")
            .tempdir()
            .expect("tempdir");
        Self {
            netns,
            data: dir.path().join("d"),
            nodes,
            _dir: dir,
            running: false,
        }
    }

    /// `cluster up --nodes N` (its output, whatever the outcome).
    pub fn up(&mut self, extra: &[&str]) -> Output {
        self.running = true;
        let nodes = self.nodes.to_string();
        let mut args = vec![
            "up",
            "--nodes",
            &nodes,
            "--data-dir",
            self.data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.exec(&bin_dir().join("cluster"), &args)
    }

    /// `cluster down --purge`.
    pub fn down(&mut self) -> Output {
        self.running = false;
        self.exec(
            &bin_dir().join("cluster"),
            &["down", "--purge", "--data-dir", self.data.to_str().unwrap()],
        )
    }

    /// `cluster <args> --data-dir <the lab's>` (e.g. `certs rotate`).
    pub fn cluster(&self, args: &[&str]) -> Output {
        let mut args = args.to_vec();
        args.extend_from_slice(&["--data-dir", self.data.to_str().unwrap()]);
        self.exec(&bin_dir().join("cluster"), &args)
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig")
    }

    /// `program args` in the lab's host namespace.
    pub fn exec(&self, program: &Path, args: &[&str]) -> Output {
        exec_in(&self.netns, program, args, &self.kubeconfig())
    }

    /// `program args` in lab node `index`'s namespace (1-based).
    pub fn exec_node(&self, index: u32, program: &Path, args: &[&str]) -> Output {
        exec_in(&self.node(index).netns, program, args, &self.kubeconfig())
    }

    pub fn node(&self, index: u32) -> LabNode {
        LabNode::new(&self.data, index)
    }

    /// Our kubectl against the lab.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.exec(&bin_dir().join("kubectl"), args)
    }

    /// The real kubectl 1.<minor> against the lab.
    pub fn real_kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.exec(&kubectl_path(minor), args)
    }

    /// A log of the cluster's (e.g. `kube-proxy-node-1`).
    pub fn log(&self, component: &str) -> String {
        std::fs::read_to_string(self.data.join("logs").join(format!("{component}.log")))
            .unwrap_or_default()
    }
}

impl Drop for LabCluster {
    fn drop(&mut self) {
        if self.running {
            let out = self.down();
            if !out.status.success() {
                eprintln!("cluster down: {}", text(&out));
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

fn exec_in(netns: &str, program: &Path, args: &[&str], kubeconfig: &Path) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("nsenter")
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr of a command, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
