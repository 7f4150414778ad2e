//! The scheduling queue, as upstream's: an active queue (highest priority,
//! then oldest, first), a backoff queue (pods waiting out 1s, 2s, 4s ... up to
//! 10s after each failed attempt) and the unschedulable pods, which are only
//! retried when the cluster changes (a node added or updated, a pod removed)
//! or after five minutes. Nothing is retried in a busy loop.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::pod_info::{PodInfo, PodKey};

#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Scheduling attempts so far (counted when popped).
    pub attempts: u32,
    /// When the pod first entered the queue (for the attempt metrics).
    pub first_seen: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Active,
    Backoff,
    Unschedulable,
    /// spec.schedulingGates not empty.
    Gated,
}

#[derive(Debug)]
struct Entry {
    pod: QueuedPod,
    location: Location,
    /// Bumped at every move, so stale heap items are recognised.
    generation: u64,
    backoff_until: Instant,
    unschedulable_since: Instant,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    seq: u64,
    key: PodKey,
    generation: u64,
}

impl Ord for ActiveItem {
    fn cmp(&self, o: &Self) -> Ordering {
        // Max-heap: higher priority first, then lower sequence (older) first.
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// How long a pod stays unschedulable without any cluster event before
    /// it is tried again anyway.
    pub max_in_unschedulable: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        }
    }
}

/// Pods per place, for the pending-pods gauge.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

#[derive(Debug)]
pub struct SchedulingQueue {
    entries: HashMap<PodKey, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    seq: u64,
    cfg: Backoff,
    counts: Counts,
    /// When unschedulable pods were last checked for having waited too long.
    leftover_checked: Option<Instant>,
}

/// How often unschedulable pods are checked for having waited too long (upstream: 30s).
const LEFTOVER_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

impl SchedulingQueue {
    pub fn new(cfg: Backoff) -> Self {
        SchedulingQueue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            cfg,
            counts: Counts::default(),
            leftover_checked: None,
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &PodKey> {
        self.entries.keys()
    }

    /// A pending pod as the watch delivers it: new ones go to the active
    /// queue; an unschedulable pod whose spec changed is tried again.
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key();
        let Some(entry) = self.entries.get_mut(&key) else {
            let pod = QueuedPod {
                info: info.clone(),
                attempts: 0,
                first_seen: now,
            };
            self.insert(key, pod, now, now, now);
            return;
        };
        let changed = entry.pod.info.scheduling_changed(&info);
        entry.pod.info = info.clone();
        let location = entry.location;
        let gated = info.gated;
        match location {
            Location::Gated if !gated => self.relocate(&key, now),
            Location::Active | Location::Backoff if gated => self.relocate(&key, now),
            Location::Unschedulable if changed => self.relocate(&key, now),
            _ => {}
        }
    }

    /// The next pod to schedule, with its attempt counted.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(item) = self.active.pop() {
            let live = self
                .entries
                .get(&item.key)
                .is_some_and(|e| e.location == Location::Active && e.generation == item.generation);
            if !live {
                continue;
            }
            let mut entry = self.entries.remove(&item.key).expect("checked");
            self.counts.active -= 1;
            entry.pod.attempts += 1;
            return Some(entry.pod);
        }
        None
    }

    /// A pod that fit nowhere: it waits for a cluster change (and its backoff).
    pub fn add_unschedulable(&mut self, pod: QueuedPod, now: Instant) {
        let until = now + self.backoff_for(pod.attempts);
        let key = pod.info.key();
        self.remove(&key);
        self.place(key, pod, Location::Unschedulable, until, now);
    }

    /// A pod whose attempt failed with an error (e.g. binding): retried
    /// after its backoff.
    pub fn add_backoff(&mut self, pod: QueuedPod, now: Instant) {
        let until = now + self.backoff_for(pod.attempts);
        let key = pod.info.key();
        self.remove(&key);
        self.place(key, pod, Location::Backoff, until, now);
    }

    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(e) => {
                self.count(e.location, -1);
                true
            }
            None => false,
        }
    }

    /// A cluster change that may make unschedulable pods fit: move them all
    /// to the active queue, or to the backoff queue while their backoff runs.
    pub fn move_all_unschedulable(&mut self, now: Instant) {
        let keys: Vec<PodKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.location == Location::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.relocate(&key, now);
        }
    }

    /// Move pods whose backoff ended to the active queue, and pods
    /// unschedulable for too long back into play.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((until, generation, key))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            let live = self
                .entries
                .get(&key)
                .is_some_and(|e| e.location == Location::Backoff && e.generation == generation);
            if live {
                self.relocate(&key, now);
            }
        }
        let due = self
            .leftover_checked
            .is_none_or(|t| now >= t + LEFTOVER_FLUSH_INTERVAL);
        if self.counts.unschedulable > 0 && due {
            self.leftover_checked = Some(now);
            let stale: Vec<PodKey> = self
                .entries
                .iter()
                .filter(|(_, e)| {
                    e.location == Location::Unschedulable
                        && now.duration_since(e.unschedulable_since)
                            >= self.cfg.max_in_unschedulable
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                self.relocate(&key, now);
            }
        }
    }

    /// When `flush` next has something to do.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((t, _, _))| *t);
        let unschedulable = (self.counts.unschedulable > 0).then(|| {
            self.leftover_checked
                .map_or_else(Instant::now, |t| t + LEFTOVER_FLUSH_INTERVAL)
        });
        match (backoff, unschedulable) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn backoff_for(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.cfg
            .initial
            .saturating_mul(1u32 << doublings)
            .min(self.cfg.max)
    }

    /// Put an existing entry where it belongs now: gated, backing off, or active.
    fn relocate(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.remove(key) else {
            return;
        };
        self.count(e.location, -1);
        let until = e.backoff_until;
        self.insert(key.to_string(), e.pod, until, e.unschedulable_since, now);
    }

    fn insert(
        &mut self,
        key: PodKey,
        pod: QueuedPod,
        backoff_until: Instant,
        unschedulable_since: Instant,
        now: Instant,
    ) {
        let location = if pod.info.gated {
            Location::Gated
        } else if backoff_until > now {
            Location::Backoff
        } else {
            Location::Active
        };
        self.place(key, pod, location, backoff_until, unschedulable_since);
    }

    fn place(
        &mut self,
        key: PodKey,
        pod: QueuedPod,
        location: Location,
        backoff_until: Instant,
        unschedulable_since: Instant,
    ) {
        self.seq += 1;
        let generation = self.seq;
        match location {
            Location::Active => self.active.push(ActiveItem {
                priority: pod.info.priority,
                seq: generation,
                key: key.clone(),
                generation,
            }),
            Location::Backoff => {
                self.backoff
                    .push(Reverse((backoff_until, generation, key.clone())));
            }
            Location::Unschedulable | Location::Gated => {}
        }
        self.count(location, 1);
        self.entries.insert(
            key,
            Entry {
                pod,
                location,
                generation,
                backoff_until,
                unschedulable_since,
            },
        );
    }

    fn count(&mut self, location: Location, delta: isize) {
        let c = match location {
            Location::Active => &mut self.counts.active,
            Location::Backoff => &mut self.counts.backoff,
            Location::Unschedulable => &mut self.counts.unschedulable,
            Location::Gated => &mut self.counts.gated,
        };
        *c = c.checked_add_signed(delta).unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(name: &str, priority: i32) -> Arc<PodInfo> {
        let mut p = PodInfo::from_pod(&Pod::default());
        p.namespace = "ns".into();
        p.name = name.into();
        p.priority = priority;
        Arc::new(p)
    }

    #[test]
    fn priority_then_fifo() {
        let mut q = SchedulingQueue::new(Backoff::default());
        let now = Instant::now();
        q.add_or_update(pod("a", 0), now);
        q.add_or_update(pod("b", 10), now);
        q.add_or_update(pod("c", 0), now);
        let order: Vec<String> =
            std::iter::from_fn(|| q.pop().map(|p| p.info.name.clone())).collect();
        assert_eq!(order, ["b", "a", "c"]);
        assert_eq!(q.counts(), Counts::default());
    }

    #[test]
    fn unschedulable_waits_for_an_event_and_its_backoff() {
        let mut q = SchedulingQueue::new(Backoff::default());
        let t0 = Instant::now();
        q.add_or_update(pod("a", 0), t0);
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, 1);
        q.add_unschedulable(p, t0);
        // Backoff alone does not bring it back.
        q.flush(t0 + Duration::from_secs(5));
        assert!(q.pop().is_none());
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(35)));
        // An event during the backoff parks it in the backoff queue ...
        q.move_all_unschedulable(t0 + Duration::from_millis(500));
        assert_eq!(q.counts().backoff, 1);
        assert!(q.pop().is_none());
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(1)));

        // ... until it ends.
        q.flush(t0 + Duration::from_secs(1));
        let p = q.pop().unwrap();
        assert_eq!(p.attempts, 2);
        // Second failure: 2s backoff; an event after it moves it straight back.
        q.add_unschedulable(p, t0);
        q.move_all_unschedulable(t0 + Duration::from_secs(3));
        assert_eq!(q.pop().unwrap().attempts, 3);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let q = SchedulingQueue::new(Backoff::default());
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_for(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_too_long_is_retried() {
        let mut q = SchedulingQueue::new(Backoff::default());
        let t0 = Instant::now();
        q.add_or_update(pod("a", 0), t0);
        let p = q.pop().unwrap();
        q.add_unschedulable(p, t0);
        q.flush(t0 + Duration::from_secs(299));
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(300));
        assert!(q.pop().is_none(), "checked at most every 30s");
        q.flush(t0 + Duration::from_secs(329));
        assert!(q.pop().is_some());
    }
}
