//! Network namespaces that a test makes and owns: created with a unique name
//! (`ip netns add`), deleted with everything in them when dropped (their
//! processes killed, then `ip netns del`: veths, bridges, routes and nft
//! tables inside go with the namespace). A test may move its own thread into
//! one ([`NetNs::enter`]: setns(2) on the calling thread, so the processes it
//! spawns and the sockets it opens are inside too; a current-thread
//! `#[tokio::test]` runs all its tasks on that thread), or run a closure on a
//! thread inside one ([`NetNs::run_in`]). [`Pod`] is a namespace on a bridge
//! of another namespace, serving its own name over HTTP (busybox httpd).
//!
//! Network safety: only namespaces made here are ever entered or addressed.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short name (at most 15 characters, so fit for a network device) that
/// no other name made by this process, or by another process, shares.
pub fn unique_name(prefix: &str) -> String {
    let name = format!(
        "{prefix}{:x}x{}",
        std::process::id() & 0xffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= 15, "name {name:?} too long for a device");
    name
}

#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// A new, empty namespace with a unique name starting with `prefix`
    /// and its loopback up.
    pub fn create(prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        run("ip", &["netns", "add", &name])?;
        let ns = Self { name };
        ns.exec_ok("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Run `program args` inside the namespace: its stdout, or an error with
    /// its stderr.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Result<String> {
        output_ok(self.command(program).args(args))
    }

    /// Move the calling thread into the namespace until the guard drops.
    pub fn enter(&self) -> Result<Entered> {
        let home = File::open("/proc/thread-self/ns/net").context("open this thread's netns")?;
        setns(&File::open(self.path()).context("open the netns")?)?;
        Ok(Entered { home })
    }

    /// Run `f` on a thread inside the namespace.
    pub fn run_in<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        let target = File::open(self.path()).context("open the netns")?;
        std::thread::scope(|s| {
            s.spawn(move || {
                setns(&target)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| bail!("thread in netns panicked"))
        })
    }

    /// The processes whose network namespace this is.
    pub fn pids(&self) -> Vec<i32> {
        run("ip", &["netns", "pids", &self.name])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let me = std::process::id() as i32;
        for pid in self.pids() {
            // Only processes inside our own namespace; never this test.
            if pid != me {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// The calling thread is inside a namespace; dropping moves it back.
#[derive(Debug)]
pub struct Entered {
    home: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.home) {
            eprintln!("netns: cannot return to the original namespace: {e}");
        }
    }
}

fn setns(ns: &File) -> Result<()> {
    // SAFETY: setns(2) on an open namespace file; affects the calling thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A "pod": a namespace with `eth0` (a veth whose other end is a port of
/// `bridge` in `node`, hairpin on, as CNI's bridge plugin sets it), a
/// default route via `gateway`, and busybox httpd on port 80 answering
/// `GET /` with the pod's name.
#[derive(Debug)]
pub struct Pod {
    pub name: String,
    pub ip: String,
    httpd: Child,
    _www: tempfile::TempDir,
    // Last: the namespace goes after its server.
    pub ns: NetNs,
}

impl Pod {
    pub fn start(
        node: &NetNs,
        bridge: &str,
        ip: &str,
        prefix_len: u8,
        gateway: &str,
    ) -> Result<Self> {
        let ns = NetNs::create("kpp")?;
        let name = ns.name().to_string();
        let veth = unique_name("kpv");
        let node_ip = |args: &[&str]| node.exec_ok("ip", args);
        node_ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ])?;
        node_ip(&["link", "set", &veth, "master", bridge, "up"])?;
        node.exec_ok("bridge", &["link", "set", "dev", &veth, "hairpin", "on"])?;
        let pod_ip = |args: &[&str]| ns.exec_ok("ip", args);
        pod_ip(&["addr", "add", &format!("{ip}/{prefix_len}"), "dev", "eth0"])?;
        pod_ip(&["link", "set", "eth0", "up"])?;
        pod_ip(&["route", "add", "default", "via", gateway])?;
        let www = tempfile::tempdir()?;
        std::fs::write(www.path().join("index.html"), &name)?;
        let dir = www.path().to_str().context("temp dir path")?.to_string();
        let httpd = ns
            .command("busybox")
            .args(["httpd", "-f", "-p", "80", "-h", &dir])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start busybox httpd")?;
        let pod = Self {
            name,
            ip: ip.to_string(),
            httpd,
            _www: www,
            ns,
        };
        // Serving once it answers on its own address.
        let addr = format!("{ip}:80");
        let ready = pod.ns.run_in(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if http_get(&addr, Duration::from_secs(1)).is_ok() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })?;
        if !ready {
            bail!("httpd in {} did not answer on {addr}", pod.name);
        }
        Ok(pod)
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.httpd.kill();
        let _ = self.httpd.wait();
    }
}

/// `GET /` over HTTP/1.0 from the calling thread's namespace: the body of a
/// 200 answer. Errors keep their kind (ConnectionRefused, TimedOut, ...).
pub fn http_get(addr: &str, timeout: Duration) -> std::io::Result<String> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!(
            "answer from {addr}: {}",
            head.lines().next().unwrap_or_default()
        )));
    }
    Ok(body.to_string())
}

/// Run `program args` (in the calling thread's namespace): its stdout, or
/// an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    output_ok(Command::new(program).args(args))
}

fn output_ok(cmd: &mut Command) -> Result<String> {
    let what = format!("{cmd:?}");
    let out: Output = cmd.output().with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_of_our_own() {
        let ns = NetNs::create("nstest").unwrap();
        assert!(ns.path().exists());
        let links = ns.exec_ok("ip", &["-o", "link"]).unwrap();
        assert_eq!(links.lines().count(), 1, "only lo: {links}");
        // A thread inside sees the namespace's interfaces only.
        let inside = ns
            .run_in(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap())
            .unwrap();
        assert_eq!(inside.lines().count(), 3, "{inside}");
        {
            let _in = ns.enter().unwrap();
            // A child spawned from this thread starts inside.
            let links = run("ip", &["-o", "link"]).unwrap();
            assert_eq!(links.lines().count(), 1, "{links}");
        }
        let path = ns.path();
        drop(ns);
        assert!(!path.exists());
    }

    #[test]
    fn a_pod_serves_its_name() {
        let node = NetNs::create("nstest").unwrap();
        let bridge = unique_name("nsbr");
        node.exec_ok("ip", &["link", "add", &bridge, "type", "bridge"])
            .unwrap();
        node.exec_ok("ip", &["addr", "add", "10.244.7.1/24", "dev", &bridge])
            .unwrap();
        node.exec_ok("ip", &["link", "set", &bridge, "up"]).unwrap();
        let pod = Pod::start(&node, &bridge, "10.244.7.2", 24, "10.244.7.1").unwrap();
        let body = node
            .run_in(|| http_get("10.244.7.2:80", Duration::from_secs(2)))
            .unwrap()
            .unwrap();
        assert_eq!(body, pod.name);
    }
}
