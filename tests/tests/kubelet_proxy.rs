//! pods/log and pods/exec through the apiserver to the pod's kubelet. A
//! stand-in kubelet (one HTTP endpoint on loopback) answers, so that this
//! checks the apiserver's part alone: finding the node's address and port,
//! passing the options through, streaming the answer back, joining upgraded
//! connections. The real kubelet's own tests cover the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use e2e_tests::apiserver::TestCluster;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

fn serve_one(mut conn: std::net::TcpStream, tx: mpsc::Sender<String>, body: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Skip the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
    }
    let _ = tx.send(line.trim().to_string());
    if line.contains("/exec/") {
        // Switch protocols, then echo: the apiserver must join the
        // two connections.
        let _ = write!(
            conn,
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
        );
        let mut buf = [0u8; 256];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        return;
    }
    let (status, text) = if line.contains("/missing?") {
        ("404 Not Found", "container \"missing\" not found")
    } else {
        ("200 OK", body)
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// Answers each request with `body` and reports the request line.
fn stand_in_kubelet(body: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            // One thread per connection: an upgraded one stays open.
            std::thread::spawn(move || serve_one(conn, tx, body));
        }
    });
    (port, rx)
}

#[tokio::test]
async fn kubectl_logs_reach_the_kubelet_of_the_pods_node() {
    let c = TestCluster::start_embedded().unwrap();
    let client = c.apiserver.client().await.unwrap();
    let (port, requests) = stand_in_kubelet("line one\nline two\n");

    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        }
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"nodeName": "n1", "containers": [{"name": "nginx", "image": "nginx"}]}
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod).await.unwrap();

    for minor in [27, 33] {
        let out = c.kubectl(minor, &["logs", "web", "--tail=2", "--timestamps"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "line one\nline two\n");
        let line = requests.recv().unwrap();
        assert!(
            line.starts_with("GET /containerLogs/default/web/nginx?"),
            "{line}"
        );
        assert!(
            line.contains("tailLines=2") && line.contains("timestamps=true"),
            "{line}"
        );
    }

    // The kubelet's error comes back as the apiserver's answer.
    let out = c.kubectl(33, &["logs", "web", "-c", "missing"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container missing is not valid for pod web"),
        "{err}"
    );

    // A pod on no node has no logs yet.
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "pending"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pending).await.unwrap();
    let out = c.kubectl(33, &["logs", "pending"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not have a host assigned"), "{err}");

    // An upgraded exec connection is joined to the kubelet's.
    let host = c.apiserver.url.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /api/v1/namespaces/default/pods/web/exec?command=cat&command=-n&container=nginx&stdin=true&stdout=true&tty=false HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let mut protocol = String::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h == "\r\n" {
            break;
        }
        if h.to_ascii_lowercase()
            .starts_with("x-stream-protocol-version")
        {
            protocol = h;
        }
    }
    assert!(protocol.contains("v4.channel.k8s.io"), "{protocol:?}");
    let line = requests.recv().unwrap();
    assert!(
        line.starts_with("POST /exec/default/web/nginx?command=cat&command=-n&input=1&output=1 "),
        "{line}"
    );
    conn.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    reader.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");
    drop(reader);
    drop(conn);

    // Not an upgrade: refused clearly.
    let out = c.kubectl(
        33,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/web/exec?command=ls",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Upgrade request required"));

    // kube-rs reads the same stream.
    let text = pods
        .logs("web", &kube::api::LogParams::default())
        .await
        .unwrap();
    assert_eq!(text, "line one\nline two\n");
}
