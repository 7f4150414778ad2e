//! Running the system tools this crate drives (ip, iptables, runc, ldd, ...).

use std::process::{Command, Output};

use crate::{Error, Result};

/// Run a command to completion; a non-zero exit is an error carrying its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = output(program, args)?;
    if !output.status.success() {
        return Err(Error::Command {
            command: describe(program, args),
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Run a command and hand back its output whatever the exit status.
pub(crate) fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            command: describe(program, args),
            detail: e.to_string(),
        })
}

/// The same command inside network namespace `netns` (a name under /run/netns), or on
/// the host when there is none. nsenter keeps the host's mount namespace, unlike
/// `ip netns exec`.
pub(crate) fn run_in(netns: Option<&str>, program: &str, args: &[&str]) -> Result<String> {
    match netns {
        None => run(program, args),
        Some(ns) => {
            let net = format!("--net=/run/netns/{ns}");
            let mut all = vec![net.as_str(), "--", program];
            all.extend_from_slice(args);
            run("nsenter", &all)
        }
    }
}

fn describe(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}
