//! `cluster up` from nothing, the seed's example on it, `cluster down`
//! leaving nothing. The whole cluster runs inside a network namespace this
//! test makes (ports, routes and bridges stay in there; the mount namespace
//! is the host's, as for a real node), so it never collides with the host.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use e2e_tests::apiserver::bin_dir;

struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!("mkup{}", std::process::id());
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Self(name)
    }

    /// `program args` inside the namespace (network only).
    fn exec(&self, program: &Path, args: &[&str], kubeconfig: Option<&Path>) -> Output {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.0))
            .arg("--")
            .arg(program)
            .args(args);
        if let Some(k) = kubeconfig {
            c.env("KUBECONFIG", k);
        }
        c.output().expect("nsenter")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cluster_up_runs_the_example_and_down_leaves_nothing() {
    let ns = Netns::new();
    let dir = tempfile::Builder::new().prefix("mk-up-").tempdir().unwrap();
    let data = dir.path().join("d");
    let data_arg = data.to_str().unwrap();
    let bin = bin_dir();
    let cluster = bin.join("cluster");
    let kubectl = bin.join("kubectl");
    let kubeconfig = data.join("kubeconfig");

    let up = ns.exec(&cluster, &["up", "--data-dir", data_arg], None);
    assert!(up.status.success(), "cluster up: {}", text(&up));
    assert!(text(&up).contains("Cluster up in"), "{}", text(&up));

    // Idempotent.
    let again = ns.exec(&cluster, &["up", "--data-dir", data_arg], None);
    assert!(again.status.success());
    assert!(text(&again).contains("already running"), "{}", text(&again));

    let k = |args: &[&str]| ns.exec(&kubectl, args, Some(&kubeconfig));
    let out = k(&[
        "create",
        "-f",
        "../manifests/nginx-rc.yaml",
        "-f",
        "../manifests/nginx-svc.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = k(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=nginx",
        "--timeout=120s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let ips = text(&k(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]));
    let ips: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    for ip in &ips {
        assert!(ip.starts_with("10.244."), "{ip}");
        let page = ns.exec(
            Path::new("/usr/bin/curl"),
            &[
                "--noproxy",
                "*",
                "-s",
                "--max-time",
                "5",
                &format!("http://{ip}/"),
            ],
            None,
        );
        assert!(
            text(&page).contains("Welcome to nginx!"),
            "{ip}: {}",
            text(&page)
        );
    }
    // Endpoints follow the pods.
    let eps = text(&k(&[
        "get",
        "endpoints",
        "nginx",
        "-o",
        "jsonpath={.subsets[0].addresses[*].ip}",
    ]));
    for ip in &ips {
        assert!(eps.contains(ip), "{eps}");
    }

    // A deleted pod comes back.
    let victim = text(&k(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]));
    let out = k(&["delete", "pod", victim.trim()]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = text(&k(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]));
        let running = names.split_whitespace().filter(|p| *p == "Running").count();
        if running == 2 && !names.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "RC did not heal: {names}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let down = ns.exec(&cluster, &["down", "--data-dir", data_arg, "--purge"], None);
    assert!(down.status.success(), "cluster down: {}", text(&down));
    assert!(!data.exists(), "data directory kept after --purge");
    // Nothing left: no processes of ours, no mounts under the data dir, no
    // cgroups, no bridges in the namespace.
    let procs = run("ps", &["-eo", "args"]);
    assert!(
        !procs.lines().any(|l| l.contains(data_arg)),
        "processes left:\n{procs}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(data_arg), "mounts left");
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !h.path().join("mini-kubernetes").exists(),
            "cgroup left in {}",
            h.path().display()
        );
    }
    let links = run("ip", &["-n", &ns.0, "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "links left:\n{links}");
}
