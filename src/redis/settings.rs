//! The settings as Redis module configs: registration, the values commands read, and the
//! bridge that sends every change through [`crate::config::Settings`]' validation.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use redis_module::configuration::{
    register_i64_configuration, register_string_configuration, ConfigurationContext,
    ConfigurationFlags,
};
use redis_module::{raw, ConfigurationValue, Context, RedisError, RedisString};

use crate::config::{Setting, Settings};
use crate::error::Error;

use super::guard::catch;

static CURRENT: LazyLock<Mutex<Arc<Settings>>> =
    LazyLock::new(|| Mutex::new(Arc::new(Settings::default())));

fn lock() -> MutexGuard<'static, Arc<Settings>> {
    // A panic caught elsewhere must not leave the settings unusable.
    CURRENT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The settings in force, for one command's use.
pub fn current() -> Arc<Settings> {
    Arc::clone(&lock())
}

/// Applies `change` to a copy of the settings and makes it current only if it succeeds.
fn update(
    change: impl FnOnce(&mut Settings) -> crate::error::Result<()>,
) -> Result<(), RedisError> {
    let mut guard = lock();
    let mut next = Settings::clone(&guard);
    change(&mut next).map_err(|e| RedisError::String(config_message(&e)))?;
    *guard = Arc::new(next);
    Ok(())
}

/// The text of a setting error as `CONFIG SET` and the log show it.
pub fn config_message(e: &Error) -> String {
    match e {
        Error::Setting { name, reason } => format!("session.{name}: {reason}"),
        other => other.to_string(),
    }
}

/// A numeric setting as a module config.
pub struct Numeric(Setting);
/// A string setting as a module config.
pub struct Text(Setting);

// Config callbacks are entry points from Redis like commands: each runs under `catch`.

fn refused_after_panic() -> Result<(), RedisError> {
    Err(RedisError::Str(
        "internal error in redis-session; the value was not changed",
    ))
}

impl ConfigurationValue<i64> for Numeric {
    fn get(&self, _ctx: &ConfigurationContext) -> i64 {
        catch(|| current().numeric(self.0), || 0)
    }
    fn set(&self, _ctx: &ConfigurationContext, value: i64) -> Result<(), RedisError> {
        catch(
            || update(|s| s.set_numeric(self.0, value)),
            refused_after_panic,
        )
    }
}

impl ConfigurationValue<RedisString> for Text {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        let text = catch(|| current().text(self.0), String::new);
        RedisString::create_from_slice(std::ptr::null_mut(), text.as_bytes())
    }
    fn set(&self, _ctx: &ConfigurationContext, value: RedisString) -> Result<(), RedisError> {
        let apply = || {
            let text = std::str::from_utf8(value.as_slice()).map_err(|_| {
                RedisError::String(format!(
                    "session.{}: value is not valid UTF-8",
                    self.0.name()
                ))
            })?;
            update(|s| s.set_text(self.0, text))
        };
        catch(apply, refused_after_panic)
    }
}

static TTL: Numeric = Numeric(Setting::Ttl);
static TOKEN_BYTES: Numeric = Numeric(Setting::TokenBytes);
static MAX_LIFETIME: Numeric = Numeric(Setting::MaxLifetime);
static MAX_DATA_BYTES: Numeric = Numeric(Setting::MaxDataBytes);
static INDEXES: Text = Text(Setting::Indexes);
static KEY_PREFIX: Text = Text(Setting::KeyPrefix);
static INDEX_PREFIX: Text = Text(Setting::IndexPrefix);

/// Validates the load arguments, registers every setting with them as defaults, and lets
/// Redis apply redis.conf lines and `MODULE LOADEX ... CONFIG` values on top.
/// A bad value anywhere refuses the load, with one warning line in the log.
pub fn register(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    let raw_args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    let mut initial = Settings::default();
    initial.apply_load_args(&raw_args).map_err(|e| match &e {
        Error::Setting { name, reason } => format!("bad load argument '{name}': {reason}"),
        other => other.to_string(),
    })?;
    *lock() = Arc::new(initial.clone());

    let numeric: [(&'static Numeric, Setting); 4] = [
        (&TTL, Setting::Ttl),
        (&TOKEN_BYTES, Setting::TokenBytes),
        (&MAX_LIFETIME, Setting::MaxLifetime),
        (&MAX_DATA_BYTES, Setting::MaxDataBytes),
    ];
    for (value, setting) in numeric {
        let (min, max) = setting.range().unwrap_or((i64::MIN, i64::MAX));
        register_i64_configuration(
            ctx,
            setting.name(),
            value,
            initial.numeric(setting),
            min,
            max,
            ConfigurationFlags::DEFAULT,
            None,
        );
    }
    let text: [(&'static Text, Setting); 3] = [
        (&INDEXES, Setting::Indexes),
        (&KEY_PREFIX, Setting::KeyPrefix),
        (&INDEX_PREFIX, Setting::IndexPrefix),
    ];
    for (value, setting) in text {
        // apply_load_args refused NUL bytes, so the default is a valid C string.
        register_string_configuration(
            ctx,
            setting.name(),
            value,
            &initial.text(setting),
            ConfigurationFlags::DEFAULT,
            None,
        );
    }

    // SAFETY: called once during OnLoad with the loading context, after registration.
    let status = unsafe {
        raw::RedisModule_LoadConfigs.map_or(raw::REDISMODULE_OK as i32, |load| load(ctx.get_raw()))
    };
    if status != raw::REDISMODULE_OK as i32 {
        return Err("a session.* value in redis.conf or MODULE LOADEX was refused".into());
    }
    Ok(())
}
