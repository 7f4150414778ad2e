//! One containerd per node: its config (own root, state and socket), its CNI config,
//! the process, and a teardown that leaves nothing behind (see [`ContainerdConfig::clean_up`]).

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::IoContext;
use crate::images::PAUSE_IMAGE;
use crate::{procfs, teardown, Error, Result};

/// Where Debian's containernetworking-plugins put the CNI plugins.
pub const DEFAULT_CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The file name containerd itself gives a conflist rendered from `conf_template`;
/// a conflist we write gets the same name, so there is only ever one.
pub const CNI_CONFLIST_FILE: &str = "10-containerd-net.conflist";
const CONTAINERD: &str = "/usr/bin/containerd";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Everything that makes one node's containerd; `new` fills in the defaults.
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    /// Holds `root/`, `state/`, `containerd.sock`, `config.toml`, `containerd.log`.
    pub dir: PathBuf,
    /// The CRI plugin's pod sandbox image (import it before the first pod).
    pub sandbox_image: String,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dir: PathBuf,
    /// Where the CRI streaming server (exec, attach, port-forward) listens: the node's
    /// IP when containerd runs in a node's network namespace.
    pub stream_server_address: String,
    /// 0: any free port (containerd reports the real one in the URLs it hands out).
    pub stream_server_port: u16,
    /// Run containerd inside network namespace /run/netns/<name> (host mounts kept).
    pub netns: Option<String>,
    /// The node's pod CIDR. Given: the CNI conflist is written at start. None: containerd
    /// renders it from its `conf_template` when the kubelet calls CRI
    /// UpdateRuntimeConfig with the pod CIDR (upstream's flow).
    pub pod_cidr: Option<String>,
    /// The CNI bridge, also the CNI network name; unique per `dir` by default
    /// (at most 15 characters: a Linux interface name).
    pub bridge: String,
}

impl ContainerdConfig {
    /// Defaults: sandbox image [`PAUSE_IMAGE`], CNI config in `<dir>/net.d`, plugins in
    /// /usr/lib/cni, streaming on 127.0.0.1 (any port), host network namespace, no pod
    /// CIDR yet, bridge `mk` + a hash of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let hash = hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()));
        Self {
            cni_conf_dir: dir.join("net.d"),
            cni_bin_dir: PathBuf::from(DEFAULT_CNI_BIN_DIR),
            sandbox_image: PAUSE_IMAGE.to_string(),
            stream_server_address: "127.0.0.1".to_string(),
            stream_server_port: 0,
            netns: None,
            pod_cidr: None,
            bridge: format!("mk{}", &hash[..12]),
            dir,
        }
    }

    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The gRPC socket (CRI and containerd's own API).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// runc's state directory for the CRI runtime (`runc --root <this>/<namespace>`).
    pub fn runc_root(&self) -> PathBuf {
        self.state_dir().join("runc")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The template containerd renders into [`CNI_CONFLIST_FILE`] on UpdateRuntimeConfig.
    pub fn cni_template_path(&self) -> PathBuf {
        self.dir.join("cni-conflist.template")
    }

    /// The CNI network name (the same string as the bridge).
    pub fn network_name(&self) -> &str {
        &self.bridge
    }

    /// containerd's config (version 2). See docs/node-runtime.md for each setting.
    pub fn config_toml(&self) -> String {
        let q = |p: &Path| toml_string(&p.to_string_lossy());
        let socket = self.socket();
        let ttrpc = self.dir.join("containerd.sock.ttrpc");
        let template = if self.pod_cidr.is_none() {
            format!("\n    conf_template = {}", q(&self.cni_template_path()))
        } else {
            String::new()
        };
        format!(
            r#"# Written by cluster::containerd; see docs/node-runtime.md.
version = 2
root = {root}
state = {state}
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox_image}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = {stream_address}
  stream_server_port = "{stream_port}"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = {runc_root}

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin_dir}
    conf_dir = {cni_conf_dir}
    max_conf_num = 1{template}
"#,
            root = q(&self.root_dir()),
            state = q(&self.state_dir()),
            socket = q(&socket),
            ttrpc = q(&ttrpc),
            opt = q(&self.dir.join("opt")),
            sandbox_image = toml_string(&self.sandbox_image),
            stream_address = toml_string(&self.stream_server_address),
            stream_port = self.stream_server_port,
            runc_root = q(&self.runc_root()),
            cni_bin_dir = q(&self.cni_bin_dir),
            cni_conf_dir = q(&self.cni_conf_dir),
        )
    }

    /// Remove everything a containerd with this config leaves behind, whether it stopped
    /// cleanly, crashed, or still runs (then it is killed first): its daemon and shim
    /// processes, containers (`runc delete --force`), mounts under `dir`, pod network
    /// namespaces, CNI results and IP reservations of its network, portmap chains, its
    /// bridge, empty pod cgroups, and `root/` and `state/`. Use it before starting a
    /// node again on a `dir` whose previous owner died. Errors are collected, not fatal:
    /// every step runs.
    pub fn clean_up(&self) -> Result<()> {
        teardown::clean_up(self)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The node's CNI network: a bridge (the pods' gateway, hairpin mode for pod -> Service
/// -> same pod, no masquerade: pod IPs stay visible across nodes), host-local addresses
/// from `pod_cidr`, and portmap for hostPorts. The network is named after the bridge.
/// containerd adds the loopback interface itself.
pub fn cni_conflist(bridge: &str, pod_cidr: &str) -> String {
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "hairpinMode": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    serde_json::to_string_pretty(&conflist).unwrap_or_default()
}

/// A running containerd. `stop()` (or dropping it) stops it and removes everything it
/// left behind ([`ContainerdConfig::clean_up`]).
pub struct ContainerdProcess {
    config: ContainerdConfig,
    child: Option<Child>,
    pid: u32,
    cleaned: bool,
}

impl ContainerdProcess {
    /// Write the config (and the CNI conflist when the pod CIDR is known, else the
    /// template), start /usr/bin/containerd (inside `netns` when set) and wait until its
    /// socket accepts connections.
    pub fn start(config: &ContainerdConfig) -> Result<ContainerdProcess> {
        let socket = config.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH - ".ttrpc".len() {
            return Err(Error::Invalid(format!(
                "socket path {} is too long for a unix socket",
                socket.display()
            )));
        }
        if config.bridge.is_empty() || config.bridge.len() > 15 {
            return Err(Error::Invalid(format!(
                "bridge name {:?} must have 1 to 15 characters",
                config.bridge
            )));
        }
        for dir in [&config.dir, &config.cni_conf_dir] {
            std::fs::create_dir_all(dir).path_context("create", dir)?;
        }
        let write =
            |path: &Path, content: &str| std::fs::write(path, content).path_context("write", path);
        write(&config.config_path(), &config.config_toml())?;
        let template = cni_conflist(&config.bridge, "{{.PodCIDR}}");
        write(&config.cni_template_path(), &template)?;
        if let Some(cidr) = &config.pod_cidr {
            write(
                &config.cni_conf_dir.join(CNI_CONFLIST_FILE),
                &cni_conflist(&config.bridge, cidr),
            )?;
        }

        let log_path = config.log_path();
        let log = File::create(&log_path).path_context("create", &log_path)?;
        let mut command = match &config.netns {
            Some(ns) => {
                let path = Path::new("/run/netns").join(ns);
                if !path.exists() {
                    return Err(Error::Invalid(format!(
                        "network namespace {ns} does not exist"
                    )));
                }
                // nsenter execs containerd (no fork for a network namespace): the child's
                // PID is containerd's, and the host's mount namespace stays, so cgroups
                // are visible and mounts can be cleaned from here.
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", path.display()))
                    .arg("--")
                    .arg(CONTAINERD);
                c
            }
            None => Command::new(CONTAINERD),
        };
        // Its own process group: a Ctrl-C meant for the caller does not stop the node's
        // runtime halfway, and a detached containerd outlives its starter cleanly.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .arg("--config")
            .arg(config.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().path_context("duplicate", &log_path)?)
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|e| Error::Containerd(format!("start {CONTAINERD}: {e}")))?;
        let mut process = ContainerdProcess {
            config: config.clone(),
            pid: child.id(),
            child: Some(child),
            cleaned: false,
        };
        process.wait_for_socket(Duration::from_secs(30))?;
        tracing::info!(pid = process.pid, socket = %socket.display(), "containerd started");
        Ok(process)
    }

    fn wait_for_socket(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let socket = self.config.socket();
        loop {
            if UnixStream::connect(&socket).is_ok() {
                return Ok(());
            }
            let exited = match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                _ => None,
            };
            if exited.is_some() || Instant::now() >= deadline {
                let why = exited.map_or_else(
                    || "socket not ready in time".to_string(),
                    |s| format!("exited ({s})"),
                );
                let log = std::fs::read_to_string(self.config.log_path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                let _ = self.stop();
                return Err(Error::Containerd(format!(
                    "{why}; log:\n{}",
                    tail.join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Let containerd run on after this handle is gone (the `cluster` command's nodes);
    /// returns its PID. Teardown is then [`ContainerdConfig::clean_up`]'s job.
    pub fn detach(mut self) -> u32 {
        self.child = None;
        self.cleaned = true;
        self.pid
    }

    /// The gRPC socket for CRI clients and `ctr --address`.
    pub fn socket(&self) -> PathBuf {
        self.config.socket()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    /// containerd's output so far (its log file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.log_path()).unwrap_or_default()
    }

    /// Whether the containerd process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL containerd alone, as a crash would: its shims and containers keep running.
    /// `stop()` or drop still removes everything afterwards.
    pub fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop containerd (SIGTERM, SIGKILL after 5 s) and remove everything it left
    /// behind ([`ContainerdConfig::clean_up`]). Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                procfs::signal(self.pid as i32, libc::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if self.cleaned {
            return Ok(());
        }
        self.cleaned = true;
        teardown::clean_up(&self.config)
    }
}

impl Drop for ContainerdProcess {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(dir = %self.config.dir.display(), "containerd teardown: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_are_unique_per_dir_and_fit_an_interface_name() {
        let a = ContainerdConfig::new("/tmp/node-a");
        let b = ContainerdConfig::new("/tmp/node-b");
        assert_ne!(a.bridge, b.bridge);
        assert!(a.bridge.len() <= 15);
        assert_eq!(a.network_name(), a.bridge);
    }

    #[test]
    fn config_has_the_settings_this_machine_needs() {
        let mut config = ContainerdConfig::new("/tmp/node \"x\"");
        let toml = config.config_toml();
        for needle in [
            "restrict_oom_score_adj = true",
            "SystemdCgroup = false",
            "snapshotter = \"overlayfs\"",
            "netns_mounts_under_state_dir = true",
            "sandbox_image = \"registry.k8s.io/pause:3.10\"",
            "bin_dir = \"/usr/lib/cni\"",
            "root = \"/tmp/node \\\"x\\\"/root\"",
            "conf_template = ",
        ] {
            assert!(toml.contains(needle), "{needle} missing in\n{toml}");
        }
        config.pod_cidr = Some("10.244.1.0/24".into());
        assert!(!config.config_toml().contains("conf_template"));
    }

    #[test]
    fn conflist_is_bridge_host_local_portmap() {
        let conf: serde_json::Value =
            serde_json::from_str(&cni_conflist("mkbr0", "10.244.3.0/24")).unwrap();
        assert_eq!(conf["name"], "mkbr0");
        let bridge = &conf["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.244.3.0/24");
        assert_eq!(conf["plugins"][1]["type"], "portmap");
    }
}
