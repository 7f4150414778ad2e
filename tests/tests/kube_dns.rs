//! kube-dns against a real etcd + kube-apiserver, asked over UDP and TCP on
//! loopback with hickory's client: Service and endpoint names, SRV, PTR,
//! ExternalName, negative answers, changes followed from the watch,
//! forwarding (to a second kube-dns on loopback), health, and bad input.
//! No endpoints controller runs: the tests write Endpoints themselves.
//!
//! Build first: `cargo build -p apiserver -p dns --bins`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use e2e_tests::apiserver::{http_get_ok, TestCluster};
use e2e_tests::component::ComponentProcess;
use futures::StreamExt;
use hickory_net::proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_net::proto::rr::{Name, RData, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
}

struct Env {
    cluster: TestCluster,
    client: Client,
    logs: TempDir,
}

/// A running kube-dns and where it answers.
struct Dns {
    process: ComponentProcess,
    dns: SocketAddr,
    health: SocketAddr,
}

/// A loopback port free for both UDP and TCP (DNS listens on both).
fn free_dns_port() -> SocketAddr {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let addr = udp.local_addr().expect("local addr");
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn free_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
}

impl Env {
    async fn start() -> Env {
        let cluster = TestCluster::start().expect("etcd + kube-apiserver");
        let client = cluster.apiserver.client().await.expect("client");
        let logs = tempfile::Builder::new()
            .prefix("kube-dns-test-")
            .tempdir()
            .expect("log dir");
        Env {
            cluster,
            client,
            logs,
        }
    }

    /// kube-dns for `domain`, with `extra` flags; waits for /readyz unless
    /// `wait_ready` is false.
    fn kube_dns(&self, name: &str, domain: &str, extra: &[String], wait_ready: bool) -> Dns {
        let dns = free_dns_port();
        let health = free_tcp_port();
        let mut args = vec![
            format!(
                "--kubeconfig={}",
                self.cluster.apiserver.kubeconfig().display()
            ),
            format!("--dns-bind-address={dns}"),
            format!("--healthz-bind-address={health}"),
            format!("--cluster-domain={domain}"),
        ];
        args.extend(extra.iter().cloned());
        let mut process = ComponentProcess::start("kube-dns", name, self.logs.path(), &args)
            .expect("start kube-dns");
        let base = format!("http://{health}");
        let deadline = Instant::now() + WAIT;
        let path = if wait_ready { "/readyz" } else { "/healthz" };
        while !http_get_ok(&base, path) {
            assert!(process.alive(), "kube-dns exited:\n{}", process.log());
            assert!(
                Instant::now() < deadline,
                "kube-dns {path} never answered 200:\n{}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Dns {
            process,
            dns,
            health,
        }
    }

    async fn create_service(&self, ns: &str, body: Value) {
        let svc: Service = serde_json::from_value(body).expect("a Service");
        Api::<Service>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &svc)
            .await
            .expect("create Service");
    }

    async fn create_endpoints(&self, ns: &str, body: Value) {
        let ep: Endpoints = serde_json::from_value(body).expect("an Endpoints");
        Api::<Endpoints>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &ep)
            .await
            .expect("create Endpoints");
    }

    async fn namespace(&self, name: &str) {
        let ns = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }
}

/// One question to `server`; the whole response (any response code).
async fn ask_with(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    edns: bool,
) -> Message {
    let query = Query::query(Name::from_ascii(name).expect("name"), qtype);
    let mut options = DnsRequestOptions::default();
    options.use_edns = edns;
    options.recursion_desired = true;
    let request = DnsRequest::from_query(query, options);
    // The provider owns the tasks it spawns (the exchange's background):
    // they stop when the last clone of it is dropped, so keep one.
    let provider = TokioRuntimeProvider::default();
    let exchange = match transport {
        Transport::Udp => UdpClientStream::builder(server, provider.clone())
            .with_timeout(Some(ASK_TIMEOUT))
            .exchange(),
        Transport::Tcp => {
            TcpClientStream::exchange(server, None, ASK_TIMEOUT, None, provider.clone())
                .await
                .expect("connect over TCP")
        }
    };
    let response = exchange
        .send(request)
        .next()
        .await
        .expect("a response")
        .unwrap_or_else(|e| panic!("{name} {qtype} over {transport:?}: {e}"));
    drop(provider);
    response.into_message()
}

async fn ask(server: SocketAddr, transport: Transport, name: &str, qtype: RecordType) -> Message {
    ask_with(server, transport, name, qtype, true).await
}

/// The answers' data as text, sorted (`10.96.0.50`, `0 100 80 target.`).
fn answers(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    out.sort();
    out
}

/// Asks until `check` holds for the response (the watch delivers changes
/// shortly after the write).
async fn eventually(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    what: &str,
    check: impl Fn(&Message) -> bool,
) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = ask(server, Transport::Udp, name, qtype).await;
        if check(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {qtype}: never {what}; last answer {:?} {:?}",
            m.metadata.response_code,
            answers(&m)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_soa(m: &Message, zone: &str) -> bool {
    m.authorities.len() == 1
        && matches!(m.authorities[0].data, RData::SOA(_))
        && m.authorities[0].name.to_ascii() == zone
}

/// The Services and Endpoints most tests ask about.
async fn fixtures(env: &Env) {
    env.namespace("prod").await;
    env.create_service(
        "default",
        json!({"metadata": {"name": "web"},
            "spec": {"clusterIP": "10.96.0.50",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                          {"name": "metrics", "port": 9100, "protocol": "TCP"}]}}),
    )
    .await;
    env.create_service(
        "prod",
        json!({"metadata": {"name": "db"},
            "spec": {"clusterIP": "None",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}),
    )
    .await;
    env.create_endpoints(
        "prod",
        json!({"metadata": {"name": "db"},
            "subsets": [{
                "addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.6"}],
                "notReadyAddresses": [{"ip": "10.244.3.7", "hostname": "db-2"}],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]}),
    )
    .await;
    env.create_service(
        "default",
        json!({"metadata": {"name": "search"},
            "spec": {"type": "ExternalName", "externalName": "search.example.test"}}),
    )
    .await;
}

#[tokio::test]
async fn answers_cluster_names_over_udp_and_tcp() {
    let env = Env::start().await;
    fixtures(&env).await;
    let dns = env.kube_dns("kube-dns", "cluster.local", &[], true);
    let s = dns.dns;
    // The reflectors may have listed before the last create arrived.
    eventually(
        s,
        "search.default.svc.cluster.local.",
        RecordType::A,
        "answered",
        |m| !m.answers.is_empty(),
    )
    .await;

    for t in [Transport::Udp, Transport::Tcp] {
        // ClusterIP.
        let m = ask(s, t, "web.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert!(m.metadata.authoritative);
        assert_eq!(answers(&m), ["10.96.0.50"], "{t:?}");
        assert!(m.answers.iter().all(|r| r.ttl == 30));
        // Case does not matter; the asker's spelling comes back.
        let m = ask(s, t, "WEB.Default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(answers(&m), ["10.96.0.50"]);

        // IPv4-only name asked for AAAA: NOERROR, nothing, SOA for caching.
        let m = ask(s, t, "web.default.svc.cluster.local.", RecordType::AAAA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty(), "{:?}", answers(&m));
        assert!(is_soa(&m, "cluster.local."));

        // Headless: the ready endpoints only; named endpoints by hostname,
        // the others by their dashed IP.
        let m = ask(s, t, "db.prod.svc.cluster.local.", RecordType::A).await;
        assert_eq!(answers(&m), ["10.244.1.5", "10.244.2.6"], "{t:?}");
        let m = ask(s, t, "db-0.db.prod.svc.cluster.local.", RecordType::A).await;
        assert_eq!(answers(&m), ["10.244.1.5"]);
        let m = ask(s, t, "10-244-2-6.db.prod.svc.cluster.local.", RecordType::A).await;
        assert_eq!(answers(&m), ["10.244.2.6"]);
        let m = ask(s, t, "db-2.db.prod.svc.cluster.local.", RecordType::A).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "not ready"
        );

        // SRV for named ports.
        let m = ask(
            s,
            t,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&m), ["0 100 80 web.default.svc.cluster.local."]);
        assert!(
            m.additionals
                .iter()
                .any(|r| r.data.to_string() == "10.96.0.50"),
            "the target's address rides along"
        );
        let m = ask(s, t, "_pg._tcp.db.prod.svc.cluster.local.", RecordType::SRV).await;
        assert_eq!(
            answers(&m),
            [
                "0 50 5432 10-244-2-6.db.prod.svc.cluster.local.",
                "0 50 5432 db-0.db.prod.svc.cluster.local.",
            ]
        );
        let m = ask(
            s,
            t,
            "_http._udp.web.default.svc.cluster.local.",
            RecordType::SRV,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

        // PTR for a ClusterIP and for a headless endpoint.
        let m = ask(s, t, "50.0.96.10.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(answers(&m), ["web.default.svc.cluster.local."], "{t:?}");
        let m = ask(s, t, "5.1.244.10.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(answers(&m), ["db-0.db.prod.svc.cluster.local."]);

        // ExternalName: a CNAME (its target is outside; no upstream here).
        let m = ask(s, t, "search.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&m), ["search.example.test."]);
        assert!(matches!(m.answers[0].data, RData::CNAME(_)));

        // Missing names in the domain: NXDOMAIN with the zone's SOA.
        for missing in [
            "nope.default.svc.cluster.local.",
            "web.nons.svc.cluster.local.",
            "a.b.c.d.e.f.cluster.local.",
        ] {
            let m = ask(s, t, missing, RecordType::A).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NXDomain,
                "{missing}"
            );
            assert!(m.metadata.authoritative);
            assert!(
                is_soa(&m, "cluster.local."),
                "{missing}: {:?}",
                m.authorities
            );
        }

        // Outside the domain, no upstream: REFUSED.
        let m = ask(s, t, "example.com.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        let m = ask(s, t, "1.1.168.192.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }
}

/// busybox's nslookup (a stub resolver as in the pods' images) against
/// kube-dns on its port; None when busybox is not installed.
fn busybox_nslookup(server: SocketAddr, args: &[&str]) -> Option<(bool, String)> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())?;
    let out = std::process::Command::new("timeout")
        .arg("10")
        .arg(busybox)
        .arg("nslookup")
        .args(args)
        .arg(server.to_string())
        .output()
        .expect("run busybox nslookup");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[tokio::test]
async fn busybox_nslookup_resolves_through_kube_dns() {
    let env = Env::start().await;
    fixtures(&env).await;
    let dns = env.kube_dns("kube-dns", "cluster.local", &[], true);
    eventually(
        dns.dns,
        "db.prod.svc.cluster.local.",
        RecordType::A,
        "answered",
        |m| !m.answers.is_empty(),
    )
    .await;
    let Some((ok, out)) = busybox_nslookup(dns.dns, &["web.default.svc.cluster.local"]) else {
        eprintln!("busybox not installed: skipped");
        return;
    };
    assert!(ok, "{out}");
    assert!(out.contains("10.96.0.50"), "{out}");
    let (ok, out) = busybox_nslookup(
        dns.dns,
        &["-type=srv", "_pg._tcp.db.prod.svc.cluster.local"],
    )
    .expect("busybox");
    assert!(ok, "{out}");
    assert!(out.contains("db-0.db.prod.svc.cluster.local"), "{out}");
    let (ok, out) =
        busybox_nslookup(dns.dns, &["nope.default.svc.cluster.local"]).expect("busybox");
    assert!(!ok, "{out}");
    assert!(out.contains("NXDOMAIN"), "{out}");
}

#[tokio::test]
async fn truncates_big_udp_answers() {
    let env = Env::start().await;
    env.create_service(
        "default",
        json!({"metadata": {"name": "many"},
            "spec": {"clusterIP": "None", "ports": [{"name": "p", "port": 1}]}}),
    )
    .await;
    let addresses: Vec<Value> = (1..=100)
        .map(|i| json!({"ip": format!("10.244.9.{i}")}))
        .collect();
    env.create_endpoints(
        "default",
        json!({"metadata": {"name": "many"},
            "subsets": [{"addresses": addresses, "ports": [{"name": "p", "port": 1}]}]}),
    )
    .await;
    let dns = env.kube_dns("kube-dns", "cluster.local", &[], true);
    let name = "many.default.svc.cluster.local.";
    eventually(dns.dns, name, RecordType::A, "answered", |m| {
        !m.answers.is_empty() || m.metadata.truncation
    })
    .await;
    // 100 A records do not fit in 512 bytes: TC set over UDP without EDNS...
    let m = ask_with(dns.dns, Transport::Udp, name, RecordType::A, false).await;
    assert!(m.metadata.truncation, "{} answers", m.answers.len());
    assert!(m.answers.len() < 100);
    // ... and all of them over TCP.
    let m = ask_with(dns.dns, Transport::Tcp, name, RecordType::A, false).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
}

#[tokio::test]
async fn follows_changes() {
    let env = Env::start().await;
    let dns = env.kube_dns("kube-dns", "cluster.local", &["--ttl=7".to_string()], true);
    let name = "late.default.svc.cluster.local.";
    let m = ask(dns.dns, Transport::Udp, name, RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    env.create_service(
        "default",
        json!({"metadata": {"name": "late"},
            "spec": {"clusterIP": "10.96.0.77", "ports": [{"port": 80}]}}),
    )
    .await;
    let m = eventually(dns.dns, name, RecordType::A, "answered", |m| {
        answers(m) == ["10.96.0.77"]
    })
    .await;
    assert!(m.answers.iter().all(|r| r.ttl == 7), "--ttl");
    let m = ask(
        dns.dns,
        Transport::Tcp,
        "77.0.96.10.in-addr.arpa.",
        RecordType::PTR,
    )
    .await;
    assert_eq!(answers(&m), ["late.default.svc.cluster.local."]);

    // A headless Service gains a ready endpoint.
    env.create_service(
        "default",
        json!({"metadata": {"name": "hl"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    )
    .await;
    let hl = "hl.default.svc.cluster.local.";
    env.create_endpoints(
        "default",
        json!({"metadata": {"name": "hl"},
            "subsets": [{"addresses": [{"ip": "10.244.5.5"}], "ports": [{"port": 80}]}]}),
    )
    .await;
    eventually(dns.dns, hl, RecordType::A, "answered", |m| {
        answers(m) == ["10.244.5.5"]
    })
    .await;

    Api::<Service>::namespaced(env.client.clone(), "default")
        .delete("late", &DeleteParams::default())
        .await
        .expect("delete Service");
    let m = eventually(dns.dns, name, RecordType::A, "NXDOMAIN", |m| {
        m.metadata.response_code == ResponseCode::NXDomain
    })
    .await;
    assert!(is_soa(&m, "cluster.local."));

    let metrics = http_get(dns.health, "/metrics");
    assert!(
        metrics.contains("kubedns_dns_requests_total{type=\"A\",rcode=\"NXDOMAIN\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("kubedns_services "), "{metrics}");
}

#[tokio::test]
async fn forwards_outside_names_to_upstream() {
    let env = Env::start().await;
    env.create_service(
        "default",
        json!({"metadata": {"name": "web"},
            "spec": {"clusterIP": "10.96.0.60", "ports": [{"port": 80}]}}),
    )
    .await;
    env.create_service(
        "default",
        json!({"metadata": {"name": "away"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.other.test"}}),
    )
    .await;
    // The upstream: a second kube-dns serving another domain on loopback.
    let upstream = env.kube_dns("upstream", "other.test", &[], true);
    let dns = env.kube_dns(
        "kube-dns",
        "cluster.local",
        &[format!("--upstream-nameservers={}", upstream.dns)],
        true,
    );
    eventually(
        dns.dns,
        "away.default.svc.cluster.local.",
        RecordType::A,
        "answered",
        |m| !m.answers.is_empty(),
    )
    .await;
    for t in [Transport::Udp, Transport::Tcp] {
        let m = ask(dns.dns, t, "web.default.svc.other.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert_eq!(answers(&m), ["10.96.0.60"]);
        assert!(m.metadata.recursion_available);
        // The upstream's NXDOMAIN comes back as it is.
        let m = ask(dns.dns, t, "nope.default.svc.other.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // An ExternalName leading out of the domain is resolved upstream.
        let m = ask(dns.dns, t, "away.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(
            answers(&m),
            ["10.96.0.60", "web.default.svc.other.test."],
            "{t:?}"
        );
    }
}

/// A raw HTTP/1.0 GET on loopback: status line and body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).expect("connect health");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The status code of an HTTP response.
fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn health_readiness_and_bad_input() {
    let env = Env::start().await;
    // Not ready while the API cannot be listed (a closed port as --master).
    let closed = free_tcp_port();
    let mut cut_off = env.kube_dns(
        "cut-off",
        "cluster.local",
        &[format!("--master=http://{closed}")],
        false,
    );
    assert_eq!(status(&http_get(cut_off.health, "/healthz")), 200);
    let readyz = http_get(cut_off.health, "/readyz");
    assert_eq!(status(&readyz), 503, "{readyz}");
    // Names in the domain cannot be answered yet: SERVFAIL, not NXDOMAIN.
    let m = ask(
        cut_off.dns,
        Transport::Udp,
        "x.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    cut_off.process.terminate();

    let mut dns = env.kube_dns("kube-dns", "cluster.local", &[], true);
    assert_eq!(status(&http_get(dns.health, "/readyz")), 200);
    assert_eq!(status(&http_get(dns.health, "/healthz")), 200);

    // Garbage over UDP: empty, short, random, a header claiming questions
    // that are not there, a pointer loop.
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x12],
        vec![0xff; 11],
        (0..600u32).map(|i| (i * 7919 % 251) as u8).collect(),
        vec![0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0],
        vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
        vec![0, 3, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'e', b'b'],
    ];
    for packet in &garbage {
        udp.send_to(packet, dns.dns).expect("send garbage");
    }
    // Truncated TCP messages: a length prefix promising more than comes,
    // then the connection closed; and half a length prefix.
    for bytes in [
        &[0u8, 200, 0, 9, 1, 0][..],
        &[0u8][..],
        &[0, 12, 0xff, 0xff][..],
    ] {
        let mut tcp = TcpStream::connect(dns.dns).expect("connect");
        tcp.write_all(bytes).expect("write");
        drop(tcp);
    }
    // A TCP connection that stalls mid-message does not block others.
    let mut stalled = TcpStream::connect(dns.dns).expect("connect");
    stalled.write_all(&[0, 40, 0, 1]).expect("write");

    for t in [Transport::Udp, Transport::Tcp] {
        let m = ask(
            dns.dns,
            t,
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert_eq!(answers(&m).len(), 1, "the kubernetes Service's ClusterIP");
        assert!(answers(&m)[0].parse::<IpAddr>().is_ok());
    }
    drop(stalled);
    assert!(dns.process.alive(), "{}", dns.process.log());
    assert_eq!(status(&http_get(dns.health, "/healthz")), 200);
}
