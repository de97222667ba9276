//! Cluster mode, the server side: slots and slot tags from the server where it has them
//! (7.4+, Valkey 8) and from [`crate::cluster`] elsewhere, and the questions only the server
//! can answer: is a slot served here and not being migrated, and who serves it.
//!
//! Commands declare the keys clients route by (the token; CREATE's `ROUTE` key; the value of
//! REVOKEINDEX and LIST), so Redis itself replies MOVED, ASK, CROSSSLOT or CLUSTERDOWN for
//! those before the module runs. What the module adds is for the keys it computes: when one
//! it needs is missing while its slot is being migrated, it may already be on the other node,
//! and the command replies TRYAGAIN (as Redis does for its own multi-key commands) with
//! nothing written.

use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use redis_module::{raw, Context, ContextFlags, RedisValue};

use crate::error::Error;

/// A context of the module's own, with a client of its own (no ASKING, no READONLY), made at
/// load in cluster mode: what [`probe`] asks the server through.
static PROBE_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// Whether the server runs in cluster mode (set once at load).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether the server runs in cluster mode.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes the probe context; called once at load when the server runs in cluster mode.
pub fn init(ctx: &Context) {
    ENABLED.store(true, Ordering::Relaxed);
    // SAFETY: the API table is filled before OnLoad's init runs.
    let Some(detached) = (unsafe { raw::RedisModule_GetDetachedThreadSafeContext }) else {
        return;
    };
    // SAFETY: ctx is the loading context; the detached context lives as long as the module.
    let probe = unsafe { detached(ctx.get_raw()) };
    PROBE_CTX.store(probe, Ordering::Relaxed);
}

/// The hash slot of the key `name`, from the server where it has the function.
pub fn key_slot(name: &[u8]) -> u16 {
    // SAFETY: the API table is filled at load; only presence is read here.
    if let Some(slot_of) = unsafe { raw::RedisModule_ClusterKeySlotC } {
        // SAFETY: the buffer outlives the call, which only reads it.
        let slot = unsafe { slot_of(name.as_ptr().cast::<c_char>(), name.len()) };
        if let Ok(slot) = u16::try_from(slot) {
            if slot < crate::cluster::SLOTS {
                return slot;
            }
        }
    }
    crate::cluster::key_slot(name)
}

/// The slot tag of `slot`: the server's canonical key name of the slot where it has the
/// function (the same string, `crate::cluster` computes it the same way), else ours.
pub fn slot_tag(slot: u16) -> String {
    // SAFETY: the API table is filled at load; only presence is read here.
    if let Some(canonical) = unsafe { raw::RedisModule_ClusterCanonicalKeyNameInSlot } {
        // SAFETY: the server returns a static C string for any slot below 16384, or NULL.
        let name = unsafe { canonical(u32::from(slot % crate::cluster::SLOTS)) };
        if !name.is_null() {
            // SAFETY: not NULL: a NUL-terminated static string.
            let name = unsafe { CStr::from_ptr(name) }.to_bytes();
            if crate::cluster::is_tag(name) && key_slot(name) == slot {
                return String::from_utf8_lossy(name).into_owned();
            }
        }
    }
    crate::cluster::slot_tag(slot).to_string()
}

/// Whether this node is a replica (it reads; its primary decides).
pub fn is_replica(ctx: &Context) -> bool {
    ctx.get_flags().contains(ContextFlags::SLAVE)
}

/// What the server says of a key's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Served here and not being migrated away from or to this node (or the key is here):
    /// what this node has of the slot is all there is.
    Here,
    /// Served elsewhere, or being migrated (from or to this node) with the key not here.
    Elsewhere,
    /// The cluster is down.
    Down,
}

/// Asks the server, as a client without ASKING would, whether the slot of `key` is [`Slot::Here`]:
/// `EXISTS key` through `RM_Call` from the module's own context, which Redis refuses for a
/// key that is not local (`getNodeByQuery`: another node's slot, a migrating slot without
/// the key, an importing slot). Outside cluster mode, and before [`init`], everything is here.
pub fn probe(key: &[u8]) -> Slot {
    let ctx = PROBE_CTX.load(Ordering::Relaxed);
    // SAFETY: the API table is filled once at load, before any command runs.
    let (Some(call), Some(free)) = (unsafe { raw::RedisModule_Call }, unsafe {
        raw::RedisModule_FreeCallReply
    }) else {
        return Slot::Here;
    };
    if ctx.is_null() {
        return Slot::Here;
    }
    // SAFETY: format "b": one buffer (pointer, length) that outlives the call; the probe
    // context is used on the main thread only, inside a command or job, like any context.
    let reply = unsafe {
        call(
            ctx,
            c"EXISTS".as_ptr(),
            c"b".as_ptr(),
            key.as_ptr().cast::<c_char>(),
            key.len(),
        )
    };
    if reply.is_null() {
        let errno = std::io::Error::last_os_error().raw_os_error();
        return if errno == Some(ENETDOWN) || errno == Some(EROFS) {
            Slot::Down
        } else {
            Slot::Elsewhere
        };
    }
    // SAFETY: a reply from RM_Call, freed once.
    unsafe { free(reply) };
    Slot::Here
}

const ENETDOWN: c_int = 100;
const EROFS: c_int = 30;

/// For a key a command needs and did not find: `Ok` when its absence is conclusive (not in
/// cluster mode, on a replica, or its slot is all here), else the error to reply, with
/// nothing written yet.
pub fn missing(ctx: &Context, cluster: bool, key: &[u8]) -> Result<(), Error> {
    if !cluster || is_replica(ctx) {
        return Ok(());
    }
    match probe(key) {
        Slot::Here => Ok(()),
        Slot::Elsewhere => Err(Error::TryAgain),
        Slot::Down => Err(Error::ClusterDown(
            "the cluster is down; nothing was written".into(),
        )),
    }
}

/// The node that serves `slot` by `CLUSTER SLOTS`: its `ip:port`, and whether it is this one.
pub fn owner(ctx: &Context, slot: u16) -> Option<(String, bool)> {
    let RedisValue::Array(ranges) = ctx.call("CLUSTER", &["SLOTS"]).ok()? else {
        return None;
    };
    // SAFETY: the API table is filled at load; the id is a static buffer of the server's.
    let me = unsafe { raw::RedisModule_GetMyClusterID }
        .map(|f| unsafe { f() })
        .filter(|p| !p.is_null())
        // SAFETY: not NULL: the node id, NUL-terminated (40 characters).
        .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
    for range in ranges {
        let RedisValue::Array(parts) = range else {
            continue;
        };
        let (Some(RedisValue::Integer(start)), Some(RedisValue::Integer(end))) =
            (parts.first(), parts.get(1))
        else {
            continue;
        };
        if !(*start..=*end).contains(&i64::from(slot)) {
            continue;
        }
        let Some(RedisValue::Array(node)) = parts.get(2) else {
            return None;
        };
        let ip = match node.first() {
            Some(RedisValue::BulkString(s) | RedisValue::SimpleString(s)) => s.clone(),
            Some(RedisValue::BulkRedisString(s)) => s.to_string_lossy(),
            Some(RedisValue::StringBuffer(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => return None,
        };
        let Some(RedisValue::Integer(port)) = node.get(1) else {
            return None;
        };
        let id = match node.get(2) {
            Some(RedisValue::BulkString(s) | RedisValue::SimpleString(s)) => Some(s.clone()),
            Some(RedisValue::BulkRedisString(s)) => Some(s.to_string_lossy()),
            Some(RedisValue::StringBuffer(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let mine = id.is_some() && id == me;
        return Some((format!("{ip}:{port}"), mine));
    }
    None
}

/// For a command that declared no key for `slot` (CREATE without ROUTE): `Ok` when the slot
/// is served here and stable; else the redirection Redis would give: MOVED to its owner,
/// TRYAGAIN while it is being migrated from here, CLUSTERDOWN.
pub fn serve_here(ctx: &Context, slot: u16, probe_key: &[u8]) -> Result<(), Error> {
    match probe(probe_key) {
        Slot::Here => Ok(()),
        Slot::Down => Err(Error::ClusterDown(
            "the cluster is down; nothing was written".into(),
        )),
        Slot::Elsewhere => match owner(ctx, slot) {
            Some((_, true)) => Err(Error::TryAgain),
            Some((address, false)) => Err(Error::Moved { slot, address }),
            None => Err(Error::ClusterDown(format!(
                "hash slot {slot} is not served by any node; nothing was written"
            ))),
        },
    }
}
