//! Builds the pause program (images/pause/pause.rs) as a static binary with the
//! same rustc that builds this crate; the library embeds it for the pause image.
//! A plain rustc call keeps it out of the workspace: no package, no target dir.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let source = manifest_dir.join("../images/pause/pause.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("pause");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "pause",
            "--crate-type",
            "bin",
        ])
        // Static glibc: the image holds this one file and no loader or libraries.
        .args(["-C", "target-feature=+crt-static"])
        .args([
            "-C",
            "opt-level=z",
            "-C",
            "lto=fat",
            "-C",
            "codegen-units=1",
        ])
        .args(["-C", "panic=abort", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&out)
        .arg(&source)
        // Cargo's flags for this crate (e.g. a coverage or sanitizer build) do not apply here.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run rustc for images/pause/pause.rs");
    assert!(status.success(), "building images/pause/pause.rs failed");
}
