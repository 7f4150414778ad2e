//! The single writer: one thread owns the only writing connection.
//!
//! Requests queue on a channel. The thread takes whatever is queued (up to
//! [`MAX_BATCH`]), applies it in one transaction, commits (fsync), and only
//! then answers: with many clients one fsync covers many writes (group
//! commit), each write still getting its own revision. As the only writer it
//! never meets "database is locked", and between batches it does compaction
//! in small steps, so compaction never stalls writes for long.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::{broadcast, oneshot};

use super::dirlock::DirLock;
use super::errors::{is_fatal, sqlite_error};
use super::schema::{self, Meta, KIND_CREATED, KIND_DELETED, KIND_MODIFIED};
use super::EmbeddedOptions;
use crate::storage::{EventKind, KeyValue, Result, Revision, StoreError, WatchEvent};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;
/// History rows examined per compaction step (one short transaction).
const PURGE_CHUNK: i64 = 2000;
/// Pages handed back to the file system per maintenance step.
const VACUUM_CHUNK: i64 = 2048;
/// How long a failed writer waits between requests (it only refuses them).
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// Free pages worth a vacuum: above this many and above a quarter of the file.
const VACUUM_MIN_FREE: i64 = 256;

pub(super) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
    /// Caps the database file's pages, to make a full disk in tests.
    #[cfg(test)]
    LimitPages(i64),
}

#[derive(Debug)]
pub(super) enum Outcome {
    Written(Revision),
    Deleted(Revision, KeyValue),
    Done,
}

pub(super) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Outcome>>,
}

/// The store's side of the writer: a queue to it, and its thread, which
/// [`Drop`] waits for so the directory lock is released only after the
/// database is closed.
pub(super) struct WriterHandle {
    queue: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriterHandle {
    pub(super) async fn call(&self, op: Op) -> Result<Outcome> {
        let closed = || StoreError::Unavailable("the embedded store is closed".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or_else(closed)?
            .send(Request { op, reply })
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the writer shares with readers and watchers.
pub(super) struct Shared {
    /// The last committed revision.
    pub revision: Arc<AtomicI64>,
    pub events: broadcast::Sender<Arc<WatchEvent>>,
}

/// Starts the writer thread over `conn`; it owns `lock` until it ends.
pub(super) fn start(
    conn: Connection,
    meta: Meta,
    lock: DirLock,
    shared: Shared,
    options: EmbeddedOptions,
) -> Result<WriterHandle> {
    let (queue, requests) = mpsc::channel();
    let now = Instant::now();
    let writer = Writer {
        conn,
        meta,
        shared,
        samples: VecDeque::new(),
        next_tick: now + options.compaction_interval,
        options,
        failed: None,
        maintenance_due: true,
        background_paused_until: None,
        _lock: lock,
    };
    let thread = std::thread::Builder::new()
        .name("embedded-store-writer".into())
        .spawn(move || writer.run(requests))
        .map_err(|err| StoreError::Internal(format!("cannot start the writer thread: {err}")))?;
    Ok(WriterHandle {
        queue: Some(queue),
        thread: Some(thread),
    })
}

struct Writer {
    // Field order matters: the connection closes before the lock is released.
    conn: Connection,
    meta: Meta,
    shared: Shared,
    options: EmbeddedOptions,
    /// (when, revision then): what "older than min_history_age" means.
    samples: VecDeque<(Instant, Revision)>,
    next_tick: Instant,
    /// Set after an I/O error on commit: no write is acknowledged any more.
    failed: Option<String>,
    maintenance_due: bool,
    /// After a failed compaction step, when to try again.
    background_paused_until: Option<Instant>,
    _lock: DirLock,
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        loop {
            let wait = if self.failed.is_some() {
                IDLE_WAIT
            } else if self.background_due() {
                Duration::ZERO
            } else {
                self.next_tick.saturating_duration_since(Instant::now())
            };
            match requests.recv_timeout(wait) {
                Ok(first) => {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match requests.try_recv() {
                            Ok(request) => batch.push(request),
                            Err(_) => break,
                        }
                    }
                    self.apply(batch);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.failed.is_some() {
                continue;
            }
            if Instant::now() >= self.next_tick {
                self.tick();
            }
            self.background_step();
        }
    }

    fn background_due(&self) -> bool {
        let paused = self
            .background_paused_until
            .is_some_and(|until| Instant::now() < until);
        !paused && (self.purge_due() || self.maintenance_due)
    }

    /// Applies a batch in one transaction and answers every request in it.
    fn apply(&mut self, batch: Vec<Request>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch
            .into_iter()
            .map(|request| (request.op, request.reply))
            .unzip();
        if let Some(reason) = &self.failed {
            let err = StoreError::Unavailable(reason.clone());
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
            return;
        }
        match write_batch(&mut self.conn, self.meta, ops) {
            Ok(done) => {
                self.meta = done.meta;
                self.shared
                    .revision
                    .store(done.meta.revision, Ordering::SeqCst);
                // Publish before answering, so watchers hear of a write no
                // later than its writer does.
                for event in done.events {
                    // No receivers is fine: nobody watches.
                    let _ = self.shared.events.send(Arc::new(event));
                }
                for (reply, outcome) in replies.into_iter().zip(done.outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                self.recover(&err);
                let mapped = sqlite_error("writing", &err);
                for reply in replies {
                    let _ = reply.send(Err(mapped.clone()));
                }
            }
        }
    }

    /// After a failed transaction: make sure it is rolled back, and stop
    /// writing for good if the failure was an I/O error.
    fn recover(&mut self, err: &rusqlite::Error) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if is_fatal(err) {
            let reason = format!(
                "the embedded store stopped writing after an I/O error ({err}); \
                 restart the apiserver"
            );
            tracing::error!("{reason}");
            self.failed = Some(reason);
        } else {
            tracing::warn!("embedded store write failed: {err}");
        }
    }

    /// Moves the compacted revision forward by the retention rules.
    fn tick(&mut self) {
        let now = Instant::now();
        self.next_tick = now + self.options.compaction_interval;
        self.samples.push_back((now, self.meta.revision));
        let target = retention_target(&mut self.samples, now, self.meta.revision, &self.options);
        if target <= self.meta.compacted {
            return;
        }
        match schema::write_meta(&self.conn, "compacted", target) {
            Ok(()) => self.meta.compacted = target,
            Err(err) => self.recover(&err),
        }
    }

    fn purge_due(&self) -> bool {
        self.meta.purged < self.meta.compacted - 1
    }

    /// One bounded piece of compaction or space reclamation.
    fn background_step(&mut self) {
        if !self.background_due() {
            return;
        }
        let result = if self.purge_due() {
            purge_step(&mut self.conn, self.meta).map(|purged| {
                self.meta.purged = purged;
                if !self.purge_due() {
                    self.maintenance_due = true;
                }
            })
        } else if self.maintenance_due {
            maintain(&self.conn).map(|more| self.maintenance_due = more)
        } else {
            Ok(())
        };
        if let Err(err) = result {
            // Retried after a pause rather than in a tight loop.
            self.background_paused_until = Some(Instant::now() + self.options.compaction_interval);
            self.recover(&err);
        }
    }
}

/// The revision history may be compacted to now: everything older than
/// `min_history_age`, and in any case all but the newest
/// `max_history_revisions` revisions.
fn retention_target(
    samples: &mut VecDeque<(Instant, Revision)>,
    now: Instant,
    revision: Revision,
    options: &EmbeddedOptions,
) -> Revision {
    let mut by_age = 0;
    while let Some(&(at, rev)) = samples.front() {
        if now.saturating_duration_since(at) < options.min_history_age {
            break;
        }
        by_age = rev;
        samples.pop_front();
    }
    let by_count = revision.saturating_sub(options.max_history_revisions.max(1));
    by_age.max(by_count)
}

/// What a committed batch produced.
struct BatchDone {
    meta: Meta,
    outcomes: Vec<Result<Outcome>>,
    events: Vec<WatchEvent>,
}

fn write_batch(conn: &mut Connection, meta: Meta, ops: Vec<Op>) -> rusqlite::Result<BatchDone> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut state = BatchState {
        meta,
        events: Vec::new(),
    };
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(state.apply(&tx, op)?);
    }
    if state.meta.revision != meta.revision {
        schema::write_meta(&tx, "revision", state.meta.revision)?;
    }
    if state.meta.compacted != meta.compacted {
        schema::write_meta(&tx, "compacted", state.meta.compacted)?;
    }
    tx.commit()?;
    Ok(BatchDone {
        meta: state.meta,
        outcomes,
        events: state.events,
    })
}

/// The state of a batch inside its transaction.
struct BatchState {
    meta: Meta,
    events: Vec<WatchEvent>,
}

/// A key's latest row.
struct Latest {
    mod_revision: Revision,
    create_revision: Revision,
    value: Vec<u8>,
}

impl BatchState {
    /// Applies one write. The outer error is a database failure (the batch
    /// fails); the inner one a refused write (the batch goes on).
    fn apply(&mut self, tx: &Transaction<'_>, op: Op) -> rusqlite::Result<Result<Outcome>> {
        match op {
            Op::Create { key, value } => self.create(tx, key, value),
            Op::Update {
                key,
                value,
                expected,
            } => self.update(tx, key, value, expected),
            Op::Delete { key, expected } => self.delete(tx, key, expected),
            Op::Compact { revision } => Ok(self.compact(revision)),
            #[cfg(test)]
            Op::LimitPages(pages) => {
                tx.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
                Ok(Ok(Outcome::Done))
            }
        }
    }

    fn create(
        &mut self,
        tx: &Transaction<'_>,
        key: String,
        value: Vec<u8>,
    ) -> rusqlite::Result<Result<Outcome>> {
        if latest(tx, &key)?.is_some() {
            return Ok(Err(StoreError::AlreadyExists(key)));
        }
        let revision = self.meta.revision + 1;
        insert_log(tx, revision, &key, KIND_CREATED, &value, revision, 0)?;
        tx.prepare_cached("INSERT INTO current (key, revision) VALUES (?1, ?2)")?
            .execute(rusqlite::params![key.as_bytes(), revision])?;
        self.meta.revision = revision;
        self.events.push(WatchEvent {
            kind: EventKind::Created,
            key,
            value,
            prev_value: None,
            revision,
        });
        Ok(Ok(Outcome::Written(revision)))
    }

    fn update(
        &mut self,
        tx: &Transaction<'_>,
        key: String,
        value: Vec<u8>,
        expected: Revision,
    ) -> rusqlite::Result<Result<Outcome>> {
        let Some(old) = latest(tx, &key)? else {
            return Ok(Err(StoreError::NotFound(key)));
        };
        if old.mod_revision != expected {
            return Ok(Err(conflict(key, old)));
        }
        let revision = self.meta.revision + 1;
        insert_log(
            tx,
            revision,
            &key,
            KIND_MODIFIED,
            &value,
            old.create_revision,
            old.mod_revision,
        )?;
        set_current(tx, &key, revision)?;
        self.meta.revision = revision;
        self.events.push(WatchEvent {
            kind: EventKind::Modified,
            key,
            value,
            prev_value: Some(old.value),
            revision,
        });
        Ok(Ok(Outcome::Written(revision)))
    }

    fn delete(
        &mut self,
        tx: &Transaction<'_>,
        key: String,
        expected: Option<Revision>,
    ) -> rusqlite::Result<Result<Outcome>> {
        let Some(old) = latest(tx, &key)? else {
            return Ok(Err(StoreError::NotFound(key)));
        };
        if expected.is_some_and(|expected| expected != old.mod_revision) {
            return Ok(Err(conflict(key, old)));
        }
        let revision = self.meta.revision + 1;
        insert_log(
            tx,
            revision,
            &key,
            KIND_DELETED,
            &[],
            old.create_revision,
            old.mod_revision,
        )?;
        tx.prepare_cached("DELETE FROM current WHERE key = ?1")?
            .execute([key.as_bytes()])?;
        self.meta.revision = revision;
        let deleted = KeyValue {
            key: key.clone(),
            value: old.value,
            create_revision: old.create_revision,
            mod_revision: old.mod_revision,
        };
        self.events.push(WatchEvent {
            kind: EventKind::Deleted,
            key,
            value: Vec::new(),
            prev_value: Some(deleted.value.clone()),
            revision,
        });
        Ok(Ok(Outcome::Deleted(revision, deleted)))
    }

    /// Moves the compacted revision; the rows go later, in [`purge_step`]s.
    fn compact(&mut self, revision: Revision) -> Result<Outcome> {
        if revision > self.meta.revision {
            return Err(StoreError::FutureRevision(revision));
        }
        if revision > self.meta.compacted {
            self.meta.compacted = revision;
        }
        Ok(Outcome::Done)
    }
}

fn conflict(key: String, old: Latest) -> StoreError {
    let current = KeyValue {
        key: key.clone(),
        value: old.value,
        create_revision: old.create_revision,
        mod_revision: old.mod_revision,
    };
    StoreError::Conflict {
        key,
        current: Some(Box::new(current)),
    }
}

fn latest(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<Option<Latest>> {
    tx.prepare_cached(
        "SELECT c.revision, l.create_revision, l.value
         FROM current c JOIN log l ON l.revision = c.revision WHERE c.key = ?1",
    )?
    .query_row([key.as_bytes()], |row| {
        Ok(Latest {
            mod_revision: row.get(0)?,
            create_revision: row.get(1)?,
            value: row.get(2)?,
        })
    })
    .optional()
}

fn insert_log(
    tx: &Transaction<'_>,
    revision: Revision,
    key: &str,
    kind: i64,
    value: &[u8],
    create_revision: Revision,
    prev_revision: Revision,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO log (revision, key, kind, value, create_revision, prev_revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        revision,
        key.as_bytes(),
        kind,
        value,
        create_revision,
        prev_revision
    ])?;
    Ok(())
}

fn set_current(tx: &Transaction<'_>, key: &str, revision: Revision) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE current SET revision = ?2 WHERE key = ?1")?
        .execute(rusqlite::params![key.as_bytes(), revision])?;
    Ok(())
}

/// Deletes, among the next [`PURGE_CHUNK`] rows after `meta.purged`, what
/// no read at or after `meta.compacted` needs: every row such a row
/// superseded (its `prev_revision`), and deletions older than the compacted
/// revision. Rows at or after the compacted revision all stay, so a watch
/// from it replays everything. Returns the new purged mark.
///
/// The mark stops one short of the compacted revision: a deletion exactly
/// at it must stay now and be looked at again by the next compaction.
fn purge_step(conn: &mut Connection, meta: Meta) -> rusqlite::Result<Revision> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let chunk_end: Option<Revision> = tx
        .prepare_cached(
            "SELECT revision FROM log WHERE revision > ?1 ORDER BY revision LIMIT 1 OFFSET ?2",
        )?
        .query_row(rusqlite::params![meta.purged, PURGE_CHUNK - 1], |row| {
            row.get(0)
        })
        .optional()?;
    let high = chunk_end.map_or(meta.compacted, |end| end.min(meta.compacted));
    tx.prepare_cached(
        "DELETE FROM log WHERE revision IN (
             SELECT prev_revision FROM log
             WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
    )?
    .execute(rusqlite::params![meta.purged, high])?;
    tx.prepare_cached(
        "DELETE FROM log WHERE revision > ?1 AND revision <= ?2 AND revision < ?3 AND kind = ?4",
    )?
    .execute(rusqlite::params![
        meta.purged,
        high,
        meta.compacted,
        KIND_DELETED
    ])?;
    let purged = high.min(meta.compacted - 1).max(meta.purged);
    schema::write_meta(&tx, "purged", purged)?;
    tx.commit()?;
    Ok(purged)
}

/// Gives free pages back to the file system and empties the WAL. Returns
/// whether more remains to do.
fn maintain(conn: &Connection) -> rusqlite::Result<bool> {
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |row| row.get(0))?;
    let total: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let more = if free > VACUUM_MIN_FREE && free * 4 > total {
        conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_CHUNK})"))?;
        free > VACUUM_CHUNK
    } else {
        false
    };
    if !more {
        checkpoint(conn);
    }
    Ok(more)
}

/// Copies the WAL into the database and truncates it, if no reader is in
/// the middle of an older snapshot; otherwise leaves it for the next time
/// rather than waiting (SQLite's automatic checkpoints keep it in bounds
/// meanwhile, and `journal_size_limit` cuts it back when it restarts).
fn checkpoint(conn: &Connection) {
    let run = || -> rusqlite::Result<()> {
        conn.busy_timeout(Duration::ZERO)?;
        let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        conn.busy_timeout(Duration::from_secs(5))?;
        result
    };
    if let Err(err) = run() {
        tracing::debug!("WAL checkpoint skipped: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(min_age: Duration, max_revisions: i64) -> EmbeddedOptions {
        EmbeddedOptions {
            min_history_age: min_age,
            max_history_revisions: max_revisions,
            ..EmbeddedOptions::default()
        }
    }

    fn apply_one(conn: &mut Connection, meta: &mut Meta, op: Op) -> Outcome {
        let done = write_batch(conn, *meta, vec![op]).expect("batch");
        *meta = done.meta;
        done.outcomes
            .into_iter()
            .next()
            .expect("one outcome")
            .expect("write accepted")
    }

    fn revision(outcome: Outcome) -> Revision {
        match outcome {
            Outcome::Written(rev) | Outcome::Deleted(rev, _) => rev,
            Outcome::Done => panic!("no revision"),
        }
    }

    fn log_revisions(conn: &Connection) -> Vec<Revision> {
        let mut statement = conn
            .prepare("SELECT revision FROM log ORDER BY revision")
            .expect("prepare");
        let rows = statement.query_map([], |row| row.get(0)).expect("query");
        rows.collect::<rusqlite::Result<_>>().expect("rows")
    }

    fn purge_all(conn: &mut Connection, meta: &mut Meta) {
        while meta.purged < meta.compacted - 1 {
            meta.purged = purge_step(conn, *meta).expect("purge");
        }
    }

    fn create(key: &str, value: &[u8]) -> Op {
        Op::Create {
            key: key.into(),
            value: value.to_vec(),
        }
    }

    fn update(key: &str, value: &[u8], expected: Revision) -> Op {
        Op::Update {
            key: key.into(),
            value: value.to_vec(),
            expected,
        }
    }

    fn delete(key: &str) -> Op {
        Op::Delete {
            key: key.into(),
            expected: None,
        }
    }

    #[test]
    fn purge_keeps_what_reads_at_the_compacted_revision_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = schema::open_writer(&dir.path().join("db"), false).expect("open");
        let mut meta = schema::read_meta(&conn).expect("meta");
        let a1 = revision(apply_one(&mut conn, &mut meta, create("/a", b"1")));
        let a2 = revision(apply_one(&mut conn, &mut meta, update("/a", b"2", a1)));
        let a3 = revision(apply_one(&mut conn, &mut meta, update("/a", b"3", a2)));
        revision(apply_one(&mut conn, &mut meta, create("/b", b"1")));
        revision(apply_one(&mut conn, &mut meta, delete("/b")));
        revision(apply_one(&mut conn, &mut meta, create("/c", b"1")));
        let c_gone = revision(apply_one(&mut conn, &mut meta, delete("/c")));
        let a4 = revision(apply_one(&mut conn, &mut meta, update("/a", b"4", a3)));

        // Compact exactly at /c's deletion: that event stays for a watch from it.
        apply_one(&mut conn, &mut meta, Op::Compact { revision: c_gone });
        purge_all(&mut conn, &mut meta);
        assert_eq!(log_revisions(&conn), vec![a3, c_gone, a4]);
        let range = super::super::reader::KeyRange::new("/", None);
        let at = super::super::reader::list(&mut conn, &range, Some(c_gone), None)
            .expect("list at the compacted revision");
        assert_eq!(at.items.len(), 1);
        assert_eq!(at.items[0].value, b"3");

        // The next compaction drops the deletion and /a's superseded row.
        apply_one(&mut conn, &mut meta, Op::Compact { revision: a4 });
        purge_all(&mut conn, &mut meta);
        assert_eq!(log_revisions(&conn), vec![a4]);
        let now = super::super::reader::list(&mut conn, &range, None, None).expect("list");
        assert_eq!(now.items.len(), 1);
        assert_eq!(now.items[0].mod_revision, a4);
        assert_eq!(now.items[0].create_revision, a1);
    }

    #[test]
    fn refused_writes_take_no_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = schema::open_writer(&dir.path().join("db"), false).expect("open");
        let meta = schema::read_meta(&conn).expect("meta");
        let done = write_batch(
            &mut conn,
            meta,
            vec![
                create("/a", b"1"),
                create("/a", b"again"),
                update("/missing", b"x", 1),
                delete("/missing"),
                Op::Compact { revision: 1000 },
                update("/a", b"2", meta.revision + 1),
            ],
        )
        .expect("batch");
        let revisions: Vec<_> = done
            .outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(Outcome::Written(rev)) => Ok(*rev),
                Ok(other) => panic!("unexpected {other:?}"),
                Err(err) => Err(err.clone()),
            })
            .collect();
        let first = meta.revision + 1;
        assert_eq!(
            revisions,
            vec![
                Ok(first),
                Err(StoreError::AlreadyExists("/a".into())),
                Err(StoreError::NotFound("/missing".into())),
                Err(StoreError::NotFound("/missing".into())),
                Err(StoreError::FutureRevision(1000)),
                Ok(first + 1),
            ]
        );
        assert_eq!(done.events.len(), 2);
        assert_eq!(schema::read_meta(&conn).expect("meta").revision, first + 1);
    }

    #[test]
    fn retention_keeps_young_history_up_to_the_count() {
        let start = Instant::now();
        let mut samples = VecDeque::from([(start, 100)]);
        let opts = options(Duration::from_secs(300), 1000);
        // Young history under the cap: nothing to drop.
        assert_eq!(retention_target(&mut samples, start, 500, &opts), 0);
        // Over the cap, the cap wins over the age.
        assert_eq!(retention_target(&mut samples, start, 5000, &opts), 4000);
        // Old enough: everything up to what was current back then.
        let later = start + Duration::from_secs(301);
        assert_eq!(retention_target(&mut samples, later, 500, &opts), 100);
        assert!(samples.is_empty(), "used samples are dropped");
    }

    #[test]
    fn retention_takes_the_newest_old_enough_sample() {
        let start = Instant::now();
        let mut samples = VecDeque::from([
            (start, 10),
            (start + Duration::from_secs(10), 20),
            (start + Duration::from_secs(20), 30),
        ]);
        let opts = options(Duration::from_secs(15), 1000);
        let now = start + Duration::from_secs(26);
        assert_eq!(retention_target(&mut samples, now, 40, &opts), 20);
        assert_eq!(samples.len(), 1);
    }
}
