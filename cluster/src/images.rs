//! Offline OCI images built from this machine's Debian packages (busybox-static,
//! nginx, nginx-common, and the libraries nginx links) plus the project's own pause
//! program (images/pause/pause.rs, compiled by build.rs). Each image is one
//! uncompressed layer in an OCI image-layout tarball whose index names the image with
//! the `io.containerd.image.name` annotation, ready for
//! `ctr -n k8s.io images import <tar>`.

use std::path::{Path, PathBuf};

use crate::command;
use crate::error::IoContext;
use crate::oci::{self, Rootfs, RuntimeConfig};
use crate::{Error, Result};

/// The pod sandbox image: containerd's `sandbox_image`.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:latest";
pub const NGINX_IMAGE: &str = "docker.io/library/nginx:latest";

/// Every image [`build_images`] writes: (image name, file name in the output directory).
pub const IMAGES: [(&str, &str); 3] = [
    (BUSYBOX_IMAGE, "busybox.tar"),
    (PAUSE_IMAGE, "pause.tar"),
    (NGINX_IMAGE, "nginx.tar"),
];

/// The static pause binary, compiled from images/pause/pause.rs by build.rs.
const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BUSYBOX: &str = "/bin/busybox";
const NGINX: &str = "/usr/sbin/nginx";

/// Build the three image tarballs into `out_dir` (created if missing) and return their
/// paths in [`IMAGES`] order. Idempotent: images are reproducible byte for byte, and a
/// tarball that already holds the same bytes is left untouched.
pub fn build_images(out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).path_context("create", out_dir)?;
    let mut paths = Vec::with_capacity(IMAGES.len());
    for (name, file) in IMAGES {
        let (rootfs, config) = match name {
            BUSYBOX_IMAGE => busybox()?,
            PAUSE_IMAGE => pause(),
            _ => nginx()?,
        };
        let tarball = oci::image_layout_tar(name, &config, &rootfs.layer_tar()?)?;
        let path = out_dir.join(file);
        if oci::write_if_changed(&path, &tarball)? {
            tracing::info!(image = name, path = %path.display(), "built image");
        }
        paths.push(path);
    }
    Ok(paths)
}

/// /etc/passwd and /etc/group of the busybox image (as the official image has them).
const BUSYBOX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";
const BUSYBOX_GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
users:x:100:
nogroup:x:65534:
";

/// busybox-static's binary with one symlink per applet, all in /bin like the official
/// image; `sh` by default.
fn busybox() -> Result<(Rootfs, RuntimeConfig)> {
    let mut fs = Rootfs::default();
    fs.host_file("bin/busybox", Path::new(BUSYBOX))?;
    let applets = command::run(BUSYBOX, &["--list"])?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        fs.symlink(&format!("bin/{applet}"), "busybox");
    }
    if !fs.contains("bin/sh") {
        return Err(Error::Invalid(format!("{BUSYBOX} has no sh applet")));
    }
    fs.file("etc/passwd", BUSYBOX_PASSWD, 0o644);
    fs.file("etc/group", BUSYBOX_GROUP, 0o644);
    for dir in ["home", "usr/bin", "usr/sbin", "var/spool/mail", "var/www"] {
        fs.dir(dir, 0o755, 0, 0);
    }
    fs.dir("root", 0o700, 0, 0);
    fs.dir("tmp", 0o1777, 0, 0);
    let config = RuntimeConfig {
        cmd: vec!["sh".into()],
        env: vec![PATH_ENV.into()],
        working_dir: "/".into(),
        ..Default::default()
    };
    Ok((fs, config))
}

/// The pause binary alone, run as 65535:65535 like upstream's image.
fn pause() -> (Rootfs, RuntimeConfig) {
    let mut fs = Rootfs::default();
    fs.file("pause", PAUSE_BINARY, 0o755);
    let config = RuntimeConfig {
        entrypoint: vec!["/pause".into()],
        env: vec![PATH_ENV.into()],
        working_dir: "/".into(),
        user: Some("65535:65535".into()),
        ..Default::default()
    };
    (fs, config)
}

/// The main config: the official image's layout (server blocks in conf.d), logging to
/// the container's stdout/stderr. `daemon off` comes from the command line as in the
/// official image, so `nginx -g 'daemon off;'` in a pod spec works unchanged.
const NGINX_CONF: &str = "user  www-data;
worker_processes  1;

error_log  /dev/stderr notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    access_log    /dev/stdout;
    sendfile      on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
";
const NGINX_DEFAULT_SERVER: &str = "server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
}
";
const NGINX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const NGINX_GROUP: &str = "root:x:0:
www-data:x:33:
nogroup:x:65534:
";
/// nginx's workers look up `www-data` through glibc's NSS: files only.
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";
const WWW_DATA: u64 = 33;

/// Debian's nginx binary with every library `ldd` lists at the path it lists, its
/// mime.types and default page, a minimal config, and www-data.
fn nginx() -> Result<(Rootfs, RuntimeConfig)> {
    let mut fs = Rootfs::default();
    fs.host_file("usr/sbin/nginx", Path::new(NGINX))?;
    for library in linked_libraries(Path::new(NGINX))? {
        fs.host_file(&library, Path::new(&library))?;
    }
    fs.host_file("etc/nginx/mime.types", Path::new("/etc/nginx/mime.types"))?;
    fs.file("etc/nginx/nginx.conf", NGINX_CONF, 0o644);
    fs.file("etc/nginx/conf.d/default.conf", NGINX_DEFAULT_SERVER, 0o644);
    fs.host_file(
        "usr/share/nginx/html/index.html",
        Path::new("/usr/share/nginx/html/index.html"),
    )?;
    fs.file("etc/passwd", NGINX_PASSWD, 0o644);
    fs.file("etc/group", NGINX_GROUP, 0o644);
    fs.file("etc/nsswitch.conf", NSSWITCH, 0o644);
    // Temp paths compiled into Debian's nginx (--http-*-temp-path) live here.
    fs.dir("var/lib/nginx", 0o755, WWW_DATA, WWW_DATA);
    // Anything still logging to the default files ends up on the container's streams.
    fs.symlink("var/log/nginx/access.log", "/dev/stdout");
    fs.symlink("var/log/nginx/error.log", "/dev/stderr");
    fs.dir("run", 0o755, 0, 0);
    fs.dir("var/www", 0o755, 0, 0);
    fs.dir("tmp", 0o1777, 0, 0);
    let config = RuntimeConfig {
        cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec![PATH_ENV.into(), "NGINX_VERSION=1.22.1".into()],
        working_dir: "/".into(),
        exposed_ports: vec!["80/tcp".into()],
        stop_signal: Some("SIGQUIT".into()),
        ..Default::default()
    };
    Ok((fs, config))
}

/// The absolute library paths `ldd` prints for `binary` (the loader included).
fn linked_libraries(binary: &Path) -> Result<Vec<String>> {
    let out = command::run("ldd", &[&binary.to_string_lossy()])?;
    let libraries: Vec<String> = out.lines().filter_map(ldd_path).collect();
    if libraries.is_empty() {
        return Err(Error::Invalid(format!(
            "ldd lists no libraries for {}",
            binary.display()
        )));
    }
    Ok(libraries)
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`;
/// the vDSO has no path.
fn ldd_path(line: &str) -> Option<String> {
    let line = line.trim();
    let path = match line.split_once("=>") {
        Some((_, right)) => right.trim(),
        None => line,
    };
    let path = path.split_whitespace().next()?;
    path.starts_with('/').then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::ldd_path;

    #[test]
    fn ldd_lines() {
        assert_eq!(
            ldd_path("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)").as_deref(),
            Some("/lib/x86_64-linux-gnu/libc.so.6")
        );
        assert_eq!(
            ldd_path("\t/lib64/ld-linux-x86-64.so.2 (0x00007ff3eafcd000)").as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert_eq!(ldd_path("\tlinux-vdso.so.1 (0x00007ff3eafcb000)"), None);
    }
}
