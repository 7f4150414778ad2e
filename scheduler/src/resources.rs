//! What a pod asks for and what a node offers, as integers: cpu in
//! milli-cores, memory and ephemeral storage in bytes, other resources
//! (extended, hugepages) as plain counts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use component_base::quantity;

/// Upstream's defaults for containers without requests, used only to score
/// (so that many request-less pods do not all land on one node).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of every resource the scheduler counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Everything else (extended resources, hugepages), by name; rarely any.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// From a resource list, reading cpu as milli-units and the rest as units;
    /// an unparsable quantity counts as zero (the apiserver validated it).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resources::default();
        for (name, q) in list {
            match name.as_str() {
                "cpu" => r.milli_cpu = quantity::milli_value(&q.0).unwrap_or(0),
                "memory" => r.memory = quantity::value(&q.0).unwrap_or(0),
                "ephemeral-storage" => r.ephemeral_storage = quantity::value(&q.0).unwrap_or(0),
                "pods" => {}
                other => {
                    r.scalar
                        .insert(other.to_string(), quantity::value(&q.0).unwrap_or(0));
                }
            }
        }
        r
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e -= v;
            if *e == 0 {
                self.scalar.remove(k);
            }
        }
    }

    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Cpu and memory with upstream's defaults filled in for containers that
/// request none: what scoring counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonZero {
    pub milli_cpu: i64,
    pub memory: i64,
}

impl NonZero {
    fn of(r: &Resources, requests: Option<&BTreeMap<String, Quantity>>) -> Self {
        let has = |name: &str| requests.is_some_and(|l| l.contains_key(name));
        NonZero {
            milli_cpu: if has("cpu") {
                r.milli_cpu
            } else {
                DEFAULT_MILLI_CPU_REQUEST
            },
            memory: if has("memory") {
                r.memory
            } else {
                DEFAULT_MEMORY_REQUEST
            },
        }
    }

    fn add(&mut self, o: NonZero) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
    }

    fn max_with(&mut self, o: NonZero) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
    }
}

/// A pod's effective requests, as upstream's resource helper computes them:
/// the sum of its containers plus restartable (sidecar) init containers, or
/// the largest init-container step if that is more, plus the pod overhead.
pub fn pod_requests(spec: &PodSpec) -> (Resources, NonZero) {
    let container = |c: &Container| {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let r = requests.map(Resources::from_list).unwrap_or_default();
        let nz = NonZero::of(&r, requests);
        (r, nz)
    };
    let mut sum = Resources::default();
    let mut sum_nz = NonZero::default();
    for c in &spec.containers {
        let (r, nz) = container(c);
        sum.add(&r);
        sum_nz.add(nz);
    }
    let mut sidecars = Resources::default();
    let mut sidecars_nz = NonZero::default();
    let mut init_max = Resources::default();
    let mut init_max_nz = NonZero::default();
    for c in spec.init_containers.iter().flatten() {
        let (r, nz) = container(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            sidecars_nz.add(nz);
            init_max.max_with(&sidecars);
            init_max_nz.max_with(sidecars_nz);
        } else {
            let mut step = r;
            step.add(&sidecars);
            let mut step_nz = nz;
            step_nz.add(sidecars_nz);
            init_max.max_with(&step);
            init_max_nz.max_with(step_nz);
        }
    }
    sum.add(&sidecars);
    sum_nz.add(sidecars_nz);
    sum.max_with(&init_max);
    sum_nz.max_with(init_max_nz);
    if let Some(overhead) = &spec.overhead {
        let o = Resources::from_list(overhead);
        sum.add(&o);
        sum_nz.add(NonZero {
            milli_cpu: o.milli_cpu,
            memory: o.memory,
        });
    }
    (sum, sum_nz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn c(cpu: Option<&str>, mem: Option<&str>) -> Container {
        let mut requests = BTreeMap::new();
        if let Some(cpu) = cpu {
            requests.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if let Some(mem) = mem {
            requests.insert("memory".to_string(), Quantity(mem.into()));
        }
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sums_containers_and_defaults_for_scoring() {
        let spec = PodSpec {
            containers: vec![c(Some("250m"), Some("64Mi")), c(None, None)],
            ..Default::default()
        };
        let (r, nz) = pod_requests(&spec);
        assert_eq!(r.milli_cpu, 250);
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(nz.milli_cpu, 350);
        assert_eq!(nz.memory, (64 << 20) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn init_containers_take_the_max() {
        let spec = PodSpec {
            containers: vec![c(Some("100m"), Some("1Mi"))],
            init_containers: Some(vec![c(Some("2"), Some("1Mi"))]),
            ..Default::default()
        };
        let (r, _) = pod_requests(&spec);
        assert_eq!(r.milli_cpu, 2000);
        assert_eq!(r.memory, 1 << 20);
    }

    #[test]
    fn sidecars_add_up() {
        let mut sidecar = c(Some("500m"), None);
        sidecar.restart_policy = Some("Always".into());
        let spec = PodSpec {
            containers: vec![c(Some("1"), None)],
            init_containers: Some(vec![sidecar]),
            ..Default::default()
        };
        assert_eq!(pod_requests(&spec).0.milli_cpu, 1500);
    }
}
