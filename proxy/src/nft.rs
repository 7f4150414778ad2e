//! Running `nft` for this proxier's table only.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::rules::TABLE;

#[derive(Debug, thiserror::Error)]
#[error("nft: {0}")]
pub struct NftError(pub String);

/// Apply a ruleset text in one transaction (`nft -f -`).
pub fn apply(text: &str) -> Result<(), NftError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NftError(format!("start nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NftError(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NftError(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Remove the table; a missing one is fine.
pub fn delete_table() -> Result<(), NftError> {
    apply(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n"))
}
