//! The dataset's session secret, which keys the tags of layout-2 sessions
//! ([`crate::layout`]): a string key, `<key-prefix>session-secret`, made by the first CREATE
//! and replicated, persisted and copied like any key.
//!
//! It is read from its key on every use, so that whatever the dataset holds (after a full
//! resynchronisation from another primary, say) is what counts. Each database's secret is
//! also remembered in process memory: when the key has gone (evicted under an `allkeys-*`
//! policy, or deleted by hand) commands keep telling sessions apart with the remembered
//! one, and every write command puts the key back, so that an eviction never ends every
//! session at once.

use std::ptr;
use std::sync::{Mutex, OnceLock};

use redis_module::{raw, Context, RedisString};

use crate::config::Settings;
use crate::layout::{self, Secret};

use super::effects;
use super::keys::{signal_modified, Key, Kind};

/// The last secret seen in each database: its number, the key's text and the secret.
static REMEMBERED: Mutex<Vec<(i32, Vec<u8>, Secret)>> = Mutex::new(Vec::new());

/// The database the command runs in.
fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: the API table is filled once at load; ctx is the running command's context.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.get_raw())) }
}

fn remembered(db: i32) -> Option<Secret> {
    let list = REMEMBERED.lock().ok()?;
    list.iter().find(|(d, _, _)| *d == db).map(|(_, _, s)| *s)
}

/// The secret the key's text `hex` stands for, remembered for the database `db`; parsed only
/// when it is not the text seen last (nearly every call is one of those).
fn decode_and_remember(db: i32, hex: &[u8]) -> Option<Secret> {
    let mut list = REMEMBERED.lock().ok()?;
    let entry = list.iter_mut().find(|(d, _, _)| *d == db);
    if let Some((_, text, secret)) = &entry {
        if text.as_slice() == hex {
            return Some(*secret);
        }
    }
    let secret = Secret::from_hex(hex)?;
    match entry {
        Some(entry) => *entry = (db, hex.to_vec(), secret),
        None => list.push((db, hex.to_vec(), secret)),
    }
    Some(secret)
}

/// What the secret's key holds.
enum Stored {
    Secret(Secret),
    Missing,
    /// Something that is not a secret: the module leaves it alone.
    Other,
}

/// The secret key's name, made once (the key prefix is fixed at load) and never freed.
struct Name(RedisString);

// SAFETY: made once, then only read by commands on Redis's main thread; never freed.
unsafe impl Send for Name {}
// SAFETY: as above.
unsafe impl Sync for Name {}

static NAME: OnceLock<Name> = OnceLock::new();

fn name(settings: &Settings) -> &'static RedisString {
    &NAME
        .get_or_init(|| {
            Name(RedisString::create_from_slice(
                ptr::null_mut(),
                layout::secret_key(&settings.key_prefix).as_bytes(),
            ))
        })
        .0
}

fn stored(key: &Key, db: i32) -> Stored {
    match key.kind() {
        Kind::Empty => Stored::Missing,
        Kind::String => match key
            .string_value()
            .and_then(|hex| decode_and_remember(db, hex))
        {
            Some(secret) => Stored::Secret(secret),
            None => Stored::Other,
        },
        _ => Stored::Other,
    }
}

/// The secret, for commands that only read (GET): the key's, else the remembered one.
pub fn for_reading(ctx: &Context, settings: &Settings) -> Option<Secret> {
    let db = selected_db(ctx);
    match stored(&Key::read(ctx, name(settings)), db) {
        Stored::Secret(secret) => Some(secret),
        Stored::Missing => remembered(db),
        Stored::Other => None,
    }
}

/// The secret, for write commands: as [`for_reading`], and a missing key is written back
/// from memory (replicated), or, when `make` is true and none is remembered, made anew.
/// `None` when there is none to use (nothing remembered and `make` false, or the key holds
/// something else).
pub fn for_writing(ctx: &Context, settings: &Settings, make: bool) -> Option<Secret> {
    let db = selected_db(ctx);
    let name = name(settings);
    let key = Key::write(ctx, name);
    let secret = match stored(&key, db) {
        Stored::Secret(secret) => return Some(secret),
        Stored::Other => return None,
        Stored::Missing => match remembered(db) {
            Some(secret) => secret,
            None if make => Secret::generate(&mut rand::rng()),
            None => return None,
        },
    };
    let text = secret.to_hex();
    if !key.string_set(&RedisString::create_from_slice(
        ctx.get_raw(),
        text.as_bytes(),
    )) {
        return None;
    }
    drop(key);
    effects::replicate(ctx, c"SET", &[name.as_slice(), text.as_bytes()]);
    signal_modified(ctx, name);
    decode_and_remember(db, text.as_bytes());
    Some(secret)
}

/// The secret's key name, for error messages.
pub fn key_name(settings: &Settings) -> String {
    layout::secret_key(&settings.key_prefix)
}
