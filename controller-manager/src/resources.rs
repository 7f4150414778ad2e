//! The resources the apiserver serves, from discovery: which the garbage
//! collector watches, which the namespace controller empties, and how an
//! ownerReference's apiVersion + kind maps to a resource (upstream's
//! RESTMapper).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use kube::core::discovery::Scope;
use kube::discovery::{ApiResource, Discovery};
use kube::Client;
use tokio::time::Instant;

/// One served resource (its preferred version).
#[derive(Debug, Clone, PartialEq)]
pub struct ServedResource {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl ServedResource {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// "pods" or "leases.coordination.k8s.io".
    pub fn qualified_name(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// A discovery snapshot that can be refreshed (at most every few seconds).
pub struct Resources {
    client: Client,
    state: RwLock<(Vec<ServedResource>, Option<Instant>)>,
}

const MIN_REFRESH: Duration = Duration::from_secs(5);

impl Resources {
    pub fn new(client: Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            state: RwLock::new((Vec::new(), None)),
        })
    }

    /// Run discovery again (unless it ran moments ago).
    pub async fn refresh(&self) -> Result<(), kube::Error> {
        if self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .is_some_and(|t| t.elapsed() < MIN_REFRESH)
        {
            return Ok(());
        }
        let discovery = Discovery::new(self.client.clone()).run().await?;
        let mut found = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                found.push(ServedResource {
                    namespaced: caps.scope == Scope::Namespaced,
                    verbs: caps.operations.clone(),
                    resource: ar,
                });
            }
        }
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = (found, Some(Instant::now()));
        Ok(())
    }

    pub fn all(&self) -> Vec<ServedResource> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// The resource for an apiVersion + kind (another version of the same
    /// group and kind will do, as objects are served in one version here).
    pub fn for_kind(&self, api_version: &str, kind: &str) -> Option<ServedResource> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let all = self.state.read().unwrap_or_else(|e| e.into_inner());
        let same_kind = |r: &&ServedResource| r.resource.group == group && r.resource.kind == kind;
        all.0
            .iter()
            .filter(same_kind)
            .find(|r| r.resource.version == version)
            .or_else(|| all.0.iter().find(same_kind))
            .cloned()
    }

    /// Like `for_kind`, refreshing discovery once when the kind is unknown.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Option<ServedResource> {
        if let Some(r) = self.for_kind(api_version, kind) {
            return Some(r);
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "discovery failed");
        }
        self.for_kind(api_version, kind)
    }
}
