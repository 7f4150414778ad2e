//! `cluster up` from nothing, the seed's example on it, `cluster down`
//! leaving nothing. The whole cluster runs inside a network namespace this
//! test makes (ports, routes and bridges stay in there; the mount namespace
//! is the host's, as for a real node), so it never collides with the host.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e_tests::lab::{text, LabCluster};

#[test]
fn cluster_up_runs_the_example_and_down_leaves_nothing() {
    let mut lab = LabCluster::new(1);
    let data = lab.data.clone();
    let data_arg = data.to_str().unwrap().to_string();

    let up = lab.up(&[]);
    assert!(up.status.success(), "cluster up: {}", text(&up));
    assert!(text(&up).contains("Cluster up in"), "{}", text(&up));

    // Idempotent.
    let again = lab.up(&[]);
    assert!(again.status.success());
    assert!(text(&again).contains("already running"), "{}", text(&again));

    // Status names what runs and when the certificates end.
    let status = text(&lab.cluster(&["status"]));
    assert!(status.contains("kube-apiserver"), "{status}");
    assert!(status.contains("certificates valid until"), "{status}");
    assert!(
        status.contains("(364 days") || status.contains("(365 days"),
        "{status}"
    );

    let k = |args: &[&str]| lab.kubectl(args);
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
    let ips = nginx_pods(&lab, "{.items[*].status.podIP}");
    let ips: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    for ip in &ips {
        assert!(ip.starts_with("10.244."), "{ip}");
        let page = curl(&lab, ip);
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
    let victim = nginx_pods(&lab, "{.items[0].metadata.name}");
    let out = k(&["delete", "pod", victim.trim()]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let names = nginx_pods(&lab, "{.items[*].status.phase}");
        let running = names.split_whitespace().filter(|p| *p == "Running").count();
        if running == 2 && !names.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "RC did not heal: {names}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Through the Service's ClusterIP (kube-proxy on the node). The pods just
    // changed: kube-proxy follows within its minimum sync period.
    let svc_ip = text(&k(&[
        "get",
        "svc",
        "nginx",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = curl(&lab, svc_ip.trim());
        if text(&page).contains("Welcome to nginx!") {
            break;
        }
        assert!(Instant::now() < deadline, "{svc_ip}: {}", text(&page));
        std::thread::sleep(Duration::from_millis(300));
    }

    // Each component has its own identity, limited by RBAC and the Node
    // authorizer: the kubelet's may not create cluster roles or delete nodes.
    let node = text(&k(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]));
    let kubelet_conf = data.join(format!("kubeconfigs/kubelet-{}.conf", node.trim()));
    let as_kubelet = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubelet_conf.to_str().unwrap()];
        all.extend_from_slice(args);
        lab.real_kubectl(33, &all)
    };
    let out = as_kubelet(&["create", "clusterrole", "grab", "--verb=*", "--resource=*"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("Forbidden"), "{}", text(&out));
    let out = as_kubelet(&["delete", "namespace", "default"]);
    assert!(text(&out).contains("Forbidden"), "{}", text(&out));
    let out = as_kubelet(&["get", "node", node.trim()]);
    assert!(out.status.success(), "{}", text(&out));

    // The kubelet's API: HTTPS with a certificate from the cluster CA; the
    // apiserver (pods' logs) gets through, nobody without a certificate
    // does, and a certificate's user needs nodes/proxy (SubjectAccessReview).
    let out = k(&[
        "logs",
        nginx_pods(&lab, "{.items[0].metadata.name}").trim(),
        "--tail=5",
    ]);
    assert!(out.status.success(), "kubectl logs: {}", text(&out));
    let node_ip = text(&k(&[
        "get",
        "node",
        node.trim(),
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]));
    let kubelet_pods = format!("https://{}:10250/pods", node_ip.trim());
    let pki = data.join("pki");
    let pki_file = |name: &str| pki.join(name).to_str().unwrap().to_string();
    let kubelet_curl = |who: Option<&str>| {
        let mut args = vec![
            "--noproxy".to_string(),
            "*".into(),
            "-s".into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
            "--max-time".into(),
            "5".into(),
            "--cacert".into(),
            pki_file("ca.crt"),
        ];
        if let Some(who) = who {
            args.extend([
                "--cert".into(),
                pki_file(&format!("{who}.crt")),
                "--key".into(),
                pki_file(&format!("{who}.key")),
            ]);
        }
        args.push(kubelet_pods.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        text(&lab.exec(Path::new("/usr/bin/curl"), &args))
    };
    assert_eq!(kubelet_curl(None), "401");
    assert_eq!(kubelet_curl(Some("kube-proxy")), "403");
    assert_eq!(kubelet_curl(Some("apiserver-kubelet-client")), "200");
    assert_eq!(kubelet_curl(Some("admin")), "200");

    // A pod's service account token, read through exec (apiserver to
    // kubelet over TLS), authenticates it to the apiserver as its account.
    let real = |args: &[&str]| lab.real_kubectl(33, args);
    let out = real(&[
        "run",
        "token-reader",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = real(&[
        "wait",
        "--for=condition=Ready",
        "pod/token-reader",
        "--timeout=60s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = real(&[
        "exec",
        "token-reader",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    ]);
    assert!(out.status.success(), "kubectl exec: {}", text(&out));
    let token = String::from_utf8(out.stdout).unwrap();
    let who_am_i = |token: &str| {
        let review = "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"SelfSubjectReview\"}";
        let auth = format!("Authorization: Bearer {token}");
        let ca = pki_file("ca.crt");
        let out = lab.exec(
            Path::new("/usr/bin/curl"),
            &[
                "--noproxy",
                "*",
                "-s",
                "--max-time",
                "5",
                "--cacert",
                &ca,
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "-d",
                review,
                "https://10.250.0.1:6443/apis/authentication.k8s.io/v1/selfsubjectreviews",
            ],
        );
        text(&out)
    };
    let me = who_am_i(token.trim());
    assert!(
        me.contains("\"username\":\"system:serviceaccount:default:default\""),
        "{me}"
    );
    assert!(who_am_i("not-a-token").contains("Unauthorized"));

    // Rotation: every certificate issued again, the components restarted
    // with theirs; the pods keep running and the cluster keeps working.
    let old_admin = std::fs::read(data.join("pki/admin.crt")).unwrap();
    let old_kubelet = std::fs::read(&kubelet_conf).unwrap();
    let out = lab.cluster(&["certs", "rotate"]);
    assert!(out.status.success(), "certs rotate: {}", text(&out));
    assert_ne!(
        std::fs::read(data.join("pki/admin.crt")).unwrap(),
        old_admin
    );
    assert_ne!(std::fs::read(&kubelet_conf).unwrap(), old_kubelet);
    let out = k(&["scale", "rc", "nginx", "--replicas=3"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let phases = nginx_pods(&lab, "{.items[*].status.phase}");
        if phases
            .split_whitespace()
            .filter(|p| *p == "Running")
            .count()
            == 3
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no third pod after rotation: {phases}\n{}\n{}\n{}",
            text(&k(&["get", "pods", "-o", "wide"])),
            text(&k(&["get", "events"])),
            log_tails(&lab)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The service account key stays: the pod's token still works.
    let me = who_am_i(token.trim());
    assert!(me.contains("system:serviceaccount:default:default"), "{me}");
    let ips = nginx_pods(&lab, "{.items[*].status.podIP}");
    for ip in ips.split_whitespace() {
        let page = curl(&lab, ip);
        assert!(
            text(&page).contains("Welcome to nginx!"),
            "{ip} after rotation"
        );
    }

    let down = lab.down();
    assert!(down.status.success(), "cluster down: {}", text(&down));
    assert!(!data.exists(), "data directory kept after --purge");
    // Nothing left: no processes of ours, no mounts under the data dir, no
    // cgroups, no bridges in the namespace.
    let procs = text(&lab.exec(Path::new("/bin/ps"), &["-eo", "args"]));
    assert!(
        !procs.lines().any(|l| l.contains(&data_arg)),
        "processes left:\n{procs}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&data_arg), "mounts left");
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !h.path().join("mini-kubernetes").exists(),
            "cgroup left in {}",
            h.path().display()
        );
    }
    let links = text(&lab.exec(Path::new("/sbin/ip"), &["-o", "link"]));
    assert_eq!(links.lines().count(), 1, "links left:\n{links}");
}

fn curl(lab: &LabCluster, ip: &str) -> std::process::Output {
    lab.exec(
        Path::new("/usr/bin/curl"),
        &[
            "--noproxy",
            "*",
            "-s",
            "--max-time",
            "5",
            &format!("http://{ip}/"),
        ],
    )
}

/// A JSONPath over the example's pods (`app=nginx`).
fn nginx_pods(lab: &LabCluster, jsonpath: &str) -> String {
    text(&lab.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        &format!("jsonpath={jsonpath}"),
    ]))
}

/// `cluster up` where a port it needs is taken: it says which and what to
/// do, exits non-zero, and starts nothing (no half cluster).
#[test]
fn cluster_up_refuses_a_taken_port_and_starts_nothing() {
    let mut lab = LabCluster::new(1);
    let _holder = listen_in_netns(&lab.netns, 6443);
    let up = lab.up(&[]);
    let out = text(&up);
    assert!(!up.status.success(), "{out}");
    assert!(
        out.contains("port 6443 (for kube-apiserver) is taken"),
        "{out}"
    );
    assert!(out.contains("ss -ltnp"), "{out}");
    // No process of ours runs with the lab's data directory.
    let data = lab.data.to_string_lossy().to_string();
    let ours: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&data))
        .collect();
    assert!(ours.is_empty(), "started despite the refusal: {ours:?}");
    let status = text(&lab.cluster(&["status"]));
    assert!(status.contains("No cluster runs from"), "{status}");
}

/// The last lines of every component's log (for a failure's message).
fn log_tails(lab: &LabCluster) -> String {
    let mut out = String::new();
    let entries = std::fs::read_dir(lab.data.join("logs"))
        .into_iter()
        .flatten();
    for e in entries.flatten() {
        let log = std::fs::read_to_string(e.path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        out.push_str(&format!(
            "--- {}\n{tail}\n",
            e.file_name().to_string_lossy()
        ));
    }
    out
}

/// A listener on `port` inside the network namespace `netns` (made on a
/// thread that joins the namespace; the socket stays in it).
fn listen_in_netns(netns: &str, port: u16) -> std::net::TcpListener {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("the lab's namespace");
        // SAFETY: setns moves only this short-lived thread into a namespace
        // whose file descriptor is open for the call.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        std::net::TcpListener::bind(("0.0.0.0", port)).expect("bind in the lab's namespace")
    })
    .join()
    .expect("listener thread")
}
