//! The counters and settings shown by `INFO session`.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};

use redis_module::raw;

use crate::config::Setting;

/// One counter of `INFO session`.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Sessions stored by CREATE.
pub static CREATED: Counter = Counter::new();
/// VALIDATE calls that found a session.
pub static VALIDATE_HITS: Counter = Counter::new();
/// VALIDATE calls that found none.
pub static VALIDATE_MISSES: Counter = Counter::new();
/// Sessions deleted by DESTROY.
pub static DESTROYED: Counter = Counter::new();
/// Sessions deleted by REVOKEINDEX.
pub static REVOKED: Counter = Counter::new();
/// Stale tokens removed from index sets.
pub static PRUNED: Counter = Counter::new();
/// Index entries removed because their session left the keyspace (key events).
pub static INDEX_ENTRIES_FOLLOWED: Counter = Counter::new();
/// Sessions ended because they lost an index set (evicted, deleted or overwritten), so that
/// no revocation by value could reach them (fail closed).
pub static ENDED_WITH_INDEX: Counter = Counter::new();

/// Sessions ended by a CREATE with MAXSESSIONS, to stay within the limit.
pub static ENDED_BY_LIMIT: Counter = Counter::new();

/// Sessions given a new token by ROTATE.
pub static ROTATED: Counter = Counter::new();

/// Sessions ended by REVOKEID (one session of an index, by its identifier).
pub static REVOKED_BY_ID: Counter = Counter::new();

/// Every counter, in the order INFO shows them.
const COUNTERS: [(&str, &Counter); 11] = [
    ("created", &CREATED),
    ("validate_hits", &VALIDATE_HITS),
    ("validate_misses", &VALIDATE_MISSES),
    ("destroyed", &DESTROYED),
    ("revoked", &REVOKED),
    ("index_entries_pruned", &PRUNED),
    (
        "index_entries_removed_by_key_events",
        &INDEX_ENTRIES_FOLLOWED,
    ),
    ("sessions_ended_by_lost_index", &ENDED_WITH_INDEX),
    ("sessions_ended_by_maxsessions", &ENDED_BY_LIMIT),
    ("rotated", &ROTATED),
    ("revoked_by_id", &REVOKED_BY_ID),
];

/// Sets every counter to 0; called at load. (`MODULE UNLOAD` does not unmap the library, so
/// its statics outlive it: without this a `MODULE LOAD` would go on from the old figures.)
pub fn reset() {
    for (_, counter) in COUNTERS {
        counter.reset();
    }
}

/// An INFO value with control characters escaped (`\x0d`): INFO is lines of `name:value`,
/// and a setting such as `index-prefix` holding `\r\n` would otherwise add lines of its own.
fn info_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The `INFO` callback: one section named after the module, `session`; Redis prefixes
/// each field with `session_` (`session_created`, `session_ttl`, ...).
pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    super::guard::catch(|| write_info(ctx), || ());
}

fn write_info(ctx: *mut raw::RedisModuleInfoCtx) {
    raw::add_info_section(ctx, None);
    for (name, counter) in COUNTERS {
        raw::add_info_field_unsigned_long_long(ctx, name, counter.get());
    }
    // Which exact mechanisms this server gave the module (decided at load).
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    raw::add_info_field_str(ctx, "key_events", yes_no(super::capabilities::key_events()));
    raw::add_info_field_str(
        ctx,
        "slot_functions",
        yes_no(super::capabilities::slot_functions()),
    );
    let indexes = if super::capabilities::key_events() {
        "exact"
    } else {
        "sampled"
    };
    raw::add_info_field_str(ctx, "index_mode", indexes);
    let settings = super::settings::current();
    for setting in Setting::ALL {
        let name = setting.name().replace('-', "_");
        match setting.range() {
            Some(_) => {
                raw::add_info_field_long_long(ctx, &name, settings.numeric(setting));
            }
            None => {
                raw::add_info_field_str(ctx, &name, &info_text(&settings.text(setting)));
            }
        }
    }
}
