//! The Kubernetes version this server speaks (the API of the k8s-openapi
//! feature it is built with). The /usr/bin/kubectl dispatcher picks
//! kubectl.1.<minor> from it.

pub const MAJOR: &str = "1";
pub const MINOR: &str = "33";
pub const GIT_VERSION: &str = "v1.33.1";

/// The /version document.
pub fn info() -> serde_json::Value {
    serde_json::json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, goarch()),
    })
}

/// The architecture in Go's spelling, as kubectl prints it.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
