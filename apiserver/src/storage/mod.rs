//! The storage seam: everything the apiserver persists goes through [`Store`].
//!
//! The model is etcd's: one global revision that every write increments, keys
//! `/registry/<resource>/<namespace>/<name>`, values opaque bytes. A key's
//! `mod_revision` is the revision of its last write and becomes the object's
//! resourceVersion. Backends: etcd ([`etcd::EtcdStore`]); an embedded one later.
//! [`contract`] holds the behaviour every backend must pass.

pub mod contract;
pub mod embedded;
pub mod etcd;

use async_trait::async_trait;
use futures::stream::BoxStream;

/// A store revision (etcd's `int64` revision).
pub type Revision = i64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the key's creation.
    pub create_revision: Revision,
    /// Revision of the key's last modification.
    pub mod_revision: Revision,
}

/// One page of a range read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: Revision,
    /// More keys under the prefix follow the last returned one.
    pub more: bool,
    /// How many keys under the prefix follow the returned ones (when known).
    pub remaining: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key did not exist before this revision.
    Created,
    /// The key existed and got a new value.
    Modified,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub key: String,
    /// The value after the event; for `Deleted`, empty.
    pub value: Vec<u8>,
    /// The value before the event (`None` for `Created`).
    pub prev_value: Option<Vec<u8>>,
    /// The revision of this event (the key's new mod_revision; for deletes the
    /// revision of the delete).
    pub revision: Revision,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// A compare-and-swap failed; `current` is the key's value now, if it exists.
    #[error("key {key} was modified concurrently")]
    Conflict {
        key: String,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision is older than the compacted one.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision has not happened yet.
    #[error("required revision {0} is a future revision")]
    FutureRevision(Revision),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The storage backend contract (see [`contract`] for the executable version).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys with `prefix`, in key order, starting at `start_key` (inclusive;
    /// `None` = from the prefix's start), read at `revision` (`None` = now), at
    /// most `limit` items (`None` or 0 = all).
    /// Reading a compacted revision fails with `Compacted`.
    async fn list(
        &self,
        prefix: &str,
        start_key: Option<&str>,
        revision: Option<Revision>,
        limit: Option<i64>,
    ) -> Result<ListResult>;

    /// Create `key` only if absent (`AlreadyExists` otherwise). Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;

    /// Replace `key` only if its mod_revision is still `expected` (`Conflict`
    /// with the current value otherwise, `NotFound` if it is gone). Returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision>;

    /// Delete `key`, only if its mod_revision is `expected` when given
    /// (`Conflict` otherwise). Returns the delete's revision and the deleted value.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// Events under `prefix` with revision >= `from` in revision order, then
    /// live events. A `from` older than the compacted revision yields a single
    /// `Err(Compacted)` item; the stream ends after any error.
    async fn watch(
        &self,
        prefix: &str,
        from: Revision,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Drop history before `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
