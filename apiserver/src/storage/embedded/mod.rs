//! The embedded backend of [`Store`]: the whole store in one data directory,
//! kept by SQLite (bundled with rusqlite), in this process.
//!
//! The model is etcd's, as [`super`] describes: one revision that every write
//! increments, history kept as one row per write until compaction. Writes go
//! through a single writer thread (module `writer`) that commits with fsync
//! before it answers; reads run on their own connections and never wait for
//! it (SQLite's WAL mode). The directory holds `store.db` (with SQLite's
//! `-wal`/`-shm` files beside it) and `LOCK`, which keeps a second process
//! out. docs/embedded-store.md explains the choices.

mod dirlock;
mod errors;
mod reader;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::{KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent};
use errors::io_error;
use reader::{KeyRange, Readers};
use writer::{Op, Outcome, WriterHandle};

pub use schema::FORMAT_VERSION;

/// How the embedded store keeps history and serves watchers.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// History younger than this is kept, so clients that re-watch or page
    /// through a list within it do not get 410 Gone; unless it is more than
    /// `max_history_revisions`. Default 5 minutes (the apiserver's usual
    /// compaction interval with etcd).
    pub min_history_age: Duration,
    /// At most this many revisions of history are kept, however young: this
    /// is what bounds the disk under churn. Default 10,000.
    pub max_history_revisions: i64,
    /// How often the retention rules are applied. Default 10 s.
    pub compaction_interval: Duration,
    /// Live events buffered for watchers. A watcher further behind re-reads
    /// history from disk instead of holding writers up. Default 1024.
    pub watch_buffer: usize,
    /// Check the database file's structure when opening (`PRAGMA
    /// quick_check`: reads the whole file once). Default on.
    pub check_on_open: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            min_history_age: Duration::from_secs(5 * 60),
            max_history_revisions: 10_000,
            compaction_interval: Duration::from_secs(10),
            watch_buffer: 1024,
            check_on_open: true,
        }
    }
}

/// A [`Store`] kept in a local data directory.
///
/// Dropping it waits for its writer to finish and close the database; only
/// then is the directory free for another [`EmbeddedStore::open`].
pub struct EmbeddedStore {
    // Field order matters: the writer (and with it the lock) goes first.
    writer: WriterHandle,
    readers: Arc<Readers>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    revision: Arc<AtomicI64>,
    dir: PathBuf,
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory (mode 0700) and an
    /// empty store when missing. Fails with a clear message when another
    /// process holds the directory (`Unavailable`), when the files are
    /// corrupt, foreign, or of a newer format (`Internal`), or when the disk
    /// is full or unwritable (`Unavailable`). Does blocking file I/O.
    pub fn open(dir: &Path, options: EmbeddedOptions) -> Result<EmbeddedStore> {
        create_dir(dir)?;
        let lock = dirlock::lock(dir)?;
        let path = dir.join(schema::DB_FILE);
        let conn = schema::open_writer(&path, options.check_on_open)?;
        // Make the files' directory entries durable too, not only their data.
        sync_dir(dir)?;
        let meta = schema::read_meta(&conn)
            .map_err(|err| errors::sqlite_error("reading the store's counters", &err))?;
        let revision = Arc::new(AtomicI64::new(meta.revision));
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let readers = Arc::new(Readers::new(path));
        let shared = writer::Shared {
            revision: Arc::clone(&revision),
            events: events.clone(),
        };
        let writer = writer::start(conn, meta, lock, shared, options)?;
        Ok(EmbeddedStore {
            writer,
            readers,
            events,
            revision,
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    #[cfg(test)]
    async fn limit_pages(&self, pages: i64) -> Result<()> {
        self.writer.call(Op::LimitPages(pages)).await.map(|_| ())
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    // The store holds Secrets: only the apiserver's user may read it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| io_error("cannot create the data directory", dir, &err))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| io_error("cannot sync the data directory", dir, &err))
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Internal(format!(
        "embedded store: unexpected writer answer {outcome:?}"
    ))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.readers.run(move |conn| reader::get(conn, &key)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        revision: Option<Revision>,
        limit: Option<i64>,
    ) -> Result<ListResult> {
        let range = KeyRange::new(prefix, start_key);
        self.readers
            .run(move |conn| reader::list(conn, &range, revision, limit))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let op = Op::Create {
            key: key.to_string(),
            value,
        };
        match self.writer.call(op).await? {
            Outcome::Written(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let op = Op::Update {
            key: key.to_string(),
            value,
            expected,
        };
        match self.writer.call(op).await? {
            Outcome::Written(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let op = Op::Delete {
            key: key.to_string(),
            expected,
        };
        match self.writer.call(op).await? {
            Outcome::Deleted(revision, kv) => Ok((revision, kv)),
            other => Err(unexpected(other)),
        }
    }

    async fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>> {
        // Subscribe first: what is committed after this is received live.
        let live = self.events.subscribe();
        let from = if from > 0 {
            from
        } else {
            // etcd's convention: 0 watches from now on.
            self.revision.load(Ordering::SeqCst) + 1
        };
        Ok(watch::stream(Arc::clone(&self.readers), live, prefix, from))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.revision.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        if revision <= 0 {
            return Ok(());
        }
        match self.writer.call(Op::Compact { revision }).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests;
