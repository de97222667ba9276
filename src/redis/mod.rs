//! The Redis glue: everything that touches the module API lives below here. It converts
//! Redis strings into domain requests, calls the domain, and turns results into replies.

pub mod acl;
pub mod capabilities;
pub mod cluster;
pub mod commands;
pub mod docs;
pub mod effects;
pub mod guard;
pub mod keyevents;
pub mod keys;
pub mod secret;
pub mod settings;
pub mod stats;

use redis_module::{Context, RedisError, RedisResult, RedisString, Status};

/// Wraps a command handler so that a panic becomes an error reply instead of an abort.
pub fn guarded(
    ctx: &Context,
    args: Vec<RedisString>,
    handler: fn(&Context, Vec<RedisString>) -> RedisResult,
) -> RedisResult {
    // A flag a previous command may have left (it is read by the command that sets it).
    secret::take_retry();
    guard::catch(
        || handler(ctx, args),
        || {
            Err(RedisError::Str(
                "ERR internal error in redis-session (see the server log); nothing was changed",
            ))
        },
    )
}

/// Module initialisation after the commands are registered: the panic hook and the settings.
pub fn init(ctx: &Context, args: &[RedisString]) -> Status {
    guard::init_logging(ctx);
    guard::install_panic_hook();
    stats::reset();
    if !keys::init_field_names() {
        guard::log(
            "warning",
            "could not make the hash field names; module not loaded",
        );
        return Status::Err;
    }
    keys::explicit_modified_signals(ctx);
    capabilities::detect();
    capabilities::set_key_events(guard::catch(|| keyevents::subscribe(ctx), || false));
    // Replaces the crate's default INFO callback with the `session` section.
    redis_module::raw::register_info_function(ctx.get_raw(), Some(stats::info));
    let outcome = guard::catch(
        || settings::register(ctx, args),
        || Err("internal error while loading".to_string()),
    );
    match outcome {
        Ok(()) => {
            // After the settings: the key specs depend on whether a key prefix is set.
            let prefixed = !settings::current().key_prefix.is_empty();
            if settings::current().cluster {
                cluster::init(ctx);
            }
            guard::catch(|| docs::register(ctx, prefixed), || ());
            Status::Ok
        }
        Err(reason) => {
            guard::log("warning", &reason);
            Status::Err
        }
    }
}
