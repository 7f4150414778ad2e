//! `kubectl exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [args...]`: pods/exec
//! through the apiserver, which joins the connection to the pod's kubelet and
//! the runtime's streaming server; this client speaks the WebSocket channel
//! protocol (kube-rs). Exits with the command's exit code, as kubectl does.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};

use crate::cli::ExecArgs;
use crate::commands::logs::pod_for;
use crate::error::{Error, Result};
use crate::out;
use crate::session::Session;

pub async fn run(session: &Session, a: ExecArgs) -> Result<()> {
    let (target, command) = a
        .args
        .split_first()
        .ok_or_else(|| Error::msg("pod, type/name or --filename must be specified"))?;
    // `POD -- COMMAND`: clap keeps the separator after the first value.
    let command = command.strip_prefix(&["--".to_string()]).unwrap_or(command);
    if command.is_empty() {
        return Err(Error::msg(
            "you must specify at least one command for the container",
        ));
    }
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), &session.namespace);
    let name = pod_for(session, target).await?;
    let pod = pods.get(&name).await.map_err(Error::from)?;
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(Error::msg(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = match &a.container {
        Some(c) => c.clone(),
        None => default_container(&pod)?,
    };
    // A terminal merges stderr into stdout; it only makes sense with stdin.
    let tty = a.tty && a.stdin;
    if a.tty && !a.stdin {
        out::eprintln("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let params = AttachParams::default()
        .container(container)
        .stdin(a.stdin)
        .stdout(true)
        .stderr(!tty)
        .tty(tty);
    let _raw = if tty { RawTerminal::enter() } else { None };
    let mut attached = pods
        .exec(&name, command.iter().map(String::as_str), &params)
        .await
        .map_err(Error::from)?;
    let mut copies = Vec::new();
    if let Some(mut stdout) = attached.stdout() {
        copies.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stdout, &mut tokio::io::stdout()).await;
        }));
    }
    if let Some(mut stderr) = attached.stderr() {
        copies.push(tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::stderr()).await;
        }));
    }
    let stdin_copy = attached.stdin().map(|mut stdin| {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut stdin).await;
        })
    });
    let status = match attached.take_status() {
        Some(status) => status.await,
        None => None,
    };
    for c in copies {
        let _ = c.await;
    }
    if let Some(c) = stdin_copy {
        c.abort();
    }
    drop(_raw);
    match status {
        Some(s) if s.status.as_deref() == Some("Failure") => {
            let code = exit_code(&s);
            match code {
                Some(code) => {
                    out::eprintln(&format!("command terminated with exit code {code}"));
                    Err(Error::Exit(code))
                }
                None => Err(Error::msg(s.message.unwrap_or_default())),
            }
        }
        _ => Ok(()),
    }
}

/// The `ExitCode` cause of a NonZeroExitCode status.
fn exit_code(s: &Status) -> Option<i32> {
    if s.reason.as_deref() != Some("NonZeroExitCode") {
        return None;
    }
    s.details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))?
        .message
        .as_ref()?
        .parse()
        .ok()
}

/// The annotated default container, else the first one (saying so when
/// there are several, as kubectl does).
fn default_container(pod: &Pod) -> Result<String> {
    let names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    if let Some(d) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
    {
        if names.contains(d) {
            return Ok(d.clone());
        }
    }
    let first = names
        .first()
        .cloned()
        .ok_or_else(|| Error::msg("pod has no containers"))?;
    if names.len() > 1 {
        out::eprintln(&format!(
            "Defaulted container \"{first}\" out of: {}",
            names.join(", ")
        ));
    }
    Ok(first)
}

/// The local terminal in raw mode while a remote TTY is attached; restored
/// on drop. None when stdin is not a terminal.
struct RawTerminal(libc::termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a termios this
        // function owns; no memory is shared with the kernel beyond the call.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(Self(saved))
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the settings saved by `enter` on the same fd.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
