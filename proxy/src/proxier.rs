//! The proxier's state between syncs: what the Services want (`desired`),
//! what the kernel has (`applied`), which Services changed since the last
//! sync, and the chains left to delete. A full sync rebuilds the table from
//! `desired` in one transaction; a partial sync sends one transaction with
//! only the changed Services' chains and map elements.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::model::{ServiceName, ServicePort};
use crate::nft::{Nft, NftError};
use crate::rules::{self, AffinityEntries, Settings, TABLE};

/// How long a flushed chain waits before it is deleted (upstream: kernels
/// before 6.2 notice late that no map element points at it any more).
const STALE_CHAIN_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    Full,
    Partial,
    /// Nothing had changed.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct SyncReport {
    pub kind: SyncKind,
    pub took: Duration,
    /// Services whose rules changed.
    pub services_changed: usize,
    /// Rules in the table after the sync.
    pub rules: usize,
}

pub struct Proxier {
    nft: Nft,
    settings: Settings,
    desired: BTreeMap<ServiceName, Vec<ServicePort>>,
    applied: BTreeMap<ServiceName, Vec<ServicePort>>,
    /// Which Service owns each map key in `applied`.
    claims: HashMap<(&'static str, String), ServiceName>,
    /// Services with a port left out of `applied` because another Service
    /// holds its address and port (bad data); a partial sync that frees a
    /// key makes the next sync a full one, which may let them in.
    shut_out: BTreeSet<ServiceName>,
    dirty: BTreeSet<ServiceName>,
    need_full: bool,
    /// Chains flushed by a partial sync, to delete later, and since when.
    stale_chains: BTreeMap<String, Instant>,
    rules: usize,
}

impl Proxier {
    pub fn new(nft: Nft, settings: Settings) -> Self {
        Self {
            nft,
            settings,
            desired: BTreeMap::new(),
            applied: BTreeMap::new(),
            claims: HashMap::new(),
            shut_out: BTreeSet::new(),
            dirty: BTreeSet::new(),
            need_full: true,
            stale_chains: BTreeMap::new(),
            rules: 0,
        }
    }

    /// Set a Service's ports (empty: the Service is gone or not proxied).
    pub fn update_service(&mut self, name: ServiceName, ports: Vec<ServicePort>) {
        let unchanged = match self.desired.get(&name) {
            Some(old) => *old == ports,
            None => ports.is_empty(),
        };
        if unchanged {
            return;
        }
        if ports.is_empty() {
            self.desired.remove(&name);
        } else {
            self.desired.insert(name.clone(), ports);
        }
        self.dirty.insert(name);
    }

    /// The next sync rebuilds everything.
    pub fn request_full_sync(&mut self) {
        self.need_full = true;
    }

    /// Settings change only with a full sync (e.g. new node addresses).
    pub fn set_settings(&mut self, settings: Settings) {
        if settings != self.settings {
            self.settings = settings;
            self.need_full = true;
        }
    }

    /// Whether [`Proxier::sync`] has something to do now.
    pub fn has_pending_work(&self) -> bool {
        self.need_full
            || !self.dirty.is_empty()
            || self
                .housekeeping_due()
                .is_some_and(|due| due <= Instant::now())
    }

    /// When the oldest chain left behind by a partial sync may be deleted
    /// (never while a full sync, which removes them anyway, is pending:
    /// that would bypass the caller's backoff after a failed one).
    pub fn housekeeping_due(&self) -> Option<Instant> {
        if self.need_full {
            return None;
        }
        self.stale_chains
            .values()
            .min()
            .map(|since| *since + STALE_CHAIN_DELAY)
    }

    /// Bring the table in line with `desired`: fully when asked, else only
    /// the changed Services. A partial sync that fails (or cannot be made,
    /// see [`Proxier::partial_sync`]) falls back to a full sync at once; if
    /// that fails too, the next sync is a full one.
    pub fn sync(&mut self) -> Result<SyncReport, NftError> {
        let started = Instant::now();
        if !self.need_full {
            self.delete_stale_chains();
            if self.dirty.is_empty() {
                return Ok(self.report(SyncKind::Nothing, started, 0));
            }
            match self.partial_sync() {
                Ok(Some(changed)) => return Ok(self.report(SyncKind::Partial, started, changed)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "partial sync failed: falling back to a full sync")
                }
            }
        }
        self.need_full = true;
        self.full_sync()?;
        Ok(self.report(SyncKind::Full, started, self.desired.len()))
    }

    fn report(&self, kind: SyncKind, started: Instant, services_changed: usize) -> SyncReport {
        SyncReport {
            kind,
            took: started.elapsed(),
            services_changed,
            rules: self.rules,
        }
    }

    /// The whole table anew in one transaction (which also replaces
    /// whatever was changed behind our back), keeping live ClientIP
    /// affinity entries.
    fn full_sync(&mut self) -> Result<(), NftError> {
        // Two Services claiming one map key (bad data): the first in name
        // order wins, the other port is left out until the conflict goes.
        let mut claims = HashMap::new();
        let mut shut_out = BTreeSet::new();
        let mut applied: BTreeMap<ServiceName, Vec<ServicePort>> = BTreeMap::new();
        for (name, ports) in &self.desired {
            for sp in ports {
                let keys = rules::element_keys(sp);
                // (Two ports of one Service may share a hairpin element.)
                if let Some((key, owner)) = keys.iter().find_map(|k| {
                    claims
                        .get(k)
                        .filter(|owner| *owner != name)
                        .map(|owner| (k, owner))
                }) {
                    tracing::warn!(service = %sp.display_name(), key = %key.1, owner = %owner, "address and port already taken by another Service: port skipped");
                    shut_out.insert(name.clone());
                    continue;
                }
                for k in keys {
                    claims.insert(k, name.clone());
                }
                applied.entry(name.clone()).or_default().push(sp.clone());
            }
        }
        let affinity = if self.uses_affinity() {
            self.live_affinity()
        } else {
            AffinityEntries::new()
        };
        let table = rules::full(applied.values().flatten(), &self.settings, &affinity);
        self.nft.run(&table.text)?;
        self.fresh_context();
        self.rules = table.rules;
        self.applied = applied;
        self.claims = claims;
        self.shut_out = shut_out;
        self.dirty.clear();
        self.stale_chains.clear();
        self.need_full = false;
        Ok(())
    }

    /// One transaction for the changed Services; None when a change cannot
    /// be made partially (a map key another Service holds, or a key freed
    /// that a shut-out Service may want).
    fn partial_sync(&mut self) -> Result<Option<usize>, NftError> {
        let mut text = String::new();
        let mut stale = Vec::new();
        let mut changed = Vec::new();
        let mut rule_delta: isize = 0;
        let empty = Vec::new();
        for name in &self.dirty {
            let old = self.applied.get(name).unwrap_or(&empty);
            let new = self.desired.get(name).unwrap_or(&empty);
            if old == new {
                continue;
            }
            let taken = new
                .iter()
                .flat_map(rules::element_keys)
                .any(|key| self.claims.get(&key).is_some_and(|owner| owner != name));
            if taken || self.shut_out.contains(name) {
                return Ok(None);
            }
            if !self.shut_out.is_empty() {
                let new_keys: BTreeSet<_> = new.iter().flat_map(rules::element_keys).collect();
                if old
                    .iter()
                    .flat_map(rules::element_keys)
                    .any(|k| !new_keys.contains(&k))
                {
                    return Ok(None);
                }
            }
            let old_r = rules::render_all(old, &self.settings);
            let new_r = rules::render_all(new, &self.settings);
            rule_delta += new_r.rule_count() as isize - old_r.rule_count() as isize;
            stale.extend(rules::partial(&old_r, &new_r, &mut text));
            for chain in &new_r.chains {
                self.stale_chains.remove(&chain.name);
            }
            changed.push(name.clone());
        }
        if !text.is_empty() {
            self.nft.run(&text)?;
        }
        let now = Instant::now();
        for chain in stale {
            self.stale_chains.insert(chain, now);
        }
        for name in &changed {
            if let Some(old) = self.applied.remove(name) {
                for key in old.iter().flat_map(rules::element_keys) {
                    self.claims.remove(&key);
                }
            }
            if let Some(new) = self.desired.get(name) {
                for key in new.iter().flat_map(rules::element_keys) {
                    self.claims.insert(key, name.clone());
                }
                self.applied.insert(name.clone(), new.clone());
            }
        }
        self.rules = self.rules.saturating_add_signed(rule_delta);
        self.dirty.clear();
        Ok(Some(changed.len()))
    }

    /// After a full sync the context's cache holds the whole table, and its
    /// next command would free all of it first (~15 ms with 1,000 Services,
    /// paid by the next partial sync). A fresh context takes over; the old
    /// one is freed on a thread of its own.
    fn fresh_context(&mut self) {
        match Nft::new() {
            Ok(fresh) => {
                let old = std::mem::replace(&mut self.nft, fresh);
                let freeing = std::thread::Builder::new()
                    .name("nft-free".into())
                    .spawn(move || drop(old));
                if let Err(e) = freeing {
                    tracing::debug!(error = %e, "no thread to free the old nft context");
                }
            }
            Err(e) => tracing::warn!(error = %e, "new nft context"),
        }
    }

    /// Delete chains flushed by an earlier partial sync; a failure only
    /// leaves empty chains until the next full sync.
    fn delete_stale_chains(&mut self) {
        let now = Instant::now();
        let ready: Vec<String> = self
            .stale_chains
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= STALE_CHAIN_DELAY)
            .map(|(c, _)| c.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        let mut text = String::new();
        for chain in &ready {
            text.push_str(&format!("delete chain ip {TABLE} {chain}\n"));
        }
        if let Err(e) = self.nft.run(&text) {
            tracing::info!(error = %e, "stale chains stay until the next full sync");
        }
        for chain in ready {
            self.stale_chains.remove(&chain);
        }
    }

    fn uses_affinity(&self) -> bool {
        self.applied
            .values()
            .flatten()
            .any(|sp| sp.affinity_timeout.is_some() && !sp.endpoints.is_empty())
    }

    /// The affinity entries now in the kernel, to keep across a full sync.
    fn live_affinity(&mut self) -> AffinityEntries {
        match self.nft.list_json(&format!("list sets table ip {TABLE}")) {
            Ok(json) => parse_affinity(&json),
            Err(e) => {
                tracing::info!(error = %e, "could not read affinity sets; clients may move to another endpoint");
                AffinityEntries::new()
            }
        }
    }

    /// Rules in the table after the last sync.
    pub fn rule_count(&self) -> usize {
        self.rules
    }

    /// Remove the table.
    pub fn delete_table(&mut self) -> Result<(), NftError> {
        self.nft.delete_table()
    }
}

/// Affinity sets' elements from `nft -j list sets`.
fn parse_affinity(json: &serde_json::Value) -> AffinityEntries {
    let mut out = AffinityEntries::new();
    for item in json
        .get("nftables")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let Some(set) = item.get("set") else { continue };
        if set.get("table").and_then(|t| t.as_str()) != Some(TABLE) {
            continue;
        }
        let Some(name) = set.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        if !rules::is_affinity_set(name) {
            continue;
        }
        let mut live = Vec::new();
        for elem in set
            .get("elem")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            let (val, expires) = match elem.get("elem") {
                Some(e) => (
                    e.get("val").and_then(|v| v.as_str()),
                    e.get("expires").and_then(|v| v.as_u64()),
                ),
                None => (elem.as_str(), None),
            };
            if let (Some(ip), Some(expires)) =
                (val.and_then(|v| v.parse::<Ipv4Addr>().ok()), expires)
            {
                live.push((ip, expires));
            }
        }
        if !live.is_empty() {
            out.insert(name.to_string(), live);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Protocol};

    fn port(name: &str, ip: &str, eps: &[&str], affinity: Option<u32>) -> ServicePort {
        ServicePort {
            service: ServiceName::new("t", name),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: ip.parse().unwrap(),
            port: 80,
            node_port: None,
            external_ips: vec![],
            affinity_timeout: affinity,
            endpoints: eps
                .iter()
                .map(|e| Endpoint {
                    ip: e.parse().unwrap(),
                    port: 8080,
                })
                .collect(),
        }
    }

    fn set(p: &mut Proxier, name: &str, ports: Vec<ServicePort>) {
        p.update_service(ServiceName::new("t", name), ports);
    }

    fn table(p: &mut Proxier) -> String {
        p.nft.run("list table ip kube-proxy").unwrap()
    }

    /// Against the kernel, in a network namespace of this test's own (a
    /// thread that unshared it: nothing here is seen outside; needs root).
    #[test]
    fn syncs_against_the_kernel() {
        std::thread::spawn(|| {
            // SAFETY: unshare(2) of this thread's network namespace.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            let mut p = Proxier::new(Nft::new().unwrap(), Settings::default());
            set(
                &mut p,
                "a",
                vec![port("a", "10.96.0.1", &["10.244.0.2", "10.244.0.3"], None)],
            );
            set(
                &mut p,
                "b",
                vec![port("b", "10.96.0.2", &["10.244.0.4"], Some(60))],
            );
            assert_eq!(p.sync().unwrap().kind, SyncKind::Full);
            let b_before: Vec<String> = table(&mut p)
                .lines()
                .filter(|l| l.contains("t/b/"))
                .map(String::from)
                .collect();

            // One endpoint of a changes: partial, b untouched.
            set(
                &mut p,
                "a",
                vec![port("a", "10.96.0.1", &["10.244.0.2", "10.244.0.5"], None)],
            );
            let r = p.sync().unwrap();
            assert_eq!((r.kind, r.services_changed), (SyncKind::Partial, 1));
            let t = table(&mut p);
            assert!(t.contains("10.244.0.5 . 8080"), "{t}");
            assert!(!t.contains("10.244.0.3"), "{t}");
            let b_after: Vec<String> = t
                .lines()
                .filter(|l| l.contains("t/b/"))
                .map(String::from)
                .collect();
            assert_eq!(b_before, b_after);
            assert_eq!(p.sync().unwrap().kind, SyncKind::Nothing);

            // c claims a's address and port: a full sync, c left out.
            set(
                &mut p,
                "c",
                vec![port("c", "10.96.0.1", &["10.244.0.9"], None)],
            );
            assert_eq!(p.sync().unwrap().kind, SyncKind::Full);
            let t = table(&mut p);
            assert!(t.contains("t/a/") && !t.contains("t/c/"), "{t}");
            // a goes: the key is free, c gets it (full sync again).
            set(&mut p, "a", vec![]);
            assert_eq!(p.sync().unwrap().kind, SyncKind::Full);
            let t = table(&mut p);
            assert!(!t.contains("t/a/") && t.contains("t/c/"), "{t}");
            assert!(t.contains("10.244.0.9 . 8080"), "{t}");

            // b loses an endpoint: its endpoint chain is flushed now and
            // deleted a second later, without any other change.
            set(&mut p, "b", vec![port("b", "10.96.0.2", &[], Some(60))]);
            assert_eq!(p.sync().unwrap().kind, SyncKind::Partial);
            assert!(table(&mut p).contains("chain endpoint-"));
            let due = p.housekeeping_due().expect("a stale chain");
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            assert!(p.has_pending_work());
            assert_eq!(p.sync().unwrap().kind, SyncKind::Nothing);
            let t = table(&mut p);
            assert!(!t.contains("chain endpoint-") && !t.contains("t/b/"), "{t}");
            assert!(
                t.contains("10.96.0.2 . tcp . 80 : goto reject-chain"),
                "{t}"
            );
            assert!(p.housekeeping_due().is_none());

            // The table deleted behind our back: the partial sync fails and
            // a full one rebuilds it at once.
            p.nft.delete_table().unwrap();
            set(
                &mut p,
                "c",
                vec![port("c", "10.96.0.1", &["10.244.0.8"], None)],
            );
            assert_eq!(p.sync().unwrap().kind, SyncKind::Full);
            assert!(table(&mut p).contains("10.244.0.8 . 8080"));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn affinity_from_nft_json() {
        let json = serde_json::json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"set": {"family": "ip", "name": "affinity-ABC-x", "table": "kube-proxy", "type": "ipv4_addr",
                "elem": [{"elem": {"val": "10.244.0.5", "expires": 99}}, "10.244.0.6"]}},
            {"set": {"family": "ip", "name": "nodeport-ips", "table": "kube-proxy", "elem": ["10.0.0.1"]}},
            {"set": {"family": "ip", "name": "affinity-other", "table": "someone-else",
                "elem": [{"elem": {"val": "10.244.0.7", "expires": 5}}]}}
        ]});
        let live = parse_affinity(&json);
        assert_eq!(live.len(), 1);
        assert_eq!(
            live["affinity-ABC-x"],
            vec![("10.244.0.5".parse().unwrap(), 99)]
        );
    }
}
