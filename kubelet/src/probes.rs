//! Liveness, readiness and startup probes (upstream's pkg/kubelet/prober):
//! one task per probe of a running container, reporting into the pod
//! worker's shared results and waking it when a result changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::cri::Cri;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

/// Results of every probe of one pod, by container id.
#[derive(Debug, Default)]
pub struct Results {
    pub ready: HashMap<String, bool>,
    pub started: HashMap<String, bool>,
    /// Containers whose liveness or startup probe failed: kill and restart.
    pub failed: HashMap<String, String>,
}

pub type Shared = Arc<Mutex<Results>>;

/// What a probe talks to.
#[derive(Clone)]
pub struct Target {
    pub cri: Cri,
    pub container_id: String,
    pub container: Container,
    pub pod_ip: Option<String>,
    /// Seconds since the container started, when the prober starts.
    pub running_for: Duration,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

/// Start the probe tasks for a running container.
pub fn spawn_all(
    target: Target,
    results: Shared,
    wake: Arc<Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let c = &target.container;
    let mut tasks = Vec::new();
    for (kind, probe) in [
        (Kind::Startup, c.startup_probe.clone()),
        (Kind::Liveness, c.liveness_probe.clone()),
        (Kind::Readiness, c.readiness_probe.clone()),
    ] {
        if let Some(probe) = probe {
            tasks.push(tokio::spawn(run(
                kind,
                probe,
                target.clone(),
                results.clone(),
                wake.clone(),
            )));
        }
    }
    tasks
}

async fn run(kind: Kind, probe: Probe, t: Target, results: Shared, wake: Arc<Notify>) {
    let id = t.container_id.clone();
    let has_startup = t.container.startup_probe.is_some();
    let initial = secs(probe.initial_delay_seconds, 0).saturating_sub(t.running_for);
    let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(initial).await;
    let (mut successes, mut failures) = (0, 0);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // Liveness and readiness wait for the startup probe to succeed.
        if kind != Kind::Startup && has_startup {
            let started = results
                .lock()
                .map(|r| r.started.get(&id).copied().unwrap_or(false));
            if !started.unwrap_or(false) {
                continue;
            }
        }
        let (ok, detail) = probe_once(&probe, &t, timeout).await;
        if ok {
            successes += 1;
            failures = 0;
        } else {
            failures += 1;
            successes = 0;
            tracing::debug!(container = %t.container.name, ?kind, detail, "probe failed");
        }
        let mut changed = false;
        if let Ok(mut r) = results.lock() {
            match kind {
                Kind::Readiness => {
                    let now = if successes >= success_threshold {
                        Some(true)
                    } else if failures >= failure_threshold {
                        Some(false)
                    } else {
                        None
                    };
                    if let Some(v) = now {
                        changed = r.ready.insert(id.clone(), v) != Some(v);
                    }
                }
                Kind::Startup if successes >= 1 => {
                    r.started.insert(id.clone(), true);
                    changed = true;
                }
                Kind::Liveness | Kind::Startup if failures >= failure_threshold => {
                    let what = if kind == Kind::Liveness {
                        "Liveness"
                    } else {
                        "Startup"
                    };
                    r.failed
                        .insert(id.clone(), format!("{what} probe failed: {detail}"));
                    changed = true;
                }
                _ => {}
            }
        }
        if changed {
            wake.notify_one();
            // A startup success or a kill ends this probe's job.
            if kind != Kind::Readiness {
                return;
            }
        }
    }
}

/// One probe attempt: (success, what happened).
pub async fn probe_once(probe: &Probe, t: &Target, timeout: Duration) -> (bool, String) {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match t.cri.exec_sync(&t.container_id, cmd, timeout).await {
            Ok(r) if r.exit_code == 0 => (true, String::new()),
            Ok(r) => (
                false,
                format!(
                    "command exited with {}: {}",
                    r.exit_code,
                    String::from_utf8_lossy(&r.stdout).trim()
                ),
            ),
            Err(e) => (false, e.to_string()),
        };
    }
    if let Some(h) = &probe.http_get {
        let host = h.host.clone().or_else(|| t.pod_ip.clone());
        let Some(host) = host else {
            return (false, "no pod IP yet".into());
        };
        let Some(port) = resolve_port(&h.port, &t.container) else {
            return (false, format!("unknown port {:?}", h.port));
        };
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|hh| (hh.name.clone(), hh.value.clone()))
            .collect();
        return match tokio::time::timeout(timeout, http_get(&host, port, &path, &headers)).await {
            Ok(Ok(code)) if (200..400).contains(&code) => (true, String::new()),
            Ok(Ok(code)) => (false, format!("HTTP probe failed with statuscode: {code}")),
            Ok(Err(e)) => (false, e),
            Err(_) => (false, format!("Get http://{host}:{port}{path}: timeout")),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = tcp.host.clone().or_else(|| t.pod_ip.clone());
        let Some(host) = host else {
            return (false, "no pod IP yet".into());
        };
        let Some(port) = resolve_port(&tcp.port, &t.container) else {
            return (false, format!("unknown port {:?}", tcp.port));
        };
        return match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await
        {
            Ok(Ok(_)) => (true, String::new()),
            Ok(Err(e)) => (false, format!("dial tcp {host}:{port}: {e}")),
            Err(_) => (false, format!("dial tcp {host}:{port}: timeout")),
        };
    }
    // gRPC probes are not supported: count them as passing.
    (true, String::new())
}

fn resolve_port(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(name) => match name.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    }
}

/// GET over one HTTP/1.1 connection; the status code.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::get(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::USER_AGENT, "kube-probe/1.33");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    // Drain the body so the server sees a clean close.
    let _ = resp.into_body().collect().await;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_ports() {
        let c: Container = serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}),
        )
        .unwrap();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Some(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("81".into()), &c),
            Some(81)
        );
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Some(80));
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
    }

    #[tokio::test]
    async fn http_and_tcp_probes_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let code = if req.starts_with("GET /ok ") {
                        "200 OK"
                    } else {
                        "500 Oops"
                    };
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            )
                            .as_bytes(),
                        )
                        .await;
                });
            }
        });
        assert_eq!(http_get("127.0.0.1", port, "/ok", &[]).await.unwrap(), 200);
        assert_eq!(http_get("127.0.0.1", port, "/bad", &[]).await.unwrap(), 500);
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_ok());
    }
}
