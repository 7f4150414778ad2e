//! One task per pod: makes the runtime match the pod's spec (sandbox, init
//! containers in order, containers with restart policy and back-off,
//! probes), writes pods/status, and tears the pod down when it is deleted
//! (upstream's pod_workers.go + kuberuntime_manager.go SyncPod/KillPod).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1::{ContainerState, PodSandboxConfig};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify};

use crate::cri::{self, Cri};
use crate::env::{make_env, EnvInputs};
use crate::error::{is_not_found, Result};
use crate::kubelet::Kubelet;
use crate::labels;
use crate::probes;
use crate::runtime_config::{self, ContainerInputs};
use crate::status::{self, Notes, Observation, Observed};
use crate::{cgroups, volumes};

/// How often a pod's runtime state is re-listed (upstream's PLEG period).
const RELIST: Duration = Duration::from_secs(1);

/// The pod as the manager last saw it; `None` once it is gone from the API.
pub type PodUpdate = Option<Arc<Pod>>;

pub async fn run(
    kl: Arc<Kubelet>,
    uid: String,
    mut rx: watch::Receiver<PodUpdate>,
    done: mpsc::UnboundedSender<String>,
) {
    let mut w = Worker::new(kl, uid.clone());
    let mut last_key: Option<String>;
    loop {
        let pod = rx.borrow_and_update().clone();
        match &pod {
            None => {
                w.teardown().await;
                break;
            }
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                w.terminate(p).await;
                break;
            }
            Some(p) => {
                last_key = Some(sync_key(p));
                if let Err(e) = w.sync(p).await {
                    tracing::warn!(pod = %w.pod_name, error = %e, "sync pod");
                }
            }
        }
        // Wait for the next relist, a probe result, or a change of the
        // pod that matters (our own status writes come back and do not).
        let deadline = tokio::time::Instant::now() + RELIST;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = w.wake.notified() => break,
                changed = rx.changed() => {
                    if changed.is_err() && rx.borrow().is_some() {
                        // The manager is gone (shutdown): leave the pod running.
                        w.stop_probes();
                        return;
                    }
                    let p = rx.borrow().clone();
                    match p {
                        Some(p) if Some(sync_key(&p)) == last_key => {
                            w.latest = Some(p);
                            continue;
                        }
                        _ => break,
                    }
                }
            }
        }
    }
    w.stop_probes();
    let _ = done.send(uid);
}

/// The parts of a pod whose change needs a sync now.
fn sync_key(p: &Pod) -> String {
    json!([p.metadata.deletion_timestamp, p.spec, p.metadata.labels]).to_string()
}

struct Worker {
    kl: Arc<Kubelet>,
    uid: String,
    pod_name: String,
    /// The newest pod object (status of other writers).
    latest: Option<Arc<Pod>>,
    notes: Notes,
    /// Exited containers' statuses never change: fetched once.
    status_cache: HashMap<String, (i32, k8s_cri::v1::ContainerStatus)>,
    sandbox: Option<(String, PodSandboxConfig)>,
    last_status: Option<PodStatus>,
    probe_results: probes::Shared,
    probers: HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
    wake: Arc<Notify>,
    /// Back-off for failing sandbox creation / image pulls.
    retry_after: HashMap<String, Instant>,
    /// Service account tokens by volume/path, with when to renew them.
    tokens: HashMap<String, (String, Instant)>,
    /// When the pod's volumes were last written.
    volumes_written: Option<Instant>,
}

impl Worker {
    fn new(kl: Arc<Kubelet>, uid: String) -> Self {
        Self {
            kl,
            pod_name: uid.clone(),
            uid,
            latest: None,
            notes: Notes::default(),
            status_cache: HashMap::new(),
            sandbox: None,
            last_status: None,
            probe_results: Default::default(),
            probers: HashMap::new(),
            wake: Arc::new(Notify::new()),
            retry_after: HashMap::new(),
            tokens: HashMap::new(),
            volumes_written: None,
        }
    }

    fn cri(&self) -> &Cri {
        &self.kl.cri
    }

    fn stop_probes(&mut self) {
        for (_, tasks) in self.probers.drain() {
            for t in tasks {
                t.abort();
            }
        }
    }

    /// The runtime's view of the pod.
    async fn observe(&mut self) -> Result<(Vec<k8s_cri::v1::PodSandbox>, Observation)> {
        let sel = labels::uid_selector(&self.uid);
        let mut sandboxes = self.cri().list_pod_sandboxes(sel.clone()).await?;
        sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let containers = self.cri().list_containers(sel).await?;
        let mut obs = Observation::default();
        let live: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
        self.status_cache.retain(|id, _| live.contains(id.as_str()));
        for c in &containers {
            let state = cri::container_state(c);
            let cached = self
                .status_cache
                .get(&c.id)
                .filter(|(s, _)| *s == state as i32)
                .map(|(_, st)| st.clone());
            let st = match cached {
                Some(st) => st,
                None => match self.cri().container_status(&c.id).await {
                    Ok(st) => {
                        self.status_cache
                            .insert(c.id.clone(), (state as i32, st.clone()));
                        st
                    }
                    Err(e) if is_not_found(&e) => continue,
                    Err(e) => return Err(e),
                },
            };
            let name = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default();
            let o = Observed {
                id: c.id.clone(),
                name: name.clone(),
                state: ContainerState::try_from(st.state)
                    .unwrap_or(ContainerState::ContainerUnknown),
                restart_count: labels::restart_count(&c.annotations),
                created_at: st.created_at,
                started_at: st.started_at,
                finished_at: st.finished_at,
                exit_code: st.exit_code,
                reason: st.reason.clone(),
                message: st.message.clone(),
                image_ref: st.image_ref.clone(),
                hash: c
                    .annotations
                    .get(labels::CONTAINER_HASH)
                    .cloned()
                    .unwrap_or_default(),
            };
            obs.containers.entry(name).or_default().push(o);
        }
        for list in obs.containers.values_mut() {
            list.sort_by_key(|o| std::cmp::Reverse((o.restart_count, o.created_at)));
        }
        if let Some(s) = sandboxes.first().filter(|s| cri::sandbox_ready(s)) {
            obs.sandbox_ready = true;
            match self.cri().pod_sandbox_status(&s.id).await {
                Ok(st) => {
                    if let Some(net) = st.network {
                        if !net.ip.is_empty() {
                            obs.pod_ips.push(net.ip);
                        }
                        obs.pod_ips
                            .extend(net.additional_ips.into_iter().map(|i| i.ip));
                    }
                }
                Err(e) if is_not_found(&e) => obs.sandbox_ready = false,
                Err(e) => return Err(e),
            }
        }
        Ok((sandboxes, obs))
    }

    async fn sync(&mut self, pod: &Arc<Pod>) -> Result<()> {
        self.latest = Some(pod.clone());
        self.pod_name = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        let (sandboxes, mut obs) = self.observe().await?;
        let terminal = matches!(
            self.latest_phase(pod).as_deref(),
            Some("Succeeded") | Some("Failed")
        );
        if terminal {
            // A finished pod keeps its containers (for logs) but not its sandbox.
            for s in sandboxes.iter().filter(|s| cri::sandbox_ready(s)) {
                self.stop_probes();
                if let Err(e) = self.cri().stop_pod_sandbox(&s.id).await {
                    tracing::warn!(pod = %self.pod_name, error = %e, "stop sandbox of finished pod");
                }
            }
            obs.sandbox_ready = false;
            return self.write_status(pod, &obs).await;
        }

        let mut acted = self.ensure_sandbox(pod, &sandboxes, &obs).await?;
        if acted {
            (_, obs) = self.observe().await?;
        }
        if self.sandbox.is_some() && obs.sandbox_ready {
            acted = self.handle_probe_failures(pod, &obs).await;
            if acted {
                (_, obs) = self.observe().await?;
            }
            if self.sync_containers(pod, &obs).await? {
                (_, obs) = self.observe().await?;
            }
            self.refresh_volumes(pod, &obs).await;
            self.update_probers(pod, &obs);
        }
        self.write_status(pod, &obs).await
    }

    fn latest_phase(&self, pod: &Pod) -> Option<String> {
        self.last_status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .or_else(|| pod.status.as_ref().and_then(|s| s.phase.clone()))
    }

    /// A ready sandbox for the pod; true when one was created.
    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
        sandboxes: &[k8s_cri::v1::PodSandbox],
        obs: &Observation,
    ) -> Result<bool> {
        let kl = self.kl.clone();
        let node = &kl.node;
        if let Some(s) = sandboxes.first().filter(|s| cri::sandbox_ready(s)) {
            if self.sandbox.as_ref().map(|(id, _)| id) != Some(&s.id) {
                // Adopted (kubelet restart) or created just now.
                let attempt = s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
                let cfg = runtime_config::sandbox_config(pod, node, attempt);
                self.sandbox = Some((s.id.clone(), cfg));
            }
            if obs.sandbox_ready {
                return Ok(false);
            }
        }
        if let Some(t) = self.retry_after.get("sandbox") {
            if Instant::now() < *t {
                return Ok(false);
            }
        }
        // The old sandbox is dead: its containers go with it.
        self.stop_probes();
        for c in obs.containers.values().flatten().filter(|c| c.running()) {
            let _ = self.cri().stop_container(&c.id, 0).await;
        }
        let attempt = sandboxes
            .first()
            .and_then(|s| s.metadata.as_ref())
            .map(|m| m.attempt + 1)
            .unwrap_or(0);
        let cfg = runtime_config::sandbox_config(pod, node, attempt);
        if let Some(linux) = &cfg.linux {
            cgroups::create(&linux.cgroup_parent);
        }
        if let Err(e) = std::fs::create_dir_all(&cfg.log_directory) {
            tracing::warn!(dir = cfg.log_directory, error = %e, "create pod log directory");
        }
        let started = Instant::now();
        match self.cri().run_pod_sandbox(cfg.clone()).await {
            Ok(id) => {
                tracing::info!(pod = %self.pod_name, sandbox = %id, elapsed = ?started.elapsed(), "sandbox running");
                self.retry_after.remove("sandbox");
                self.notes.waiting.clear();
                self.sandbox = Some((id, cfg));
                // Old sandboxes are of no use any more.
                for old in sandboxes {
                    let _ = self.cri().stop_pod_sandbox(&old.id).await;
                    let _ = self.cri().remove_pod_sandbox(&old.id).await;
                }
                Ok(true)
            }
            Err(e) => {
                let msg = format!("Failed to create pod sandbox: {e}");
                tracing::warn!(pod = %self.pod_name, error = %e, "run pod sandbox");
                for c in all_containers(pod) {
                    self.notes
                        .waiting
                        .insert(c.name.clone(), ("ContainerCreating".into(), msg.clone()));
                }
                self.retry_after
                    .insert("sandbox".into(), Instant::now() + Duration::from_secs(5));
                Ok(false)
            }
        }
    }

    /// Kill containers whose liveness or startup probe failed.
    async fn handle_probe_failures(&mut self, pod: &Pod, obs: &Observation) -> bool {
        let failed: Vec<(String, String)> = match self.probe_results.lock() {
            Ok(mut r) => r.failed.drain().collect(),
            Err(_) => return false,
        };
        let mut acted = false;
        for (id, why) in failed {
            let Some(c) = obs
                .containers
                .values()
                .flatten()
                .find(|c| c.id == id && c.running())
            else {
                continue;
            };
            tracing::info!(pod = %self.pod_name, container = %c.name, why, "killing container: probe failed");
            if let Some(tasks) = self.probers.remove(&id) {
                tasks.into_iter().for_each(|t| t.abort());
            }
            let grace = grace_seconds(pod);
            if let Err(e) = self.cri().stop_container(&id, grace).await {
                tracing::warn!(error = %e, "stop container after probe failure");
            }
            acted = true;
        }
        acted
    }

    /// Start what should run; true when something was started.
    async fn sync_containers(&mut self, pod: &Pod, obs: &Observation) -> Result<bool> {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        // Init containers, one at a time, in order.
        for c in spec.init_containers.iter().flatten() {
            match obs.latest(&c.name) {
                Some(l) if l.exited() && l.exit_code == 0 => continue,
                Some(l) if l.running() => return Ok(false),
                Some(l) if l.exited() => {
                    if policy == "Never" {
                        return Ok(false);
                    }
                    return self.restart(pod, c, obs, l.clone(), true).await;
                }
                Some(l) if l.state == ContainerState::ContainerCreated => {
                    return self.start_created(&l.id.clone(), &c.name).await;
                }
                _ => return self.start_new(pod, c, obs, 0, true).await,
            }
        }
        let mut acted = false;
        for c in &spec.containers {
            let latest = obs.latest(&c.name).cloned();
            let did = match latest {
                None => self.start_new(pod, c, obs, 0, false).await?,
                Some(l) if l.running() => {
                    if !l.hash.is_empty() && l.hash != runtime_config::container_hash(c) {
                        tracing::info!(pod = %self.pod_name, container = %c.name, "container spec changed: restarting");
                        self.cri().stop_container(&l.id, grace_seconds(pod)).await?;
                        true
                    } else {
                        self.notes.waiting.remove(&c.name);
                        false
                    }
                }
                Some(l) if l.state == ContainerState::ContainerCreated => {
                    self.start_created(&l.id, &c.name).await?
                }
                Some(l) => {
                    let restart = match policy.as_str() {
                        "Never" => false,
                        "OnFailure" => l.exit_code != 0,
                        _ => true,
                    };
                    if restart {
                        self.restart(pod, c, obs, l, false).await?
                    } else {
                        self.notes.waiting.remove(&c.name);
                        false
                    }
                }
            };
            acted |= did;
        }
        Ok(acted)
    }

    async fn start_created(&mut self, id: &str, name: &str) -> Result<bool> {
        match self.cri().start_container(id).await {
            Ok(()) => {
                self.notes.waiting.remove(name);
                Ok(true)
            }
            Err(e) => {
                self.notes
                    .waiting
                    .insert(name.into(), ("RunContainerError".into(), e.to_string()));
                Ok(false)
            }
        }
    }

    /// Restart an exited container once its back-off has passed.
    async fn restart(
        &mut self,
        pod: &Pod,
        c: &Container,
        obs: &Observation,
        last: Observed,
        init: bool,
    ) -> Result<bool> {
        let key = format!("{}/{}", self.uid, c.name);
        let finished_ago = finished_ago(last.finished_at);
        let now = Instant::now();
        let finished = now.checked_sub(finished_ago).unwrap_or(now);
        let remaining = self
            .kl
            .backoff
            .lock()
            .ok()
            .and_then(|mut b| b.remaining(&key, finished, now));
        if let Some(remaining) = remaining {
            let delay = self
                .kl
                .backoff
                .lock()
                .map(|b| b.current(&key))
                .unwrap_or_default();
            self.notes.waiting.insert(
                c.name.clone(),
                (
                    "CrashLoopBackOff".into(),
                    format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        go_duration(delay),
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        self.uid
                    ),
                ),
            );
            // Come back when the back-off ends.
            let wake = self.wake.clone();
            tokio::spawn(async move {
                tokio::time::sleep(remaining).await;
                wake.notify_one();
            });
            return Ok(false);
        }
        if let Ok(mut b) = self.kl.backoff.lock() {
            b.next(&key, now);
        }
        // Keep only the container that just exited (for `logs --previous`).
        for old in obs.containers.get(&c.name).into_iter().flatten().skip(1) {
            if old.exited() {
                let _ = self.cri().remove_container(&old.id).await;
            }
        }
        self.start_new(pod, c, obs, last.restart_count + 1, init)
            .await
    }

    /// Services for the Docker-link variables: the pod's namespace (when
    /// enableServiceLinks) and the master `kubernetes` service, read when a
    /// container is made (the values are fixed at container start anyway).
    async fn services(&self, pod: &Pod) -> Vec<Service> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let mut out = Vec::new();
        if links {
            let api: Api<Service> = Api::namespaced(self.kl.client.clone(), ns);
            match api.list(&Default::default()).await {
                Ok(list) => out.extend(list.items),
                Err(e) => tracing::warn!(namespace = ns, error = %e, "list services"),
            }
        }
        if !links || ns != "default" {
            let api: Api<Service> = Api::namespaced(self.kl.client.clone(), "default");
            if let Ok(Some(k)) = api.get_opt("kubernetes").await {
                out.push(k);
            }
        }
        out
    }

    /// ConfigMaps the pod refers to, fetched now; `None` when missing.
    async fn config_maps(&self, pod: &Pod) -> HashMap<String, Option<ConfigMap>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<ConfigMap> = Api::namespaced(self.kl.client.clone(), ns);
        let mut out = HashMap::new();
        for name in referenced_config_maps(pod) {
            let cm = match api.get_opt(&name).await {
                Ok(cm) => cm,
                Err(e) => {
                    tracing::warn!(configmap = name, error = %e, "get configmap");
                    None
                }
            };
            out.insert(name, cm);
        }
        out
    }

    /// Write the pod's volumes on the node from the current ConfigMaps,
    /// downward-API values and service account tokens.
    async fn write_volumes(
        &mut self,
        pod: &Pod,
        inputs: &EnvInputs<'_>,
    ) -> Result<HashMap<String, volumes::HostVolume>, String> {
        let tokens = self.service_account_tokens(pod).await?;
        let vols = volumes::prepare(&self.kl.config.root_dir, pod, inputs, &tokens)?;
        self.volumes_written = Some(Instant::now());
        Ok(vols)
    }

    /// Every --sync-frequency, a running pod's configMap and projected
    /// volumes are written again, so that its containers see ConfigMap
    /// changes and renewed tokens (files are replaced by rename: a reader
    /// never sees half of one). A failure keeps the previous files.
    async fn refresh_volumes(&mut self, pod: &Pod, obs: &Observation) {
        // A pod adopted after a kubelet restart has not been written by this
        // process: due at once.
        let due = self
            .volumes_written
            .is_none_or(|t| t.elapsed() >= self.kl.config.sync_frequency);
        let updatable = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .any(volumes::is_updatable);
        if !due || !updatable || obs.containers.is_empty() {
            return;
        }
        let config_maps = self.config_maps(pod).await;
        let inputs = EnvInputs {
            pod_ips: obs.pod_ips.clone(),
            host_ip: self.kl.host_ip.clone(),
            services: Vec::new(),
            config_maps: &config_maps,
            node_cpu_milli: self.kl.machine.cpus * 1000,
            node_memory_bytes: self.kl.machine.memory_bytes,
        };
        let written = match self.service_account_tokens(pod).await {
            Ok(tokens) => volumes::refresh(&self.kl.config.root_dir, pod, &inputs, &tokens),
            Err(msg) => Err(msg),
        };
        if let Err(msg) = written {
            tracing::warn!(pod = %self.pod_name, error = %msg, "refresh volumes");
        }
        self.volumes_written = Some(Instant::now());
    }

    /// Tokens for the pod's projected serviceAccountToken sources, by
    /// [`volumes::token_key`], bound to the pod. A token is asked for again
    /// once 80% of its life has passed (as upstream's token manager).
    async fn service_account_tokens(
        &mut self,
        pod: &Pod,
    ) -> Result<HashMap<String, String>, String> {
        use k8s_openapi::api::authentication::v1::{
            BoundObjectReference, TokenRequest, TokenRequestSpec,
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let spec = pod.spec.as_ref();
        let account = spec
            .and_then(|s| s.service_account_name.as_deref())
            .unwrap_or("default");
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.kl.client.clone(), ns);
        let mut out = HashMap::new();
        for vol in spec.into_iter().flat_map(|s| s.volumes.iter().flatten()) {
            let sources = vol
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten());
            for t in sources.filter_map(|s| s.service_account_token.as_ref()) {
                let key = volumes::token_key(&vol.name, &t.path);
                if let Some((token, renew_at)) = self.tokens.get(&key) {
                    if Instant::now() < *renew_at {
                        out.insert(key, token.clone());
                        continue;
                    }
                }
                let seconds = t.expiration_seconds.unwrap_or(3600);
                let req = TokenRequest {
                    spec: TokenRequestSpec {
                        audiences: t.audience.iter().cloned().collect(),
                        expiration_seconds: Some(seconds),
                        bound_object_ref: Some(BoundObjectReference {
                            api_version: Some("v1".into()),
                            kind: Some("Pod".into()),
                            name: pod.metadata.name.clone(),
                            uid: pod.metadata.uid.clone(),
                        }),
                    },
                    ..Default::default()
                };
                let answer = api
                    .create_token_request(account, &PostParams::default(), &req)
                    .await
                    .map_err(|e| {
                        format!("failed to fetch token for service account {ns}/{account}: {e}")
                    })?;
                let token = answer.status.map(|s| s.token).unwrap_or_default();
                let renew_at = Instant::now() + Duration::from_secs(seconds.max(0) as u64 * 4 / 5);
                self.tokens.insert(key.clone(), (token.clone(), renew_at));
                out.insert(key, token);
            }
        }
        Ok(out)
    }

    /// Create and start a container; false (with a waiting reason) when it
    /// cannot be.
    async fn start_new(
        &mut self,
        pod: &Pod,
        c: &Container,
        obs: &Observation,
        restart_count: i32,
        init: bool,
    ) -> Result<bool> {
        let Some((sandbox_id, sandbox_cfg)) = self.sandbox.clone() else {
            return Ok(false);
        };
        let image = c.image.clone().unwrap_or_default();
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let pull_key = format!("pull/{}", c.name);
        if let Some(t) = self.retry_after.get(&pull_key) {
            if Instant::now() < *t {
                self.notes.waiting.insert(
                    c.name.clone(),
                    (
                        "ImagePullBackOff".into(),
                        format!("Back-off pulling image \"{image}\""),
                    ),
                );
                return Ok(false);
            }
        }
        let image_ref = match crate::images::ensure_image(
            self.cri(),
            &image,
            &policy,
            &self.kl.preloaded,
        )
        .await
        {
            Ok(r) => r,
            Err((reason, msg)) => {
                if reason == "ErrImagePull" {
                    self.retry_after
                        .insert(pull_key, Instant::now() + Duration::from_secs(10));
                }
                self.notes
                    .waiting
                    .insert(c.name.clone(), (reason.into(), msg));
                return Ok(false);
            }
        };
        let config_maps = self.config_maps(pod).await;
        let services = self.services(pod).await;
        let inputs = EnvInputs {
            pod_ips: obs.pod_ips.clone(),
            host_ip: self.kl.host_ip.clone(),
            services: services.iter().collect(),
            config_maps: &config_maps,
            node_cpu_milli: self.kl.machine.cpus * 1000,
            node_memory_bytes: self.kl.machine.memory_bytes,
        };
        let vols = match self.write_volumes(pod, &inputs).await {
            Ok(v) => v,
            Err(msg) => {
                self.notes
                    .waiting
                    .insert(c.name.clone(), ("ContainerCreating".into(), msg));
                return Ok(false);
            }
        };
        let env = match make_env(pod, c, &inputs) {
            Ok(env) => env,
            Err(msg) => {
                self.notes
                    .waiting
                    .insert(c.name.clone(), ("CreateContainerConfigError".into(), msg));
                return Ok(false);
            }
        };
        let mounts = match volumes::container_mounts(c, &vols) {
            Ok(m) => m,
            Err(msg) => {
                self.notes
                    .waiting
                    .insert(c.name.clone(), ("CreateContainerConfigError".into(), msg));
                return Ok(false);
            }
        };
        let cfg = runtime_config::container_config(
            pod,
            c,
            &self.kl.node,
            ContainerInputs {
                image_ref: &image_ref,
                env,
                mounts,
                restart_count,
                init,
            },
        );
        let started = Instant::now();
        let id = match self
            .cri()
            .create_container(&sandbox_id, cfg, sandbox_cfg)
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.notes.waiting.insert(
                    c.name.clone(),
                    ("CreateContainerError".into(), e.to_string()),
                );
                return Ok(false);
            }
        };
        if let Err(e) = self.cri().start_container(&id).await {
            tracing::warn!(pod = %self.pod_name, container = %c.name, error = %e, "start container");
            self.notes
                .waiting
                .insert(c.name.clone(), ("RunContainerError".into(), e.to_string()));
            return Ok(true);
        }
        self.kl.metrics.container_starts.inc();
        tracing::info!(pod = %self.pod_name, container = %c.name, id = %id, restart_count, elapsed = ?started.elapsed(), "container started");
        self.notes.waiting.remove(&c.name);
        Ok(true)
    }

    /// Probe tasks for running containers; none for others.
    fn update_probers(&mut self, pod: &Pod, obs: &Observation) {
        let running: HashMap<String, &Observed> = obs
            .containers
            .values()
            .filter_map(|v| v.first())
            .filter(|o| o.running())
            .map(|o| (o.id.clone(), o))
            .collect();
        self.probers.retain(|id, tasks| {
            let keep = running.contains_key(id);
            if !keep {
                tasks.iter().for_each(|t| t.abort());
            }
            keep
        });
        if let Ok(mut r) = self.probe_results.lock() {
            r.ready.retain(|id, _| running.contains_key(id));
            r.started.retain(|id, _| running.contains_key(id));
        }
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            if c.liveness_probe.is_none()
                && c.readiness_probe.is_none()
                && c.startup_probe.is_none()
            {
                continue;
            }
            let Some(o) = obs.latest(&c.name).filter(|o| o.running()) else {
                continue;
            };
            if self.probers.contains_key(&o.id) {
                continue;
            }
            let target = probes::Target {
                cri: self.kl.cri.clone(),
                container_id: o.id.clone(),
                container: c.clone(),
                pod_ip: obs.pod_ips.first().cloned(),
                running_for: finished_ago(o.started_at),
            };
            let tasks = probes::spawn_all(target, self.probe_results.clone(), self.wake.clone());
            self.probers.insert(o.id.clone(), tasks);
        }
    }

    async fn write_status(&mut self, pod: &Pod, obs: &Observation) -> Result<()> {
        if let Ok(r) = self.probe_results.lock() {
            self.notes.ready = r.ready.clone();
            self.notes.started = r.started.clone();
        }
        let base = self.latest.clone().unwrap_or_else(|| Arc::new(pod.clone()));
        let status = status::pod_status(&base, obs, &self.notes, &self.kl.host_ip);
        if self.last_status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(
            self.kl.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let patch = json!({"metadata": {"uid": self.uid}, "status": status});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                self.last_status = Some(status);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Graceful deletion: stop containers with the grace period, remove
    /// the sandbox and the pod's node state, then delete the pod object.
    async fn terminate(&mut self, pod: &Pod) {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or_else(|| grace_seconds(pod));
        tracing::info!(pod = %self.pod_name(pod), grace, "terminating pod");
        self.teardown_runtime(grace).await;
        self.remove_node_state(pod);
        let api: Api<Pod> = Api::namespaced(
            self.kl.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or_default(), &dp)
            .await
        {
            Ok(_) => tracing::info!(pod = %self.pod_name(pod), "pod deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %self.pod_name(pod), error = %e, "delete pod"),
        }
    }

    fn pod_name(&self, pod: &Pod) -> String {
        format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// The pod is gone from the API: stop everything it had.
    async fn teardown(&mut self) {
        let grace = self.latest.as_deref().map(grace_seconds).unwrap_or(30);
        self.teardown_runtime(grace).await;
        if let Some(p) = self.latest.clone() {
            self.remove_node_state(&p);
        }
    }

    async fn teardown_runtime(&mut self, grace: i64) {
        self.stop_probes();
        let sel = labels::uid_selector(&self.uid);
        if let Err(e) = kill_pod(self.cri(), sel, grace).await {
            tracing::warn!(pod = %self.pod_name, error = %e, "kill pod");
        }
    }

    fn remove_node_state(&self, pod: &Pod) {
        let (ns, name) = (
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
        );
        remove_pod_dirs(&self.kl, ns, name, &self.uid);
    }
}

/// Stop every container of the matching sandboxes (in parallel, with the
/// grace period), then stop and remove the sandboxes.
pub async fn kill_pod(cri: &Cri, sel: HashMap<String, String>, grace: i64) -> Result<()> {
    let containers = cri.list_containers(sel.clone()).await?;
    let stops = containers
        .iter()
        .filter(|c| cri::container_state(c) == ContainerState::ContainerRunning)
        .map(|c| cri.stop_container(&c.id, grace));
    for r in futures::future::join_all(stops).await {
        if let Err(e) = r {
            if !is_not_found(&e) {
                tracing::warn!(error = %e, "stop container");
            }
        }
    }
    for s in cri.list_pod_sandboxes(sel).await? {
        if let Err(e) = cri.stop_pod_sandbox(&s.id).await {
            tracing::warn!(sandbox = s.id, error = %e, "stop sandbox");
        }
        if let Err(e) = cri.remove_pod_sandbox(&s.id).await {
            tracing::warn!(sandbox = s.id, error = %e, "remove sandbox");
        }
    }
    Ok(())
}

/// The pod's cgroup, volumes and logs on this node.
pub fn remove_pod_dirs(kl: &Kubelet, ns: &str, name: &str, uid: &str) {
    let left = cgroups::remove(&runtime_config::pod_cgroup(&kl.config.cgroup_root, uid));
    if !left.is_empty() {
        tracing::warn!(?left, "pod cgroups left behind");
    }
    let _ = std::fs::remove_dir_all(volumes::pod_dir(&kl.config.root_dir, uid));
    let _ = std::fs::remove_dir_all(runtime_config::pod_log_dir(
        &kl.config.root_dir,
        ns,
        name,
        uid,
    ));
}

fn all_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

fn referenced_config_maps(pod: &Pod) -> Vec<String> {
    let mut names = Vec::new();
    for c in all_containers(pod) {
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.config_map_key_ref.as_ref())
            {
                names.push(r.name.clone());
            }
        }
        for f in c.env_from.iter().flatten() {
            if let Some(r) = &f.config_map_ref {
                names.push(r.name.clone());
            }
        }
    }
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &v.config_map {
            names.push(cm.name.clone());
        }
        let projected = v.projected.iter().flat_map(|p| p.sources.iter().flatten());
        for cm in projected.filter_map(|s| s.config_map.as_ref()) {
            names.push(cm.name.clone());
        }
    }
    names.sort();
    names.dedup();
    names
}

pub fn grace_seconds(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// How long ago a runtime timestamp (ns since the epoch) was.
fn finished_ago(ns: i64) -> Duration {
    let now = jiff::Timestamp::now().as_nanosecond();
    Duration::from_nanos((now - ns as i128).max(0) as u64)
}

/// "10s", "1m20s", "5m0s" as Go prints durations.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }

    #[test]
    fn config_maps_referenced() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "y"}}]}],
                "volumes": [{"name": "v", "configMap": {"name": "x"}}]}
        }))
        .unwrap();
        assert_eq!(referenced_config_maps(&pod), vec!["x", "y"]);
    }
}
