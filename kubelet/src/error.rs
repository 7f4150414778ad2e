//! The kubelet library's error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("container runtime: {0}")]
    Cri(#[from] tonic::Status),
    #[error("container runtime: {0}")]
    Runtime(String),
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach what was being done to an I/O error.
pub trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}

/// Whether a CRI error says the object is already gone.
pub fn is_not_found(e: &Error) -> bool {
    match e {
        Error::Cri(s) => s.code() == tonic::Code::NotFound,
        Error::Kube(kube::Error::Api(s)) => s.code == 404,
        _ => false,
    }
}
