//! Controller expectations, as upstream's UIDTrackingControllerExpectations:
//! after a controller sends N creates (or deletes of named pods) it waits
//! until its informer has seen them before syncing that controller again,
//! so that a stale cache never makes it create (or delete) twice. An
//! expectation older than five minutes counts as met, so a lost watch event
//! cannot block a controller for ever.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Upstream's ExpectationsTimeout.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expectation {
    add: i64,
    del: i64,
    /// Keys of the pods whose deletion is expected.
    deleting: HashSet<String>,
    set_at: Instant,
}

#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Expectation>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller may sync: nothing expected, all observed, or expired.
    pub fn satisfied(&self, controller: &str) -> bool {
        match self.lock().get(controller) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.set_at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    pub fn expect_creations(&self, controller: &str, n: usize) {
        self.lock().insert(
            controller.to_string(),
            Expectation {
                add: n as i64,
                del: 0,
                deleting: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    pub fn expect_deletions(&self, controller: &str, pod_keys: Vec<String>) {
        let deleting: HashSet<String> = pod_keys.into_iter().collect();
        self.lock().insert(
            controller.to_string(),
            Expectation {
                add: 0,
                del: deleting.len() as i64,
                deleting,
                set_at: Instant::now(),
            },
        );
    }

    /// A pod the controller created was seen (or its create failed).
    pub fn creation_observed(&self, controller: &str) {
        if let Some(e) = self.lock().get_mut(controller) {
            e.add -= 1;
        }
    }

    /// A pod was seen deleted (or its delete failed); counts only pods whose
    /// deletion was expected, so that unrelated deletes do not.
    pub fn deletion_observed(&self, controller: &str, pod_key: &str) {
        if let Some(e) = self.lock().get_mut(controller) {
            if e.deleting.remove(pod_key) {
                e.del -= 1;
            }
        }
    }

    /// Forget a controller (it was deleted).
    pub fn delete(&self, controller: &str) {
        self.lock().remove(controller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_must_be_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rc"));
        e.expect_creations("ns/rc", 2);
        assert!(!e.satisfied("ns/rc"));
        e.creation_observed("ns/rc");
        assert!(!e.satisfied("ns/rc"));
        e.creation_observed("ns/rc");
        assert!(e.satisfied("ns/rc"));
    }

    #[test]
    fn only_expected_deletions_count() {
        let e = Expectations::default();
        e.expect_deletions("ns/rc", vec!["ns/a".into(), "ns/b".into()]);
        e.deletion_observed("ns/rc", "ns/other");
        e.deletion_observed("ns/rc", "ns/a");
        e.deletion_observed("ns/rc", "ns/a");
        assert!(!e.satisfied("ns/rc"));
        e.deletion_observed("ns/rc", "ns/b");
        assert!(e.satisfied("ns/rc"));
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_expire() {
        let e = Expectations::default();
        e.expect_creations("ns/rc", 1);
        tokio::time::advance(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
        assert!(e.satisfied("ns/rc"));
    }
}
