//! Errors as kubectl prints them (k8s.io/kubectl/pkg/cmd/util: `checkErr` and
//! `StandardErrorMessage`): each variant's `Display` is the exact text on stderr.

use kube::core::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `metav1.Status` from the server: `Error from server (NotFound): pods "x" not found`,
    /// or for `Invalid`: `The Pod "x" is invalid: spec.containers: Required value`.
    #[error("{}", status_message(.0))]
    Api(Box<Status>),

    /// The server did not answer. `host` is filled in once the server address is known.
    #[error("{}", connection_message(.host, *.refused, .detail))]
    Connection {
        host: Option<String>,
        refused: bool,
        detail: String,
    },

    /// `error: the server doesn't have a resource type "foo"`
    #[error("error: the server doesn't have a resource type \"{0}\"")]
    NoResourceType(String),

    /// Anything else kubectl reports as `error: <message>`.
    #[error("error: {0}")]
    Message(String),

    /// Several errors, one per line (kubectl aggregates per-object failures).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Error>),

    /// Fail with this exit code and print nothing more (the message was already printed).
    #[error("")]
    Exit(i32),
}

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Message(message.into())
    }

    /// The Status of an API error, if this is one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    /// `true` for a 404 from the server.
    pub fn is_not_found(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code == 404 || s.reason == "NotFound")
    }

    /// `true` for a 409 AlreadyExists from the server.
    pub fn is_already_exists(&self) -> bool {
        self.status().is_some_and(|s| s.reason == "AlreadyExists")
    }

    /// Prefix the server's message with the action and source, as kubectl does for
    /// objects from files: `error when creating "x.yaml": <message>`.
    pub fn with_source(self, action: &str, source: &str) -> Self {
        match self {
            Error::Api(mut status) if status.reason != "Invalid" => {
                status.message = format!("error when {action} \"{source}\": {}", status.message);
                Error::Api(status)
            }
            other => other,
        }
    }

    /// The exit code kubectl uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exit(code) => *code,
            _ => 1,
        }
    }

    /// Fill in the server's host:port for connection errors.
    pub fn with_host(self, server_host: &str) -> Self {
        match self {
            Error::Connection {
                host: None,
                refused,
                detail,
            } => Error::Connection {
                host: Some(server_host.to_string()),
                refused,
                detail,
            },
            Error::Several(errors) => Error::Several(
                errors
                    .into_iter()
                    .map(|e| e.with_host(server_host))
                    .collect(),
            ),
            other => other,
        }
    }

    /// One error, or several as one, or `Ok` when there are none.
    pub fn aggregate(mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Several(errors)),
        }
    }
}

fn status_message(status: &Status) -> String {
    if status.reason == "Invalid" {
        return invalid_message(status);
    }
    if status.reason == "Unauthorized" {
        return format!(
            "error: You must be logged in to the server ({})",
            status.message
        );
    }
    if status.reason.is_empty() {
        format!("Error from server: {}", status.message)
    } else {
        format!("Error from server ({}): {}", status.reason, status.message)
    }
}

/// `The Pod "x" is invalid: <cause>` (one cause) or one `* <cause>` line per cause.
fn invalid_message(status: &Status) -> String {
    let Some(details) = &status.details else {
        return if status.message.is_empty() {
            "The request is invalid".to_string()
        } else {
            format!("The request is invalid: {}", status.message)
        };
    };
    let mut head = "The request is invalid".to_string();
    if !details.kind.is_empty() || !details.name.is_empty() {
        head = format!("The {} \"{}\" is invalid", details.kind, details.name);
    } else if !status.message.is_empty() && details.causes.is_empty() {
        head = format!("{head}: {}", status.message);
    }
    let causes: Vec<String> = details
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    match causes.len() {
        0 => head,
        1 => format!("{head}: {}", causes[0]),
        _ => {
            let mut out = format!("{head}: ");
            for c in causes {
                out.push_str(&format!("\n* {c}"));
            }
            out
        }
    }
}

fn connection_message(host: &Option<String>, refused: bool, detail: &str) -> String {
    let host = host.as_deref().unwrap_or("localhost:8080");
    if refused {
        format!("The connection to the server {host} was refused - did you specify the right host or port?")
    } else {
        format!("Unable to connect to the server: {detail}")
    }
}

impl From<kube::Error> for Error {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => Error::Api(status),
            other => {
                if let Some(io) = find_io_error(&other) {
                    return Error::Connection {
                        host: None,
                        refused: io.kind() == std::io::ErrorKind::ConnectionRefused,
                        detail: io.to_string(),
                    };
                }
                match other {
                    kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Connection {
                        host: None,
                        refused: false,
                        detail: error_chain(&other),
                    },
                    other => Error::Message(error_chain(&other)),
                }
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Message(err.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Message(err.to_string())
    }
}

/// The first `std::io::Error` in the error's source chain (how a refused connection shows).
fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    for _ in 0..16 {
        let e = current?;
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

/// The error and its sources, joined with ": ".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// A NotFound Status for `resource "name"`, as the server would answer.
pub fn not_found(resource: &str, name: &str) -> Error {
    Error::Api(Box::new(Status {
        status: Some(kube::core::response::StatusSummary::Failure),
        code: 404,
        message: format!("{resource} \"{name}\" not found"),
        reason: "NotFound".into(),
        metadata: None,
        details: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_like_kubectl() {
        let e = not_found("pods", "x");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        let e = not_found("pods", "x").with_source("deleting", "a.yaml");
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): error when deleting \"a.yaml\": pods \"x\" not found"
        );
    }

    #[test]
    fn refused_connection_names_the_host() {
        let e = Error::Connection {
            host: None,
            refused: true,
            detail: String::new(),
        }
        .with_host("127.0.0.1:1");
        assert_eq!(
            e.to_string(),
            "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?"
        );
    }
}
