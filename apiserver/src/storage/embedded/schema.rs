//! The database file: its format marker, tables and connection settings.
//!
//! Tables:
//! - `log`: one row per write, keyed by its revision: the key, what happened
//!   (created/modified/deleted), the value after it, the key's
//!   create_revision and the revision of the key's previous row (the value
//!   before, for watch events). History is this table; compaction deletes
//!   the rows no read at or after the compacted revision needs.
//! - `current`: each live key and the revision of its latest `log` row, so
//!   reads of "now" do not scan history.
//! - `meta`: the store revision, the compacted revision, and how far the
//!   compacted rows have been deleted.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::errors::sqlite_error;
use crate::storage::{Result, Revision, StoreError};

/// The database file inside the data directory.
pub(super) const DB_FILE: &str = "store.db";
/// Marks the file as ours in SQLite's header ("mk8s").
const APPLICATION_ID: i32 = 0x6d6b_3873;
/// The layout of the tables; a build refuses files with a higher number.
pub const FORMAT_VERSION: i32 = 1;
/// The revision of an empty store (etcd's too), so no object gets resourceVersion 0.
const INITIAL_REVISION: Revision = 1;

/// How long a connection waits for a lock held by another connection of
/// this process (readers starting while a checkpoint resets the WAL).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The WAL is cut back to this size after checkpoints, so one large batch
/// does not leave a large file behind.
const WAL_SIZE_LIMIT: i64 = 4 << 20;

/// `log.kind` values.
pub(super) const KIND_CREATED: i64 = 0;
pub(super) const KIND_MODIFIED: i64 = 1;
pub(super) const KIND_DELETED: i64 = 2;

const CREATE_TABLES: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE log (
    revision INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    kind INTEGER NOT NULL,
    value BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL
);
CREATE INDEX log_by_key ON log (key, revision);
CREATE TABLE current (key BLOB PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
";

/// The store's counters as the database holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Meta {
    pub revision: Revision,
    pub compacted: Revision,
    /// Rows at or below this revision have been purged against `compacted`.
    pub purged: Revision,
}

/// Opens (creating if needed) the writer's connection to `path`, after
/// checking that the file is a store this build understands.
pub(super) fn open_writer(path: &Path, check: bool) -> Result<Connection> {
    let context = format!("opening {}", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|err| sqlite_error(&context, &err))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|err| sqlite_error(&context, &err))?;
    match check_format(&conn, path)? {
        Format::Empty => initialise(&mut conn).map_err(|err| sqlite_error(&context, &err))?,
        Format::Current => {}
    }
    configure_writer(&conn).map_err(|err| sqlite_error(&context, &err))?;
    if check {
        quick_check(&conn, path)?;
    }
    Ok(conn)
}

/// Opens a connection for reads; it never creates the file and cannot write.
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let context = format!("opening {} for reading", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|err| sqlite_error(&context, &err))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.pragma_update(None, "query_only", true))
        .map_err(|err| sqlite_error(&context, &err))?;
    Ok(conn)
}

enum Format {
    Empty,
    Current,
}

fn check_format(conn: &Connection, path: &Path) -> Result<Format> {
    let read = || -> rusqlite::Result<(i32, i32, i64)> {
        let id = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
        let version = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let objects = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        Ok((id, version, objects))
    };
    let (id, version, objects) =
        read().map_err(|err| sqlite_error(&format!("reading {}", path.display()), &err))?;
    if id == 0 && objects == 0 {
        return Ok(Format::Empty);
    }
    if id != APPLICATION_ID {
        return Err(StoreError::Internal(format!(
            "{} is a SQLite database but not an apiserver store (application_id {id:#x}); \
             refusing to touch it",
            path.display()
        )));
    }
    if version > FORMAT_VERSION {
        return Err(StoreError::Internal(format!(
            "{} has store format {version}, newer than this build understands \
             ({FORMAT_VERSION}); run a newer kube-apiserver",
            path.display()
        )));
    }
    if version < 1 {
        return Err(StoreError::Internal(format!(
            "{} has an unknown store format {version}; the directory is damaged",
            path.display()
        )));
    }
    Ok(Format::Current)
}

/// Creates the tables and the format marker in one transaction, so a crash
/// leaves either an empty file or a complete store.
fn initialise(conn: &mut Connection) -> rusqlite::Result<()> {
    // Must precede the first table: lets compaction hand freed pages back.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction()?;
    tx.execute_batch(CREATE_TABLES)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('revision', ?1), ('compacted', 0), ('purged', 0)",
        [INITIAL_REVISION],
    )?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", FORMAT_VERSION)?;
    tx.commit()
}

fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}"
        )));
    }
    // FULL: in WAL mode every commit is fsync'd before it returns, which is
    // what "acknowledged means durable" needs (NORMAL may lose the last
    // commits on power loss).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(())
}

fn quick_check(conn: &Connection, path: &Path) -> Result<()> {
    let context = format!("checking {}", path.display());
    let mut statement = conn
        .prepare("PRAGMA quick_check")
        .map_err(|err| sqlite_error(&context, &err))?;
    let problems = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|err| sqlite_error(&context, &err))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let shown: Vec<_> = problems.iter().take(5).map(String::as_str).collect();
    Err(StoreError::Internal(format!(
        "{} is corrupt: {}",
        path.display(),
        shown.join("; ")
    )))
}

/// Reads the counters (inside the caller's transaction, if any).
pub(super) fn read_meta(conn: &Connection) -> rusqlite::Result<Meta> {
    let value = |name: &str| -> rusqlite::Result<Revision> {
        conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()
            .map(|value| value.unwrap_or(0))
    };
    Ok(Meta {
        revision: value("revision")?,
        compacted: value("compacted")?,
        purged: value("purged")?,
    })
}

pub(super) fn write_meta(conn: &Connection, name: &str, value: Revision) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(rusqlite::params![name, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_gets_tables_marker_and_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        let conn = open_writer(&path, true).expect("open");
        let meta = read_meta(&conn).expect("meta");
        assert_eq!(
            meta,
            Meta {
                revision: INITIAL_REVISION,
                compacted: 0,
                purged: 0
            }
        );
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        let vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .expect("auto_vacuum");
        assert_eq!(vacuum, 2, "incremental auto-vacuum");
        drop(conn);
        // Reopening an existing store keeps its counters.
        let conn = open_writer(&path, true).expect("reopen");
        assert_eq!(read_meta(&conn).expect("meta").revision, INITIAL_REVISION);
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        let conn = open_writer(&path, false).expect("open");
        conn.pragma_update(None, "user_version", FORMAT_VERSION + 1)
            .expect("bump version");
        drop(conn);
        match open_writer(&path, false) {
            Err(StoreError::Internal(text)) => assert!(text.contains("newer"), "{text}"),
            other => panic!("expected Internal, got {:?}", other.err()),
        }
    }

    #[test]
    fn foreign_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        let conn = Connection::open(&path).expect("open plain sqlite");
        conn.execute_batch("CREATE TABLE t (x)").expect("create");
        drop(conn);
        match open_writer(&path, false) {
            Err(StoreError::Internal(text)) => {
                assert!(text.contains("not an apiserver store"), "{text}")
            }
            other => panic!("expected Internal, got {:?}", other.err()),
        }
    }

    #[test]
    fn garbage_file_is_reported_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, vec![0x5a; 8192]).expect("write garbage");
        match open_writer(&path, true) {
            Err(StoreError::Internal(text)) => assert!(text.contains("corrupt"), "{text}"),
            other => panic!("expected Internal, got {:?}", other.err()),
        }
        // Refusing must not have rewritten the file.
        assert_eq!(std::fs::read(&path).expect("read"), vec![0x5a; 8192]);
    }

    #[test]
    fn reader_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        let _writer = open_writer(&path, false).expect("open");
        let reader = open_reader(&path).expect("reader");
        assert!(reader
            .execute("UPDATE meta SET value = 9 WHERE name = 'revision'", [])
            .is_err());
    }

    #[test]
    fn reader_does_not_create_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DB_FILE);
        assert!(open_reader(&path).is_err());
        assert!(!path.exists());
    }
}
