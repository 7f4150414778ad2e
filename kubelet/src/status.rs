//! The pod's status from what the runtime reports and what the kubelet
//! decided (waiting reasons, probe results), as upstream's
//! kubelet_pods.go generateAPIPodStatus / getPhase compute it.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_cri::v1::ContainerState;
use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// One runtime container of the pod, with its status.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    pub restart_count: i32,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image_ref: String,
    pub hash: String,
}

impl Observed {
    pub fn exited(&self) -> bool {
        matches!(
            self.state,
            ContainerState::ContainerExited | ContainerState::ContainerUnknown
        )
    }
    pub fn running(&self) -> bool {
        self.state == ContainerState::ContainerRunning
    }
}

/// The pod as observed, containers by name, newest first.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub containers: HashMap<String, Vec<Observed>>,
    pub sandbox_ready: bool,
    pub pod_ips: Vec<String>,
}

impl Observation {
    pub fn latest(&self, name: &str) -> Option<&Observed> {
        self.containers.get(name).and_then(|v| v.first())
    }
    pub fn previous(&self, name: &str) -> Option<&Observed> {
        self.containers.get(name).and_then(|v| v.get(1))
    }
}

/// The kubelet's own knowledge about the pod's containers.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    /// Container name -> (reason, message) while it cannot run.
    pub waiting: HashMap<String, (String, String)>,
    /// Container id -> readiness probe result (absent: no result yet).
    pub ready: HashMap<String, bool>,
    /// Container id -> startup probe succeeded.
    pub started: HashMap<String, bool>,
}

pub fn time_from_nanos(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    // Whole seconds: that is what the API keeps, and equal statuses compare equal.
    Timestamp::from_second(ns / 1_000_000_000).ok().map(Time)
}

pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn terminated(o: &Observed) -> ContainerStateTerminated {
    let reason = if !o.reason.is_empty() {
        o.reason.clone()
    } else if o.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: o.exit_code,
        reason: Some(reason),
        message: Some(o.message.clone()).filter(|m| !m.is_empty()),
        started_at: time_from_nanos(o.started_at),
        finished_at: time_from_nanos(o.finished_at),
        container_id: Some(format!("containerd://{}", o.id)),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.filter(|m| !m.is_empty()).map(str::to_string),
        }),
        ..Default::default()
    }
}

fn container_status(
    c: &Container,
    obs: &Observation,
    notes: &Notes,
    default_waiting: &str,
) -> ContainerStatus {
    let latest = obs.latest(&c.name);
    let note = notes.waiting.get(&c.name);
    let state = match (latest, note) {
        (Some(l), _) if l.running() => ApiState {
            running: Some(ContainerStateRunning {
                started_at: time_from_nanos(l.started_at),
            }),
            ..Default::default()
        },
        (Some(l), None) if l.exited() => ApiState {
            terminated: Some(terminated(l)),
            ..Default::default()
        },
        (_, Some((reason, message))) => waiting(reason, Some(message)),
        (Some(_), None) => waiting("ContainerCreating", None),
        (None, None) => waiting(default_waiting, None),
    };
    let last = match latest {
        Some(l) if state.waiting.is_some() && l.exited() => Some(l),
        _ => obs.previous(&c.name).filter(|p| p.exited()),
    };
    let running = latest.is_some_and(|l| l.running());
    let id = latest.map(|l| l.id.as_str()).unwrap_or("");
    let has_startup = c.startup_probe.is_some();
    let started = running && (!has_startup || notes.started.get(id).copied().unwrap_or(false));
    let ready = started
        && match c.readiness_probe {
            Some(_) => notes.ready.get(id).copied().unwrap_or(false),
            None => true,
        };
    ContainerStatus {
        name: c.name.clone(),
        state: Some(state),
        last_state: Some(match last {
            Some(l) => ApiState {
                terminated: Some(terminated(l)),
                ..Default::default()
            },
            None => ApiState::default(),
        }),
        ready,
        started: Some(started),
        restart_count: latest.map(|l| l.restart_count).unwrap_or(0),
        image: c.image.clone().unwrap_or_default(),
        image_id: latest.map(|l| l.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|l| format!("containerd://{}", l.id)),
        ..Default::default()
    }
}

/// Whether every init container has finished successfully.
pub fn initialized(pod: &Pod, obs: &Observation) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .all(|c| {
            obs.latest(&c.name)
                .is_some_and(|l| l.exited() && l.exit_code == 0)
        })
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// upstream's getPhase.
pub fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    main: &[ContainerStatus],
    initialized: bool,
) -> &'static str {
    let policy = restart_policy(pod);
    if !initialized {
        let failed = init.iter().any(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_some_and(|t| t.exit_code != 0)
        });
        return if failed && policy == "Never" {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in main {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = old.iter().find(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(now()),
    };
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time,
        ..Default::default()
    }
}

/// The whole status to write to pods/status.
pub fn pod_status(pod: &Pod, obs: &Observation, notes: &Notes, host_ip: &str) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let init_done = initialized(pod, obs);
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container_status(c, obs, notes, "PodInitializing"))
        .collect();
    let main_waiting = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let main: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, obs, notes, main_waiting))
        .collect();
    let mut phase = phase(pod, &init_statuses, &main, init_done);
    // A terminal phase is final.
    if let Some(p @ ("Succeeded" | "Failed")) = old.phase.as_deref() {
        phase = if p == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    let old_conds = old.conditions.clone().unwrap_or_default();
    let unready: Vec<&str> = main
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let terminal = phase == "Succeeded" || phase == "Failed";
    let containers_ready = unready.is_empty() && !terminal;
    let (ready_reason, ready_msg) = if terminal {
        (Some("PodCompleted"), None)
    } else if !unready.is_empty() {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (None, None)
    };
    let gates_ok = spec.readiness_gates.iter().flatten().all(|g| {
        old_conds
            .iter()
            .any(|c| c.type_ == g.condition_type && c.status == "True")
    });
    let uninit: Vec<&str> = init_statuses
        .iter()
        .filter(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        })
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = vec![
        condition(
            &old_conds,
            "PodReadyToStartContainers",
            obs.sandbox_ready,
            None,
            None,
        ),
        condition(
            &old_conds,
            "Initialized",
            init_done,
            (!init_done).then_some("ContainersNotInitialized"),
            (!init_done)
                .then(|| format!("containers with incomplete status: [{}]", uninit.join(" "))),
        ),
        condition(
            &old_conds,
            "Ready",
            containers_ready && gates_ok,
            ready_reason.or((!gates_ok).then_some("ReadinessGatesNotReady")),
            ready_msg.clone(),
        ),
        condition(
            &old_conds,
            "ContainersReady",
            containers_ready,
            ready_reason,
            ready_msg,
        ),
    ];
    // PodScheduled is the scheduler's; a pod bound by name gets it here.
    match old_conds.iter().find(|c| c.type_ == "PodScheduled") {
        Some(c) => conditions.push(c.clone()),
        None => conditions.push(condition(&old_conds, "PodScheduled", true, None, None)),
    }
    // Conditions of other writers (readiness gates) stay.
    for c in &old_conds {
        if !conditions.iter().any(|n| n.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }
    let pod_ips = obs.pod_ips.clone();
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: pod_ips.first().cloned().or(old.pod_ip.clone()),
        pod_ips: if pod_ips.is_empty() {
            old.pod_ips.clone()
        } else {
            Some(pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect())
        },
        start_time: old.start_time.clone().or_else(|| Some(now())),
        qos_class: Some(crate::resources::qos_class(pod).to_string()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(main),
        message: old.message.clone(),
        reason: old.reason.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox",
                "readinessProbe": {"exec": {"command": ["true"]}}}]}
        }))
        .unwrap()
    }

    fn observed(id: &str, state: ContainerState, exit: i32, restarts: i32) -> Observed {
        Observed {
            id: id.into(),
            name: "c".into(),
            state,
            restart_count: restarts,
            created_at: 1,
            started_at: 1_700_000_000_000_000_000,
            finished_at: if state == ContainerState::ContainerExited {
                1_700_000_001_000_000_000
            } else {
                0
            },
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image_ref: "sha256:1".into(),
            hash: String::new(),
        }
    }

    #[test]
    fn running_and_readiness() {
        let p = pod("Always");
        let mut obs = Observation {
            sandbox_ready: true,
            pod_ips: vec!["10.244.1.2".into()],
            ..Default::default()
        };
        obs.containers.insert(
            "c".into(),
            vec![observed("a", ContainerState::ContainerRunning, 0, 0)],
        );
        let mut notes = Notes::default();
        let s = pod_status(&p, &obs, &notes, "192.168.0.1");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.1.2"));
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert!(!cs.ready);
        assert_eq!(cs.container_id.as_deref(), Some("containerd://a"));
        let ready = |s: &PodStatus| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .unwrap()
                .status
                .clone()
        };
        assert_eq!(ready(&s), "False");
        notes.ready.insert("a".into(), true);
        let s = pod_status(&p, &obs, &notes, "192.168.0.1");
        assert!(s.container_statuses.as_ref().unwrap()[0].ready);
        assert_eq!(ready(&s), "True");
        let types: Vec<_> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(types.contains(&t), "{t}");
        }
    }

    #[test]
    fn crash_loop_and_exit_codes() {
        let p = pod("Always");
        let mut obs = Observation::default();
        obs.containers.insert(
            "c".into(),
            vec![
                observed("b", ContainerState::ContainerExited, 3, 1),
                observed("a", ContainerState::ContainerExited, 3, 0),
            ],
        );
        let mut notes = Notes::default();
        notes.waiting.insert(
            "c".into(),
            ("CrashLoopBackOff".into(), "back-off 10s".into()),
        );
        let s = pod_status(&p, &obs, &notes, "h");
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 3);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        assert_eq!(cs.restart_count, 1);
        assert_eq!(s.phase.as_deref(), Some("Running"));

        let never = pod("Never");
        let notes = Notes::default();
        let mut obs = Observation::default();
        obs.containers.insert(
            "c".into(),
            vec![observed("a", ContainerState::ContainerExited, 3, 0)],
        );
        let s = pod_status(&never, &obs, &notes, "h");
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let t = s.container_statuses.as_ref().unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
        obs.containers.insert(
            "c".into(),
            vec![observed("a", ContainerState::ContainerExited, 0, 0)],
        );
        let s = pod_status(&never, &obs, &notes, "h");
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn nothing_yet_is_pending() {
        let p = pod("Always");
        let s = pod_status(&p, &Observation::default(), &Notes::default(), "h");
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            cs.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
    }
}
