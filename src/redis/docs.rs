//! Hands [`crate::catalog`] to `RedisModule_SetCommandInfo`, so that `COMMAND INFO` and
//! `COMMAND DOCS` describe every command (arity, key specs, summary, arguments) on Redis 7.0,
//! where the crate's own command attribute cannot be used.

use std::ffi::{c_char, c_int, CStr};
use std::mem::{size_of, zeroed};
use std::ptr;

use redis_module::{raw, Context};

use crate::catalog::{ArgKind, CommandDoc, KeyUse, Route, COMMANDS};

/// Registers the documentation of every command; a failure is logged, not fatal: the
/// commands work without it. `prefixed`: a `key-prefix` is set (it is load-time only), so
/// the token names the session key without being it (see [`key_spec`]).
pub fn register(ctx: &Context, prefixed: bool) {
    for doc in COMMANDS {
        if !register_one(ctx, doc, prefixed) {
            super::guard::log(
                "warning",
                &format!(
                    "could not set COMMAND DOCS for {}",
                    doc.name.to_string_lossy()
                ),
            );
        }
    }
}

fn register_one(ctx: &Context, doc: &CommandDoc, prefixed: bool) -> bool {
    // SAFETY: the API table is filled once at load, before this runs.
    let (Some(get_command), Some(set_info)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        return false;
    };
    // SAFETY: ctx is the loading context and the name a static C string.
    let command = unsafe { get_command(ctx.get_raw(), doc.name.as_ptr()) };
    if command.is_null() {
        return false;
    }

    // RM_SetCommandInfo copies everything it is given (Redis 7.0's
    // moduleCopyCommandInfoAndUpgrade), so these need to live only through the call.
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: size_of::<raw::RedisModuleCommandArg>(),
    };
    let mut key_specs: Vec<raw::RedisModuleCommandKeySpec> =
        doc.key.map(|k| key_spec(k, prefixed)).into_iter().collect();
    // The routing key's spec follows the token's, if any (CREATE, REVOKEINDEX, LIST have
    // no token): its index is what its argument points at.
    let route_spec = key_specs.len() as c_int;
    key_specs.extend(doc.route.map(route_key_spec));
    let declared = !key_specs.is_empty();
    key_specs.push(zeroed_key_spec());
    let mut args: Vec<raw::RedisModuleCommandArg> = doc
        .args
        .iter()
        .map(|a| command_arg(a, route_spec))
        .collect();
    args.push(zeroed_arg());

    let info = raw::RedisModuleCommandInfo {
        version: &version,
        summary: doc.summary.as_ptr(),
        complexity: doc.complexity.as_ptr(),
        since: doc.since.as_ptr(),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: doc.arity as c_int,
        key_specs: if declared {
            key_specs.as_mut_ptr()
        } else {
            ptr::null_mut()
        },
        args: args.as_mut_ptr(),
    };
    // SAFETY: command comes from GetCommand; info and everything it points to is valid,
    // and both arrays end with a zeroed entry as the API requires.
    let documented = unsafe { set_info(command, &info) == raw::REDISMODULE_OK as c_int };
    set_acl_categories(command, doc) && documented
}

/// Puts the command in its ACL categories where the server can (Redis 7.2+, Valkey 8; on
/// 7.0 module commands belong to none, docs/operating.md "ACL"). True when done or not possible here.
fn set_acl_categories(command: *mut raw::RedisModuleCommand, doc: &CommandDoc) -> bool {
    // SAFETY: the API table is filled once at load, before this runs.
    let Some(set) = (unsafe { raw::RedisModule_SetCommandACLCategories }) else {
        return true;
    };
    // SAFETY: command comes from GetCommand during OnLoad; the categories are a static C
    // string of space-separated names.
    unsafe { set(command, doc.acl_categories.as_ptr()) == raw::REDISMODULE_OK as c_int }
}

/// The token argument's key spec. With a key prefix it carries `NOT_KEY`: Redis then does
/// not judge the token against a user's ACL key patterns as if it were the key (the module
/// checks `<prefix><token>` itself, `acl.rs`), while cluster routing and client tracking
/// (which follows the legacy first/last/step range, derived from this spec) still see it.
fn key_spec(key_use: KeyUse, prefixed: bool) -> raw::RedisModuleCommandKeySpec {
    let not_key = if prefixed {
        raw::REDISMODULE_CMD_KEY_NOT_KEY
    } else {
        0
    };
    let flags = not_key
        | match key_use {
            KeyUse::Read => raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
            KeyUse::Update => {
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_ACCESS
                    | raw::REDISMODULE_CMD_KEY_UPDATE
            }
            KeyUse::Delete => raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_DELETE,
        };
    let mut spec = zeroed_key_spec();
    spec.notes = c"the session key: key-prefix followed by the token".as_ptr();
    spec.flags = u64::from(flags);
    spec.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    spec.bs.index = raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 1 };
    spec.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    spec.fk.range = raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
        lastkey: 0,
        keystep: 1,
        limit: 0,
    };
    spec
}

/// The cluster routing key's spec (see [`Route`]).
fn route_key_spec(route: Route) -> raw::RedisModuleCommandKeySpec {
    let mut spec = zeroed_key_spec();
    match route {
        Route::Keyword(keyword) => {
            spec.notes =
                c"cluster routing: a key in the hash slot the session will live in".as_ptr();
            // Judged by ACL like the index key it usually is (`user_id:{150}`): written to.
            spec.flags = u64::from(raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_INSERT);
            spec.begin_search_type =
                raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_KEYWORD;
            spec.bs.keyword = raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_2 {
                keyword: keyword.as_ptr(),
                startfrom: 2,
            };
        }
        Route::NotKeyAt(pos) => {
            spec.notes =
                c"cluster routing: the value, which hashes to the slot of its index key".as_ptr();
            // RO: a module key spec needs one of RO/RW/OW/RM; NOT_KEY keeps ACL out of it.
            spec.flags = u64::from(raw::REDISMODULE_CMD_KEY_NOT_KEY | raw::REDISMODULE_CMD_KEY_RO);
            spec.begin_search_type =
                raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
            spec.bs.index = raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos };
        }
    }
    spec.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    spec.fk.range = raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
        lastkey: 0,
        keystep: 1,
        limit: 0,
    };
    spec
}

fn command_arg(arg: &crate::catalog::Arg, route_spec: c_int) -> raw::RedisModuleCommandArg {
    let mut out = zeroed_arg();
    out.name = arg.name.as_ptr();
    out.type_ = match arg.kind {
        ArgKind::Key | ArgKind::RouteKey => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
        ArgKind::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
        ArgKind::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
        ArgKind::PureToken => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
    };
    out.key_spec_index = match arg.kind {
        ArgKind::Key => 0,
        ArgKind::RouteKey => route_spec,
        _ => -1,
    };
    out.token = arg
        .token
        .map_or(ptr::null(), |t| t.as_ptr().cast::<c_char>());
    out.since = arg.since.map_or(ptr::null(), CStr::as_ptr);
    out.flags = if arg.optional {
        raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int
    } else {
        raw::REDISMODULE_CMD_ARG_NONE as c_int
    };
    out
}

fn zeroed_key_spec() -> raw::RedisModuleCommandKeySpec {
    // SAFETY: a plain C struct of pointers, integers and unions of integers: all-zero is
    // valid and is the array terminator the API expects.
    unsafe { zeroed() }
}

fn zeroed_arg() -> raw::RedisModuleCommandArg {
    // SAFETY: a plain C struct of pointers and integers: all-zero is valid and is the
    // array terminator the API expects.
    unsafe { zeroed() }
}
