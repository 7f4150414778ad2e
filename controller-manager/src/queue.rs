//! A work queue with client-go's guarantees: an item waiting in the queue is
//! there once however often it is added; an item being processed is never
//! handed to a second worker at the same time (an add meanwhile re-queues it
//! when the first worker is done); items can be added after a delay, or
//! after a per-item exponential backoff that grows with each failure.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::metrics::QueueMetrics;

/// client-go's default per-item backoff: 5ms, doubling, at most 1000s.
const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    /// Items that need processing (queued, or to re-queue when done).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shutting_down: bool,
}

struct Delayed<T> {
    /// (ready time, sequence number, item); the earliest first.
    heap: BinaryHeap<Reverse<(Instant, u64, T)>>,
    /// The earliest ready time per waiting item (later adds do not delay it).
    waiting: HashMap<T, Instant>,
    seq: u64,
}

pub struct WorkQueue<T> {
    name: String,
    state: Mutex<State<T>>,
    /// One permit per queued item.
    ready: Semaphore,
    delayed: Mutex<Delayed<T>>,
    delayed_changed: Notify,
    base_delay: Duration,
    max_delay: Duration,
    metrics: QueueMetrics,
}

impl<T> WorkQueue<T>
where
    T: Clone + Eq + Hash + Ord + Send + Sync + 'static,
{
    pub fn new(name: &str, metrics: QueueMetrics) -> Arc<Self> {
        Self::with_backoff(name, metrics, BASE_DELAY, MAX_DELAY)
    }

    pub fn with_backoff(
        name: &str,
        metrics: QueueMetrics,
        base_delay: Duration,
        max_delay: Duration,
    ) -> Arc<Self> {
        let q = Arc::new(Self {
            name: name.to_string(),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shutting_down: false,
            }),
            ready: Semaphore::new(0),
            delayed: Mutex::new(Delayed {
                heap: BinaryHeap::new(),
                waiting: HashMap::new(),
                seq: 0,
            }),
            delayed_changed: Notify::new(),
            base_delay,
            max_delay,
            metrics,
        });
        tokio::spawn(run_delayed(Arc::downgrade(&q)));
        q
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_delayed(&self) -> std::sync::MutexGuard<'_, Delayed<T>> {
        self.delayed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an item (once, however often it is added before a worker takes it).
    pub fn add(&self, item: T) {
        let mut s = self.lock();
        if s.shutting_down || s.dirty.contains(&item) {
            return;
        }
        self.metrics.adds(&self.name);
        s.dirty.insert(item.clone());
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        self.metrics.set_depth(&self.name, s.queue.len());
        drop(s);
        self.ready.add_permits(1);
    }

    /// Queue an item once `delay` has passed.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let at = Instant::now() + delay;
        let mut d = self.lock_delayed();
        if d.waiting.get(&item).is_some_and(|t| *t <= at) {
            return;
        }
        d.waiting.insert(item.clone(), at);
        d.seq += 1;
        let seq = d.seq;
        d.heap.push(Reverse((at, seq, item)));
        drop(d);
        self.delayed_changed.notify_one();
    }

    /// Queue an item after its backoff, which doubles with each call until `forget`.
    pub fn add_rate_limited(&self, item: T) {
        let failures = {
            let mut s = self.lock();
            let n = s.failures.entry(item.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.metrics.retries(&self.name);
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        let delay = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        self.add_after(item, delay);
    }

    /// Reset an item's backoff (it was processed successfully).
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How often the item failed since its last success.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// The next item to process; None once the queue is shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            let permit = self.ready.acquire().await.ok()?;
            permit.forget();
            let mut s = self.lock();
            if let Some(item) = s.queue.pop_front() {
                s.dirty.remove(&item);
                s.processing.insert(item.clone());
                self.metrics.set_depth(&self.name, s.queue.len());
                return Some(item);
            }
            if s.shutting_down {
                return None;
            }
        }
    }

    /// The worker finished with the item; re-queue it if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut s = self.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) && !s.shutting_down {
            s.queue.push_back(item.clone());
            self.metrics.set_depth(&self.name, s.queue.len());
            drop(s);
            self.ready.add_permits(1);
        }
    }

    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.ready.close();
        self.delayed_changed.notify_one();
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Move due delayed items into the queue; returns when the next one is due.
    fn promote_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due = Vec::new();
        let next = {
            let mut d = self.lock_delayed();
            while let Some(Reverse((at, _, _))) = d.heap.peek() {
                if *at > now {
                    break;
                }
                let Some(Reverse((at, _, item))) = d.heap.pop() else {
                    break;
                };
                // Skip stale heap entries (the item was re-added earlier).
                if d.waiting.get(&item) == Some(&at) {
                    d.waiting.remove(&item);
                    due.push(item);
                }
            }
            d.heap.peek().map(|Reverse((at, _, _))| *at)
        };
        for item in due {
            self.add(item);
        }
        next
    }
}

async fn run_delayed<T>(queue: Weak<WorkQueue<T>>)
where
    T: Clone + Eq + Hash + Ord + Send + Sync + 'static,
{
    loop {
        let Some(q) = queue.upgrade() else { return };
        if q.lock().shutting_down {
            return;
        }
        let notified = q.delayed_changed.notified();
        let next = q.promote_due();
        // Wake at least every few seconds so a dropped queue ends this task.
        let until = next
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(5))
            .min(Instant::now() + Duration::from_secs(5));
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }
}

/// Run `workers` tasks that take items from the queue and process them:
/// success forgets the item's backoff, failure re-queues it with backoff.
pub fn spawn_workers<T, F, Fut, E>(queue: Arc<WorkQueue<T>>, workers: usize, process: F)
where
    T: Clone + Eq + Hash + Ord + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let process = process.clone();
        tokio::spawn(async move {
            while let Some(item) = queue.get().await {
                match process(item.clone()).await {
                    Ok(()) => queue.forget(&item),
                    Err(e) => {
                        tracing::warn!(queue = %queue.name(), item = ?item, error = %e, "sync failed; will retry");
                        queue.add_rate_limited(item.clone());
                    }
                }
                queue.done(&item);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Arc<WorkQueue<String>> {
        WorkQueue::new("test", QueueMetrics::default())
    }

    #[tokio::test]
    async fn dedups_waiting_items() {
        let q = queue();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn item_in_processing_is_requeued_on_done() {
        let q = queue();
        q.add("a".into());
        let item = q.get().await.unwrap();
        q.add("a".into());
        // Not handed out twice while processing.
        assert!(q.is_empty());
        q.done(&item);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_items_arrive_after_their_delay() {
        let q = queue();
        q.add_after("late".into(), Duration::from_secs(10));
        q.add_after("early".into(), Duration::from_secs(1));
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.unwrap().as_deref(), Some("early"));
        assert!(tokio::time::timeout(Duration::from_secs(5), q.get())
            .await
            .is_err());
        let got = tokio::time::timeout(Duration::from_secs(10), q.get()).await;
        assert_eq!(got.unwrap().as_deref(), Some("late"));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_forget_resets_it() {
        let q = queue();
        for _ in 0..4 {
            q.add_rate_limited("x".into());
            let item = q.get().await.unwrap();
            q.done(&item);
        }
        assert_eq!(q.num_requeues(&"x".to_string()), 4);
        q.forget(&"x".to_string());
        assert_eq!(q.num_requeues(&"x".to_string()), 0);
    }

    #[tokio::test]
    async fn shut_down_ends_get() {
        let q = queue();
        q.shut_down();
        assert_eq!(q.get().await, None);
    }
}
