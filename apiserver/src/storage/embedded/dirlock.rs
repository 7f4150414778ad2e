//! One process per data directory: an exclusive `flock` on `DIR/LOCK`.
//!
//! SQLite's own locks only serialise transactions; two apiservers on one
//! directory would each believe they own the revision counter. The kernel
//! drops the lock when the holder exits, even on kill -9, so no stale lock
//! survives a crash.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::errors::io_error;
use crate::storage::{Result, StoreError};

pub(super) const LOCK_FILE: &str = "LOCK";

/// Holds the directory's lock until dropped.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

/// Takes the lock of `dir`, or says which process holds it.
pub(super) fn lock(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|err| io_error("cannot open the lock file", &path, &err))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = read_holder(&mut file);
            return Err(StoreError::Unavailable(format!(
                "data directory {} is in use by another process{holder} (it holds {}); \
                 stop it or choose another --data-dir",
                dir.display(),
                path.display()
            )));
        }
        Err(TryLockError::Error(err)) => {
            return Err(io_error("cannot lock", &path, &err));
        }
    }
    // Who holds the lock, for the message above; only informative.
    let _ = record_holder(&mut file);
    Ok(DirLock { _file: file })
}

fn record_holder(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return String::new();
    }
    match text.trim().parse::<u32>() {
        Ok(pid) => format!(" (pid {pid})"),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock(dir.path()).expect("first lock");
        match lock(dir.path()) {
            Err(StoreError::Unavailable(text)) => {
                assert!(text.contains("in use by another process"), "{text}");
                assert!(
                    text.contains(&format!("pid {}", std::process::id())),
                    "{text}"
                );
            }
            other => panic!("second lock: expected Unavailable, got {other:?}"),
        }
        drop(first);
        lock(dir.path()).expect("lock after release");
    }

    #[test]
    fn missing_directory_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        assert!(matches!(lock(&missing), Err(StoreError::Unavailable(_))));
    }
}
