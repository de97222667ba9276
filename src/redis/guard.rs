//! Nothing unwinds into Redis: every entry point runs inside [`catch`], and a panic hook
//! writes what happened to the Redis log, so a bug costs one error reply, not the server.

use std::ffi::CString;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};

use redis_module::{raw, Context};

/// A detached context made at load, so that log lines carry the module's name.
static LOG_CONTEXT: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// Makes log lines name the module (`<session>`); called once at load.
pub fn init_logging(ctx: &Context) {
    // SAFETY: called during OnLoad with the live loading context; the detached context
    // lives for the rest of the process.
    let detached = unsafe {
        raw::RedisModule_GetDetachedThreadSafeContext
            .map_or(std::ptr::null_mut(), |f| f(ctx.get_raw()))
    };
    LOG_CONTEXT.store(detached, Ordering::Relaxed);
}

/// Runs `f`, turning a panic into `on_panic()`.
pub fn catch<T>(f: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| on_panic())
}

/// Writes one line to the Redis log at `level` ("warning", "notice", ...).
/// The message is passed as data, never as a format string.
pub fn log(level: &str, message: &str) {
    let clean = |s: &str| CString::new(s.replace('\0', "\\0")).unwrap_or_default();
    let (level, message) = (clean(level), clean(&format!("redis-session: {message}")));
    if let Some(log) = unsafe { raw::RedisModule_Log } {
        let ctx = LOG_CONTEXT.load(Ordering::Relaxed);
        // SAFETY: ctx is NULL (allowed) or the detached context; "%s" consumes exactly the
        // one C string given.
        unsafe { log(ctx, level.as_ptr(), c"%s".as_ptr(), message.as_ptr()) };
    }
}

/// Installs a panic hook that logs the panic (message and place, never arguments), then
/// hands over to the hook that was there before (another module's, or Rust's default).
/// Once per process: `MODULE UNLOAD` leaves the library mapped, and a second `MODULE LOAD`
/// would otherwise chain a second hook onto the first (every panic logged twice, and so on).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_panic_hook_now);
}

fn install_panic_hook_now() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        log(
            "warning",
            &format!("caught a panic{place}: {what}; the command failed, the server goes on"),
        );
        previous(info);
    }));
}
