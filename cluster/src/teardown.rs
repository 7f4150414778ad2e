//! Removing everything one containerd leaves behind (MACHINE-FACTS: some of it lands
//! outside its root and state: /run/containerd/{s,runc}, /var/lib/cni, iptables chains,
//! cgroups, the CNI bridge).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::containerd::{ContainerdConfig, CNI_CONFLIST_FILE};
use crate::{command, mounts, procfs, Error, Result};

/// The runtime v2 task directory in containerd's state: `<ns>/<id>/` per task (bundle).
const TASK_DIR: &str = "io.containerd.runtime.v2.task";
/// The runc root of tasks started without runtime options (e.g. by `ctr run`).
const DEFAULT_RUNC_ROOT: &str = "/run/containerd/runc";
/// Where `ctr` (the containerd client) makes a task's stdio FIFOs, `<dir>/<id>-stdout`;
/// detached tasks leave them behind.
const CLIENT_FIFO_DIR: &str = "/run/containerd/fifo";
const CNI_RESULTS_DIR: &str = "/var/lib/cni/results";
const HOST_LOCAL_DIR: &str = "/var/lib/cni/networks";
/// The CRI plugin's OCI annotation that marks a pod's sandbox (pause) container.
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// One task's bundle directory under the state dir.
struct Bundle {
    namespace: String,
    id: String,
    path: PathBuf,
    /// cgroupfs path of the container (`linux.cgroupsPath`).
    cgroup: Option<String>,
    sandbox: bool,
    /// The shim's socket (`unix:///run/containerd/s/<hash>`).
    shim_socket: Option<PathBuf>,
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn note(&mut self, what: &str, result: Result<()>) {
        if let Err(e) = result {
            tracing::warn!("containerd teardown: {what}: {e}");
            self.0.push(format!("{what}: {e}"));
        }
    }
}

pub(crate) fn clean_up(config: &ContainerdConfig) -> Result<()> {
    let mut problems = Problems::default();
    let bundles = bundles(&config.state_dir());

    stop_daemons(config);
    kill_shims(config);
    for (what, result) in delete_containers(config, &bundles) {
        problems.note(&what, result);
    }
    let stuck = mounts::unmount_under(&config.dir);
    if !stuck.is_empty() {
        problems.note(
            "unmount",
            Err(Error::Containerd(format!("still mounted: {stuck:?}"))),
        );
    }
    for bundle in &bundles {
        if let Some(socket) = &bundle.shim_socket {
            let _ = std::fs::remove_file(socket);
        }
    }
    remove_client_fifos(&bundles);
    problems.note("CNI state", remove_cni_state(config, &bundles));
    problems.note("portmap chains", remove_portmap_chains(config));
    problems.note("bridge", remove_bridge(config));
    remove_pod_cgroups(&bundles);
    if stuck.is_empty() {
        for dir in [
            config.root_dir(),
            config.state_dir(),
            config.dir.join("opt"),
        ] {
            if dir.exists() {
                let result = std::fs::remove_dir_all(&dir).map_err(|e| Error::Io {
                    context: format!("remove {}", dir.display()),
                    source: e,
                });
                problems.note("remove directories", result);
            }
        }
    }
    for file in [config.socket(), config.dir.join("containerd.sock.ttrpc")] {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_file(config.cni_conf_dir.join(CNI_CONFLIST_FILE));

    if problems.0.is_empty() {
        Ok(())
    } else {
        Err(Error::Containerd(format!(
            "teardown of {} incomplete: {}",
            config.dir.display(),
            problems.0.join("; ")
        )))
    }
}

fn bundles(state_dir: &Path) -> Vec<Bundle> {
    let mut found = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(state_dir.join(TASK_DIR)) else {
        return found;
    };
    for ns in namespaces.flatten() {
        let Ok(tasks) = std::fs::read_dir(ns.path()) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let spec: serde_json::Value = std::fs::read(path.join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let shim_socket = std::fs::read_to_string(path.join("address"))
                .ok()
                .and_then(|a| a.trim().strip_prefix("unix://").map(PathBuf::from));
            found.push(Bundle {
                namespace: ns.file_name().to_string_lossy().into_owned(),
                id: task.file_name().to_string_lossy().into_owned(),
                cgroup: spec["linux"]["cgroupsPath"].as_str().map(str::to_string),
                sandbox: spec["annotations"][CONTAINER_TYPE] == "sandbox",
                shim_socket,
                path,
            });
        }
    }
    found
}

/// A containerd still running with this config (ours, or one a dead test left).
fn stop_daemons(config: &ContainerdConfig) {
    let config_path = config.config_path().to_string_lossy().into_owned();
    let pids = procfs::find(|args| {
        args.first().is_some_and(|a| a.ends_with("containerd"))
            && args
                .windows(2)
                .any(|w| w[0] == "--config" && w[1] == config_path)
    });
    if pids.is_empty() {
        return;
    }
    for pid in &pids {
        procfs::signal(*pid, libc::SIGTERM);
    }
    for pid in procfs::wait_gone(&pids, Duration::from_secs(5)) {
        procfs::signal(pid, libc::SIGKILL);
    }
    procfs::wait_gone(&pids, Duration::from_secs(5));
}

/// Shims name the containerd they serve: `containerd-shim-runc-v2 ... -address <socket>`.
fn kill_shims(config: &ContainerdConfig) {
    let socket = config.socket().to_string_lossy().into_owned();
    let pids = procfs::find(|args| {
        args.first().is_some_and(|a| a.contains("containerd-shim"))
            && args
                .windows(2)
                .any(|w| w[0] == "-address" && w[1] == socket)
    });
    for pid in &pids {
        procfs::signal(*pid, libc::SIGKILL);
    }
    procfs::wait_gone(&pids, Duration::from_secs(5));
}

/// `runc delete --force` (kills the processes, removes the cgroup and runc's state) for
/// every container in this containerd's own runc root, and for those of its tasks that
/// live in the shared default root (checked by their bundle path).
fn delete_containers(config: &ContainerdConfig, bundles: &[Bundle]) -> Vec<(String, Result<()>)> {
    let mut results = Vec::new();
    let own_root = config.runc_root();
    if let Ok(namespaces) = std::fs::read_dir(&own_root) {
        for ns in namespaces.flatten() {
            let root = ns.path();
            let Ok(containers) = std::fs::read_dir(&root) else {
                continue;
            };
            for container in containers.flatten() {
                let id = container.file_name().to_string_lossy().into_owned();
                results.push((format!("runc delete {id}"), runc_delete(&root, &id)));
            }
        }
    }
    for bundle in bundles {
        let root = Path::new(DEFAULT_RUNC_ROOT).join(&bundle.namespace);
        if !root.join(&bundle.id).exists() {
            continue;
        }
        let owned = command::run(
            "runc",
            &["--root", &root.to_string_lossy(), "state", &bundle.id],
        )
        .ok()
        .and_then(|out| serde_json::from_str::<serde_json::Value>(&out).ok())
        .is_some_and(|state| state["bundle"].as_str() == Some(&*bundle.path.to_string_lossy()));
        if owned {
            results.push((
                format!("runc delete {}", bundle.id),
                runc_delete(&root, &bundle.id),
            ));
        }
    }
    results
}

fn runc_delete(root: &Path, id: &str) -> Result<()> {
    let root = root.to_string_lossy();
    match command::run("runc", &["--root", &root, "delete", "--force", id]) {
        Ok(_) => Ok(()),
        // Gone meanwhile (e.g. its shim cleaned up as it died).
        Err(_) if !Path::new(&*root).join(id).exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// FIFO directories holding stdio FIFOs named after one of our tasks.
fn remove_client_fifos(bundles: &[Bundle]) {
    let Ok(dirs) = std::fs::read_dir(CLIENT_FIFO_DIR) else {
        return;
    };
    for dir in dirs.flatten() {
        let ours = std::fs::read_dir(dir.path()).is_ok_and(|mut fifos| {
            fifos.any(|f| {
                f.is_ok_and(|f| {
                    let name = f.file_name().to_string_lossy().into_owned();
                    bundles.iter().any(|b| {
                        name.strip_prefix(&b.id)
                            .is_some_and(|rest| ["-stdin", "-stdout", "-stderr"].contains(&rest))
                    })
                })
            })
        });
        if ours {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

/// libcni's cached results (`<network>-<container>-<ifname>`, and the CRI plugin's
/// `cni-loopback-<sandbox>-lo`) and host-local's IP reservations for this node's network.
fn remove_cni_state(config: &ContainerdConfig, bundles: &[Bundle]) -> Result<()> {
    let network = config.network_name();
    for bundle in bundles {
        let loopback = Path::new(CNI_RESULTS_DIR).join(format!("cni-loopback-{}-lo", bundle.id));
        let _ = std::fs::remove_file(loopback);
    }
    if let Ok(entries) = std::fs::read_dir(CNI_RESULTS_DIR) {
        let prefix = format!("{network}-");
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let reservations = Path::new(HOST_LOCAL_DIR).join(network);
    if reservations.exists() {
        std::fs::remove_dir_all(&reservations).map_err(|e| Error::Io {
            context: format!("remove {}", reservations.display()),
            source: e,
        })?;
    }
    Ok(())
}

/// The node's network namespace if it still exists; Err(()) if it is gone (and
/// everything inside it with it).
fn netns_of(config: &ContainerdConfig) -> std::result::Result<Option<&str>, ()> {
    match &config.netns {
        None => Ok(None),
        Some(ns) if Path::new("/run/netns").join(ns).exists() => Ok(Some(ns)),
        Some(_) => Err(()),
    }
}

/// portmap's per-container chains `CNI-DN-*` and the rules jumping to them, found by
/// their comment `dnat name: "<network>" id: "<container>"`. The shared CNI-HOSTPORT-*
/// chains stay: other networks may use them.
fn remove_portmap_chains(config: &ContainerdConfig) -> Result<()> {
    let Ok(netns) = netns_of(config) else {
        return Ok(());
    };
    let Ok(rules) = command::run_in(netns, "iptables", &["-w", "-t", "nat", "-S"]) else {
        // No nat table (nothing ever used it) or no iptables: nothing of ours there.
        return Ok(());
    };
    let marker = format!("name: \\\"{}\\\"", config.network_name());
    let mut chains = Vec::new();
    for rule in rules
        .lines()
        .filter(|r| r.starts_with("-A ") && r.contains(&marker))
    {
        let words = shell_words(&rule[3..]);
        if let Some(i) = words.iter().position(|w| w == "-j") {
            if let Some(target) = words.get(i + 1).filter(|t| t.starts_with("CNI-DN-")) {
                chains.push(target.clone());
            }
        }
        let mut args = vec!["-w", "-t", "nat", "-D"];
        args.extend(words.iter().map(String::as_str));
        command::run_in(netns, "iptables", &args)?;
    }
    chains.sort();
    chains.dedup();
    for chain in &chains {
        command::run_in(netns, "iptables", &["-w", "-t", "nat", "-F", chain])?;
        command::run_in(netns, "iptables", &["-w", "-t", "nat", "-X", chain])?;
    }
    Ok(())
}

/// Split an `iptables -S` rule into arguments ("..." with \" inside are one word).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The bridge the CNI bridge plugin created for this node's network.
fn remove_bridge(config: &ContainerdConfig) -> Result<()> {
    let Ok(netns) = netns_of(config) else {
        return Ok(());
    };
    if command::run_in(netns, "ip", &["link", "show", "dev", &config.bridge]).is_err() {
        return Ok(());
    }
    command::run_in(netns, "ip", &["link", "del", "dev", &config.bridge]).map(|_| ())
}

/// Containers' leftover cgroups, then each pod's cgroup (the parent of its sandbox
/// container's), in every hierarchy. rmdir only removes empty cgroups, so a pod cgroup
/// still in use elsewhere stays.
fn remove_pod_cgroups(bundles: &[Bundle]) {
    let hierarchies = mounts::cgroup_hierarchies();
    let relative = |p: &str| p.trim_start_matches('/').to_string();
    let mut dirs: Vec<String> = bundles
        .iter()
        .filter_map(|b| b.cgroup.as_deref())
        .filter(|p| p.starts_with('/'))
        .map(relative)
        .collect();
    let pods: Vec<String> = bundles
        .iter()
        .filter(|b| b.sandbox)
        .filter_map(|b| {
            Path::new(b.cgroup.as_deref()?)
                .parent()
                .map(|p| relative(&p.to_string_lossy()))
        })
        .filter(|p| !p.is_empty())
        .collect();
    dirs.extend(pods);
    for dir in &dirs {
        for hierarchy in &hierarchies {
            let _ = std::fs::remove_dir(hierarchy.join(dir));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shell_words;

    #[test]
    fn splits_iptables_rules() {
        let rule = r#"CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"mkabc\" id: \"123\"" -m multiport --dports 8080 -j CNI-DN-0a1b"#;
        let words = shell_words(rule);
        assert_eq!(words[6], r#"dnat name: "mkabc" id: "123""#);
        assert_eq!(words.last().map(String::as_str), Some("CNI-DN-0a1b"));
        assert_eq!(words.len(), 13);
    }
}
