//! The path and query parameters the documents list, grouped per operation as
//! upstream documents them. kubectl reads some of them back: its query-param
//! verifier looks for `fieldValidation` among a PATCH operation's own
//! parameters before it sends `fieldValidation=Strict`.

use std::borrow::Cow;

/// A parameter's JSON type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParamType {
    String,
    Integer,
    Boolean,
}

impl ParamType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
        }
    }
}

/// One documented parameter.
#[derive(Clone, Debug)]
pub(super) struct Param {
    pub name: &'static str,
    /// In the path (always required) or in the query.
    pub in_path: bool,
    pub ty: ParamType,
    pub description: Cow<'static, str>,
}

const fn query(name: &'static str, ty: ParamType, description: &'static str) -> Param {
    Param {
        name,
        in_path: false,
        ty,
        description: Cow::Borrowed(description),
    }
}

use ParamType::{Boolean, Integer, String as Str};

pub(super) const PRETTY: Param = query(
    "pretty",
    Str,
    "If 'true', then the output is pretty printed.",
);

const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    Boolean,
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Bookmarks are sent at the server's discretion; ignored when this is not a watch.",
);
const CONTINUE: Param = query(
    "continue",
    Str,
    "The continue token of a previous, limited list call: the list goes on from where that call stopped.",
);
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    Str,
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    Str,
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = query(
    "limit",
    Integer,
    "limit is a maximum number of responses to return for a list call. If more items exist, the list metadata carries a `continue` token for the next call.",
);
const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    Str,
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    Str,
    "resourceVersionMatch determines how resourceVersion is applied to list calls (NotOlderThan or Exact).\n\nDefaults to unset",
);
const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    Boolean,
    "With watch=true, start the watch stream with synthetic ADDED events for all current objects, followed by a BOOKMARK annotated \"k8s.io/initial-events-end\".",
);
const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    Integer,
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: Param = query(
    "watch",
    Boolean,
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);

const DRY_RUN: Param = query(
    "dryRun",
    Str,
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    Str,
    "fieldManager is a name associated with the actor or entity that is making these changes. At most 128 printable characters.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    Str,
    "fieldValidation tells the server how to handle unknown or duplicate fields in the request object. Valid values are: - Ignore: drop them silently. - Warn: drop them and send a warning header for each. - Strict: fail the request with a BadRequest error listing them.",
);
const FORCE: Param = query(
    "force",
    Boolean,
    "Force is going to \"force\" Apply requests: the caller re-acquires fields owned by other managers. Must be unset for non-apply patch requests.",
);

const GRACE_PERIOD_SECONDS: Param = query(
    "gracePeriodSeconds",
    Integer,
    "The duration in seconds before the object should be deleted. Zero means delete immediately; unset means the kind's default.",
);
const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    Boolean,
    "Deprecated: use propagationPolicy. Whether the dependent objects should be orphaned.",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    Str,
    "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
);

const CONTAINER: Param = query(
    "container",
    Str,
    "The container in the pod. Defaults to the only container if there is only one.",
);

/// `name` and `namespace` path parameters.
pub(super) fn name(kind: &str) -> Param {
    Param {
        name: "name",
        in_path: true,
        ty: Str,
        description: Cow::Owned(format!("name of the {kind}")),
    }
}

pub(super) fn namespace() -> Param {
    Param {
        name: "namespace",
        in_path: true,
        ty: Str,
        description: Cow::Borrowed("object name and auth scope, such as for teams and projects"),
    }
}

/// Query parameters of a list (and watch) call.
pub(super) fn list() -> Vec<Param> {
    vec![
        ALLOW_WATCH_BOOKMARKS,
        CONTINUE,
        FIELD_SELECTOR,
        LABEL_SELECTOR,
        LIMIT,
        RESOURCE_VERSION,
        RESOURCE_VERSION_MATCH,
        SEND_INITIAL_EVENTS,
        TIMEOUT_SECONDS,
        WATCH,
    ]
}

/// Query parameters of create and replace (upstream's CreateOptions/UpdateOptions).
pub(super) fn write() -> Vec<Param> {
    vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
}

/// Query parameters of patch (upstream's PatchOptions).
pub(super) fn patch() -> Vec<Param> {
    vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE]
}

/// Query parameters of delete (upstream's DeleteOptions).
pub(super) fn delete() -> Vec<Param> {
    vec![
        DRY_RUN,
        GRACE_PERIOD_SECONDS,
        ORPHAN_DEPENDENTS,
        PROPAGATION_POLICY,
    ]
}

/// Query parameters of deletecollection: delete's plus list's selection.
pub(super) fn delete_collection() -> Vec<Param> {
    let mut out = delete();
    out.extend([
        CONTINUE,
        FIELD_SELECTOR,
        LABEL_SELECTOR,
        LIMIT,
        RESOURCE_VERSION,
        RESOURCE_VERSION_MATCH,
        SEND_INITIAL_EVENTS,
        TIMEOUT_SECONDS,
    ]);
    out
}

/// Query parameters of pods/log.
pub(super) fn log() -> Vec<Param> {
    vec![
        CONTAINER,
        query("follow", Boolean, "Follow the log stream of the pod."),
        query(
            "insecureSkipTLSVerifyBackend",
            Boolean,
            "Do not verify the serving certificate of the kubelet that serves the logs.",
        ),
        query(
            "limitBytes",
            Integer,
            "Stop after this many bytes of log output.",
        ),
        query(
            "previous",
            Boolean,
            "Return the logs of the previous, terminated container.",
        ),
        query(
            "sinceSeconds",
            Integer,
            "Only return logs newer than this many seconds.",
        ),
        query(
            "tailLines",
            Integer,
            "Only return this many lines from the end of the log.",
        ),
        query(
            "timestamps",
            Boolean,
            "Prefix every line of log output with an RFC3339 timestamp.",
        ),
    ]
}

/// Query parameters of a connect subresource (exec, attach, portforward, proxy).
pub(super) fn connect(subresource: &str) -> Vec<Param> {
    let stdin = query(
        "stdin",
        Boolean,
        "Redirect the standard input stream of the container.",
    );
    let stdout = query(
        "stdout",
        Boolean,
        "Redirect the standard output stream of the container.",
    );
    let stderr = query(
        "stderr",
        Boolean,
        "Redirect the standard error stream of the container.",
    );
    let tty = query("tty", Boolean, "Allocate a terminal for the session.");
    match subresource {
        "exec" => vec![
            query(
                "command",
                Str,
                "Command is the remote command to execute; argv array, not run in a shell.",
            ),
            CONTAINER,
            stderr,
            stdin,
            stdout,
            tty,
        ],
        "attach" => vec![CONTAINER, stderr, stdin, stdout, tty],
        "portforward" => vec![query("ports", Integer, "List of ports to forward.")],
        "proxy" => vec![query(
            "path",
            Str,
            "Path is the URL path to use for the proxied request.",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_patch_carry_field_validation() {
        for set in [write(), patch()] {
            let names: Vec<&str> = set.iter().map(|p| p.name).collect();
            assert!(names.contains(&"fieldValidation"), "{names:?}");
            assert!(names.contains(&"dryRun"));
            assert!(names.contains(&"fieldManager"));
        }
        assert!(patch()
            .iter()
            .any(|p| p.name == "force" && p.ty == ParamType::Boolean));
    }

    #[test]
    fn path_params_are_path_params() {
        assert!(name("Pod").in_path);
        assert_eq!(name("Pod").description, "name of the Pod");
        assert!(namespace().in_path);
        assert_eq!(PRETTY.name, "pretty");
    }
}
