//! Replicating effects without building argument vectors: `RM_Replicate`'s format string
//! takes raw buffers (`b`) and integers (`l`), so the hot paths (every VALIDATE's
//! `PEXPIREAT`, every CREATE's `HSET` and `SADD`) make no Redis strings of their own.

use std::ffi::{c_char, c_longlong, CStr};

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

/// Replicates `SET <name> <value> PXAT <at_ms>`: a session's value and absolute expiry in
/// one command.
pub fn set_pxat(ctx: &Context, name: &[u8], value: &[u8], at_ms: i64) {
    // SAFETY: the API table is filled once at load, before any command runs.
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    // SAFETY: "bbcl": two buffers (pointer and length each), a C string, a long long; all
    // outlive the call, which copies them.
    unsafe {
        replicate(
            ctx.get_raw(),
            c"SET".as_ptr(),
            c"bbcl".as_ptr(),
            name.as_ptr().cast::<c_char>(),
            name.len(),
            value.as_ptr().cast::<c_char>(),
            value.len(),
            c"PXAT".as_ptr(),
            at_ms as c_longlong,
        );
    }
}

/// Calls `RM_Replicate` with each argument as a `b` (pointer and length) format item.
macro_rules! replicate_buffers {
    ($replicate:expr, $ctx:expr, $command:expr, $format:expr, $($arg:expr),+) => {
        // SAFETY: the format has one `b` per argument, each given as a pointer and its
        // length; the buffers outlive the call, which copies them.
        unsafe {
            $replicate(
                $ctx,
                $command.as_ptr(),
                $format.as_ptr(),
                $($arg.as_ptr().cast::<c_char>(), $arg.len()),+
            )
        }
    };
}

/// Replicates `command args...` to replicas and the AOF. Up to nine arguments go straight
/// from their buffers (no Redis strings made here); longer lists go through the crate.
pub fn replicate(ctx: &Context, command: &CStr, args: &[&[u8]]) {
    // SAFETY: the API table is filled once at load, before any command runs.
    let Some(f) = (unsafe { raw::RedisModule_Replicate }) else {
        return;
    };
    let c = ctx.get_raw();
    match args {
        [a] => replicate_buffers!(f, c, command, c"b", a),
        [a, b] => replicate_buffers!(f, c, command, c"bb", a, b),
        [a, b, d] => replicate_buffers!(f, c, command, c"bbb", a, b, d),
        [a, b, d, e] => replicate_buffers!(f, c, command, c"bbbb", a, b, d, e),
        [a, b, d, e, g] => replicate_buffers!(f, c, command, c"bbbbb", a, b, d, e, g),
        [a, b, d, e, g, h] => replicate_buffers!(f, c, command, c"bbbbbb", a, b, d, e, g, h),
        [a, b, d, e, g, h, i] => {
            replicate_buffers!(f, c, command, c"bbbbbbb", a, b, d, e, g, h, i)
        }
        [a, b, d, e, g, h, i, j] => {
            replicate_buffers!(f, c, command, c"bbbbbbbb", a, b, d, e, g, h, i, j)
        }
        [a, b, d, e, g, h, i, j, k] => {
            replicate_buffers!(f, c, command, c"bbbbbbbbb", a, b, d, e, g, h, i, j, k)
        }
        _ => {
            ctx.replicate(&command.to_string_lossy(), args);
            0
        }
    };
}

/// `SADD <index> <token>` through `RM_Call`, replicated by Redis itself (the `!` flag) in
/// its place among the command's effects. Buffers go in as they are (`b`), and the reply is
/// only checked for being an error. Returns whether the token was added or already there.
pub fn sadd_replicated(ctx: &Context, index: &[u8], token: &[u8]) -> bool {
    set_call(ctx, c"SADD", c"!bb", index, token).is_some()
}

/// `SREM <index> <token>` the same way (replicated by Redis only when it removed something;
/// an index key of another type gets WRONGTYPE and is not touched). Returns whether the token
/// was there.
pub fn srem_replicated(ctx: &Context, index: &[u8], token: &[u8]) -> bool {
    set_call(ctx, c"SREM", c"!bb", index, token).is_some_and(|n| n > 0)
}

/// `SISMEMBER <index> <token>`: whether the token is in the set (false for a missing key or
/// one of another type).
pub fn sismember(ctx: &Context, index: &[u8], token: &[u8]) -> bool {
    set_call(ctx, c"SISMEMBER", c"bb", index, token) == Some(1)
}

/// `<command> <index> <token>` through `RM_Call` with `format` (`"bb"`, or `"!bb"` to have
/// Redis replicate it); the integer reply, or `None` for an error reply.
fn set_call(
    ctx: &Context,
    command: &CStr,
    format: &CStr,
    index: &[u8],
    token: &[u8],
) -> Option<i64> {
    // SAFETY: the API table is filled once at load, before any command runs.
    let (Some(call), Some(reply_type), Some(integer), Some(free)) = (
        unsafe { raw::RedisModule_Call },
        unsafe { raw::RedisModule_CallReplyType },
        unsafe { raw::RedisModule_CallReplyInteger },
        unsafe { raw::RedisModule_FreeCallReply },
    ) else {
        return None;
    };
    // SAFETY: the format is "bb" or "!bb": two buffers, each a pointer and its length, which
    // outlive the call; the reply, if any, is freed exactly once below.
    unsafe {
        let reply = call(
            ctx.get_raw(),
            command.as_ptr(),
            format.as_ptr(),
            index.as_ptr().cast::<c_char>(),
            index.len(),
            token.as_ptr().cast::<c_char>(),
            token.len(),
        );
        if reply.is_null() {
            return None;
        }
        let n =
            (reply_type(reply) == raw::REDISMODULE_REPLY_INTEGER as i32).then(|| integer(reply));
        free(reply);
        n
    }
}
