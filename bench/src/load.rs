//! Load generators: a closed loop (N workers, a fixed count of operations)
//! and an open loop (a fixed arrival rate for a fixed time). Both are bounded
//! in count and in time.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::time::timeout;

/// What a load run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Operations that succeeded.
    pub ok: usize,
    /// Operations that failed or timed out.
    pub errors: usize,
    /// The first failure, to show why.
    pub first_error: Option<String>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latency of each successful operation.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    fn record(&mut self, result: anyhow::Result<()>, latency: Duration) {
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latencies.push(latency);
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{e:#}"));
                }
            }
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }

    /// An error unless at least one operation succeeded.
    pub fn require_some(&self, what: &str) -> anyhow::Result<()> {
        if self.ok == 0 {
            anyhow::bail!(
                "{what}: no operation succeeded ({} failed): {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("no error recorded")
            );
        }
        Ok(())
    }
}

/// Runs `op(0..count)` on `workers` concurrent workers; each worker takes the
/// next index until all are taken or `limit` has passed.
pub async fn closed_loop<F, Fut>(count: usize, workers: usize, limit: Duration, op: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let handles: Vec<_> = (0..workers.max(1))
        .map(|_| {
            let op = op.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || Instant::now() >= deadline {
                        break;
                    }
                    let began = Instant::now();
                    let remaining = deadline.saturating_duration_since(began);
                    let result = match timeout(remaining, op(i)).await {
                        Ok(r) => r,
                        Err(_) => Err(anyhow::anyhow!("run time limit reached")),
                    };
                    outcome.record(result, began.elapsed());
                }
                outcome
            })
        })
        .collect();
    let mut total = Outcome::default();
    for handle in handles {
        match handle.await {
            Ok(outcome) => total.merge(outcome),
            Err(e) => total.record(Err(anyhow::anyhow!("worker panicked: {e}")), Duration::ZERO),
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Starts `op(i)` at `rate` per second for `duration`, without waiting for
/// earlier operations (open loop). Latency counts from each operation's
/// scheduled start, so a stalled server cannot hide its queueing delay.
/// Each operation may take at most `op_timeout`.
pub async fn open_loop<F, Fut>(
    rate: u32,
    duration: Duration,
    op_timeout: Duration,
    op: F,
) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = (duration.as_secs_f64() * f64::from(rate)).round() as usize;
    let results = Arc::new(Mutex::new(Outcome::default()));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let op = op.clone();
        let results = results.clone();
        handles.push(tokio::spawn(async move {
            let result = match timeout(op_timeout, op(i)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("timed out after {op_timeout:?}")),
            };
            let latency = scheduled.elapsed();
            if let Ok(mut all) = results.lock() {
                all.record(result, latency);
            }
        }));
    }
    for handle in handles {
        // A panicking operation only loses its own sample.
        let _ = handle.await;
    }
    let mut total = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    total.elapsed = start.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_runs_each_index_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let outcome = closed_loop(100, 8, Duration::from_secs(10), move |i| {
            let log = log.clone();
            async move {
                log.lock().expect("lock").push(i);
                if i % 10 == 0 {
                    anyhow::bail!("index {i} fails");
                }
                Ok(())
            }
        })
        .await;
        assert_eq!((outcome.ok, outcome.errors), (90, 10));
        assert_eq!(outcome.latencies.len(), 90);
        assert!(outcome.first_error.is_some_and(|e| e.ends_with("fails")));
        let mut indexes = seen.lock().expect("lock").clone();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn closed_loop_stops_at_its_time_limit() {
        let outcome = closed_loop(1_000_000, 2, Duration::from_millis(100), |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        })
        .await;
        assert!(outcome.ok < 100, "ran {} operations", outcome.ok);
        assert!(outcome.elapsed < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn open_loop_keeps_its_rate_and_counts_timeouts() {
        let outcome = open_loop(
            100,
            Duration::from_millis(300),
            Duration::from_millis(50),
            |i| async move {
                if i == 0 {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Ok(())
            },
        )
        .await;
        assert_eq!(outcome.ok + outcome.errors, 30);
        assert_eq!(outcome.errors, 1);
        assert!(outcome.elapsed >= Duration::from_millis(290));
        assert!(outcome.elapsed < Duration::from_secs(2));
    }

    #[test]
    fn require_some_explains_total_failure() {
        let mut failed = Outcome::default();
        failed.record(Err(anyhow::anyhow!("404 not found")), Duration::ZERO);
        let err = failed
            .require_some("creates")
            .expect_err("nothing succeeded");
        assert!(err.to_string().contains("404 not found"));
    }
}
