//! A thin, panic-free handle on a Redis key through the low-level module API: type checks,
//! hash fields by fixed C names, and absolute expiry (which the crate does not wrap).

use std::ffi::{c_void, CStr};
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::sync::OnceLock;

use redis_module::{raw, Context, RedisString};

/// What a key holds, as far as the module cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Empty,
    String,
    Hash,
    Set,
    Other,
}

/// A field of a session hash (see [`crate::session`] for what each holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Data = 0,
    Ttl = 1,
    Deadline = 2,
    Indexes = 3,
}

impl Field {
    const ALL: [Field; 4] = [Field::Data, Field::Ttl, Field::Deadline, Field::Indexes];

    /// The field's name.
    pub fn name(self) -> &'static CStr {
        match self {
            Field::Data => c"data",
            Field::Ttl => c"ttl",
            Field::Deadline => c"deadline",
            Field::Indexes => c"indexes",
        }
    }

    /// The field's name as a Redis string made once at load: given these, `RM_HashGet` and
    /// `RM_HashSet` look fields up directly, where C-string names
    /// (`REDISMODULE_HASH_CFIELDS`) make and free a Redis string per field per call.
    fn redis_name(self) -> *mut raw::RedisModuleString {
        FIELD_NAMES
            .get()
            .map_or(ptr::null_mut(), |names| names.0[self as usize])
    }
}

/// The Redis strings of [`Field::redis_name`], never freed.
struct FieldNames([*mut raw::RedisModuleString; 4]);

// SAFETY: the strings are made once at load and only read afterwards, by commands on
// Redis's main thread; nothing ever changes or frees them.
unsafe impl Send for FieldNames {}
// SAFETY: as above.
unsafe impl Sync for FieldNames {}

static FIELD_NAMES: OnceLock<FieldNames> = OnceLock::new();

/// Makes the field-name strings; called once at load. False if Redis could not make them.
pub fn init_field_names() -> bool {
    // SAFETY: the API table is filled before OnLoad's init runs.
    let Some(create) = (unsafe { raw::RedisModule_CreateString }) else {
        return false;
    };
    let names = Field::ALL.map(|field| {
        let name = field.name();
        // SAFETY: a NULL context makes a string that lives until freed, which it never is.
        unsafe { create(ptr::null_mut(), name.as_ptr(), name.to_bytes().len()) }
    });
    if names.iter().any(|n| n.is_null()) {
        return false;
    }
    FIELD_NAMES.get_or_init(|| FieldNames(names));
    true
}

/// An open key, closed on drop (unless it is Redis's own, see [`Key::borrowed`]).
pub struct Key {
    inner: *mut raw::RedisModuleKey,
    owned: bool,
}

impl Key {
    /// Opens `name` for reading only (usable on read-only replicas).
    pub fn read(ctx: &Context, name: &RedisString) -> Key {
        Key::open(ctx, name, raw::REDISMODULE_READ)
    }

    /// Opens `name` for reading only, without counting it as an access (its LRU/LFU clock
    /// and `keyspace_hits` stay as they were): for the module's own checks of keys that may
    /// not be its own, such as whether a token's key still exists.
    pub fn probe(ctx: &Context, name: &RedisString) -> Key {
        Key::open(
            ctx,
            name,
            raw::REDISMODULE_READ | raw::REDISMODULE_OPEN_KEY_NOTOUCH,
        )
    }

    /// Opens `name` for reading and writing.
    pub fn write(ctx: &Context, name: &RedisString) -> Key {
        Key::open(ctx, name, raw::REDISMODULE_READ | raw::REDISMODULE_WRITE)
    }

    fn open(ctx: &Context, name: &RedisString, mode: u32) -> Key {
        // SAFETY: ctx is the live context of the running command and `name` a live string;
        // OpenKey returns NULL or a key handle that we close exactly once in Drop.
        let inner = unsafe {
            raw::RedisModule_OpenKey.map_or(ptr::null_mut(), |open| {
                open(ctx.get_raw(), name.inner, mode as c_int).cast::<raw::RedisModuleKey>()
            })
        };
        Key { inner, owned: true }
    }

    /// A key handle that Redis opened and will close itself (the key a key event is about).
    ///
    /// # Safety
    /// `inner` must be NULL or a key handle that stays open for as long as the `Key` lives.
    pub unsafe fn borrowed(inner: *mut raw::RedisModuleKey) -> Key {
        Key {
            inner,
            owned: false,
        }
    }

    /// The raw handle, for module API calls this wrapper does not cover.
    pub fn as_ptr(&self) -> *mut raw::RedisModuleKey {
        self.inner
    }

    /// The key's type; a key that could not be opened counts as empty.
    pub fn kind(&self) -> Kind {
        if self.inner.is_null() {
            return Kind::Empty;
        }
        // SAFETY: inner is an open key.
        let t = unsafe { raw::RedisModule_KeyType.map_or(0, |f| f(self.inner)) };
        match t as isize {
            raw::REDISMODULE_KEYTYPE_EMPTY => Kind::Empty,
            raw::REDISMODULE_KEYTYPE_STRING => Kind::String,
            raw::REDISMODULE_KEYTYPE_HASH => Kind::Hash,
            raw::REDISMODULE_KEYTYPE_SET => Kind::Set,
            _ => Kind::Other,
        }
    }

    /// The value of a string key, borrowed from Redis without a copy (`RM_StringDMA`) for as
    /// long as the key is open and unchanged; `None` for any other type.
    pub fn string_value(&self) -> Option<&[u8]> {
        if self.kind() != Kind::String {
            return None;
        }
        let mut len = 0usize;
        // SAFETY: inner is an open string key; in read mode DMA returns a pointer to its
        // bytes and their length, valid until the key is closed or written, which `&self`
        // outlives.
        unsafe {
            let dma = raw::RedisModule_StringDMA?;
            let bytes = dma(self.inner, &mut len, raw::REDISMODULE_READ as c_int);
            if bytes.is_null() {
                return None;
            }
            Some(std::slice::from_raw_parts(bytes.cast::<u8>(), len))
        }
    }

    /// Makes the key a string holding `value`, whatever it held before (its expiry goes too).
    pub fn string_set(&self, value: &RedisString) -> bool {
        if self.inner.is_null() {
            return false;
        }
        // SAFETY: inner is an open writable key; StringSet takes its own reference to value.
        let status = unsafe {
            raw::RedisModule_StringSet.map_or(raw::REDISMODULE_ERR as c_int, |f| {
                f(self.inner, value.inner)
            })
        };
        status == raw::REDISMODULE_OK as c_int
    }

    /// Reads four hash fields at once; a missing field is `None`.
    /// Only call on a key whose kind is [`Kind::Hash`].
    pub fn hash_get4(&self, ctx: &Context, fields: [Field; 4]) -> [Option<RedisString>; 4] {
        let mut values: [*mut raw::RedisModuleString; 4] = [ptr::null_mut(); 4];
        let names = fields.map(Field::redis_name);
        if !self.inner.is_null() && names.iter().all(|n| !n.is_null()) {
            // SAFETY: the API table is filled once at load, before any command runs.
            if let Some(get) = unsafe { raw::RedisModule_HashGet } {
                let [v0, v1, v2, v3] = &mut values;
                let [f0, f1, f2, f3] = names;
                // SAFETY: inner is an open hash key; with no flags each field is a Redis
                // string, each followed by an out-pointer, the list ended by NULL.
                unsafe {
                    get(
                        self.inner,
                        raw::REDISMODULE_HASH_NONE as c_int,
                        f0,
                        v0 as *mut *mut raw::RedisModuleString,
                        f1,
                        v1 as *mut *mut raw::RedisModuleString,
                        f2,
                        v2 as *mut *mut raw::RedisModuleString,
                        f3,
                        v3 as *mut *mut raw::RedisModuleString,
                        ptr::null::<c_char>(),
                    );
                }
            }
        }
        values.map(|v| {
            (!v.is_null()).then(|| RedisString::from_redis_module_string(ctx.get_raw(), v))
        })
    }

    /// Reads one hash field; `None` when it is missing or the key is not a hash.
    pub fn hash_get(&self, ctx: &Context, field: Field) -> Option<RedisString> {
        let name = field.redis_name();
        if self.inner.is_null() || name.is_null() || self.kind() != Kind::Hash {
            return None;
        }
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: the API table is filled once at load, before any command runs.
        let get = unsafe { raw::RedisModule_HashGet }?;
        // SAFETY: inner is an open hash key; one Redis-string field, its out-pointer, NULL.
        unsafe {
            get(
                self.inner,
                raw::REDISMODULE_HASH_NONE as c_int,
                name,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null::<c_char>(),
            );
        }
        (!value.is_null()).then(|| RedisString::from_redis_module_string(ctx.get_raw(), value))
    }

    /// The absolute expiry in unix ms, or `None` when the key has none (or does not exist).
    pub fn abs_expire(&self) -> Option<i64> {
        if self.inner.is_null() {
            return None;
        }
        // SAFETY: inner is an open key.
        let t = unsafe { raw::RedisModule_GetAbsExpire.map_or(-1, |f| f(self.inner)) };
        (t >= 0).then_some(t)
    }

    /// Sets the absolute expiry in unix ms.
    pub fn set_abs_expire(&self, at_ms: i64) -> bool {
        if self.inner.is_null() {
            return false;
        }
        // SAFETY: inner is an open writable key that exists.
        let status = unsafe {
            raw::RedisModule_SetAbsExpire
                .map_or(raw::REDISMODULE_ERR as c_int, |f| f(self.inner, at_ms))
        };
        status == raw::REDISMODULE_OK as c_int
    }

    /// The number of elements of a set (or fields of a hash); 0 for an empty key
    /// (`RM_ValueLength`).
    pub fn value_length(&self) -> usize {
        if self.inner.is_null() {
            return 0;
        }
        // SAFETY: inner is an open key.
        unsafe { raw::RedisModule_ValueLength.map_or(0, |f| f(self.inner)) }
    }

    /// Deletes the key.
    pub fn delete(&self) -> bool {
        if self.inner.is_null() {
            return false;
        }
        // SAFETY: inner is an open writable key.
        let status = unsafe {
            raw::RedisModule_DeleteKey.map_or(raw::REDISMODULE_ERR as c_int, |f| f(self.inner))
        };
        status == raw::REDISMODULE_OK as c_int
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if self.owned && !self.inner.is_null() {
            // SAFETY: inner was opened by OpenKey and is closed only here.
            unsafe {
                if let Some(close) = raw::RedisModule_CloseKey {
                    close(self.inner);
                }
            }
        }
    }
}

/// Tells Redis that the key `name` was modified: `WATCH`es of it fail and client-side caches
/// of it are invalidated. The module turns Redis's implicit signal off at load (every key
/// opened for writing would count as modified, written or not) and signals what it writes.
pub fn signal_modified(ctx: &Context, name: &RedisString) {
    // SAFETY: the API table is filled once at load; ctx and name are live.
    unsafe {
        if let Some(signal) = raw::RedisModule_SignalModifiedKey {
            signal(ctx.get_raw(), name.inner);
        }
    }
}

/// Turns off the implicit "modified" signal on closing a key opened for writing (see
/// [`signal_modified`]); called once at load.
pub fn explicit_modified_signals(ctx: &Context) {
    // SAFETY: called during OnLoad with the loading context.
    unsafe {
        if let Some(set) = raw::RedisModule_SetModuleOptions {
            set(
                ctx.get_raw(),
                raw::REDISMODULE_OPTION_NO_IMPLICIT_SIGNAL_MODIFIED as c_int,
            );
        }
    }
}

/// Unix time in milliseconds as Redis sees it.
pub fn now_ms() -> i64 {
    // SAFETY: Milliseconds takes no arguments and only reads the clock.
    unsafe { raw::RedisModule_Milliseconds.map_or(0, |f| f()) }
}

/// Every member of an open set key, once each (`RedisModule_ScanKey`: the module API has no
/// other set read; cheaper than `SMEMBERS` through `RM_Call`, and usable where no command can
/// run, as on a key about to be freed).
pub fn set_members(key: &Key) -> Vec<Vec<u8>> {
    let (mut members, _) = scan_set(key, |member| {
        // SAFETY: member is a string Redis owns for the duration of the scan's callback.
        unsafe { string_bytes(member) }.map(<[u8]>::to_vec)
    });
    // A scan may meet a member twice while the set's table is being resized.
    members.sort_unstable();
    members.dedup();
    members
}

/// [`set_members`] as strings the caller owns (sorted only when the scan took several steps):
/// the very strings the scan made, kept (`RedisModule_RetainString`), so that a member naming
/// a key opens it with no copy.
pub fn set_member_strings(key: &Key) -> Vec<RedisString> {
    // RedisString::new retains the string (with no context: ours until dropped, then freed).
    let (members, steps) = scan_set(key, |member| Some(RedisString::new(None, member)));
    if steps > 1 {
        sorted_once_each(members)
    } else {
        members
    }
}

/// The strings sorted by their bytes, each once. (The bytes are read once per string: a
/// string's bytes are behind a call into Redis, too dear for every comparison of a sort.)
fn sorted_once_each(members: Vec<RedisString>) -> Vec<RedisString> {
    let mut order: Vec<(&[u8], usize)> = members
        .iter()
        .enumerate()
        .map(|(i, member)| (member.as_slice(), i))
        .collect();
    order.sort_unstable();
    order.dedup_by(|a, b| a.0 == b.0);
    let keep: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
    let mut slots: Vec<Option<RedisString>> = members.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// The bytes of a string Redis handed to a callback.
///
/// # Safety
/// `member` must be a live `RedisModuleString` for the returned slice's lifetime.
unsafe fn string_bytes<'a>(member: *mut raw::RedisModuleString) -> Option<&'a [u8]> {
    let ptr_len = raw::RedisModule_StringPtrLen?;
    let mut len = 0usize;
    // SAFETY: per this function's contract.
    unsafe {
        let bytes = ptr_len(member, &mut len);
        (!bytes.is_null()).then(|| std::slice::from_raw_parts(bytes.cast::<u8>(), len))
    }
}

/// `each` applied to every member of an open set key as the scan meets it, the `Some`s it
/// returns, and how many scan steps it took. A member is met twice only when the set's table
/// is resized between two steps, so a scan done in one step (a small set, in one piece) meets
/// each member once.
fn scan_set<T>(key: &Key, each: fn(*mut raw::RedisModuleString) -> Option<T>) -> (Vec<T>, usize) {
    struct Scan<T> {
        each: fn(*mut raw::RedisModuleString) -> Option<T>,
        out: Vec<T>,
    }
    unsafe extern "C" fn collect<T>(
        _key: *mut raw::RedisModuleKey,
        member: *mut raw::RedisModuleString,
        _value: *mut raw::RedisModuleString,
        privdata: *mut c_void,
    ) {
        // SAFETY: privdata is the Scan passed below, alive for the whole scan.
        let scan = unsafe { &mut *privdata.cast::<Scan<T>>() };
        if let Some(item) = (scan.each)(member) {
            scan.out.push(item);
        }
    }
    let mut scan = Scan {
        each,
        out: Vec::new(),
    };
    // SAFETY: the API table is filled once at load; the cursor is made and destroyed here,
    // and the key is open for the whole scan.
    unsafe {
        let (Some(create), Some(run), Some(destroy)) = (
            raw::RedisModule_ScanCursorCreate,
            raw::RedisModule_ScanKey,
            raw::RedisModule_ScanCursorDestroy,
        ) else {
            return (scan.out, 0);
        };
        let cursor = create();
        if cursor.is_null() {
            return (scan.out, 0);
        }
        let data = ptr::addr_of_mut!(scan).cast::<c_void>();
        let mut steps = 1;
        while run(key.as_ptr(), cursor, Some(collect::<T>), data) != 0 {
            steps += 1;
        }
        destroy(cursor);
        (scan.out, steps)
    }
}
