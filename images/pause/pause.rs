//! The pod sandbox's "pause" process: PID 1 of a pod, holding its namespaces.
//!
//! It sleeps until SIGTERM or SIGINT (then exits 0) and reaps every child it
//! inherits, so orphans of the pod's processes never stay zombies. Built as a
//! static binary (`-C target-feature=+crt-static`) with plain rustc by
//! cluster/build.rs. `no_main` and only raw libc calls keep Rust's formatting
//! machinery out, so the binary stays small.

#![no_main]

use std::os::raw::{c_char, c_int, c_void};

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> *mut c_void;
    fn pause() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn getpid() -> c_int;
    fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
}

fn say(fd: c_int, msg: &[u8]) {
    // SAFETY: write(2) of a valid buffer; a failed write is of no consequence.
    unsafe {
        write(fd, msg.as_ptr().cast(), msg.len());
    }
}

/// Only async-signal-safe calls here: write(2) and _exit(2).
extern "C" fn shut_down(_signum: c_int) {
    say(2, b"Shutting down, got signal\n");
    // SAFETY: _exit ends the process at once; nothing needs flushing.
    unsafe { _exit(0) }
}

/// Reap every child that has exited; several may share one SIGCHLD.
extern "C" fn reap(_signum: c_int) {
    // SAFETY: waitpid(2) is async-signal-safe; a null status pointer is allowed.
    unsafe { while waitpid(-1, std::ptr::null_mut(), WNOHANG) > 0 {} }
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argv holds argc valid C strings, as the C runtime guarantees.
    unsafe {
        if argc > 1 && std::ffi::CStr::from_ptr(*argv.add(1)).to_bytes() == b"-v" {
            say(1, b"pause.rs (mini-kubernetes) 3.10\n");
            return 0;
        }
        if getpid() != 1 {
            say(2, b"Warning: pause should be the first process\n");
        }
        signal(SIGINT, shut_down);
        signal(SIGTERM, shut_down);
        signal(SIGCHLD, reap);
        loop {
            pause();
        }
    }
}
