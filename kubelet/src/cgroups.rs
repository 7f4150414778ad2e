//! Pod cgroups (cgroup v1, cgroupfs driver). The runtime creates the
//! container cgroups under the pod's parent; the kubelet creates the parent
//! and removes the directories the runtime leaves behind.

use std::path::{Path, PathBuf};

const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// The cgroup hierarchies (one directory per mounted controller set).
fn hierarchies() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(CGROUP_MOUNT) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

fn rel(cgroup: &str) -> &Path {
    Path::new(cgroup.trim_start_matches('/'))
}

/// Create the pod's cgroup in every hierarchy (best effort: the runtime
/// creates missing parents itself).
pub fn create(cgroup: &str) {
    for h in hierarchies() {
        let dir = h.join(rel(cgroup));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "create pod cgroup");
        }
    }
}

/// Remove the cgroup and every directory below it, deepest first, in every
/// hierarchy. cgroup directories are removed with rmdir (their files are
/// not real files). Returns the directories that could not be removed.
pub fn remove(cgroup: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    if rel(cgroup).as_os_str().is_empty() {
        return left;
    }
    for h in hierarchies() {
        remove_tree(&h.join(rel(cgroup)), &mut left);
    }
    left
}

fn remove_tree(dir: &Path, left: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path(), left);
        }
    }
    // A cgroup whose processes are still exiting is busy for a moment.
    for attempt in 0..20 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) if attempt < 19 => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "remove cgroup");
                left.push(dir.to_path_buf());
            }
        }
    }
}
