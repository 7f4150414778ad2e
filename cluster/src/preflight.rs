//! What `cluster up` checks before it starts anything, so that it refuses
//! clearly instead of leaving half a cluster behind.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

/// Problems found, each with what to do about it; empty when all is well.
pub fn check(ports: &[(u16, &str)], cni_bin_dir: &Path, need_etcd: bool) -> Vec<String> {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        problems.push(
            "not running as root: containers, network namespaces and routes need root (run it with sudo)"
                .to_string(),
        );
    }
    let mut programs = vec![
        ("/usr/bin/containerd", "containerd"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/bin/ctr", "containerd"),
        ("/sbin/ip", "iproute2"),
        ("/usr/sbin/nft", "nftables"),
    ];
    if need_etcd {
        programs.push(("/usr/bin/etcd", "etcd-server"));
    }
    for (path, package) in programs {
        let found = Path::new(path).exists()
            || Path::new(path)
                .file_name()
                .is_some_and(|n| on_path(&n.to_string_lossy()));
        if !found {
            problems.push(format!("{path} is missing: apt-get install -y {package}"));
        }
    }
    for plugin in ["bridge", "host-local", "portmap", "loopback"] {
        if !cni_bin_dir.join(plugin).exists() {
            problems.push(format!(
                "CNI plugin {}/{plugin} is missing: apt-get install -y containernetworking-plugins",
                cni_bin_dir.display()
            ));
            break;
        }
    }
    for (port, who) in ports {
        let addr = SocketAddr::from(([0, 0, 0, 0], *port));
        if TcpListener::bind(addr).is_err() {
            problems.push(format!(
                "port {port} (for {who}) is taken: stop what listens there (ss -ltnp 'sport = :{port}')"
            ));
        }
    }
    if !Path::new("/sys/fs/cgroup/memory").exists()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        problems
            .push("no cgroup hierarchy under /sys/fs/cgroup: containers cannot be limited".into());
    }
    problems
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
