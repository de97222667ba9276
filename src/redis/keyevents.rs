//! Exact indexes on servers with key events (Redis 7.2+, Valkey 8): whenever a key leaves
//! the keyspace other than through this module's own commands (expiry, active or lazy; `DEL`
//! or `UNLINK` by hand; eviction; a write over it), the module hears of it while the key is
//! still readable, and fixes the indexes in the same execution unit:
//!
//! - a session that leaves is removed from every index it was in;
//! - an index set that leaves takes its live sessions with it (fail closed: a session that is
//!   no longer in its index could not be revoked by value any more).
//!
//! The event callback only reads (Redis forbids writes there) and queues a post-notification
//! job, which Redis runs right after, inside the same execution unit; the job's writes are
//! replicated with the event's own `DEL` in one `MULTI/EXEC`. Jobs are refused while loading
//! and on replicas, which receive the primary's effects instead.
//!
//! The module's own commands do their index work themselves (also on 7.0, which has no key
//! events), and delete keys inside [`Quiet`], so their deletions are not handled twice.

use std::ffi::c_void;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis_module::{raw, Context};

use crate::layout::View;
use crate::session;

use super::commands;
use super::keys::{Field, Key, Kind};
use super::{effects, guard, settings, stats};

/// `RedisModuleEvent_Key` (not exported by the crate's bindings): event id 17, data version 1.
const KEY_EVENT: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_KEY,
    dataver: 1,
};

/// How many [`Quiet`] guards are alive: while one is, key events are the module's own doing.
static QUIET: AtomicUsize = AtomicUsize::new(0);

/// Marks the module's own key deletions, whose index work the command does itself: key
/// events raised while one is alive are ignored.
pub struct Quiet(());

impl Quiet {
    pub fn new() -> Quiet {
        QUIET.fetch_add(1, Ordering::Relaxed);
        Quiet(())
    }
}

impl Default for Quiet {
    fn default() -> Quiet {
        Quiet::new()
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        QUIET.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Subscribes to key events when the server has them and can run post-notification jobs;
/// false on servers without them (Redis 7.0), which keep the sampled indexes.
pub fn subscribe(ctx: &Context) -> bool {
    // SAFETY: the API table is filled before OnLoad's init runs; the entries are copied out.
    let (subscribe, add_job, key_name) = unsafe {
        (
            raw::RedisModule_SubscribeToServerEvent,
            raw::RedisModule_AddPostNotificationJob,
            raw::RedisModule_GetKeyNameFromModuleKey,
        )
    };
    let (Some(subscribe), Some(_), Some(_)) = (subscribe, add_job, key_name) else {
        return false;
    };
    // SAFETY: called during OnLoad with the loading context; the callback is a plain function
    // that lives as long as the module.
    let status = unsafe { subscribe(ctx.get_raw(), KEY_EVENT, Some(on_key_event)) };
    status == raw::REDISMODULE_OK as c_int
}

/// What a job has to do, decided in the event callback from the key that is leaving.
enum Job {
    /// A session left: remove its token from these index sets.
    SessionLeft {
        token: Vec<u8>,
        indexes: Vec<Vec<u8>>,
    },
    /// An index set left: end the live sessions among its members that list it.
    IndexLeft {
        index: Vec<u8>,
        members: Vec<Vec<u8>>,
    },
}

/// The key-event callback: reads the leaving key and queues the job that fixes the indexes.
unsafe extern "C" fn on_key_event(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    _subevent: u64,
    data: *mut c_void,
) {
    guard::catch(
        || {
            if let Some(job) = job_for(ctx, data) {
                queue(ctx, job);
            }
        },
        || (),
    );
}

/// The job a leaving key calls for, if any. Most keys are not the module's: they are told
/// apart by type and name before anything is read.
fn job_for(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) -> Option<Job> {
    if QUIET.load(Ordering::Relaxed) > 0 || data.is_null() {
        return None;
    }
    // SAFETY: for the key event, `data` is a RedisModuleKeyInfo whose key stays open for the
    // duration of the callback.
    let info = unsafe { &*data.cast::<raw::RedisModuleKeyInfo>() };
    // SAFETY: as above, NULL is handled by Key.
    let key = unsafe { Key::borrowed(info.key) };
    let kind = key.kind();
    if !matches!(kind, Kind::String | Kind::Hash | Kind::Set) || !acts_here(ctx) {
        return None;
    }
    let name = key_name(&key)?;
    let settings = settings::current();
    match kind {
        // Only the index list is read, and the tag of a layout-2 string is not checked:
        // whatever wrote this key, a token whose key leaves is no longer a live session, so
        // taking it out of a set that lists it is right (and a key of another type is never
        // written, SREM refuses it).
        Kind::String | Kind::Hash => {
            let token = session::token_of_key(&settings, name)?;
            let mut indexes = Vec::new();
            let well_formed = if kind == Kind::String {
                let view = View::parse(key.string_value()?, false)?;
                session::visit_index_list(view.indexes?, |k| indexes.push(k.to_vec()))
            } else {
                let context = Context::new(ctx);
                let field = key.hash_get(&context, Field::Indexes)?;
                session::visit_index_list(field.as_slice(), |k| indexes.push(k.to_vec()))
            };
            (well_formed && !indexes.is_empty()).then(|| Job::SessionLeft {
                token: token.to_vec(),
                indexes,
            })
        }
        Kind::Set if session::is_index_key(&settings, name) => {
            let members = super::keys::set_members(&key);
            (!members.is_empty()).then(|| Job::IndexLeft {
                index: name.to_vec(),
                members,
            })
        }
        _ => None,
    }
}

/// False on replicas and while loading, where jobs are refused: the primary's effects (or the
/// AOF being loaded) already carry the index changes.
fn acts_here(ctx: *mut raw::RedisModuleCtx) -> bool {
    // SAFETY: the API table is filled once at load; ctx is the callback's live context.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx)) } as u32;
    flags & (raw::REDISMODULE_CTX_FLAGS_SLAVE | raw::REDISMODULE_CTX_FLAGS_LOADING) == 0
}

/// The name of an open key, borrowed from Redis for as long as the key is open.
fn key_name(key: &Key) -> Option<&[u8]> {
    // SAFETY: the API table is filled once at load; the key is open, and the name it returns
    // lives as long as the key handle, which outlives the borrow of `key`.
    unsafe {
        let name = raw::RedisModule_GetKeyNameFromModuleKey?(key.as_ptr());
        if name.is_null() {
            return None;
        }
        let mut len = 0usize;
        let bytes = raw::RedisModule_StringPtrLen?(name, &mut len);
        if bytes.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(bytes.cast::<u8>(), len))
    }
}

/// Hands `job` to Redis to run after the event; dropped if Redis refuses it.
fn queue(ctx: *mut raw::RedisModuleCtx, job: Job) {
    // SAFETY: the API table is filled once at load.
    let Some(add) = (unsafe { raw::RedisModule_AddPostNotificationJob }) else {
        return;
    };
    let pd = Box::into_raw(Box::new(job)).cast::<c_void>();
    // SAFETY: pd is a boxed Job; Redis passes it to run_job and then to free_job exactly
    // once, or neither when it refuses the job, in which case it is freed here.
    let status = unsafe { add(ctx, Some(run_job), pd, Some(free_job)) };
    if status != raw::REDISMODULE_OK as c_int {
        // SAFETY: refused, so Redis kept no copy of pd.
        unsafe { free_job(pd) };
    }
}

unsafe extern "C" fn free_job(pd: *mut c_void) {
    if !pd.is_null() {
        // SAFETY: pd came from Box::into_raw in queue and is freed only once.
        drop(unsafe { Box::from_raw(pd.cast::<Job>()) });
    }
}

/// Runs a queued job with the job's own context (its writes are replicated and announced).
unsafe extern "C" fn run_job(ctx: *mut raw::RedisModuleCtx, pd: *mut c_void) {
    if pd.is_null() {
        return;
    }
    // SAFETY: pd is the boxed Job given to AddPostNotificationJob, freed only after this.
    let job = unsafe { &*pd.cast::<Job>() };
    let ctx = Context::new(ctx);
    guard::catch(|| run(&ctx, job), || ());
}

/// In cluster mode, whether the key that left is gone for good: its slot is all here. A key
/// that left because `MIGRATE` moved it (or because the node lost its slot) took nothing
/// with it: its sessions and index entries are on the other node, or are moving there.
fn gone_for_good(job: &Job) -> bool {
    if !super::cluster::enabled() {
        return true;
    }
    let name = match job {
        Job::SessionLeft { token, .. } => {
            let mut name = settings::current().key_prefix.as_bytes().to_vec();
            name.extend_from_slice(token);
            name
        }
        Job::IndexLeft { index, .. } => index.clone(),
    };
    super::cluster::probe(&name) == super::cluster::Slot::Here
}

fn run(ctx: &Context, job: &Job) {
    if !gone_for_good(job) {
        return;
    }
    match job {
        Job::SessionLeft { token, indexes } => {
            for index in indexes {
                if effects::srem_replicated(ctx, index, token) {
                    stats::INDEX_ENTRIES_FOLLOWED.add(1);
                }
            }
        }
        Job::IndexLeft { index, members } => {
            let settings = settings::current();
            for token in members {
                if commands::end_listed_session(ctx, &settings, token, index) {
                    stats::ENDED_WITH_INDEX.add(1);
                }
            }
        }
    }
}
