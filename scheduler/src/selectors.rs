//! Services and ReplicationControllers, known only by their label
//! selectors: they make pods siblings that default spreading keeps apart
//! (upstream's DefaultSelector).

use std::collections::{BTreeMap, HashMap};

use crate::plugins::pod_topology_spread::SpreadSelector;
use crate::pod_info::PodInfo;

pub type Selector = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub struct Selectors {
    /// namespace -> service name -> spec.selector (services without one are left out).
    services: HashMap<String, HashMap<String, Selector>>,
    /// namespace -> RC name -> spec.selector
    rcs: HashMap<String, HashMap<String, Selector>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    ReplicationController,
}

impl Selectors {
    pub fn set(&mut self, kind: Kind, namespace: &str, name: &str, selector: Option<Selector>) {
        let map = match kind {
            Kind::Service => &mut self.services,
            Kind::ReplicationController => &mut self.rcs,
        };
        match selector.filter(|s| !s.is_empty()) {
            Some(s) => {
                map.entry(namespace.to_string())
                    .or_default()
                    .insert(name.to_string(), s);
            }
            None => self.remove(kind, namespace, name),
        }
    }

    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) {
        let map = match kind {
            Kind::Service => &mut self.services,
            Kind::ReplicationController => &mut self.rcs,
        };
        if let Some(ns) = map.get_mut(namespace) {
            ns.remove(name);
            if ns.is_empty() {
                map.remove(namespace);
            }
        }
    }

    /// Every (namespace, name) known of a kind, for relists.
    pub fn keys(&self, kind: Kind) -> Vec<(String, String)> {
        let map = match kind {
            Kind::Service => &self.services,
            Kind::ReplicationController => &self.rcs,
        };
        map.iter()
            .flat_map(|(ns, m)| m.keys().map(move |n| (ns.clone(), n.clone())))
            .collect()
    }

    /// The merged selectors of the Services selecting the pod and of its
    /// controlling ReplicationController; None when there are none.
    pub fn spread_selector(&self, pod: &PodInfo) -> Option<SpreadSelector> {
        let mut labels = Selector::new();
        for selector in self
            .services
            .get(&pod.namespace)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                labels.extend(selector.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        if let Some(owner) = &pod.controller {
            if owner.kind == "ReplicationController" && owner.api_version == "v1" {
                if let Some(selector) = self
                    .rcs
                    .get(&pod.namespace)
                    .and_then(|m| m.get(&owner.name))
                {
                    labels.extend(selector.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        (!labels.is_empty()).then(|| SpreadSelector {
            namespace: pod.namespace.clone(),
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_info::ControllerRef;
    use k8s_openapi::api::core::v1::Pod;

    fn sel(pairs: &[(&str, &str)]) -> Selector {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn merges_services_and_the_controlling_rc() {
        let mut s = Selectors::default();
        s.set(Kind::Service, "ns", "web", Some(sel(&[("app", "web")])));
        s.set(Kind::Service, "ns", "other", Some(sel(&[("app", "db")])));
        s.set(
            Kind::ReplicationController,
            "ns",
            "web-rc",
            Some(sel(&[("app", "web"), ("tier", "front")])),
        );
        let mut pod = PodInfo::from_pod(&Pod::default());
        pod.namespace = "ns".into();
        pod.labels = sel(&[("app", "web"), ("tier", "front"), ("x", "y")]);
        assert_eq!(
            s.spread_selector(&pod).unwrap().labels,
            sel(&[("app", "web")])
        );
        pod.controller = Some(ControllerRef {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web-rc".into(),
        });
        assert_eq!(
            s.spread_selector(&pod).unwrap().labels,
            sel(&[("app", "web"), ("tier", "front")])
        );
        pod.namespace = "elsewhere".into();
        assert!(s.spread_selector(&pod).is_none());
    }
}
