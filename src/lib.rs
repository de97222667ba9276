//! redis-session: session handling inside Redis, as one atomic command per operation.
//!
//! Layout: the domain ([`config`], [`token`], [`json`], [`session`], [`error`]) knows nothing
//! of Redis and is unit-tested on its own; [`redis`] is the thin glue to the module API; this
//! file holds only the registration table.

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod error;
pub mod json;
pub mod layout;
pub mod limits;
pub mod session;
pub mod token;

#[cfg(test)]
mod proptests;

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

    /// SESSION.UPDATE token patch
    fn session_update(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::update)
    }

    /// SESSION.ROTATE token [GRACE seconds]
    fn session_rotate(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::rotate)
    }

    /// SESSION.DESTROY token
    fn session_destroy(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::destroy)
    }

    /// SESSION.REVOKEINDEX property value [EXCEPT token]
    fn session_revokeindex(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::revoke_index)
    }

    /// SESSION.REVOKEID property value session-id
    fn session_revokeid(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::revoke_id)
    }

    /// SESSION.LIST property value
    fn session_list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        guarded(ctx, args, commands::list)
    }

    fn init(ctx: &Context, args: &[RedisString]) -> redis_module::Status {
        crate::redis::init(ctx, args)
    }

    redis_module! {
        name: "session",
        // MODULE LIST `ver`: major * 10000 + minor * 100 + patch, as RedisJSON and RediSearch do.
        version: 200,
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
            ["session.update", session_update, "write deny-oom no-monitor no-slowlog", 1, 1, 1, ""],
            ["session.rotate", session_rotate, "write deny-oom no-monitor no-slowlog", 1, 1, 1, ""],
            ["session.destroy", session_destroy, "write no-monitor no-slowlog", 1, 1, 1, ""],
            // REVOKEINDEX, REVOKEID and LIST name an index by property and value, not by key: the key
            // they touch is computed from the settings, so they declare none.
            ["session.revokeindex", session_revokeindex, "write no-monitor no-slowlog", 0, 0, 0, ""],
            ["session.revokeid", session_revokeid, "write no-monitor no-slowlog", 0, 0, 0, ""],
            ["session.list", session_list, "write no-monitor no-slowlog", 0, 0, 0, ""],
        ],
    }
}
