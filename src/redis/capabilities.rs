//! What this server's module API offers beyond Redis 7.0, decided once at load: the
//! mechanisms that make a guarantee exact where they exist, reported in `INFO session`.

use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::raw;

static KEY_EVENTS: AtomicBool = AtomicBool::new(false);
static SLOT_FUNCTIONS: AtomicBool = AtomicBool::new(false);

/// Whether the module receives key events (a key deleted, expired, evicted or overwritten)
/// and can act on them in the same execution unit (post-notification jobs): Redis 7.2+,
/// Valkey 8. With them, indexes hold exactly the live sessions.
pub fn key_events() -> bool {
    KEY_EVENTS.load(Ordering::Relaxed)
}

/// Whether the server computes hash slots for modules (`RedisModule_ClusterKeySlot`,
/// `RedisModule_ClusterCanonicalKeyNameInSlot`): Redis 7.4+, Valkey 8.
pub fn slot_functions() -> bool {
    SLOT_FUNCTIONS.load(Ordering::Relaxed)
}

/// Records that the key-event subscription succeeded.
pub fn set_key_events(on: bool) {
    KEY_EVENTS.store(on, Ordering::Relaxed);
}

/// Looks up the APIs that need nothing but their presence; called once at load.
pub fn detect() {
    // SAFETY: the API table is filled before OnLoad's init runs; only presence is read.
    let (slot, canonical) = unsafe {
        (
            raw::RedisModule_ClusterKeySlot,
            raw::RedisModule_ClusterCanonicalKeyNameInSlot,
        )
    };
    let slots = slot.is_some() && canonical.is_some();
    SLOT_FUNCTIONS.store(slots, Ordering::Relaxed);
}
