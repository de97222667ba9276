//! redis-session: session handling inside Redis, as one atomic command per operation.
//!
//! Layout: the domain ([`config`], [`token`], [`json`], [`session`], [`error`]) knows nothing
//! of Redis and is unit-tested on its own; [`redis`] is the thin glue to the module API; this
//! file holds only the registration table.

pub mod config;
pub mod error;
pub mod json;
pub mod session;
pub mod token;

#[cfg(not(test))]
pub mod redis;

// The registration lives outside unit-test builds: its global allocator is Redis's, which
// does not exist in a test binary.
#[cfg(not(test))]
mod registration {
    use redis_module::{redis_module, Context, RedisResult, RedisString};

    use crate::redis::{commands, guarded};

    /// SESSION.CREATE data [TTL seconds] [MAXLIFETIME seconds]
    fn session_create(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::create)
    }

    /// SESSION.VALIDATE token
    fn session_validate(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::validate)
    }

    /// SESSION.GET token
    fn session_get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::get)
    }

    fn init(ctx: &Context, args: &[RedisString]) -> redis_module::Status {
        crate::redis::init(ctx, args)
    }

    redis_module! {
        name: "session",
        version: 1,
        allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
        data_types: [],
        init: init,
        commands: [
            // name, handler, flags, first key, last key, key step, ACL categories ("" on 7.0)
            // CREATE makes its own key: it declares none.
            ["session.create", session_create, "write deny-oom no-monitor no-slowlog", 0, 0, 0, ""],
            // The token (argument 1) names the session key.
            ["session.validate", session_validate, "write fast no-monitor no-slowlog", 1, 1, 1, ""],
            ["session.get", session_get, "readonly fast no-monitor no-slowlog", 1, 1, 1, ""],
        ],
    }
}
