//! Crash-loop back-off per container, as upstream's flowcontrol.Backoff
//! used by the kubelet: 10s, doubling up to 5 minutes; forgotten after
//! twice the maximum without a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

impl Backoff {
    /// Whether a restart must still wait, given when the container finished;
    /// `Some(remaining)` when it must.
    pub fn remaining(&mut self, key: &str, finished_at: Instant, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if now.saturating_duration_since(entry.last_update) > 2 * MAX {
            self.entries.remove(key);
            return None;
        }
        let since = now.saturating_duration_since(finished_at);
        (since < entry.backoff).then(|| entry.backoff - since)
    }

    /// Record a restart: the next one waits twice as long.
    pub fn next(&mut self, key: &str, now: Instant) {
        match self.entries.get_mut(key) {
            Some(e) if now.saturating_duration_since(e.last_update) <= 2 * MAX => {
                e.backoff = (e.backoff * 2).min(MAX);
                e.last_update = now;
            }
            _ => {
                self.entries.insert(
                    key.to_string(),
                    Entry {
                        backoff: INITIAL,
                        last_update: now,
                    },
                );
            }
        }
    }

    /// The current delay of a key (for messages).
    pub fn current(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or(INITIAL)
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_five_minutes() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        // First crash: restart at once.
        assert_eq!(b.remaining("c", t0, t0), None);
        b.next("c", t0);
        // Second crash right after: wait 10s.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.remaining("c", t1, t1), Some(Duration::from_secs(10)));
        assert_eq!(
            b.remaining("c", t1, t1 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.remaining("c", t1, t2), None);
        b.next("c", t2);
        assert_eq!(b.current("c"), Duration::from_secs(20));
        let mut t = t2;
        for _ in 0..10 {
            t += Duration::from_secs(1);
            b.next("c", t);
        }
        assert_eq!(b.current("c"), MAX);
        // Quiet for longer than twice the maximum: forgotten.
        let later = t + 2 * MAX + Duration::from_secs(1);
        assert_eq!(b.remaining("c", later, later), None);
        b.next("c", later);
        assert_eq!(b.current("c"), INITIAL);
    }
}
