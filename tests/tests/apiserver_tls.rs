//! The apiserver's secure port: the real kubectl over TLS with verification
//! on (a CA of the test's own, and the self-signed certificate the apiserver
//! makes in --cert-dir), a wrong CA refused, bad input on the TLS listener
//! survived, and the plain port kept to loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use component_base::pki::{self, Ca};
use e2e_tests::apiserver::{bin_dir, kubectl_path, ApiServerProcess};
use e2e_tests::etcd::free_loopback_addr;
use e2e_tests::secure::{text, write_kubeconfig};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A kubeconfig trusting `ca_pem`, with an admin client certificate signed by
/// `client_ca` (kubectl asks for a password when a user has no credentials).
fn kubeconfig(dir: &Path, name: &str, server: &str, ca_pem: &str, client_ca: &Ca) -> PathBuf {
    let admin = client_ca
        .issue_client("admin", &["system:masters"], YEAR)
        .unwrap();
    let path = dir.join(name);
    write_kubeconfig(&path, server, ca_pem, &admin).unwrap();
    path
}

fn kubectl(minor: u32, kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path(minor))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .expect("kubectl")
}

#[test]
fn real_kubectl_verifies_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("test-ca", YEAR).unwrap();
    let serving = ca
        .issue_serving(
            "kube-apiserver",
            &["localhost"],
            &["127.0.0.1".parse().unwrap()],
            YEAR,
        )
        .unwrap();
    let (cert, key) = serving.write(dir.path(), "apiserver").unwrap();
    ca.cert_key.write(dir.path(), "ca").unwrap();
    let ca_file = dir.path().join("ca.crt");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "t0ken-of-bob,bob,1001,\"dev,ops\"\n").unwrap();
    let secure = free_loopback_addr().unwrap();
    let server = ApiServerProcess::start_embedded(&[
        &format!("--secure-port={}", secure.port()),
        &format!("--tls-cert-file={}", cert.display()),
        &format!("--tls-private-key-file={}", key.display()),
        &format!("--client-ca-file={}", ca_file.display()),
        &format!("--token-auth-file={}", tokens.display()),
    ])
    .unwrap();
    let url = format!("https://{secure}");
    let good = kubeconfig(dir.path(), "good", &url, &ca.cert_key.cert_pem, &ca);

    for minor in [27, 33] {
        let out = kubectl(minor, &good, &["get", "namespaces"]);
        assert!(out.status.success(), "1.{minor}: {}", text(&out));
        assert!(text(&out).contains("kube-system"), "{}", text(&out));
        let name = format!("over-tls-{minor}");
        let out = kubectl(
            minor,
            &good,
            &["create", "configmap", &name, "--from-literal=k=v"],
        );
        assert!(out.status.success(), "1.{minor}: {}", text(&out));
        let out = kubectl(
            minor,
            &good,
            &["get", "configmap", &name, "-o", "jsonpath={.data.k}"],
        );
        assert_eq!(text(&out), "v");
    }

    // Who may ask: anonymous only for health and version; a token from the
    // token file; not a wrong token; not a certificate of another CA.
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-s",
                "--noproxy",
                "*",
                "--cacert",
                ca_file.to_str().unwrap(),
            ])
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let anonymous = curl(&[&format!("{url}/api/v1/namespaces")]);
    assert!(anonymous.ends_with("\n401"), "{anonymous}");
    assert!(
        anonymous.contains("\"reason\":\"Unauthorized\""),
        "{anonymous}"
    );
    for public in ["/healthz", "/readyz", "/livez", "/version"] {
        let out = curl(&[&format!("{url}{public}")]);
        assert!(out.ends_with("\n200"), "{public}: {out}");
    }
    let with_token = curl(&[
        "-H",
        "Authorization: Bearer t0ken-of-bob",
        &format!("{url}/api/v1/namespaces"),
    ]);
    assert!(with_token.ends_with("\n200"), "{with_token}");
    let wrong_token = curl(&[
        "-H",
        "Authorization: Bearer forged",
        &format!("{url}/api/v1/namespaces"),
    ]);
    assert!(wrong_token.ends_with("\n401"), "{wrong_token}");
    let other = Ca::generate("other-ca", YEAR).unwrap();
    let foreign = kubeconfig(dir.path(), "foreign", &url, &ca.cert_key.cert_pem, &other);
    let out = kubectl(33, &foreign, &["get", "namespaces"]);
    assert!(
        !out.status.success(),
        "a certificate of another CA was accepted"
    );

    // Another server CA: the handshake fails, nothing is read.
    let wrong = kubeconfig(dir.path(), "wrong", &url, &other.cert_key.cert_pem, &ca);
    let out = kubectl(33, &wrong, &["get", "namespaces"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("certificate signed by unknown authority")
            || text(&out).contains("x509"),
        "{}",
        text(&out)
    );

    // Bad input on the TLS port: plain HTTP, a truncated handshake, a crowd
    // of idle connections. The server stays up and serves others.
    let mut plain = TcpStream::connect(secure).unwrap();
    plain
        .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("APIVersions"),
        "plain HTTP was answered on the TLS port"
    );
    let mut truncated = TcpStream::connect(secure).unwrap();
    // The first bytes of a TLS ClientHello record, then nothing.
    truncated
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    drop(truncated);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(secure).unwrap())
        .collect();
    let out = kubectl(33, &good, &["get", "configmaps"]);
    assert!(
        out.status.success(),
        "with idle connections: {}",
        text(&out)
    );
    drop(idle);
    drop(server);
}

#[test]
fn without_certificates_it_makes_a_self_signed_one() {
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = dir.path().join("certs");
    let secure = free_loopback_addr().unwrap();
    let _server = ApiServerProcess::start_embedded(&[
        &format!("--secure-port={}", secure.port()),
        &format!("--cert-dir={}", cert_dir.display()),
    ])
    .unwrap();
    let made = pki::CertKey::read(&cert_dir, "apiserver").unwrap();
    let config = kubeconfig(
        dir.path(),
        "self",
        &format!("https://{secure}"),
        &made.cert_pem,
        &Ca::generate("any", YEAR).unwrap(),
    );
    let out = kubectl(33, &config, &["get", "namespaces", "-o", "name"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("namespace/default"));
}

#[test]
fn the_plain_port_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = free_loopback_addr().unwrap();
    let out = Command::new(bin_dir().join("kube-apiserver"))
        .args([
            &format!("--data-dir={}", dir.path().display()),
            &format!("--port={}", addr.port()),
            "--insecure-bind-address=0.0.0.0",
            "--secure-port=0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a loopback address"),
        "{}",
        text(&out)
    );
}
