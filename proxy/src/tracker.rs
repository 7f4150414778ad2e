//! Which Services changed since the last sync. The reflectors
//! (`component_base::reflect`) only say "something changed"; this compares
//! the resourceVersions of every Service and Endpoints object in the stores
//! with those seen at the last look. That costs a pass over the stores'
//! pointers (microseconds for thousands of Services) and needs no event
//! bookkeeping: a relist after a broken watch, or a Service deleted while
//! the watch was down, is seen like any other change. Services and their
//! Endpoints share a name, so a change to either marks the Service.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};

use crate::model::ServiceName;

/// The current objects of one changed Service (None: not in the store).
pub struct Changed {
    pub name: ServiceName,
    pub service: Option<Arc<Service>>,
    pub endpoints: Option<Arc<Endpoints>>,
}

/// resourceVersions (Service's, Endpoints') as of the last look.
type Versions = (Option<String>, Option<String>);

/// A Service's objects now in the stores.
type Objects = (Option<Arc<Service>>, Option<Arc<Endpoints>>);

#[derive(Default)]
pub struct Tracker {
    seen: HashMap<ServiceName, Versions>,
}

impl Tracker {
    /// The Services whose Service or Endpoints object appeared, changed or
    /// went since the last call, given the stores' current contents.
    pub fn changes(
        &mut self,
        services: Vec<Arc<Service>>,
        endpoints: Vec<Arc<Endpoints>>,
    ) -> Vec<Changed> {
        let mut now: HashMap<ServiceName, Objects> = HashMap::with_capacity(services.len());
        for s in services {
            let name = ServiceName::of(&s.metadata);
            now.entry(name).or_default().0 = Some(s);
        }
        for e in endpoints {
            let name = ServiceName::of(&e.metadata);
            now.entry(name).or_default().1 = Some(e);
        }
        let mut out = Vec::new();
        let mut seen = HashMap::with_capacity(now.len());
        for (name, (service, endpoints)) in now {
            let versions = (
                service.as_ref().and_then(|s| version(&s.metadata)),
                endpoints.as_ref().and_then(|e| version(&e.metadata)),
            );
            // An object without a resourceVersion counts as changed: the
            // proxier finds out cheaply that its rules are the same.
            let unchanged = versions.0.is_some() == service.is_some()
                && versions.1.is_some() == endpoints.is_some()
                && self.seen.get(&name) == Some(&versions);
            self.seen.remove(&name);
            if !unchanged {
                out.push(Changed {
                    name: name.clone(),
                    service,
                    endpoints,
                });
            }
            seen.insert(name, versions);
        }
        // Whatever is left was seen before and is gone now.
        for name in self.seen.drain().map(|(name, _)| name) {
            out.push(Changed {
                name,
                service: None,
                endpoints: None,
            });
        }
        self.seen = seen;
        out
    }
}

fn version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    meta.resource_version.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, rv: &str) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}),
            )
            .unwrap(),
        )
    }

    fn eps(name: &str, rv: &str) -> Arc<Endpoints> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}),
            )
            .unwrap(),
        )
    }

    fn names(c: &[Changed]) -> Vec<String> {
        let mut n: Vec<String> = c.iter().map(|c| c.name.to_string()).collect();
        n.sort();
        n
    }

    #[test]
    fn only_changed_services_are_reported() {
        let mut t = Tracker::default();
        let first = t.changes(vec![svc("a", "1"), svc("b", "2")], vec![eps("a", "3")]);
        assert_eq!(names(&first), ["ns/a", "ns/b"]);
        assert!(t
            .changes(vec![svc("a", "1"), svc("b", "2")], vec![eps("a", "3")])
            .is_empty());
        // b's Endpoints appear, a's change: both; c is new.
        let next = t.changes(
            vec![svc("a", "1"), svc("b", "2"), svc("c", "9")],
            vec![eps("a", "4"), eps("b", "5")],
        );
        assert_eq!(names(&next), ["ns/a", "ns/b", "ns/c"]);
        let a = next.iter().find(|c| c.name.name == "a").unwrap();
        assert!(a.service.is_some() && a.endpoints.is_some());
        // b goes entirely, a's Endpoints go.
        let gone = t.changes(vec![svc("a", "1"), svc("c", "9")], vec![]);
        assert_eq!(names(&gone), ["ns/a", "ns/b"]);
        let b = gone.iter().find(|c| c.name.name == "b").unwrap();
        assert!(b.service.is_none() && b.endpoints.is_none());
        assert!(t
            .changes(vec![svc("a", "1"), svc("c", "9")], vec![])
            .is_empty());
    }

    #[test]
    fn objects_without_a_version_always_count() {
        let mut t = Tracker::default();
        let bare: Arc<Service> =
            Arc::new(serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap());
        assert_eq!(t.changes(vec![bare.clone()], vec![]).len(), 1);
        assert_eq!(t.changes(vec![bare], vec![]).len(), 1);
    }
}
