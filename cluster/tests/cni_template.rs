//! A node whose pod CIDR is not known at start: containerd renders the CNI conflist from
//! our template when the kubelet calls CRI UpdateRuntimeConfig, as upstream's kubelet
//! does once the node's spec.podCIDR is set. Real containerd; runs as root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cluster::containerd::{ContainerdConfig, ContainerdProcess, CNI_CONFLIST_FILE};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{NetworkConfig, RuntimeConfig, StatusRequest, UpdateRuntimeConfigRequest};
use tonic::transport::{Channel, Endpoint, Uri};

fn client(socket: PathBuf) -> RuntimeServiceClient<Channel> {
    let channel = Endpoint::try_from("http://[::]")
        .unwrap()
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }));
    RuntimeServiceClient::new(channel)
}

async fn network_ready(cri: &mut RuntimeServiceClient<Channel>) -> bool {
    let Ok(reply) = cri.status(StatusRequest { verbose: false }).await else {
        return false;
    };
    reply.into_inner().status.is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.r#type == "NetworkReady" && c.status)
    })
}

#[tokio::test]
async fn update_runtime_config_renders_the_cni_conflist() {
    let dir = tempfile::Builder::new()
        .prefix("nrt-template-")
        .tempdir_in("/tmp")
        .unwrap();
    let config = ContainerdConfig::new(dir.path());
    assert!(config.pod_cidr.is_none());
    let containerd = ContainerdProcess::start(&config).expect("start containerd");
    let mut cri = client(containerd.socket());
    let conflist = config.cni_conf_dir.join(CNI_CONFLIST_FILE);
    assert!(!conflist.exists());
    assert!(!network_ready(&mut cri).await, "no CNI config yet");

    cri.update_runtime_config(UpdateRuntimeConfigRequest {
        runtime_config: Some(RuntimeConfig {
            network_config: Some(NetworkConfig {
                pod_cidr: "10.244.251.0/24".into(),
            }),
        }),
    })
    .await
    .expect("UpdateRuntimeConfig");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&conflist).unwrap()).unwrap();
    assert_eq!(written["name"], config.network_name());
    assert_eq!(
        written["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.244.251.0/24"
    );

    // containerd watches its conf dir and loads the new network.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !network_ready(&mut cri).await {
        assert!(Instant::now() < deadline, "NetworkReady never became true");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(containerd);
    assert!(!conflist.exists(), "teardown removes the rendered conflist");
}
