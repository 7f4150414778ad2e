//! `cluster down`: stop every process `cluster up` recorded (by PID, after
//! checking the PID still names that program), then remove what the nodes
//! left: containers, mounts, network namespaces, CNI state, bridges, the
//! safety routes. `--purge` deletes the data directory too.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::containerd::ContainerdConfig;
use crate::daemon;
use crate::lab::{self, LabNode};
use crate::layout::Layout;
use crate::netsafety;
use crate::up::{BLACKHOLE_BRIDGE, CGROUP_PARENT};

/// Components stop in this order: nodes first (the kubelet would restart
/// what containerd loses), the store last.
const ORDER: &[&str] = &[
    "kubelet-",
    "kube-proxy-",
    "kube-dns",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
    "containerd-",
];

pub fn down(data_dir: &Path, purge: bool) -> anyhow::Result<()> {
    let layout = Layout::new(data_dir);
    let mut recorded = daemon::recorded(&layout);
    recorded.sort_by_key(|r| {
        ORDER
            .iter()
            .position(|p| r.name.starts_with(p))
            .unwrap_or(ORDER.len())
    });
    for r in &recorded {
        let grace = if r.name.starts_with("containerd-") || r.name.starts_with("kubelet-") {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(5)
        };
        daemon::stop(&layout, r, grace);
        println!("  stopped {} (pid {})", r.name, r.pid);
    }
    let mut errors = Vec::new();
    if let Ok(nodes) = std::fs::read_dir(layout.nodes()) {
        for node in nodes.flatten() {
            let name = node.file_name().to_string_lossy().into_owned();
            let lab_node = lab_node(data_dir, &name);
            let mut cfg = ContainerdConfig::new(layout.containerd(&name));
            cfg.cni_conf_dir = layout.cni_conf(&name);
            cfg.netns = lab_node.as_ref().map(|n| n.netns.clone());
            if let Err(e) = cfg.clean_up() {
                errors.push(format!("node {name}: {e}"));
            } else {
                println!("  cleaned node {name}");
            }
            if let Some(n) = &lab_node {
                if let Err(e) = lab::remove_node(n) {
                    errors.push(format!("node {name}'s namespace: {e}"));
                }
            }
        }
    }
    for n in lab::existing_nodes(data_dir) {
        if let Err(e) = lab::remove_node(&n) {
            errors.push(format!("{}'s namespace: {e}", n.name));
        }
    }
    remove_cgroups(&mut errors);
    clean_host_proxy(&mut errors);
    if let Err(e) = lab::remove_host() {
        errors.push(format!("lab bridge: {e}"));
    }
    if let Err(e) = netsafety::remove_blackhole_bridge(BLACKHOLE_BRIDGE) {
        errors.push(format!("safety bridge: {e}"));
    }
    if purge && data_dir.exists() {
        std::fs::remove_dir_all(data_dir)
            .with_context(|| format!("remove {}", data_dir.display()))?;
        println!("  removed {}", data_dir.display());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "some things could not be removed:\n  {}",
            errors.join("\n  ")
        )
    }
}

/// A lab node's namespace, when node `name` (node-<i>) has one.
fn lab_node(data_dir: &Path, name: &str) -> Option<LabNode> {
    let index: u32 = name.strip_prefix("node-")?.parse().ok()?;
    let node = LabNode::new(data_dir, index);
    (node.name == name && Path::new("/run/netns").join(&node.netns).exists()).then_some(node)
}

/// The host's kube-proxy table and pod routes (lab nodes' go with their
/// namespaces): `kube-proxy --cleanup` knows what it made.
fn clean_host_proxy(errors: &mut Vec<String>) {
    let Some(proxy) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("kube-proxy")))
        .filter(|p| p.is_file())
    else {
        return;
    };
    match std::process::Command::new(&proxy).arg("--cleanup").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => errors.push(format!(
            "kube-proxy --cleanup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => errors.push(format!("kube-proxy --cleanup: {e}")),
    }
}

/// The kubelets' cgroup parents, in every hierarchy, deepest first (a
/// cgroup directory goes with rmdir once it is empty of tasks and children).
fn remove_cgroups(errors: &mut Vec<String>) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let top = h.path().join(CGROUP_PARENT);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            if let Err(e) = std::fs::remove_dir(&d) {
                errors.push(format!("cgroup {}: {e}", d.display()));
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
