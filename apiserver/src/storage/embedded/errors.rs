//! What SQLite and file-system failures mean to the store's callers.

use rusqlite::ErrorCode;

use crate::storage::StoreError;

/// The store error for a SQLite failure while doing `context`.
pub(super) fn sqlite_error(context: &str, err: &rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            StoreError::Unavailable(format!("{context}: the disk is full ({err})"))
        }
        Some(ErrorCode::SystemIoFailure) => {
            StoreError::Unavailable(format!("{context}: I/O error ({err})"))
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Internal(
            format!("{context}: the database file is corrupt or not a database ({err})"),
        ),
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly,
        ) => StoreError::Unavailable(format!("{context}: {err}")),
        _ => StoreError::Internal(format!("{context}: {err}")),
    }
}

/// Whether a failed write leaves the database in a state this process should
/// no longer write to. After an I/O error during a commit the kernel may
/// have dropped dirty pages, so going on could acknowledge writes that are
/// not on disk; a full disk, in contrast, fails cleanly before the commit.
pub(super) fn is_fatal(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::SystemIoFailure | ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// The store error for a file-system failure on `path` while doing `context`.
pub(super) fn io_error(context: &str, path: &std::path::Path, err: &std::io::Error) -> StoreError {
    let text = format!("{context} {}: {err}", path.display());
    if err.kind() == std::io::ErrorKind::StorageFull {
        StoreError::Unavailable(format!("{text} (the disk is full)"))
    } else {
        StoreError::Unavailable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn disk_full_is_unavailable_and_not_fatal() {
        let err = failure(rusqlite::ffi::SQLITE_FULL);
        let mapped = sqlite_error("write", &err);
        assert!(
            matches!(&mapped, StoreError::Unavailable(text) if text.contains("disk is full")),
            "{mapped:?}"
        );
        assert!(!is_fatal(&err));
    }

    #[test]
    fn corruption_is_internal_and_fatal() {
        for code in [rusqlite::ffi::SQLITE_CORRUPT, rusqlite::ffi::SQLITE_NOTADB] {
            let err = failure(code);
            assert!(matches!(
                sqlite_error("read", &err),
                StoreError::Internal(text) if text.contains("corrupt")
            ));
            assert!(is_fatal(&err));
        }
    }

    #[test]
    fn io_errors_are_fatal() {
        let err = failure(rusqlite::ffi::SQLITE_IOERR);
        assert!(matches!(
            sqlite_error("commit", &err),
            StoreError::Unavailable(_)
        ));
        assert!(is_fatal(&err));
    }
}
