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
//!
//! In cluster mode each hash slot has its own secret, at `<key-prefix>{<slot tag>}session-secret`
//! in that slot, so that it moves with the slot's sessions when the slot is migrated, and no
//! node writes a key into a slot it does not serve. A slot whose secret is not here while
//! the slot is being migrated makes the command reply TRYAGAIN ([`take_retry`]).

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use redis_module::{raw, Context, RedisString};

use crate::config::Settings;
use crate::layout::{self, Secret};

use super::effects;
use super::keys::{signal_modified, Key, Kind};

/// The last secret seen in each database (and, in cluster mode, hash slot): the database's
/// number, the slot (0 outside cluster mode), the key's text and the secret.
static REMEMBERED: Mutex<Vec<Remembered>> = Mutex::new(Vec::new());

/// A remembered secret: database, slot, the key's text, the secret.
type Remembered = (i32, u16, Vec<u8>, Secret);

/// Set when a command found no secret for a slot that is being migrated (see [`take_retry`]).
static RETRY: AtomicBool = AtomicBool::new(false);

/// Whether a lookup since the last call found the secret of a session's slot elsewhere (a
/// slot being migrated): the command then replies TRYAGAIN rather than "unknown". Clears it.
pub fn take_retry() -> bool {
    RETRY.swap(false, Ordering::Relaxed)
}

/// The database the command runs in.
fn selected_db(ctx: &Context) -> i32 {
    // SAFETY: the API table is filled once at load; ctx is the running command's context.
    unsafe { raw::RedisModule_GetSelectedDb.map_or(0, |f| f(ctx.get_raw())) }
}

fn remembered(db: i32, slot: u16) -> Option<Secret> {
    let list = REMEMBERED.lock().ok()?;
    list.iter()
        .find(|(d, s, _, _)| *d == db && *s == slot)
        .map(|(_, _, _, secret)| *secret)
}

/// The secret the key's text `hex` stands for, remembered for the database `db` and `slot`;
/// parsed only when it is not the text seen last (nearly every call is one of those).
fn decode_and_remember(db: i32, slot: u16, hex: &[u8]) -> Option<Secret> {
    let mut list = REMEMBERED.lock().ok()?;
    let entry = list.iter_mut().find(|(d, s, _, _)| *d == db && *s == slot);
    if let Some((_, _, text, secret)) = &entry {
        if text.as_slice() == hex {
            return Some(*secret);
        }
    }
    let secret = Secret::from_hex(hex)?;
    match entry {
        Some(entry) => *entry = (db, slot, hex.to_vec(), secret),
        None => list.push((db, slot, hex.to_vec(), secret)),
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

/// A secret key's name, made once (the key prefix is fixed at load) and never freed.
struct Name(RedisString);

// SAFETY: made once, then only read by commands on Redis's main thread; never freed.
unsafe impl Send for Name {}
// SAFETY: as above.
unsafe impl Sync for Name {}

impl Name {
    fn new(text: &str) -> Name {
        Name(RedisString::create_from_slice(
            ptr::null_mut(),
            text.as_bytes(),
        ))
    }
}

/// The standalone secret key's name.
static NAME: OnceLock<Name> = OnceLock::new();

/// In cluster mode, the secret key's name of each hash slot, made the first time a command
/// needs it (every command needs one: making it each time cost a cluster-mode VALIDATE a
/// fifth of its time) and never freed: at most 16384 short strings.
static SLOT_NAMES: OnceLock<Box<[OnceLock<Name>]>> = OnceLock::new();

/// Where a session's secret is: its key's name and the slot it is remembered under.
pub struct Place {
    name: &'static RedisString,
    slot: u16,
}

impl Place {
    /// The secret for the session key `session` under `settings`: the dataset's, or in
    /// cluster mode the one of the session's hash slot.
    pub fn of(settings: &Settings, session: &[u8]) -> Place {
        if !settings.cluster {
            return Place::standalone(settings);
        }
        Place::in_slot(settings, super::cluster::key_slot(session))
    }

    /// The standalone secret.
    fn standalone(settings: &Settings) -> Place {
        let name = &NAME
            .get_or_init(|| Name::new(&layout::secret_key(&settings.key_prefix)))
            .0;
        Place { name, slot: 0 }
    }

    /// The secret of hash `slot` in cluster mode (any slot outside 0..16384 is taken
    /// modulo), the dataset's otherwise.
    pub fn in_slot(settings: &Settings, slot: u16) -> Place {
        if !settings.cluster {
            return Place::standalone(settings);
        }
        let slot = slot % crate::cluster::SLOTS;
        let table = SLOT_NAMES.get_or_init(|| {
            (0..crate::cluster::SLOTS)
                .map(|_| OnceLock::new())
                .collect()
        });
        match table.get(usize::from(slot)) {
            Some(cell) => Place {
                name: &cell
                    .get_or_init(|| Name::new(&cluster_key(settings, slot)))
                    .0,
                slot,
            },
            // Not reached (the table has a cell per slot); the standalone name is harmless.
            None => Place::standalone(settings),
        }
    }

    fn name(&self) -> &RedisString {
        self.name
    }

    /// The slot it is remembered under (0 outside cluster mode).
    pub fn slot(&self) -> u16 {
        self.slot
    }
}

/// `<key-prefix>{<tag>}session-secret`: the secret key of a hash slot in cluster mode.
fn cluster_key(settings: &Settings, slot: u16) -> String {
    let tag = super::cluster::slot_tag(slot);
    layout::secret_key(&format!("{}{{{tag}}}", settings.key_prefix))
}

fn stored(key: &Key, db: i32, slot: u16) -> Stored {
    match key.kind() {
        Kind::Empty => Stored::Missing,
        Kind::String => match key
            .string_value()
            .and_then(|hex| decode_and_remember(db, slot, hex))
        {
            Some(secret) => Stored::Secret(secret),
            None => Stored::Other,
        },
        _ => Stored::Other,
    }
}

/// In cluster mode, a secret key that is missing here while its slot is being migrated may
/// be on the other node: noted for [`take_retry`]. True when its absence is conclusive.
fn missing_is_conclusive(ctx: &Context, settings: &Settings, name: &RedisString) -> bool {
    let conclusive = super::cluster::missing(ctx, settings.cluster, name.as_slice()).is_ok();
    if !conclusive {
        RETRY.store(true, Ordering::Relaxed);
    }
    conclusive
}

/// The secret, for commands that only read (GET): the key's, else the remembered one.
pub fn for_reading(ctx: &Context, settings: &Settings, place: &Place) -> Option<Secret> {
    let db = selected_db(ctx);
    let name = place.name();
    match stored(&Key::read(ctx, name), db, place.slot) {
        Stored::Secret(secret) => Some(secret),
        Stored::Missing => remembered(db, place.slot).or_else(|| {
            missing_is_conclusive(ctx, settings, name);
            None
        }),
        Stored::Other => None,
    }
}

/// Why a write command has no secret to use.
pub enum Unusable {
    /// The key holds something other than a secret (or none is remembered and `make` was
    /// false).
    Other,
    /// Cluster mode: the slot is being migrated and its secret is not here.
    Elsewhere,
}

/// The secret, for write commands: as [`for_reading`], and a missing key is written back
/// from memory (replicated), or, when `make` is true and none is remembered, made anew.
pub fn for_writing(
    ctx: &Context,
    settings: &Settings,
    place: &Place,
    make: bool,
) -> Result<Secret, Unusable> {
    let db = selected_db(ctx);
    let name = place.name();
    let key = Key::write(ctx, name);
    let secret = match stored(&key, db, place.slot) {
        Stored::Secret(secret) => return Ok(secret),
        Stored::Other => return Err(Unusable::Other),
        Stored::Missing => {
            // Written back or made only where the slot is all here: a key made beside the
            // slot's secret on the other node of a migration would break the migration.
            let here = super::cluster::missing(ctx, settings.cluster, name.as_slice()).is_ok();
            match (remembered(db, place.slot), here) {
                (Some(secret), true) => secret,
                (Some(secret), false) => return Ok(secret),
                (None, false) => {
                    RETRY.store(true, Ordering::Relaxed);
                    return Err(Unusable::Elsewhere);
                }
                (None, true) if make => Secret::generate(&mut rand::rng()),
                (None, true) => return Err(Unusable::Other),
            }
        }
    };
    let text = secret.to_hex();
    if !key.string_set(&RedisString::create_from_slice(
        ctx.get_raw(),
        text.as_bytes(),
    )) {
        return Err(Unusable::Other);
    }
    drop(key);
    effects::replicate(ctx, c"SET", &[name.as_slice(), text.as_bytes()]);
    signal_modified(ctx, name);
    decode_and_remember(db, place.slot, text.as_bytes());
    Ok(secret)
}

/// The secret's key name, for error messages.
pub fn key_name(place: &Place) -> String {
    place.name().to_string_lossy()
}
