//! Command line: kubectl's commands and flags, with upstream names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::kubeconfig::Overrides;

#[derive(Parser, Debug)]
#[command(
    name = "kubectl",
    about = "kubectl controls the Kubernetes cluster manager.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// The address and port of the Kubernetes API server.
    #[arg(short = 's', long, global = true)]
    pub server: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// The length of time to wait before giving up on a single server request ("0": no limit).
    #[arg(long = "request-timeout", global = true, default_value = "0")]
    pub request_timeout: String,
    /// Number for the log level verbosity (accepted; logs go to stderr with RUST_LOG).
    #[arg(short = 'v', long = "v", global = true, value_name = "LEVEL")]
    pub verbosity: Option<u8>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            server: self.server.clone(),
            namespace: self.namespace.clone(),
            request_timeout: self.request_timeout.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Display one or many resources.
    Get(GetArgs),
    /// Show details of a specific resource or group of resources.
    Describe(DescribeArgs),
    /// Create a resource from a file or from stdin.
    Create(CreateArgs),
    /// Apply a configuration to a resource by file name or stdin.
    Apply(ApplyArgs),
    /// Delete resources by file names, stdin, resources and names, or by resources and label selector.
    Delete(DeleteArgs),
    /// Set a new size for a replication controller.
    Scale(ScaleArgs),
    /// Update the labels on a resource.
    Label(MetadataArgs),
    /// Update the annotations on a resource.
    Annotate(MetadataArgs),
    /// Print the logs for a container in a pod.
    Logs(LogsArgs),
    /// Execute a command in a container.
    Exec(ExecArgs),
    /// Run a particular image on the cluster.
    Run(RunArgs),
    /// Take a replication controller, service, or pod and expose it as a new Kubernetes service.
    Expose(ExposeArgs),
    /// Experimental: Wait for a specific condition on one or many resources.
    Wait(WaitArgs),
    /// Display cluster information.
    #[command(name = "cluster-info")]
    ClusterInfo,
    /// Print the client and server version information.
    Version(VersionArgs),
    /// Print the supported API resources on the server.
    #[command(name = "api-resources")]
    ApiResources(ApiResourcesArgs),
    /// Modify kubeconfig files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Args, Debug, Default)]
pub struct FileArgs {
    /// Filename, directory, or URL to files identifying the resource.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Process the directory used in -f, --filename recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// TYPE[.VERSION][.GROUP] [NAME ...] | TYPE[.VERSION][.GROUP]/NAME ...
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// Output format: json, yaml, name, wide, jsonpath=..., jsonpath-as-json=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes to the requested object(s), without listing/getting first.
    #[arg(long = "watch-only")]
    pub watch_only: bool,
    /// When printing, show all labels as the last column.
    #[arg(long = "show-labels")]
    pub show_labels: bool,
    /// Accepts a comma separated list of labels that are going to be presented as columns.
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// When using the default or custom-column output format, don't print headers.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
    /// List the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If the requested object does not exist the command will return exit code 0.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    /// (TYPE [NAME_PREFIX] | TYPE/NAME)
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If true, display events related to the described object.
    #[arg(long = "show-events", default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub show_events: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<String>,
    /// Output format: name, json, yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<String>,
    /// Output format: name, json, yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Server-side apply (not served by this cluster's apiserver).
    #[arg(long = "server-side")]
    pub server_side: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// TYPE [NAME ...] | TYPE/NAME ...
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long = "field-selector")]
    pub field_selector: Option<String>,
    /// Delete all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Must be "background", "orphan", or "foreground".
    #[arg(long, num_args = 0..=1, default_value = "background", default_missing_value = "background", require_equals = true)]
    pub cascade: String,
    /// Period of time in seconds given to the resource to terminate gracefully (-1: the object's default).
    #[arg(long = "grace-period", default_value_t = -1, allow_hyphen_values = true)]
    pub grace_period: i64,
    /// If true, resources are signaled for immediate shutdown (same as --grace-period=1).
    #[arg(long)]
    pub now: bool,
    /// If true, immediately remove resources from API and bypass graceful deletion.
    #[arg(long)]
    pub force: bool,
    /// If true, wait for resources to be gone before returning.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// The length of time to wait before giving up on a delete, zero means wait forever.
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long = "ignore-not-found")]
    pub ignore_not_found: bool,
    /// Output mode: "name" prints only resource/name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// (-f FILENAME | TYPE NAME | TYPE/NAME)
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// The new desired number of replicas.
    #[arg(long)]
    pub replicas: i64,
    /// Precondition for current size.
    #[arg(long = "current-replicas", default_value_t = -1, allow_hyphen_values = true)]
    pub current_replicas: i64,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
}

/// `label` and `annotate`.
#[derive(Args, Debug)]
pub struct MetadataArgs {
    /// TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N, TYPE/NAME KEY=VAL, KEY- removes.
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// If true, allow the values to be overwritten.
    #[arg(long)]
    pub overwrite: bool,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources, in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If present, select the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// If non-empty, the update succeeds only if this is the current resource-version.
    #[arg(long = "resource-version")]
    pub resource_version: Option<String>,
    /// If true, display the labels (annotations) of the resource.
    #[arg(long)]
    pub list: bool,
    /// Output format: name, json, yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// POD [CONTAINER] | TYPE/NAME
    pub args: Vec<String>,
    /// Print the logs of this container.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Specify if the logs should be streamed.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of recent log file to display (-1: all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub tail: i64,
    /// Print the logs for the previous instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Include timestamps on each line in the log output.
    #[arg(long)]
    pub timestamps: bool,
    /// Only return logs newer than a relative duration like 5s, 2m, or 3h.
    #[arg(long)]
    pub since: Option<String>,
    /// Get all containers' logs in the pod(s).
    #[arg(long = "all-containers")]
    pub all_containers: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// POD [-c CONTAINER] -- COMMAND [args...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Container name.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// NAME
    pub name: String,
    /// The image for the container to run.
    #[arg(long)]
    pub image: String,
    /// The port that this container exposes.
    #[arg(long)]
    pub port: Option<String>,
    /// Comma separated labels to apply to the pod. Will override the default run=NAME label.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// The restart policy for this Pod: Always, OnFailure, Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Environment variables to set in the container.
    #[arg(long)]
    pub env: Vec<String>,
    /// If true and extra arguments are present, use them as the 'command' field instead of 'args'.
    #[arg(long)]
    pub command: bool,
    /// The image pull policy for the container.
    #[arg(long = "image-pull-policy")]
    pub image_pull_policy: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<String>,
    /// Output format: name, json, yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Arguments (or the command, with --command) after `--`.
    #[arg(last = true)]
    pub arguments: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExposeArgs {
    /// (-f FILENAME | TYPE NAME)
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// The port that the service should serve on.
    #[arg(long)]
    pub port: Option<String>,
    /// Name or number for the port on the container that the service should direct traffic to.
    #[arg(long = "target-port")]
    pub target_port: Option<String>,
    /// The name for the newly created object.
    #[arg(long)]
    pub name: Option<String>,
    /// Type for this service: ClusterIP, NodePort, LoadBalancer, or ExternalName.
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// The network protocol for the service to be created.
    #[arg(long)]
    pub protocol: Option<String>,
    /// A label selector to use for this service (default: from the exposed object).
    #[arg(long)]
    pub selector: Option<String>,
    /// Labels to apply to the service created by this call.
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// Must be "none", "server", or "client".
    #[arg(long = "dry-run", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<String>,
    /// Output format: name, json, yaml.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// ([-f FILENAME] | resource.group/resource.name | resource.group [(-l label | --all)])
    pub args: Vec<String>,
    #[command(flatten)]
    pub files: FileArgs,
    /// The condition to wait on: condition=NAME[=VALUE], delete, jsonpath='{expr}'=VALUE.
    #[arg(long = "for")]
    pub for_: String,
    /// The length of time to wait before giving up.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Select all resources in the namespace of the specified resource types.
    #[arg(long)]
    pub all: bool,
    /// If present, list the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// If true, shows client version only (no server required).
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct ApiResourcesArgs {
    /// If false, non-namespaced resources will be returned, otherwise namespaced ones.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub namespaced: Option<bool>,
    /// Limit to resources in the specified API group.
    #[arg(long = "api-group")]
    pub api_group: Option<String>,
    /// Limit to resources that support the specified verbs.
    #[arg(long, value_delimiter = ',')]
    pub verbs: Vec<String>,
    /// Output format: wide or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// When using the default or custom-column output format, don't print headers.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Display merged kubeconfig settings or a specified kubeconfig file.
    View(ConfigViewArgs),
    /// Set the current-context in a kubeconfig file.
    #[command(name = "use-context", alias = "use")]
    UseContext { name: String },
    /// Display the current-context.
    #[command(name = "current-context")]
    CurrentContext,
    /// Describe one or many contexts.
    #[command(name = "get-contexts")]
    GetContexts(GetContextsArgs),
}

#[derive(Args, Debug)]
pub struct ConfigViewArgs {
    /// Remove all information not used by current-context from the output.
    #[arg(long)]
    pub minify: bool,
    /// Display raw byte data and sensitive data.
    #[arg(long)]
    pub raw: bool,
    /// Output format: yaml (default) or json, or jsonpath=...
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct GetContextsArgs {
    /// Context names to show.
    pub names: Vec<String>,
    /// Output format: name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// When using the default output format, don't print headers.
    #[arg(long = "no-headers")]
    pub no_headers: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_style_flags() {
        let cli = Cli::try_parse_from([
            "kubectl",
            "delete",
            "rc",
            "nginx",
            "--cascade=orphan",
            "--wait=false",
            "-n",
            "x",
        ])
        .unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("x"));
        let Command::Delete(d) = cli.command else {
            panic!()
        };
        assert_eq!(d.cascade, "orphan");
        assert!(!d.wait);
        assert_eq!(d.args, ["rc", "nginx"]);

        let cli = Cli::try_parse_from([
            "kubectl",
            "run",
            "web",
            "--image=nginx",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.arguments, ["sh", "-c", "echo hi"]);

        let cli = Cli::try_parse_from([
            "kubectl",
            "label",
            "rc",
            "nginx",
            "tier-",
            "a=b",
            "--overwrite",
        ])
        .unwrap();
        let Command::Label(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.args, ["rc", "nginx", "tier-", "a=b"]);
        assert!(l.overwrite);
    }
}
