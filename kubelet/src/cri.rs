//! The CRI v1 client: gRPC to the container runtime (containerd) over its
//! unix socket, as upstream's kubelet does (pkg/kubelet/cri/remote).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{self as cri};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{Error, Result};

/// Replies can be large (ListContainers on a busy node).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// `unix:///run/containerd/containerd.sock` or a bare path -> the path.
pub fn socket_path(endpoint: &str) -> Result<PathBuf> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.is_empty() || !path.starts_with('/') {
        return Err(Error::Config(format!(
            "--container-runtime-endpoint must be a unix socket path or unix:// URL, got {endpoint:?}"
        )));
    }
    Ok(PathBuf::from(path))
}

/// Both CRI services on one channel. Cheap to clone.
#[derive(Clone)]
pub struct Cri {
    pub socket: PathBuf,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Cri {
    /// A lazily connecting channel: a runtime that restarts is reconnected
    /// on the next call.
    pub fn new(endpoint: &str) -> Result<Self> {
        let socket = socket_path(endpoint)?;
        let path = socket.clone();
        let channel =
            Endpoint::try_from("http://[::]")
                .map_err(|e| Error::Config(e.to_string()))?
                .connect_timeout(Duration::from_secs(5))
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
        Ok(Self {
            socket,
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES),
        })
    }

    pub async fn version(&self) -> Result<cri::VersionResponse> {
        let req = cri::VersionRequest {
            version: "v1".into(),
        };
        Ok(self.runtime.clone().version(req).await?.into_inner())
    }

    /// Wait until the runtime answers Version (it may still be starting).
    pub async fn wait_ready(&self, deadline: Duration) -> Result<cri::VersionResponse> {
        let start = tokio::time::Instant::now();
        loop {
            match self.version().await {
                Ok(v) => return Ok(v),
                Err(e) if start.elapsed() < deadline => {
                    tracing::info!(error = %e, socket = %self.socket.display(), "container runtime not ready yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub async fn status(&self) -> Result<cri::RuntimeStatus> {
        let resp = self
            .runtime
            .clone()
            .status(cri::StatusRequest { verbose: false })
            .await?
            .into_inner();
        Ok(resp.status.unwrap_or_default())
    }

    /// Tell the runtime the node's pod CIDR (containerd renders its CNI
    /// config template from it).
    pub async fn update_pod_cidr(&self, cidr: &str) -> Result<()> {
        let req = cri::UpdateRuntimeConfigRequest {
            runtime_config: Some(cri::RuntimeConfig {
                network_config: Some(cri::NetworkConfig {
                    pod_cidr: cidr.into(),
                }),
            }),
        };
        self.runtime.clone().update_runtime_config(req).await?;
        Ok(())
    }

    pub async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await?
            .into_inner()
            .pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime.clone().stop_pod_sandbox(req).await?;
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime.clone().remove_pod_sandbox(req).await?;
        Ok(())
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        let resp = self.runtime.clone().pod_sandbox_status(req).await?;
        resp.into_inner()
            .status
            .ok_or_else(|| Error::Runtime(format!("no status for sandbox {id}")))
    }

    /// Sandboxes carrying all of `labels` (all of them when empty).
    pub async fn list_pod_sandboxes(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<cri::PodSandbox>> {
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                label_selector: labels,
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await?
            .into_inner()
            .items)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self
            .runtime
            .clone()
            .create_container(req)
            .await?
            .into_inner()
            .container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        let req = cri::StartContainerRequest {
            container_id: id.into(),
        };
        self.runtime.clone().start_container(req).await?;
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace_seconds` (the runtime does both).
    pub async fn stop_container(&self, id: &str, grace_seconds: i64) -> Result<()> {
        let req = cri::StopContainerRequest {
            container_id: id.into(),
            timeout: grace_seconds.max(0),
        };
        self.runtime.clone().stop_container(req).await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let req = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.runtime.clone().remove_container(req).await?;
        Ok(())
    }

    /// Containers carrying all of `labels`, in any state.
    pub async fn list_containers(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<cri::Container>> {
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                label_selector: labels,
                ..Default::default()
            }),
        };
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await?
            .into_inner()
            .containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        let resp = self.runtime.clone().container_status(req).await?;
        resp.into_inner()
            .status
            .ok_or_else(|| Error::Runtime(format!("no status for container {id}")))
    }

    /// Run `cmd` in the container and wait for it (probes).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<cri::ExecSyncResponse> {
        let req = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout.as_secs().max(1) as i64,
        };
        // The runtime enforces the timeout; ours only guards a stuck runtime.
        let mut runtime = self.runtime.clone();
        let call = runtime.exec_sync(req);
        match tokio::time::timeout(timeout + Duration::from_secs(5), call).await {
            Ok(resp) => Ok(resp?.into_inner()),
            Err(_) => Err(Error::Runtime(format!(
                "exec in {id} timed out after {timeout:?}"
            ))),
        }
    }

    /// Prepare a streaming exec; the runtime's streaming server URL for it.
    pub async fn exec(&self, req: cri::ExecRequest) -> Result<String> {
        Ok(self.runtime.clone().exec(req).await?.into_inner().url)
    }

    /// The image's status, `None` when it is not present.
    pub async fn image_status(&self, image: &str) -> Result<Option<cri::Image>> {
        let req = cri::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(req)
            .await?
            .into_inner()
            .image)
    }

    pub async fn pull_image(&self, image: &str) -> Result<String> {
        let req = cri::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: None,
        };
        Ok(self
            .images
            .clone()
            .pull_image(req)
            .await?
            .into_inner()
            .image_ref)
    }
}

pub fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// The CRI state enum of a listed container.
pub fn container_state(c: &cri::Container) -> cri::ContainerState {
    cri::ContainerState::try_from(c.state).unwrap_or(cri::ContainerState::ContainerUnknown)
}

pub fn sandbox_ready(s: &cri::PodSandbox) -> bool {
    s.state == cri::PodSandboxState::SandboxReady as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_paths() {
        assert_eq!(
            socket_path("unix:///run/c.sock").unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert_eq!(
            socket_path("/run/c.sock").unwrap(),
            PathBuf::from("/run/c.sock")
        );
        assert!(socket_path("tcp://1.2.3.4:5").is_err());
        assert!(socket_path("").is_err());
    }
}
