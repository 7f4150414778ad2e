//! The processes `cluster up` starts: detached (own process group, output
//! to a log file), recorded by PID in the data directory, and stopped by
//! `cluster down` only after checking that the PID still names the program
//! that was started (a PID may be reused).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::layout::Layout;
use crate::procfs;

/// One started process as recorded in `<data-dir>/pids/<name>.pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub name: String,
    pub pid: i32,
    /// The program's path, as started.
    pub program: PathBuf,
    /// How it was started, when `cluster up` can start it again the same way
    /// (None for containerd, which has its own start).
    pub launch: Option<Launch>,
}

/// The network namespace and arguments a process was started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub netns: Option<String>,
    pub args: Vec<String>,
}

impl Recorded {
    /// Whether the PID still runs the recorded program.
    pub fn alive(&self) -> bool {
        procfs::running(self.pid)
            && procfs::cmdline(self.pid).is_some_and(|args| {
                let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok();
                exe.as_deref() == Some(self.program.as_path())
                    || args.first().map(Path::new) == Some(self.program.as_path())
            })
    }
}

/// Start `program` detached, logging to `log`, and record it as `name`.
pub fn spawn(
    layout: &Layout,
    name: &str,
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Recorded> {
    spawn_in(layout, name, None, program, args, log)
}

/// The same inside network namespace `netns` (/run/netns/<netns>), keeping
/// the host's mount namespace; nsenter execs the program, so the recorded
/// PID is the program's.
pub fn spawn_in(
    layout: &Layout,
    name: &str,
    netns: Option<&str>,
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Recorded> {
    let file = File::create(log).path_context("create", log)?;
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}"))
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    command
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(file.try_clone().path_context("duplicate", log)?)
        .stderr(file);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .spawn()
        .map_err(|e| Error::Invalid(format!("start {}: {e}", program.display())))?;
    let recorded = Recorded {
        name: name.to_string(),
        pid: child.id() as i32,
        program: program.to_path_buf(),
        launch: Some(Launch {
            netns: netns.map(str::to_string),
            args: args.to_vec(),
        }),
    };
    record(layout, &recorded)?;
    // /proc may still show the parent's image for a moment after spawn returns
    // (seen on CI machines); wait for the exec to show so that `alive` is true
    // for a process that is running.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !recorded.alive() && procfs::running(recorded.pid) && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(recorded)
}

/// Write the PID file of a process started elsewhere (containerd).
pub fn record(layout: &Layout, r: &Recorded) -> Result<()> {
    let dir = layout.pids();
    std::fs::create_dir_all(&dir).path_context("create", &dir)?;
    let path = dir.join(format!("{}.pid", r.name));
    let mut text = format!("{}\n{}\n", r.pid, r.program.display());
    if let Some(launch) = &r.launch {
        text.push_str(&format!(
            "netns={}\n",
            launch.netns.as_deref().unwrap_or("")
        ));
        for arg in &launch.args {
            text.push_str(&format!("arg={arg}\n"));
        }
    }
    std::fs::write(&path, text).path_context("write", &path)
}

/// Every recorded process, alive or not.
pub fn recorded(layout: &Layout) -> Vec<Recorded> {
    let Ok(entries) = std::fs::read_dir(layout.pids()) else {
        return Vec::new();
    };
    let mut out: Vec<Recorded> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".pid")?
                .to_string();
            let text = std::fs::read_to_string(&path).ok()?;
            let mut lines = text.lines();
            let pid = lines.next()?.trim().parse().ok()?;
            let program = PathBuf::from(lines.next()?.trim());
            let launch = lines
                .next()
                .and_then(|l| l.strip_prefix("netns="))
                .map(|ns| Launch {
                    netns: (!ns.is_empty()).then(|| ns.to_string()),
                    args: lines
                        .filter_map(|l| l.strip_prefix("arg="))
                        .map(str::to_string)
                        .collect(),
                });
            Some(Recorded {
                name,
                pid,
                program,
                launch,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Start a recorded process again the way it was started; its previous log
/// is kept as `<name>.log.1`.
pub fn respawn(layout: &Layout, r: &Recorded) -> Result<Recorded> {
    let Some(launch) = &r.launch else {
        return Err(Error::Invalid(format!(
            "{} cannot be restarted by itself",
            r.name
        )));
    };
    let log = layout.log(&r.name);
    if log.exists() {
        let _ = std::fs::rename(&log, log.with_extension("log.1"));
    }
    spawn_in(
        layout,
        &r.name,
        launch.netns.as_deref(),
        &r.program,
        &launch.args,
        &log,
    )
}

/// SIGTERM, then SIGKILL after `grace`; removes the PID file. A PID that no
/// longer names the recorded program is left alone.
pub fn stop(layout: &Layout, r: &Recorded, grace: Duration) {
    if r.alive() {
        procfs::signal(r.pid, libc::SIGTERM);
        if !procfs::wait_gone(&[r.pid], grace).is_empty() && r.alive() {
            procfs::signal(r.pid, libc::SIGKILL);
            procfs::wait_gone(&[r.pid], Duration::from_secs(5));
        }
    }
    let _ = std::fs::remove_file(layout.pids().join(format!("{}.pid", r.name)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_record_stop() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        std::fs::create_dir_all(layout.logs()).unwrap();
        let sleep = PathBuf::from("/bin/sleep");
        let r = spawn(
            &layout,
            "sleeper",
            &sleep,
            &["30".into()],
            &layout.log("sleeper"),
        )
        .unwrap();
        assert!(
            r.alive(),
            "stat {:?} cmdline {:?} exe {:?}",
            std::fs::read_to_string(format!("/proc/{}/stat", r.pid)),
            procfs::cmdline(r.pid),
            std::fs::read_link(format!("/proc/{}/exe", r.pid))
        );
        assert_eq!(recorded(&layout), vec![r.clone()]);
        assert_eq!(r.launch.as_ref().unwrap().args, vec!["30".to_string()]);
        // A record naming another program is not ours to stop.
        let impostor = Recorded {
            program: PathBuf::from("/usr/bin/true"),
            ..r.clone()
        };
        assert!(!impostor.alive());
        stop(&layout, &r, Duration::from_secs(5));
        assert!(!r.alive());
        assert!(recorded(&layout).is_empty());
        // Started again the same way.
        let again = respawn(&layout, &r).unwrap();
        assert_ne!(again.pid, r.pid);
        assert!(again.alive());
        assert_eq!(again.launch, r.launch);
        stop(&layout, &again, Duration::from_secs(5));
    }
}
