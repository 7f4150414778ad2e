//! nftables through libnftables (the library behind the `nft` command,
//! loaded at run time from `libnftables.so.1`, which every nftables install
//! has). A context lives from one full sync to the next: it keeps its
//! netlink socket, so a small transaction costs neither a fork/exec of `nft`
//! nor the socket teardown (an RCU grace period) that each `nft` run pays.
//! The text given to [`Nft::run`] is `nft -f` syntax and is applied as ONE
//! transaction: all of it or nothing.
//!
//! The socket belongs to the network namespace of the thread that created
//! the context.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::rules::TABLE;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("libnftables: {0}")]
    Library(String),
    #[error("nft: {0}")]
    Command(String),
}

/// The functions of libnftables this proxier uses (see libnftables(3)).
struct Lib {
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_output: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    get_error: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    output_get_flags: unsafe extern "C" fn(*mut c_void) -> u32,
    output_set_flags: unsafe extern "C" fn(*mut c_void, u32),
    run_cmd_from_buffer: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
}

/// `NFT_CTX_OUTPUT_JSON` in libnftables.h.
const OUTPUT_JSON: u32 = 1 << 4;

fn lib() -> Result<&'static Lib, NftError> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load)
        .as_ref()
        .map_err(|e| NftError::Library(e.clone()))
}

fn load() -> Result<Lib, String> {
    // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to
    // the signature libnftables.h declares for it. The handle is never closed.
    unsafe {
        let handle = libc::dlopen(c"libnftables.so.1".as_ptr(), libc::RTLD_NOW);
        if handle.is_null() {
            let why = libc::dlerror();
            let why = if why.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(why).to_string_lossy().into_owned()
            };
            return Err(format!(
                "cannot load libnftables.so.1 ({why}): kube-proxy needs the nftables library (Debian: apt-get install libnftables1)"
            ));
        }
        let sym = |name: &CStr| -> Result<*mut c_void, String> {
            let p = libc::dlsym(handle, name.as_ptr());
            if p.is_null() {
                Err(format!("libnftables lacks {}", name.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        Ok(Lib {
            ctx_new: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(u32) -> *mut c_void>(
                sym(c"nft_ctx_new")?,
            ),
            ctx_free: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(*mut c_void)>(sym(
                c"nft_ctx_free",
            )?),
            buffer_output: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> c_int,
            >(sym(c"nft_ctx_buffer_output")?),
            buffer_error: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> c_int,
            >(sym(c"nft_ctx_buffer_error")?),
            get_output: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> *const c_char,
            >(sym(c"nft_ctx_get_output_buffer")?),
            get_error: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> *const c_char,
            >(sym(c"nft_ctx_get_error_buffer")?),
            output_get_flags: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void) -> u32,
            >(sym(c"nft_ctx_output_get_flags")?),
            output_set_flags: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, u32),
            >(sym(c"nft_ctx_output_set_flags")?),
            run_cmd_from_buffer: std::mem::transmute::<
                *mut c_void,
                unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
            >(sym(c"nft_run_cmd_from_buffer")?),
        })
    }
}

/// One libnftables context (not shareable between threads at once; it may
/// move between them).
pub struct Nft {
    lib: &'static Lib,
    ctx: *mut c_void,
}

// SAFETY: a context is only used through &mut self, so never from two
// threads at once; libnftables keeps no thread-local state.
unsafe impl Send for Nft {}

impl Nft {
    pub fn new() -> Result<Self, NftError> {
        let lib = lib()?;
        // SAFETY: plain constructor; 0 = NFT_CTX_DEFAULT.
        let ctx = unsafe { (lib.ctx_new)(0) };
        if ctx.is_null() {
            return Err(NftError::Library("nft_ctx_new failed".into()));
        }
        // SAFETY: ctx is valid; buffering makes output and errors readable
        // from the context instead of going to stdout/stderr.
        unsafe {
            (lib.buffer_output)(ctx);
            (lib.buffer_error)(ctx);
        }
        Ok(Self { lib, ctx })
    }

    /// Run `text` (nft -f syntax) as one transaction; returns what nft printed.
    pub fn run(&mut self, text: &str) -> Result<String, NftError> {
        let text = CString::new(text)
            .map_err(|_| NftError::Command("ruleset text contains a NUL byte".into()))?;
        // SAFETY: ctx is valid, text is NUL-terminated; the returned buffers
        // are owned by ctx and copied out before the next call.
        unsafe {
            let rc = (self.lib.run_cmd_from_buffer)(self.ctx, text.as_ptr());
            let output = cstr((self.lib.get_output)(self.ctx));
            let error = cstr((self.lib.get_error)(self.ctx));
            if rc == 0 {
                Ok(output)
            } else {
                Err(NftError::Command(if error.trim().is_empty() {
                    format!("exit status {rc}")
                } else {
                    error.trim().to_string()
                }))
            }
        }
    }

    /// Run a listing command with JSON output.
    pub fn list_json(&mut self, command: &str) -> Result<serde_json::Value, NftError> {
        // SAFETY: ctx is valid.
        let flags = unsafe { (self.lib.output_get_flags)(self.ctx) };
        unsafe { (self.lib.output_set_flags)(self.ctx, flags | OUTPUT_JSON) };
        let out = self.run(command);
        unsafe { (self.lib.output_set_flags)(self.ctx, flags) };
        let out = out?;
        serde_json::from_str(&out).map_err(|e| NftError::Command(format!("bad JSON from nft: {e}")))
    }

    /// Remove this proxier's table; a missing table is fine.
    pub fn delete_table(&mut self) -> Result<(), NftError> {
        self.run(&format!("add table ip {TABLE}\ndelete table ip {TABLE}\n"))
            .map(|_| ())
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        // SAFETY: ctx came from nft_ctx_new and is freed once.
        unsafe { (self.lib.ctx_free)(self.ctx) }
    }
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
