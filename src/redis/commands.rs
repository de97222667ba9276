//! The SESSION.* command handlers: each turns its arguments into a domain request, does its
//! reads and writes through the low-level key API, replicates its effects as plain commands
//! with absolute expiry times, and turns the outcome into a reply.

use std::ffi::CStr;

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::config::Settings;
use crate::error::Error;
use crate::session::{CreateOptions, NewSession, Stored};
use crate::token;

use super::keys::{now_ms, Key, Kind};
use super::settings;

const DATA: &CStr = c"data";
const TTL: &CStr = c"ttl";
const DEADLINE: &CStr = c"deadline";
const INDEXES: &CStr = c"indexes";

/// How many fresh tokens CREATE draws before giving up on finding an unused key. With 16
/// random bytes or more a single collision is already beyond belief.
const TOKEN_DRAWS: usize = 8;

fn reply_error(e: Error) -> RedisError {
    RedisError::String(e.to_string())
}

/// `<key-prefix><token>` as a Redis string.
fn session_key(ctx: &Context, settings: &Settings, token: &[u8]) -> RedisString {
    let mut name = Vec::with_capacity(settings.key_prefix.len() + token.len());
    name.extend_from_slice(settings.key_prefix.as_bytes());
    name.extend_from_slice(token);
    RedisString::create_from_slice(ctx.get_raw(), &name)
}

/// An open session: its key and what its fields say.
struct Found {
    key: Key,
    data: RedisString,
    stored: Stored,
}

/// Opens the session named by `token`, or `None` when the token is malformed or its key is
/// not a session this module wrote. Nothing is read beyond the type unless it is a hash.
fn find(ctx: &Context, settings: &Settings, token: &RedisString, write: bool) -> Option<Found> {
    let token = token.as_slice();
    if !token::is_well_formed(token) {
        return None;
    }
    let name = session_key(ctx, settings, token);
    let key = if write {
        Key::write(ctx, &name)
    } else {
        Key::read(ctx, &name)
    };
    if key.kind() != Kind::Hash {
        return None;
    }
    let [data, ttl, deadline, indexes] = key.hash_get4(ctx, [DATA, TTL, DEADLINE, INDEXES]);
    let stored = Stored::decode(
        data.as_ref().map(RedisString::as_slice),
        ttl.as_ref().map(RedisString::as_slice),
        deadline.as_ref().map(RedisString::as_slice),
        indexes.as_ref().map(RedisString::as_slice),
    )?;
    Some(Found {
        key,
        data: data?,
        stored,
    })
}

/// Raises the expiry of the index set `name` to at least `at_ms`, replicating the change.
/// A missing key, a key of another type, or an index set with no expiry is left alone.
fn raise_index_expiry(ctx: &Context, name: &str, at_ms: i64, created_now: bool) {
    let redis_name = RedisString::create_from_slice(ctx.get_raw(), name.as_bytes());
    let key = Key::write(ctx, &redis_name);
    if key.kind() != Kind::Set {
        return;
    }
    let raise = match key.abs_expire() {
        Some(current) => current < at_ms,
        // A set this command just made gets an expiry; one that was persistent stays so.
        None => created_now,
    };
    if raise && key.set_abs_expire(at_ms) {
        let at = at_ms.to_string();
        ctx.replicate("PEXPIREAT", &[name.as_bytes(), at.as_bytes()]);
    }
}

/// SESSION.CREATE data [TTL seconds] [MAXLIFETIME seconds]
pub fn create(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, data, options @ ..] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.create")));
    };
    let settings = settings::current();
    let options: Vec<&[u8]> = options.iter().map(RedisString::as_slice).collect();
    let options = CreateOptions::parse(&options).map_err(reply_error)?;
    let now = now_ms();
    let plan = NewSession::plan(data.as_slice(), options, &settings, now).map_err(reply_error)?;

    // Every check happens before the first write, so a refused CREATE writes nothing.
    let mut index_is_new = Vec::with_capacity(plan.index_keys.len());
    for name in &plan.index_keys {
        let key = Key::read(
            ctx,
            &RedisString::create_from_slice(ctx.get_raw(), name.as_bytes()),
        );
        match key.kind() {
            Kind::Empty => index_is_new.push(true),
            Kind::Set => index_is_new.push(false),
            Kind::Hash | Kind::Other => {
                return Err(reply_error(Error::IndexWrongType(name.clone())))
            }
        }
    }

    let token_bytes = usize::try_from(settings.token_bytes).unwrap_or(24);
    let mut rng = rand::rng();
    let mut drawn = None;
    for _ in 0..TOKEN_DRAWS {
        let candidate = token::generate(&mut rng, token_bytes);
        let name = session_key(ctx, &settings, candidate.as_bytes());
        let key = Key::write(ctx, &name);
        if key.kind() == Kind::Empty {
            drawn = Some((candidate, name, key));
            break;
        }
    }
    let Some((token, name, key)) = drawn else {
        return Err(reply_error(Error::Internal("no unused token found".into())));
    };

    let ttl = plan.lifetime.ttl.to_string();
    let deadline = plan.lifetime.deadline_ms.to_string();
    let indexes = plan.indexes_field();
    let mut fields: Vec<(&CStr, &str)> = vec![
        (DATA, plan.data.as_str()),
        (TTL, ttl.as_str()),
        (DEADLINE, deadline.as_str()),
    ];
    if let Some(indexes) = &indexes {
        fields.push((INDEXES, indexes.as_str()));
    }
    let mut hset: Vec<&[u8]> = vec![name.as_slice()];
    for (field, value) in &fields {
        key.hash_set(field, &ctx.create_string(*value));
        hset.push(field.to_bytes());
        hset.push(value.as_bytes());
    }
    key.set_abs_expire(plan.expire_at_ms);
    drop(key);
    let expire_at = plan.expire_at_ms.to_string();
    ctx.replicate("HSET", hset.as_slice());
    ctx.replicate("PEXPIREAT", &[name.as_slice(), expire_at.as_bytes()]);

    for (index, created_now) in plan.index_keys.iter().zip(index_is_new) {
        ctx.call("SADD", &[index.as_bytes(), token.as_bytes()])?;
        ctx.replicate("SADD", &[index.as_bytes(), token.as_bytes()]);
        raise_index_expiry(ctx, index, plan.expire_at_ms, created_now);
    }

    Ok(RedisValue::StringBuffer(plan.reply(&token).into_bytes()))
}

/// SESSION.VALIDATE token
pub fn validate(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.validate")));
    };
    let settings = settings::current();
    let Some(found) = find(ctx, &settings, token, true) else {
        return Ok(RedisValue::Null);
    };
    let now = now_ms();
    let lifetime = found.stored.lifetime;
    if lifetime.is_over(now) {
        return Ok(RedisValue::Null);
    }
    let expire_at = lifetime.expire_at(now);
    if found.key.abs_expire() != Some(expire_at) && found.key.set_abs_expire(expire_at) {
        let name = session_key(ctx, &settings, token.as_slice());
        let at = expire_at.to_string();
        ctx.replicate("PEXPIREAT", &[name.as_slice(), at.as_bytes()]);
    }
    drop(found.key);
    for index in &found.stored.index_keys {
        raise_index_expiry(ctx, index, expire_at, false);
    }
    Ok(RedisValue::BulkRedisString(found.data))
}

/// SESSION.GET token
pub fn get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.get")));
    };
    let settings = settings::current();
    match find(ctx, &settings, token, false) {
        Some(found) => Ok(RedisValue::BulkRedisString(found.data)),
        None => Ok(RedisValue::Null),
    }
}
