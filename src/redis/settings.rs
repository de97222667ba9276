//! The settings as Redis module configs: registration, the values commands read, and the
//! bridge that sends every change through [`crate::config::Settings`]' validation.

use std::ptr;
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

/// The Redis string last handed to Redis for each string setting, with its text.
///
/// A string config's getter returns a Redis string that Redis copies and never frees (the
/// module keeps ownership), so a getter that made a new one per call leaked it on every
/// `CONFIG GET` (and on every `CONFIG SET`, which reads the old value first). Each setting
/// keeps one string instead, made again only when the value changed, the old one freed then.
struct Handed {
    setting: Setting,
    text: String,
    string: *mut raw::RedisModuleString,
}

// SAFETY: the strings are made and freed only by config callbacks, which Redis runs on its
// main thread; the mutex orders them anyway.
unsafe impl Send for Handed {}

static HANDED: Mutex<Vec<Handed>> = Mutex::new(Vec::new());

/// The Redis string holding `text` for `setting`, owned by [`HANDED`]; NULL if Redis could
/// not make one.
fn handed_string(setting: Setting, text: &str) -> *mut raw::RedisModuleString {
    let mut handed = HANDED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(h) = handed
        .iter()
        .find(|h| h.setting == setting && h.text == text)
    {
        return h.string;
    }
    // SAFETY: the API table is filled at load; a NULL context makes a string that lives
    // until freed with a NULL context, which only happens below.
    let string = unsafe {
        raw::RedisModule_CreateString.map_or(ptr::null_mut(), |create| {
            create(ptr::null_mut(), text.as_ptr().cast(), text.len())
        })
    };
    if string.is_null() {
        return string;
    }
    if let Some(old) = handed.iter_mut().find(|h| h.setting == setting) {
        // SAFETY: old.string was made above with a NULL context; Redis copied it when the
        // getter that handed it out returned, and holds no pointer to it since.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeString {
                free(ptr::null_mut(), old.string);
            }
        }
        old.text = text.to_string();
        old.string = string;
    } else {
        handed.push(Handed {
            setting,
            text: text.to_string(),
            string,
        });
    }
    string
}

impl ConfigurationValue<RedisString> for Text {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        let text = catch(|| current().text(self.0), String::new);
        let string = catch(|| handed_string(self.0, &text), ptr::null_mut);
        // The crate takes the pointer out of this RedisString (`take`) and returns it to
        // Redis, so the wrapper never frees it: HANDED keeps it alive until the value
        // changes. If none could be made, a fresh (leaked) string is still better than NULL.
        if string.is_null() {
            return RedisString::create_from_slice(ptr::null_mut(), text.as_bytes());
        }
        RedisString::from_redis_module_string(ptr::null_mut(), string)
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
static RENEW_INTERVAL: Numeric = Numeric(Setting::RenewInterval);
static INDEXES: Text = Text(Setting::Indexes);
static KEY_PREFIX: Text = Text(Setting::KeyPrefix);
static INDEX_PREFIX: Text = Text(Setting::IndexPrefix);
static TOKEN_HASH: Text = Text(Setting::TokenHash);

/// Validates the load arguments, registers every setting with them as defaults, and lets
/// Redis apply redis.conf lines and `MODULE LOADEX ... CONFIG` values on top.
/// A bad value anywhere refuses the load, with one warning line in the log.
pub fn register(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    let raw_args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    let mut initial = Settings {
        cluster: ctx
            .get_flags()
            .contains(redis_module::ContextFlags::CLUSTER),
        ..Settings::default()
    };
    initial.apply_load_args(&raw_args).map_err(|e| match &e {
        Error::Setting { name, reason } => format!("bad load argument '{name}': {reason}"),
        other => other.to_string(),
    })?;
    *lock() = Arc::new(initial.clone());

    let numeric: [(&'static Numeric, Setting); 5] = [
        (&TTL, Setting::Ttl),
        (&TOKEN_BYTES, Setting::TokenBytes),
        (&MAX_LIFETIME, Setting::MaxLifetime),
        (&MAX_DATA_BYTES, Setting::MaxDataBytes),
        (&RENEW_INTERVAL, Setting::RenewInterval),
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
    let text: [(&'static Text, Setting); 4] = [
        (&INDEXES, Setting::Indexes),
        (&KEY_PREFIX, Setting::KeyPrefix),
        (&INDEX_PREFIX, Setting::IndexPrefix),
        (&TOKEN_HASH, Setting::TokenHash),
    ];
    for (value, setting) in text {
        // apply_load_args refused NUL bytes, so the default is a valid C string.
        register_string_configuration(
            ctx,
            setting.name(),
            value,
            &initial.text(setting),
            if setting.load_time_only() {
                ConfigurationFlags::IMMUTABLE
            } else {
                ConfigurationFlags::DEFAULT
            },
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
