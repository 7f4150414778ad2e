//! Watch streams: history from the database, then live events.
//!
//! A watcher subscribes to the writer's broadcast before it reads history,
//! so every event is either in what it reads or in what it receives after
//! (duplicates are dropped by revision). A watcher that falls behind the
//! broadcast's buffer does not hold the writer up: it loses its place in the
//! buffer, reads the missed events from history again, and only when those
//! are compacted away does its stream end with `Compacted`.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::reader::{self, KeyRange, Readers};
use crate::storage::{Result, Revision, StoreError, WatchEvent};

/// Events read from history per database read.
const PAGE: i64 = 256;

pub(super) fn stream(
    readers: Arc<Readers>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: &str,
    from: Revision,
) -> BoxStream<'static, Result<WatchEvent>> {
    let state = Watch {
        readers,
        live,
        prefix: prefix.to_string(),
        range: KeyRange::new(prefix, None),
        next: from,
        replaying: true,
        pending: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, Watch::next).boxed()
}

struct Watch {
    readers: Arc<Readers>,
    live: broadcast::Receiver<Arc<WatchEvent>>,
    prefix: String,
    range: KeyRange,
    /// The first revision not yet delivered.
    next: Revision,
    /// Reading history (true) or following the broadcast.
    replaying: bool,
    pending: VecDeque<Result<WatchEvent>>,
    done: bool,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<WatchEvent>, Watch)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                self.replay_page().await;
            } else {
                self.receive().await;
            }
        }
    }

    async fn replay_page(&mut self) {
        let range = self.range.clone();
        let from = self.next;
        let read = self
            .readers
            .run(move |conn| reader::events(conn, &range, from, PAGE))
            .await;
        let page = match read {
            Ok(page) => page,
            Err(err) => return self.fail(err),
        };
        if from < page.compacted {
            return self.fail(StoreError::Compacted {
                requested: from,
                compacted: page.compacted,
            });
        }
        let full = page.events.len() as i64 >= PAGE;
        for event in page.events {
            self.next = event.revision + 1;
            self.pending.push_back(Ok(event));
        }
        if !full {
            // Everything up to the snapshot is delivered; the rest comes live.
            self.next = self.next.max(page.revision + 1);
            self.replaying = false;
        }
    }

    async fn receive(&mut self) {
        match self.live.recv().await {
            Ok(event) => {
                if event.revision < self.next {
                    return;
                }
                self.next = event.revision + 1;
                if event.key.starts_with(&self.prefix) {
                    self.pending.push_back(Ok(WatchEvent::clone(&event)));
                }
            }
            // Missed events are in history (or compacted, which replay reports).
            Err(RecvError::Lagged(_)) => self.replaying = true,
            Err(RecvError::Closed) => self.fail(StoreError::Unavailable(
                "the embedded store was closed".into(),
            )),
        }
    }

    fn fail(&mut self, err: StoreError) {
        self.pending.push_back(Err(err));
        self.done = true;
    }
}
