//! The node runtime library (`cluster`) against the real containerd, runc and CNI
//! plugins: offline OCI images, a containerd per node, its teardown, and the
//! blackhole routes. Runs as root. No pods through CRI here (the kubelet's tests do
//! that); containers are started with `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::containerd::{cni_conflist, ContainerdConfig, ContainerdProcess};
use cluster::images::{build_images, BUSYBOX_IMAGE, IMAGES, NGINX_IMAGE, PAUSE_IMAGE};
use serde_json::Value;

/// One image directory for every test of this file (building is idempotent).
fn images() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-runtime-images");
    build_images(&dir).expect("build images")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn stdout_of(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ctr --address <socket> -n k8s.io <args>`.
fn ctr(socket: &Path, args: &[&str]) -> Output {
    let socket = socket.to_string_lossy();
    let mut all = vec!["--address", &*socket, "-n", "k8s.io"];
    all.extend_from_slice(args);
    run("ctr", &all)
}

fn ctr_ok(socket: &Path, args: &[&str]) -> String {
    let out = ctr(socket, args);
    assert!(
        out.status.success(),
        "ctr {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn import_all(socket: &Path, tarballs: &[PathBuf]) {
    for tarball in tarballs {
        ctr_ok(socket, &["images", "import", &tarball.to_string_lossy()]);
    }
}

/// The host PID of a task's init process (`ctr task ls`: TASK PID STATUS).
fn task_pid(socket: &Path, id: &str) -> Option<i32> {
    let out = ctr_ok(socket, &["task", "ls"]);
    out.lines().find_map(|line| {
        let mut cols = line.split_whitespace();
        (cols.next() == Some(id) && line.contains("RUNNING"))
            .then(|| cols.next()?.parse().ok())
            .flatten()
    })
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Running: present and not a zombie (killed processes stay zombies until reaped).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Running processes whose argument vector holds `needle` as one argument.
fn processes_with_arg(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| running(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|raw| raw.split(|b| *b == 0).any(|a| a == needle.as_bytes()))
        })
        .collect()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&dir))
        .collect()
}

fn cgroup_hierarchies() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// What every teardown must leave: no daemon, no shims, no mounts, no state.
fn assert_nothing_left(config: &ContainerdConfig, containerd_pid: u32) {
    assert!(!running(containerd_pid as i32), "containerd still runs");
    let socket = config.socket().to_string_lossy().into_owned();
    assert_eq!(
        processes_with_arg(&socket),
        Vec::<i32>::new(),
        "shims of this containerd still run"
    );
    assert_eq!(
        mounts_under(&config.dir),
        Vec::<String>::new(),
        "mounts left"
    );
    assert!(!config.root_dir().exists(), "root dir left");
    assert!(
        !config.state_dir().exists(),
        "state dir left (runc root, netns, bundles)"
    );
    assert!(!config.socket().exists(), "socket left");
    let link = match &config.netns {
        Some(ns) => run("ip", &["-n", ns, "link", "show", "dev", &config.bridge]),
        None => run("ip", &["link", "show", "dev", &config.bridge]),
    };
    assert!(!link.status.success(), "bridge {} left", config.bridge);
}

fn test_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nrt-{name}-"))
        .tempdir_in("/tmp")
        .unwrap()
}

#[test]
fn images_are_valid_oci_layouts() {
    let tarballs = images();
    assert_eq!(tarballs.len(), IMAGES.len());
    let before: Vec<_> = tarballs
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();

    for ((name, _), tarball) in IMAGES.iter().zip(&tarballs) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        stdout_of(
            "tar",
            &[
                "-xf",
                &tarball.to_string_lossy(),
                "-C",
                &d.to_string_lossy(),
            ],
        );
        let layout: Value =
            serde_json::from_slice(&std::fs::read(d.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: Value =
            serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        let descriptor = &index["manifests"][0];
        assert_eq!(descriptor["annotations"]["io.containerd.image.name"], *name);

        // Every blob's name is its sha256, and descriptors carry the right sizes.
        let blobs = d.join("blobs/sha256");
        for entry in std::fs::read_dir(&blobs).unwrap() {
            let path = entry.unwrap().path();
            let sum = stdout_of("sha256sum", &[&path.to_string_lossy()]);
            assert_eq!(
                sum.split_whitespace().next(),
                path.file_name().unwrap().to_str()
            );
        }
        let blob = |descriptor: &Value| -> Vec<u8> {
            let digest = descriptor["digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap();
            let data = std::fs::read(blobs.join(digest)).unwrap();
            assert_eq!(descriptor["size"].as_u64(), Some(data.len() as u64));
            data
        };
        let manifest: Value = serde_json::from_slice(&blob(descriptor)).unwrap();
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let config: Value = serde_json::from_slice(&blob(&manifest["config"])).unwrap();
        assert_eq!(config["os"], "linux");
        let layer = &manifest["layers"][0];
        blob(layer);
        assert_eq!(
            config["rootfs"]["diff_ids"][0], layer["digest"],
            "uncompressed layer"
        );
        let env = config["config"]["Env"].to_string();
        assert!(env.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));

        let digest = layer["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let listing = stdout_of(
            "tar",
            &[
                "-tvf",
                &blobs.join(digest).to_string_lossy(),
                "--numeric-owner",
            ],
        );
        let has = |needle: &str| listing.lines().any(|l| l.contains(needle));
        let runtime = &config["config"];
        match *name {
            BUSYBOX_IMAGE => {
                assert_eq!(runtime["Cmd"], serde_json::json!(["sh"]));
                for needle in [
                    "bin/busybox",
                    "bin/sh -> busybox",
                    "bin/wget -> busybox",
                    "etc/passwd",
                    "etc/group",
                ] {
                    assert!(has(needle), "{name}: {needle} missing");
                }
            }
            PAUSE_IMAGE => {
                assert_eq!(runtime["Entrypoint"], serde_json::json!(["/pause"]));
                assert!(has(" pause"), "{name}: /pause missing");
            }
            NGINX_IMAGE => {
                assert_eq!(
                    runtime["Cmd"],
                    serde_json::json!(["nginx", "-g", "daemon off;"])
                );
                assert_eq!(runtime["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
                assert_eq!(runtime["StopSignal"], "SIGQUIT");
                for needle in [
                    "usr/sbin/nginx",
                    "lib64/ld-linux",
                    "libc.so.6",
                    "etc/nginx/mime.types",
                    "etc/nginx/nginx.conf",
                    "usr/share/nginx/html/index.html",
                    "33/33 ",
                ] {
                    assert!(has(needle), "{name}: {needle} missing");
                }
                assert!(listing
                    .lines()
                    .any(|l| l.contains("33/33") && l.ends_with("var/lib/nginx/")));
            }
            other => panic!("unexpected image {other}"),
        }
    }

    // A second build finds every tarball up to date and leaves it alone.
    let again = images();
    assert_eq!(again, tarballs);
    for (path, modified) in again.iter().zip(before) {
        assert_eq!(
            std::fs::metadata(path).unwrap().modified().unwrap(),
            modified
        );
    }
}

/// `ctr run` in the foreground as a child: its exit status is the container's.
fn ctr_run_foreground(socket: &Path, args: &[&str]) -> Child {
    let socket = socket.to_string_lossy();
    Command::new("ctr")
        .args(["--address", &*socket, "-n", "k8s.io", "run"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn containerd_imports_and_runs_the_images() {
    let tarballs = images();
    let dir = test_dir("run");
    let config = ContainerdConfig::new(dir.path());
    let mut containerd = ContainerdProcess::start(&config).expect("start containerd");
    let socket = containerd.socket();
    let pid = containerd.pid();
    assert!(config.config_path().is_file());
    assert!(config.cni_template_path().is_file());

    import_all(&socket, &tarballs);
    let listed = ctr_ok(&socket, &["images", "ls", "-q"]);
    for (name, _) in IMAGES {
        assert!(
            listed.lines().any(|l| l == name),
            "{name} not listed:\n{listed}"
        );
    }

    let tag = std::process::id();
    let busybox_mount = "type=bind,src=/bin/busybox,dst=/busybox,options=rbind:ro";
    // Our own cgroup parent instead of ctr's default /k8s.io, removed at the end.
    let cgroups = TestCgroup(format!("nrt-{tag}-run"));
    let cgroup = |id: &str| format!("/{}/{id}", cgroups.0);

    // busybox: a command's output comes back.
    let id = format!("nrt-{tag}-echo");
    let out = ctr_ok(
        &socket,
        &[
            "run",
            "--rm",
            "--cgroup",
            &cgroup(&id),
            BUSYBOX_IMAGE,
            &id,
            "sh",
            "-c",
            "echo hello from busybox; id -un",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["hello from busybox", "root"]
    );

    // nginx: its config test passes inside the image...
    let id = format!("nrt-{tag}-nginx-t");
    let out = ctr(
        &socket,
        &[
            "run",
            "--rm",
            "--cgroup",
            &cgroup(&id),
            NGINX_IMAGE,
            &id,
            "nginx",
            "-t",
        ],
    );
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("test is successful"),
        "nginx -t: {text}"
    );

    // ...and it serves the welcome page (inside the container's own network namespace).
    let nginx = format!("nrt-{tag}-nginx");
    ctr_ok(
        &socket,
        &[
            "run",
            "-d",
            "--cgroup",
            &cgroup(&nginx),
            "--mount",
            busybox_mount,
            NGINX_IMAGE,
            &nginx,
        ],
    );
    let page = wait_for("nginx to answer", Duration::from_secs(20), || {
        let exec_id = format!("wget{}", rand_suffix());
        let out = ctr(
            &socket,
            &[
                "task",
                "exec",
                "--exec-id",
                &exec_id,
                &nginx,
                "/busybox",
                "timeout",
                "5",
                "/busybox",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:80/",
            ],
        );
        let page = String::from_utf8_lossy(&out.stdout).into_owned();
        page.contains("Welcome to nginx!").then_some(page)
    });
    assert!(page.contains("<title>Welcome to nginx!</title>"));
    let nginx_pid = task_pid(&socket, &nginx).expect("nginx task pid");

    // pause: PID 1 of its container reaps an orphan and exits 0 on SIGTERM.
    let pause = format!("nrt-{tag}-pause");
    let mut pause_run = ctr_run_foreground(
        &socket,
        &[
            "--cgroup",
            &cgroup(&pause),
            "--mount",
            busybox_mount,
            PAUSE_IMAGE,
            &pause,
        ],
    );
    wait_for("pause to run", Duration::from_secs(20), || {
        task_pid(&socket, &pause)
    });
    let exec = |args: &[&str]| {
        let exec_id = format!("x{}", rand_suffix());
        let mut all = vec!["task", "exec", "--exec-id", &exec_id, &pause];
        all.extend_from_slice(args);
        ctr_ok(&socket, &all)
    };
    // sh exits at once; its background sleep is orphaned to PID 1, the pause process.
    exec(&["/busybox", "sh", "-c", "/busybox sleep 2 >/dev/null 2>&1 &"]);
    let ps = exec(&["/busybox", "ps", "-o", "pid,ppid,stat,args"]);
    assert!(
        ps.lines()
            .any(|l| l.contains("sleep") && l.split_whitespace().nth(1) == Some("1")),
        "the orphan should belong to pause (PID 1):\n{ps}"
    );
    wait_for("pause to reap the orphan", Duration::from_secs(20), || {
        let ps = exec(&["/busybox", "ps", "-o", "pid,stat,args"]);
        (!ps.lines().any(|l| l.contains("sleep"))).then_some(())
    });
    ctr_ok(&socket, &["task", "kill", "--signal", "SIGTERM", &pause]);
    let status = wait_for("pause to exit", Duration::from_secs(20), || {
        pause_run.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "pause's exit status on SIGTERM");

    // Stop with nginx still running: the teardown takes it down too.
    containerd.stop().expect("stop containerd");
    assert!(!running(nginx_pid), "nginx survived the teardown");
    assert!(!Path::new("/run/containerd/runc/k8s.io")
        .join(&nginx)
        .exists());
    assert_nothing_left(&config, pid);
    assert_no_fifos_of(&[&nginx, &pause]);
}

/// ctr's stdio FIFOs of detached tasks are gone too.
fn assert_no_fifos_of(ids: &[&str]) {
    let Ok(dirs) = std::fs::read_dir("/run/containerd/fifo") else {
        return;
    };
    for dir in dirs.flatten() {
        for fifo in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = fifo.file_name().to_string_lossy().into_owned();
            assert!(
                !ids.iter().any(|id| name.starts_with(&format!("{id}-"))),
                "FIFO {name} left"
            );
        }
    }
}

/// Network namespace for a node, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Self {
        stdout_of("ip", &["netns", "add", &name]);
        stdout_of("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

/// A cgroup directory of this test (in every hierarchy), removed on drop.
struct TestCgroup(String);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for hierarchy in cgroup_hierarchies() {
            let _ = std::fs::remove_dir(hierarchy.join(&self.0));
        }
    }
}

/// Run one CNI plugin inside the node's network namespace, as libcni would.
fn cni_plugin(
    netns: &str,
    plugin: &str,
    command: &str,
    container: &str,
    pod_netns: &Path,
    conf: &Value,
) -> Value {
    use std::io::Write;
    let mut child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(format!("/usr/lib/cni/{plugin}"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", pod_netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "CNI {plugin} {command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn teardown_after_a_crash_removes_pod_leftovers() {
    let tarballs = images();
    let tag = std::process::id();
    let node = Netns::new(format!("nrt-{tag}"));
    let dir = test_dir("crash");
    let mut config = ContainerdConfig::new(dir.path());
    config.netns = Some(node.0.clone());
    config.pod_cidr = Some("10.244.250.0/24".into());
    let mut containerd = ContainerdProcess::start(&config).expect("start containerd in the node");
    let socket = containerd.socket();
    let pid = containerd.pid();
    let conflist: Value = serde_json::from_str(
        &std::fs::read_to_string(config.cni_conf_dir.join("10-containerd-net.conflist")).unwrap(),
    )
    .unwrap();
    assert_eq!(conflist["name"], config.network_name());
    assert_eq!(
        conflist["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.244.250.0/24"
    );
    import_all(&socket, &tarballs[..2]);

    // A pod as the CRI plugin lays it out: a sandbox (pause) container marked by its
    // annotation and an app container, both in the pod's cgroup...
    let parent = TestCgroup(format!("nrt-{tag}"));
    let pod_cgroup = format!("{}/pod-{tag}", parent.0);
    let sandbox = format!("nrt-{tag}-sandbox");
    let app = format!("nrt-{tag}-app");
    ctr_ok(
        &socket,
        &[
            "run",
            "-d",
            "--annotation",
            "io.kubernetes.cri.container-type=sandbox",
            "--cgroup",
            &format!("/{pod_cgroup}/{sandbox}"),
            PAUSE_IMAGE,
            &sandbox,
        ],
    );
    ctr_ok(
        &socket,
        &[
            "run",
            "-d",
            "--cgroup",
            &format!("/{pod_cgroup}/{app}"),
            BUSYBOX_IMAGE,
            &app,
            "sleep",
            "1000",
        ],
    );
    let app_pid = wait_for("the app container", Duration::from_secs(20), || {
        task_pid(&socket, &app)
    });

    // ...and its network as CNI leaves it: a netns under the state dir, the node's bridge,
    // a host-local reservation, a portmap chain, libcni's cached result.
    let netns_dir = config.state_dir().join("io.containerd.grpc.v1.cri/netns");
    std::fs::create_dir_all(&netns_dir).unwrap();
    let pod_netns = netns_dir.join(format!("cni-{tag}"));
    std::fs::File::create(&pod_netns).unwrap();
    stdout_of(
        "unshare",
        &[&format!("--net={}", pod_netns.display()), "true"],
    );
    let bridge_conf = {
        let mut conf = conflist["plugins"][0].clone();
        conf["cniVersion"] = conflist["cniVersion"].clone();
        conf["name"] = conflist["name"].clone();
        conf
    };
    let result = cni_plugin(&node.0, "bridge", "ADD", &sandbox, &pod_netns, &bridge_conf);
    let portmap_conf = serde_json::json!({
        "cniVersion": conflist["cniVersion"],
        "name": conflist["name"],
        "type": "portmap",
        "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": result,
    });
    cni_plugin(
        &node.0,
        "portmap",
        "ADD",
        &sandbox,
        &pod_netns,
        &portmap_conf,
    );
    let results_file =
        Path::new("/var/lib/cni/results").join(format!("{}-{sandbox}-eth0", config.network_name()));
    std::fs::create_dir_all(results_file.parent().unwrap()).unwrap();
    std::fs::write(&results_file, result.to_string()).unwrap();
    let reservations = Path::new("/var/lib/cni/networks").join(config.network_name());
    assert!(reservations.is_dir(), "host-local reserved an address");
    let marker = format!("name: \\\"{}\\\"", config.network_name());
    let nat = || {
        stdout_of(
            "ip",
            &[
                "netns", "exec", &node.0, "iptables", "-w", "-t", "nat", "-S",
            ],
        )
    };
    assert!(nat().contains(&marker), "portmap rule present");
    stdout_of(
        "ip",
        &["-n", &node.0, "link", "show", "dev", &config.bridge],
    );

    // containerd crashes; its shims and containers live on.
    containerd.kill9();
    assert!(!running(pid as i32));
    assert!(running(app_pid), "containers outlive a containerd crash");
    assert!(
        !processes_with_arg(&socket.to_string_lossy()).is_empty(),
        "shims outlive it too"
    );

    drop(containerd);
    assert!(!running(app_pid), "the app container survived the teardown");
    assert!(!results_file.exists(), "CNI result left");
    assert!(!reservations.exists(), "host-local reservations left");
    let rules = nat();
    assert!(!rules.contains(&marker), "portmap rules left:\n{rules}");
    for hierarchy in cgroup_hierarchies() {
        assert!(
            !hierarchy.join(&pod_cgroup).exists(),
            "pod cgroup left in {}",
            hierarchy.display()
        );
    }
    assert_nothing_left(&config, pid);
    assert_no_fifos_of(&[&sandbox, &app]);
}

#[test]
fn blackhole_routes_are_idempotent_and_removable() {
    use cluster::netsafety::ensure_blackhole_routes;
    let (service, cluster) = ("10.96.0.0/12", "10.244.0.0/16");
    let first = ensure_blackhole_routes(service, cluster).expect("blackhole routes");
    let second = ensure_blackhole_routes(service, cluster).expect("again");
    let bridge = first.bridge().to_string();
    assert_eq!(second.bridge(), bridge);
    for cidr in [service, cluster] {
        let routes = stdout_of("ip", &["-o", "route", "show", cidr, "dev", &bridge]);
        assert_eq!(routes.lines().count(), 1, "one route for {cidr}: {routes}");
    }
    // Service and pod addresses resolve to a local bridge, never the default gateway.
    for address in ["10.96.0.1", "10.96.0.10", "10.244.7.9"] {
        let route = stdout_of("ip", &["route", "get", address]);
        assert!(
            !route.contains(" via "),
            "{address} would leave the machine: {route}"
        );
        assert!(route.contains(" dev mkbh-"), "{address}: {route}");
    }
    let link = stdout_of("ip", &["-d", "link", "show", "dev", &bridge]);
    assert!(link.contains("bridge") && link.contains(",UP"), "{link}");
    let ports = stdout_of("ip", &["link", "show", "master", &bridge]);
    assert!(ports.trim().is_empty(), "the bridge has no ports: {ports}");

    drop(second);
    assert!(
        run("ip", &["link", "show", "dev", &bridge])
            .status
            .success(),
        "still in use"
    );
    drop(first);
    assert!(
        !run("ip", &["link", "show", "dev", &bridge])
            .status
            .success(),
        "bridge removed"
    );
    let routes = stdout_of("ip", &["-o", "route", "show", service]);
    assert!(!routes.contains(&bridge), "{routes}");
}

#[test]
fn cni_conflist_names_the_node_network() {
    let conf: Value = serde_json::from_str(&cni_conflist("mkbrtest", "10.244.9.0/24")).unwrap();
    assert_eq!(conf["plugins"][0]["bridge"], "mkbrtest");
    assert_eq!(conf["plugins"][1]["capabilities"]["portMappings"], true);
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
