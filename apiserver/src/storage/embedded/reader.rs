//! Reads: a small pool of read-only connections used from blocking threads.
//!
//! In WAL mode a read transaction sees one committed snapshot and neither
//! waits for the writer nor makes it wait. Each read that needs more than
//! one statement (a list and its count, a page of events and the counters)
//! runs in one transaction, so its parts agree with each other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::errors::sqlite_error;
use super::schema::{self, KIND_CREATED, KIND_DELETED, KIND_MODIFIED};
use crate::storage::{EventKind, KeyValue, ListResult, Result, Revision, StoreError, WatchEvent};

/// Idle connections kept for reuse; more are opened under load and closed after.
const MAX_IDLE: usize = 8;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a pooled connection in tokio's blocking pool.
    pub(super) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let result = read(&mut conn);
            // A connection whose database access failed may be in a bad
            // state; the next read opens a fresh one.
            let failed = matches!(
                result,
                Err(StoreError::Internal(_) | StoreError::Unavailable(_))
            );
            if !failed {
                readers.give_back(conn);
            }
            result
        })
        .await
        .map_err(|err| StoreError::Unavailable(format!("read task failed: {err}")))?
    }

    fn take(&self) -> Result<Connection> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

/// The byte range `[start, end)` holding the keys under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl KeyRange {
    /// Keys under `prefix`, from `start_key` when that lies inside the range.
    pub(super) fn new(prefix: &str, start_key: Option<&str>) -> KeyRange {
        let start = match start_key {
            Some(key) if key > prefix => key,
            _ => prefix,
        };
        KeyRange {
            start: start.as_bytes().to_vec(),
            end: prefix_end(prefix.as_bytes()),
        }
    }
}

/// The smallest byte string above every key that starts with `prefix`.
/// Keys are UTF-8, which never contains 0xff, so `[0xff]` bounds them all.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff]
}

const GET: &str = "SELECT l.value, l.create_revision, l.revision
    FROM current c JOIN log l ON l.revision = c.revision WHERE c.key = ?1";

const LIST_NOW: &str = "SELECT c.key, l.value, l.create_revision, l.revision
    FROM current c JOIN log l ON l.revision = c.revision
    WHERE c.key >= ?1 AND c.key < ?2 ORDER BY c.key LIMIT ?3";

const COUNT_NOW: &str = "SELECT count(*) FROM current WHERE key > ?1 AND key < ?2";

/// The latest row of each key at revision ?4 that is not a deletion.
const LIST_AT: &str = "SELECT l.key, l.value, l.create_revision, l.revision
    FROM log l INDEXED BY log_by_key
    WHERE l.key >= ?1 AND l.key < ?2 AND l.revision <= ?4 AND l.kind <> 2
      AND NOT EXISTS (SELECT 1 FROM log n INDEXED BY log_by_key
                      WHERE n.key = l.key AND n.revision > l.revision AND n.revision <= ?4)
    ORDER BY l.key LIMIT ?3";

const COUNT_AT: &str = "SELECT count(*)
    FROM log l INDEXED BY log_by_key
    WHERE l.key > ?1 AND l.key < ?2 AND l.revision <= ?3 AND l.kind <> 2
      AND NOT EXISTS (SELECT 1 FROM log n INDEXED BY log_by_key
                      WHERE n.key = l.key AND n.revision > l.revision AND n.revision <= ?3)";

const EVENTS: &str = "SELECT l.revision, l.key, l.kind, l.value, p.value
    FROM log l LEFT JOIN log p ON p.revision = l.prev_revision
    WHERE l.revision >= ?1 AND l.key >= ?2 AND l.key < ?3
    ORDER BY l.revision LIMIT ?4";

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    let read = || -> rusqlite::Result<Option<KeyValue>> {
        conn.prepare_cached(GET)?
            .query_row([key.as_bytes()], |row| {
                Ok(KeyValue {
                    key: key.to_string(),
                    value: row.get(0)?,
                    create_revision: row.get(1)?,
                    mod_revision: row.get(2)?,
                })
            })
            .optional()
    };
    read().map_err(|err| sqlite_error("reading a key", &err))
}

/// A list as [`crate::storage::Store::list`] describes it.
pub(super) fn list(
    conn: &mut Connection,
    range: &KeyRange,
    revision: Option<Revision>,
    limit: Option<i64>,
) -> Result<ListResult> {
    let context = "listing keys";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(|err| sqlite_error(context, &err))?;
    let meta = schema::read_meta(&tx).map_err(|err| sqlite_error(context, &err))?;
    let at = match revision.filter(|rev| *rev > 0) {
        None => meta.revision,
        Some(rev) if rev > meta.revision => return Err(StoreError::FutureRevision(rev)),
        Some(rev) if rev < meta.compacted => {
            return Err(StoreError::Compacted {
                requested: rev,
                compacted: meta.compacted,
            })
        }
        Some(rev) => rev,
    };
    let limit = limit.filter(|limit| *limit > 0);
    let now = at == meta.revision;
    let items =
        list_items(&tx, range, at, now, limit).map_err(|err| sqlite_error(context, &err))?;
    let remaining = match (limit, items.last()) {
        (Some(limit), Some(last)) if items.len() as i64 >= limit => {
            count_after(&tx, &last.key, &range.end, at, now)
                .map_err(|err| sqlite_error(context, &err))?
        }
        _ => 0,
    };
    Ok(ListResult {
        items,
        revision: at,
        more: remaining > 0,
        remaining: Some(remaining),
    })
}

fn list_items(
    conn: &Connection,
    range: &KeyRange,
    at: Revision,
    now: bool,
    limit: Option<i64>,
) -> rusqlite::Result<Vec<KeyValue>> {
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.unwrap_or(-1);
    let mut statement;
    let rows = if now {
        statement = conn.prepare_cached(LIST_NOW)?;
        statement.query(rusqlite::params![range.start, range.end, limit])?
    } else {
        statement = conn.prepare_cached(LIST_AT)?;
        statement.query(rusqlite::params![range.start, range.end, limit, at])?
    };
    rows.mapped(|row| {
        Ok(KeyValue {
            key: utf8_key(row.get(0)?)?,
            value: row.get(1)?,
            create_revision: row.get(2)?,
            mod_revision: row.get(3)?,
        })
    })
    .collect()
}

fn count_after(
    conn: &Connection,
    last: &str,
    end: &[u8],
    at: Revision,
    now: bool,
) -> rusqlite::Result<i64> {
    if now {
        conn.prepare_cached(COUNT_NOW)?
            .query_row(rusqlite::params![last.as_bytes(), end], |row| row.get(0))
    } else {
        conn.prepare_cached(COUNT_AT)?
            .query_row(rusqlite::params![last.as_bytes(), end, at], |row| {
                row.get(0)
            })
    }
}

/// Events of one watch read from history.
#[derive(Debug)]
pub(super) struct EventPage {
    pub events: Vec<WatchEvent>,
    /// The store revision of the snapshot the page was read from.
    pub revision: Revision,
    pub compacted: Revision,
}

/// Up to `limit` events in `range` with revision >= `from`, oldest first.
pub(super) fn events(
    conn: &mut Connection,
    range: &KeyRange,
    from: Revision,
    limit: i64,
) -> Result<EventPage> {
    let context = "reading history";
    let mut read = || -> rusqlite::Result<EventPage> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let meta = schema::read_meta(&tx)?;
        if from < meta.compacted {
            return Ok(EventPage {
                events: Vec::new(),
                revision: meta.revision,
                compacted: meta.compacted,
            });
        }
        let mut statement = tx.prepare_cached(EVENTS)?;
        let events = statement
            .query(rusqlite::params![from, range.start, range.end, limit])?
            .mapped(event_from_row)
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(EventPage {
            events,
            revision: meta.revision,
            compacted: meta.compacted,
        })
    };
    read().map_err(|err| sqlite_error(context, &err))
}

fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WatchEvent> {
    let kind = match row.get::<_, i64>(2)? {
        KIND_CREATED => EventKind::Created,
        KIND_MODIFIED => EventKind::Modified,
        KIND_DELETED => EventKind::Deleted,
        other => {
            return Err(rusqlite::Error::IntegralValueOutOfRange(2, other));
        }
    };
    let prev_value: Option<Vec<u8>> = row.get(4)?;
    Ok(WatchEvent {
        kind,
        key: utf8_key(row.get(1)?)?,
        value: row.get(3)?,
        // A re-created key's previous row is its deletion: no value before.
        prev_value: if kind == EventKind::Created {
            None
        } else {
            prev_value
        },
        revision: row.get(0)?,
    })
}

fn utf8_key(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(err))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_end(b"a"), b"b");
        assert_eq!(prefix_end(b""), vec![0xff]);
    }

    #[test]
    fn key_range_uses_start_key_only_inside_the_prefix() {
        assert_eq!(KeyRange::new("/p/", None).start, b"/p/");
        assert_eq!(KeyRange::new("/p/", Some("/p/b")).start, b"/p/b");
        assert_eq!(KeyRange::new("/p/", Some("/a")).start, b"/p/");
        assert_eq!(KeyRange::new("/p/", Some("/q")).start, b"/q");
        assert_eq!(KeyRange::new("/p/", None).end, b"/p0");
    }

    #[test]
    fn utf8_key_rejects_invalid_bytes() {
        assert_eq!(utf8_key(b"/a".to_vec()).ok().as_deref(), Some("/a"));
        assert!(utf8_key(vec![0xff, 0xfe]).is_err());
    }
}
