//! Replicating effects without building argument vectors: the hot paths (every VALIDATE)
//! replicate `PEXPIREAT`, which `RM_Replicate`'s format string can take as raw bytes and an
//! integer, with no allocation.

use std::ffi::{c_char, c_longlong};

use redis_module::{raw, Context};

/// Replicates `PEXPIREAT <name> <at_ms>` to replicas and the AOF.
pub fn pexpireat(ctx: &Context, name: &[u8], at_ms: i64) {
    // SAFETY: the API table is filled once at load, before any command runs.
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    // SAFETY: "bl" takes a buffer pointer with its length, then a long long; the name
    // outlives the call, which copies it.
    unsafe {
        replicate(
            ctx.get_raw(),
            c"PEXPIREAT".as_ptr(),
            c"bl".as_ptr(),
            name.as_ptr().cast::<c_char>(),
            name.len(),
            at_ms as c_longlong,
        );
    }
}
