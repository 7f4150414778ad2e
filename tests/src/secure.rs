//! A kube-apiserver on its secure port with a CA of the test's own, and
//! identities (client certificates and kubeconfigs) for the users a test
//! plays: the admin, a node, someone with no rights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use component_base::pki::{Ca, CertKey};

use crate::apiserver::{kubectl_path, ApiServerProcess, TestCluster};
use crate::etcd::free_loopback_addr;

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A kubeconfig for `server`, trusting `ca_pem`, authenticating as `client`.
pub fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, client: &CertKey) -> Result<()> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(ca_pem),
            b64(&client.cert_pem),
            b64(&client.key_pem)
        ),
    )?;
    Ok(())
}

/// One user's credentials.
pub struct Identity {
    pub kubeconfig: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct SecureApiServer {
    pub server: ApiServerProcess,
    pub url: String,
    pub ca: Ca,
    pub ca_file: PathBuf,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl SecureApiServer {
    /// An apiserver on the embedded store, serving TLS on a free loopback
    /// port, verifying client certificates against the test's CA, with
    /// `extra` flags (e.g. `--authorization-mode=Node,RBAC`).
    pub fn start(extra: &[&str]) -> Result<Self> {
        // As ApiServerProcess: the secure port may be taken between picking
        // and binding it.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_once(extra) {
                Err(e) if e.to_string().contains("Address already in use") => last = Some(e),
                other => return other,
            }
        }
        Err(last.expect("tried"))
    }

    fn start_once(extra: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ca = Ca::generate("test-ca", YEAR)?;
        let serving = ca.issue_serving(
            "kube-apiserver",
            &["localhost"],
            &["127.0.0.1".parse()?],
            YEAR,
        )?;
        let (cert, key) = serving.write(dir.path(), "apiserver")?;
        let (ca_file, _) = ca.cert_key.write(dir.path(), "ca")?;
        let secure = free_loopback_addr()?;
        let mut args = vec![
            format!("--secure-port={}", secure.port()),
            format!("--tls-cert-file={}", cert.display()),
            format!("--tls-private-key-file={}", key.display()),
            format!("--client-ca-file={}", ca_file.display()),
            // Made keys (the service account signing key) stay in the test's dir.
            format!("--cert-dir={}", dir.path().join("certs").display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let server = Self::run(dir.path(), &args)?;
        Ok(Self {
            server,
            url: format!("https://{secure}"),
            ca,
            ca_file,
            args,
            dir,
        })
    }

    fn run(dir: &Path, args: &[String]) -> Result<ApiServerProcess> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ApiServerProcess::start_embedded_in(&dir.join("data"), &refs)
    }

    /// Kill the apiserver and start it again on the same data and port.
    pub fn restart(&mut self) -> Result<()> {
        self.server.kill9();
        self.server = Self::run(self.dir.path(), &self.args)?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// This server as a `TestCluster` whose kubectl goes over TLS (verified
    /// against the CA) as `who`, so tests written for the plain port run
    /// with authentication and authorization on.
    pub fn into_test_cluster(self, who: &Identity) -> Result<TestCluster> {
        std::fs::copy(&who.kubeconfig, self.server.kubeconfig())?;
        Ok(TestCluster {
            apiserver: self.server,
            etcd: None,
            certs: Some(self.dir),
        })
    }

    /// Credentials for `user` in `groups`, signed by the cluster CA.
    pub fn identity(&self, user: &str, groups: &[&str]) -> Result<Identity> {
        let client = self.ca.issue_client(user, groups, YEAR)?;
        let file = user.replace(':', "-");
        let (cert, key) = client.write(self.dir.path(), &file)?;
        let kubeconfig = self.dir.path().join(format!("{file}.kubeconfig"));
        write_kubeconfig(&kubeconfig, &self.url, &self.ca.cert_key.cert_pem, &client)?;
        Ok(Identity {
            kubeconfig,
            cert,
            key,
        })
    }

    /// The real kubectl 1.`minor` as `who`.
    pub fn kubectl(&self, minor: u32, who: &Identity, args: &[&str]) -> Output {
        Command::new(kubectl_path(minor))
            .arg(format!("--kubeconfig={}", who.kubeconfig.display()))
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .expect("kubectl")
    }

    /// `method path` with an optional JSON body as `who` (None: no
    /// credentials); returns the status code and the body.
    pub fn curl(
        &self,
        who: Option<&Identity>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut creds = Vec::new();
        if let Some(who) = who {
            creds = vec![
                "--cert".to_string(),
                who.cert.display().to_string(),
                "--key".to_string(),
                who.key.display().to_string(),
            ];
        }
        self.curl_with(&creds, method, path, body)
    }

    /// As [`Self::curl`], authenticating with a bearer token.
    pub fn curl_token(&self, token: &str, method: &str, path: &str) -> (u16, String) {
        let header = vec!["-H".to_string(), format!("Authorization: Bearer {token}")];
        self.curl_with(&header, method, path, None)
    }

    fn curl_with(
        &self,
        creds: &[String],
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--noproxy", "*", "-X", method, "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&self.ca_file)
            .args(creds);
        if let Some(body) = body {
            let ct = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            cmd.args(["-H", &format!("Content-Type: {ct}"), "--data-binary", body]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

/// stdout and stderr of a command, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
