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

/// The `INFO` callback: one section named after the module, `session`; Redis prefixes
/// each field with `session_` (`session_created`, `session_ttl`, ...).
pub extern "C" fn info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    super::guard::catch(|| write_info(ctx), || ());
}

fn write_info(ctx: *mut raw::RedisModuleInfoCtx) {
    raw::add_info_section(ctx, None);
    let counters: [(&str, &Counter); 6] = [
        ("created", &CREATED),
        ("validate_hits", &VALIDATE_HITS),
        ("validate_misses", &VALIDATE_MISSES),
        ("destroyed", &DESTROYED),
        ("revoked", &REVOKED),
        ("index_entries_pruned", &PRUNED),
    ];
    for (name, counter) in counters {
        raw::add_info_field_unsigned_long_long(ctx, name, counter.get());
    }
    let settings = super::settings::current();
    for setting in Setting::ALL {
        let name = setting.name().replace('-', "_");
        match setting.range() {
            Some(_) => {
                raw::add_info_field_long_long(ctx, &name, settings.numeric(setting));
            }
            None => {
                raw::add_info_field_str(ctx, &name, &settings.text(setting));
            }
        }
    }
}
