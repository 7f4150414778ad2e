//! `kubectl` on kube-rs: the Kubernetes command line for this cluster, with
//! upstream's commands, flags, output formats and error messages.
//!
//! `main.rs` parses the command line ([`cli::Cli`]) and calls [`run`]; each command
//! lives in [`commands`]. Output goes through [`out`] so that a closed pipe ends the
//! program quietly instead of panicking.

pub mod apply_patch;
pub mod cli;
pub mod commands;
pub mod describe;
pub mod discovery;
pub mod error;
pub mod kubeconfig;
pub mod manifest;
pub mod output;
pub mod session;
pub mod tabwriter;
pub mod targets;

use cli::{Cli, Command};
use error::{Error, Result};
use session::Session;

/// Run one command. Errors carry kubectl's message; `Error::exit_code` gives the code.
pub async fn run(cli: Cli) -> Result<()> {
    let overrides = cli.global.overrides();
    // Commands that never talk to the server.
    match &cli.command {
        Command::Config(c) => return commands::config::run(&overrides, c),
        Command::Version(v) if v.client => return commands::version::run(None, v).await,
        _ => {}
    }
    let all_namespaces = match &cli.command {
        Command::Get(a) => a.all_namespaces,
        Command::Describe(a) => a.all_namespaces,
        Command::Delete(a) => a.all_namespaces,
        Command::Label(a) | Command::Annotate(a) => a.all_namespaces,
        Command::Wait(a) => a.all_namespaces,
        _ => false,
    };
    let session = Session::connect(&overrides, all_namespaces).await?;
    let host = session.server_host();
    let result = match cli.command {
        Command::Get(a) => commands::get::run(&session, a).await,
        Command::Describe(a) => commands::describe::run(&session, a).await,
        Command::Create(a) => commands::create::run(&session, a).await,
        Command::Apply(a) => commands::apply::run(&session, a).await,
        Command::Delete(a) => commands::delete::run(&session, a).await,
        Command::Scale(a) => commands::scale::run(&session, a).await,
        Command::Label(a) => {
            commands::metadata::run(&session, a, commands::metadata::Field::Labels).await
        }
        Command::Annotate(a) => {
            commands::metadata::run(&session, a, commands::metadata::Field::Annotations).await
        }
        Command::Logs(a) => commands::logs::run(&session, a).await,
        Command::Exec(a) => commands::exec::run(&session, a).await,
        Command::Run(a) => commands::run::run(&session, a).await,
        Command::Expose(a) => commands::expose::run(&session, a).await,
        Command::Wait(a) => commands::wait::run(&session, a).await,
        Command::ClusterInfo => commands::cluster_info::run(&session).await,
        Command::Version(a) => commands::version::run(Some(&session), &a).await,
        Command::ApiResources(a) => commands::api_resources::run(&session, a).await,
        Command::Config(_) => Ok(()),
    };
    result.map_err(|e| e.with_host(&host))
}

/// Standard output, ignoring a closed pipe (`kubectl get pods | head -1`).
pub mod out {
    use std::io::Write;

    pub fn print(text: &str) {
        let mut stdout = std::io::stdout().lock();
        if stdout.write_all(text.as_bytes()).is_err() || stdout.flush().is_err() {
            std::process::exit(0);
        }
    }

    pub fn println(text: &str) {
        print(&format!("{text}\n"));
    }

    /// Standard error (warnings and per-object errors).
    pub fn eprintln(text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
    }
}

/// Print an error as kubectl does and give the exit code.
pub fn report(err: &Error) -> i32 {
    let text = err.to_string();
    if !text.is_empty() {
        out::eprintln(&text);
    }
    err.exit_code()
}
