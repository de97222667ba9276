//! The SESSION.* command handlers: each turns its arguments into a domain request, does its
//! reads and writes through the low-level key API, replicates its effects as plain commands
//! with absolute expiry times, and turns the outcome into a reply.
//!
//! The module API of Redis 7.0 has no set operations, so index sets are read and changed
//! with `SMEMBERS`, `SRANDMEMBER`, `SADD` and `SREM` through `RM_Call`. `SADD` is called with
//! the `!` flag, so that Redis replicates it itself; every other effect is replicated with
//! `RM_Replicate` right after it is made, keeping the order of effects.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::config::{Settings, TokenHash};
use crate::error::Error;
use crate::layout::{self, Domain, View};
use crate::session::{self, CreateOptions, Lifetime, NewSession, Stored, UpdatedSession};
use crate::token;

use super::acl::{Access, Caller};
use super::keyevents::Quiet;
use super::keys::{now_ms, signal_modified, Field, Key, Kind};
use super::{capabilities, effects, secret, settings, stats};

/// How many fresh tokens CREATE draws before giving up on finding an unused key. With 16
/// random bytes or more a single collision is already beyond belief.
const TOKEN_DRAWS: usize = 8;

/// How many members of an index a write checks for stale tokens (the contract's minimum).
const PRUNE_SAMPLE: &[u8] = b"16";

/// Keyspace events, raised on the session key in the module class (`d`).
const EVENT_CREATE: &str = "session.create";
const EVENT_DESTROY: &str = "session.destroy";
const EVENT_REVOKE: &str = "session.revoke";
const EVENT_ROTATE: &str = "session.rotate";

/// An error reply. Non-ASCII and control characters (from property names or options the
/// client sent) are escaped, because the crate writes error text byte by byte as ASCII.
fn reply_error(e: Error) -> RedisError {
    let text = e.to_string();
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            safe.push(c);
        } else {
            safe.extend(c.escape_unicode());
        }
    }
    RedisError::String(safe)
}

fn string(ctx: &Context, bytes: &[u8]) -> RedisString {
    RedisString::create_from_slice(ctx.get_raw(), bytes)
}

/// `<key-prefix><member>` as a Redis string: the key of the session an index lists as
/// `member` (its token, or with `token-hash sha256` the token's hash).
fn session_key(ctx: &Context, settings: &Settings, member: &[u8]) -> RedisString {
    let mut name = Vec::with_capacity(settings.key_prefix.len() + member.len());
    name.extend_from_slice(settings.key_prefix.as_bytes());
    name.extend_from_slice(member);
    string(ctx, &name)
}

/// What a token is stored under in `domain`, after the key prefix: itself, or its hash.
fn member_of(token: &[u8], domain: Domain) -> Vec<u8> {
    match domain {
        Domain::Plain => token.to_vec(),
        Domain::Hashed => token::hashed(token).into_bytes(),
    }
}

/// The domain new sessions are stored in under the settings.
fn new_domain(settings: &Settings) -> Domain {
    match settings.token_hash {
        TokenHash::None => Domain::Plain,
        TokenHash::Sha256 => Domain::Hashed,
    }
}

/// The domains a presented token is looked up in, the current `token-hash`'s first: a
/// session made under the other value keeps working after a switch.
fn lookup_order(settings: &Settings) -> [Domain; 2] {
    match settings.token_hash {
        TokenHash::None => [Domain::Plain, Domain::Hashed],
        TokenHash::Sha256 => [Domain::Hashed, Domain::Plain],
    }
}

/// The identifier LIST gives a session and REVOKEID takes: its member when stored hashed,
/// else the hash of its token (the same whatever `token-hash` was when it was made).
fn identifier(member: &[u8], domain: Domain) -> String {
    match domain {
        Domain::Hashed => String::from_utf8_lossy(member).into_owned(),
        Domain::Plain => token::hashed(member),
    }
}

fn notify(ctx: &Context, event: &str, key: &RedisString) {
    ctx.notify_keyspace_event(raw::NotifyEvent::MODULE, event, key);
}

/// Where a found session's data and index list are.
enum Body {
    /// 0.1.0: hash fields as Redis made them.
    Fields {
        data: RedisString,
        indexes: Option<RedisString>,
    },
    /// Layout 2: byte ranges of the string value, which is read in place (no copy) while
    /// the key is open.
    Ranges {
        data: Range<usize>,
        indexes: Option<Range<usize>>,
    },
}

/// An open session: its key and what it holds.
struct Found {
    name: RedisString,
    /// The key prefix's length: the rest of `name` is what its indexes list.
    prefix_len: usize,
    /// How its key is named (a 0.1.0 hash: by its token).
    domain: Domain,
    key: Key,
    body: Body,
    stored: Stored,
}

impl Found {
    /// What its indexes list for it (its key's name after the key prefix).
    fn member(&self) -> &[u8] {
        self.name
            .as_slice()
            .get(self.prefix_len..)
            .unwrap_or_default()
    }

    /// The session data's JSON text.
    fn data(&self) -> &[u8] {
        match &self.body {
            Body::Fields { data, .. } => data.as_slice(),
            Body::Ranges { data, .. } => self.in_value(data.clone()),
        }
    }

    /// The index list (a JSON array of index key names), checked when the session was read
    /// unless the caller said it would check it itself; `None` when in no index.
    fn indexes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Fields { indexes, .. } => indexes.as_ref().map(RedisString::as_slice),
            Body::Ranges { indexes, .. } => indexes.clone().map(|r| self.in_value(r)),
        }
    }

    /// Part of the string value (empty if the value is no longer what was read, which
    /// the commands never let happen while they hold a `Found`).
    fn in_value(&self, range: Range<usize>) -> &[u8] {
        self.key
            .string_value()
            .and_then(|value| value.get(range))
            .unwrap_or_default()
    }

    /// The index keys the session joined.
    fn index_keys(&self) -> Vec<String> {
        self.indexes()
            .and_then(session::parse_index_list)
            .unwrap_or_default()
    }

    /// Replies the session data: straight from the stored value, without a copy.
    fn reply_data(&self, ctx: &Context) -> RedisValue {
        let data = self.data();
        // SAFETY: the API table is filled once at load; ctx is the running command's context
        // and `data` lives in the open key, which outlives the call (it copies the bytes).
        unsafe {
            if let Some(reply) = raw::RedisModule_ReplyWithStringBuffer {
                reply(ctx.get_raw(), data.as_ptr().cast(), data.len());
                return RedisValue::NoReply;
            }
        }
        RedisValue::StringBuffer(data.to_vec())
    }
}

/// The slot whose secret signs the session key `name`: its hash slot in cluster mode, else 0.
fn secret_slot(name: &[u8]) -> u16 {
    if super::cluster::enabled() {
        super::cluster::key_slot(name)
    } else {
        0
    }
}

/// The dataset's secret as one command sees it: looked up the first time a layout-2 session
/// needs it, then kept for the rest of the command (REVOKEINDEX and LIST read thousands). In
/// cluster mode it is the secret of a hash slot: looked up again for a session of another slot.
struct Secrets {
    /// Whether the command may write the secret's key back if it went (see [`secret`]).
    write: bool,
    /// The slot looked up (0 outside cluster mode) and what was found.
    resolved: Option<(u16, Option<layout::Secret>)>,
}

impl Secrets {
    fn new(write: bool) -> Secrets {
        Secrets {
            write,
            resolved: None,
        }
    }

    /// The secret for the session key `name`.
    fn get(&mut self, ctx: &Context, name: &[u8]) -> Option<layout::Secret> {
        let slot = secret_slot(name);
        if let Some((resolved_slot, secret)) = self.resolved {
            if resolved_slot == slot {
                return secret;
            }
        }
        let settings = settings::current();
        let place = secret::Place::in_slot(&settings, slot);
        let secret = if self.write {
            secret::for_writing(ctx, &settings, &place, false).ok()
        } else {
            secret::for_reading(ctx, &settings, &place)
        };
        self.resolved = Some((slot, secret));
        secret
    }
}

/// Opens the session an index lists as `member`, or `None` when it is malformed or its key
/// is not a session this module wrote. Nothing is read beyond the type unless it is a hash.
/// Either domain is accepted: members come from index sets and grace records, which the
/// module wrote.
fn find_member(ctx: &Context, settings: &Settings, member: &[u8], write: bool) -> Option<Found> {
    find_in(ctx, settings, member, &mut Secrets::new(write))
}

/// [`find_member`] for commands that find many sessions: `secrets` is looked up once for all.
fn find_in(
    ctx: &Context,
    settings: &Settings,
    member: &[u8],
    secrets: &mut Secrets,
) -> Option<Found> {
    if !token::is_well_formed(member) {
        return None;
    }
    let name = session_key(ctx, settings, member);
    open_session_with(ctx, settings, name, secrets, true, None)
}

/// [`find_in`] for a member read from an index as a string: without a key prefix the member
/// is its key's name, and that very string opens the key (no copy).
fn find_listed(
    ctx: &Context,
    settings: &Settings,
    member: &RedisString,
    secrets: &mut Secrets,
) -> Option<Found> {
    if !settings.key_prefix.is_empty() {
        return find_in(ctx, settings, member.as_slice(), secrets);
    }
    if !token::is_well_formed(member.as_slice()) {
        return None;
    }
    open_session_with(ctx, settings, member.safe_clone(ctx), secrets, true, None)
}

/// Every member of the index set `index`, as strings (none for a missing key or one of
/// another type).
fn index_members(ctx: &Context, index: &[u8]) -> Vec<RedisString> {
    let key = Key::read(ctx, &string(ctx, index));
    if key.kind() == Kind::Set {
        super::keys::set_member_strings(&key)
    } else {
        Vec::new()
    }
}

/// The key `token` names in `domain`: without a key prefix, the plain one is the argument
/// as it is, used without a copy (this is every VALIDATE's path).
fn token_key(
    ctx: &Context,
    settings: &Settings,
    token: &RedisString,
    domain: Domain,
) -> RedisString {
    match domain {
        Domain::Plain if settings.key_prefix.is_empty() => token.safe_clone(ctx),
        Domain::Plain => session_key(ctx, settings, token.as_slice()),
        Domain::Hashed => {
            let mut name = Vec::with_capacity(settings.key_prefix.len() + token.len() + 24);
            name.extend_from_slice(settings.key_prefix.as_bytes());
            token::push_hashed(&mut name, token.as_slice());
            string(ctx, &name)
        }
    }
}

/// The caller's permissions for the session a token names, checked before any key is read:
/// ACL key patterns judge `<key-prefix><token>`, whatever `token-hash` says (the stored name
/// differs from it only after the prefix and slot tag, in its hex digits). Without a key
/// prefix that is the token, the command's declared key, which Redis checked already.
fn check_token(
    caller: &mut Caller,
    settings: &Settings,
    token: &RedisString,
    access: Access,
) -> Result<(), RedisError> {
    if settings.key_prefix.is_empty() {
        return Ok(());
    }
    let mut name = settings.key_prefix.as_bytes().to_vec();
    name.extend_from_slice(token.as_slice());
    caller.check(&name, access)
}

/// Opens the session a token given as a command argument names, looking in each domain in
/// turn (see [`lookup_order`]); `None` when the token is malformed or names none. The
/// caller's permissions are checked first ([`check_token`]). The check of the `indexes`
/// field is left to the caller when `check_indexes` is false.
fn find_token(
    ctx: &Context,
    settings: &Settings,
    caller: &mut Caller,
    token: &RedisString,
    access: Access,
    check_indexes: bool,
) -> Result<Option<Found>, RedisError> {
    if !token::is_well_formed(token.as_slice()) {
        return Ok(None);
    }
    check_token(caller, settings, token, access)?;
    let write = access != Access::Read;
    for domain in lookup_order(settings) {
        let name = token_key(ctx, settings, token, domain);
        let found = open_session_with(
            ctx,
            settings,
            name,
            &mut Secrets::new(write),
            check_indexes,
            Some(domain),
        );
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Opens the key `name` (for writing when `secrets` is a writer's) and reads it as a
/// session of `domain` (of either when `None`), leaving the check of the index list to the
/// caller when `check_indexes` is false (VALIDATE checks it while walking it, once).
fn open_session_with(
    ctx: &Context,
    settings: &Settings,
    name: RedisString,
    secrets: &mut Secrets,
    check_indexes: bool,
    domain: Option<Domain>,
) -> Option<Found> {
    let key = if secrets.write {
        Key::write(ctx, &name)
    } else {
        Key::read(ctx, &name)
    };
    let (body, stored, domain) =
        read_session(ctx, &key, name.as_slice(), secrets, check_indexes, domain)?;
    Some(Found {
        name,
        prefix_len: settings.key_prefix.len(),
        domain,
        key,
        body,
        stored,
    })
}

/// Reads the open key `name` as a session, in either layout: a string of layout 2 whose tag
/// the dataset's secret signs for this name (in `domain`, or either when `None`), or a 0.1.0
/// hash whose fields are well-formed (named by its token). `None` when it is not a session
/// this module wrote.
fn read_session(
    ctx: &Context,
    key: &Key,
    name: &[u8],
    secrets: &mut Secrets,
    check_indexes: bool,
    domain: Option<Domain>,
) -> Option<(Body, Stored, Domain)> {
    match key.kind() {
        Kind::String => {
            let value = key.string_value()?;
            let view = View::parse(value, check_indexes)?;
            let secret = secrets.get(ctx, name)?;
            let domain = match domain {
                Some(domain) => view.is_signed(&secret, domain, name).then_some(domain)?,
                None => view.domain(&secret, name)?,
            };
            let range = |part: &[u8]| {
                let start = part.as_ptr().addr().wrapping_sub(value.as_ptr().addr());
                start..start + part.len()
            };
            let body = Body::Ranges {
                data: range(view.data),
                indexes: view.indexes.map(range),
            };
            Some((
                body,
                Stored {
                    lifetime: view.lifetime,
                },
                domain,
            ))
        }
        Kind::Hash if domain != Some(Domain::Hashed) => {
            let [data, ttl, deadline, indexes] = key.hash_get4(
                ctx,
                [Field::Data, Field::Ttl, Field::Deadline, Field::Indexes],
            );
            let stored = Stored::decode(
                data.as_ref().map(RedisString::as_slice),
                ttl.as_ref().map(RedisString::as_slice),
                deadline.as_ref().map(RedisString::as_slice),
                indexes
                    .as_ref()
                    .filter(|_| check_indexes)
                    .map(RedisString::as_slice),
            )?;
            let body = Body::Fields {
                data: data?,
                indexes,
            };
            Some((body, stored, Domain::Plain))
        }
        _ => None,
    }
}

/// The kind of the key `name`, without keeping it open.
fn kind_of(ctx: &Context, name: &[u8]) -> Kind {
    Key::probe(ctx, &string(ctx, name)).kind()
}

/// Checks that every index key is a set or absent, before anything is written.
/// Returns, for each, whether it is absent (so that its new set gets an expiry).
/// In cluster mode a missing one must be missing for good: its slot all here (see
/// `cluster::missing`), else the command replies TRYAGAIN.
fn check_indexes(
    ctx: &Context,
    settings: &Settings,
    names: &[String],
) -> Result<Vec<bool>, RedisError> {
    names
        .iter()
        .map(|name| match kind_of(ctx, name.as_bytes()) {
            Kind::Empty => {
                super::cluster::missing(ctx, settings.cluster, name.as_bytes())
                    .map_err(reply_error)?;
                Ok(true)
            }
            Kind::Set => Ok(false),
            Kind::String | Kind::Hash | Kind::Other => {
                Err(reply_error(Error::IndexWrongType(name.clone())))
            }
        })
        .collect()
}

/// Makes the index set `name` expire no earlier than `needed_ms` (a session's expiry): when
/// it would expire earlier, its expiry becomes `target_ms` (see
/// [`session::Lifetime::index_expire_at`]), replicated. A missing key, a key of another
/// type, or an index set that already existed with no expiry is left alone. Returns the
/// set's size, or `None` when it is not a set, so that callers need not open it again.
fn raise_index_expiry(
    ctx: &Context,
    name: &[u8],
    needed_ms: i64,
    target_ms: i64,
    created_now: bool,
) -> Option<usize> {
    let redis_name = string(ctx, name);
    let key = Key::write(ctx, &redis_name);
    if key.kind() != Kind::Set {
        return None;
    }
    let raise = match key.abs_expire() {
        Some(current) => current < needed_ms,
        // A set this command just made gets an expiry, unless key events keep it exact (it
        // then ends with its last session); one that was persistent stays so.
        None => created_now && !capabilities::key_events(),
    };
    if raise && key.set_abs_expire(target_ms) {
        effects::pexpireat(ctx, name, target_ms);
        signal_modified(ctx, &redis_name);
    }
    Some(key.value_length())
}

/// Whether VALIDATE must raise the expiry of the index set `name` so that it does not
/// expire before `needed_ms` (it has an expiry, and an earlier one); `None` when `name` is
/// not a set. Reads only (the key is looked up as a read, which keeps it recently used).
fn index_needs_raise(ctx: &Context, name: &[u8], needed_ms: i64) -> Option<bool> {
    let key = Key::read(ctx, &string(ctx, name));
    if key.kind() != Kind::Set {
        return None;
    }
    Some(key.abs_expire().is_some_and(|current| current < needed_ms))
}

/// The members of a set reply (`SMEMBERS`, `SRANDMEMBER`), as bytes.
fn members(reply: RedisResult) -> Vec<Vec<u8>> {
    let Ok(RedisValue::Array(items)) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.into_bytes()),
            RedisValue::StringBuffer(b) => Some(b),
            RedisValue::BulkRedisString(s) => Some(s.as_slice().to_vec()),
            _ => None,
        })
        .collect()
}

/// Adds `token` to the index set `index` (known to be a set or absent), replicated.
fn index_add(ctx: &Context, index: &[u8], token: &[u8]) {
    effects::sadd_replicated(ctx, index, token);
}

/// Removes `tokens` from `index` when it is a set; any other type is left alone. Returns
/// whether any was there.
pub(super) fn index_remove<T: AsRef<[u8]>>(ctx: &Context, index: &[u8], tokens: &[T]) -> bool {
    if let [token] = tokens {
        // One member (a session ending, leaving an index): read from the reply as it is,
        // replicated by Redis when it removed something (a key of another type replies an
        // error, and nothing is written).
        return effects::srem_replicated(ctx, index, token.as_ref());
    }
    if tokens.is_empty() || kind_of(ctx, index) != Kind::Set {
        return false;
    }
    let mut args: Vec<&[u8]> = Vec::with_capacity(tokens.len() + 1);
    args.push(index);
    args.extend(tokens.iter().map(AsRef::as_ref));
    match ctx.call("SREM", args.as_slice()) {
        Ok(RedisValue::Integer(0)) => false,
        Ok(_) => {
            effects::replicate(ctx, c"SREM", &args);
            true
        }
        Err(_) => false,
    }
}

/// On servers without key events (7.0): whether the session can still be revoked by every
/// index its `indexes` field lists. Without eviction the index set existing is enough (it
/// goes only by `DEL` by hand, which takes the whole set). Where the server may evict keys
/// (`maxmemory` with an evicting policy, now or earlier in this process: [`evicting`]) an
/// evicted set can be made again by the user's next
/// login without the old tokens, so membership itself is checked, with `SISMEMBER` through
/// `RM_Call`: the module API of 7.0 has no other set lookup (it costs VALIDATE a fifth of its
/// throughput and shows in MONITOR, as the index `SADD`s do; docs/storage.md, "Indexes under expiry, deletion and eviction"). A session
/// that fails is ended instead of served (fail closed), as key events do at once on 7.2+.
fn revocable(ctx: &Context, found: &Found) -> bool {
    if capabilities::key_events() {
        return true;
    }
    let Some(indexes) = found.indexes() else {
        return true;
    };
    let members_checked = evicting(ctx);
    let mut all = true;
    let well_formed = session::visit_index_list(indexes, |index| {
        all = all
            && if members_checked {
                effects::sismember(ctx, index, found.member())
            } else {
                kind_of(ctx, index) == Kind::Set
            };
    });
    well_formed && all
}

/// [`revocable`], and in cluster mode an error instead of `false` when an index it lists is
/// missing while its slot is being migrated (it may be on the other node: TRYAGAIN).
fn revocable_here(ctx: &Context, settings: &Settings, found: &Found) -> Result<bool, RedisError> {
    if revocable(ctx, found) {
        return Ok(true);
    }
    if settings.cluster {
        if let Some(indexes) = found.indexes() {
            let mut missing: Option<Vec<u8>> = None;
            session::visit_index_list(indexes, |index| {
                if missing.is_none() && kind_of(ctx, index) == Kind::Empty {
                    missing = Some(index.to_vec());
                }
            });
            if let Some(index) = missing {
                super::cluster::missing(ctx, true, &index).map_err(reply_error)?;
            }
        }
    }
    Ok(false)
}

/// In cluster mode, tokens found stale (no key) in an index must be so for good: their slot
/// (the index's own) all here, else the command replies TRYAGAIN before writing anything.
fn stale_for_good(ctx: &Context, settings: &Settings, stale: &[&[u8]]) -> Result<(), RedisError> {
    match stale.first() {
        Some(token) if settings.cluster => {
            super::cluster::missing(ctx, true, session_key(ctx, settings, token).as_slice())
                .map_err(reply_error)
        }
        _ => Ok(()),
    }
}

/// A command that found no session where a slot's secret is elsewhere (cluster mode, slot
/// being migrated) replies TRYAGAIN, not "unknown".
fn unknown_or_retry(reply: RedisValue) -> RedisResult {
    if secret::take_retry() {
        Err(reply_error(Error::TryAgain))
    } else {
        Ok(reply)
    }
}

/// Set once a command of this process has seen an evicting `maxmemory` policy: sets evicted
/// then stay a possibility (an orphan outlives a later `CONFIG SET maxmemory 0`).
static EVICTION_SEEN: AtomicBool = AtomicBool::new(false);

/// Whether this server may evict keys on its own (`maxmemory` with a policy other than
/// `noeviction`), now or at any time since the module was loaded.
fn evicting(ctx: &Context) -> bool {
    if EVICTION_SEEN.load(Ordering::Relaxed) {
        return true;
    }
    // SAFETY: the API table is filled once at load; ctx is the running command's context.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.get_raw())) };
    let now = flags as u32 & raw::REDISMODULE_CTX_FLAGS_EVICT != 0;
    if now {
        EVICTION_SEEN.store(true, Ordering::Relaxed);
    }
    now
}

/// Ends a session that lost its revocation path (fail closed), leaving its other indexes.
fn end_unrevocable(ctx: &Context, found: Found) {
    let name = end_session(ctx, found, None);
    notify(ctx, EVENT_REVOKE, &name);
    stats::ENDED_WITH_INDEX.add(1);
}

/// Deletes a found session and removes it from every index it lists but `skip`.
/// Returns the key's name, for the caller to raise its event once the whole effect is done
/// (`skip`, if any, is the caller's to clean).
fn end_session(ctx: &Context, found: Found, skip: Option<&[u8]>) -> RedisString {
    let others: Vec<String> = found
        .index_keys()
        .into_iter()
        .filter(|k| Some(k.as_bytes()) != skip)
        .collect();
    end_session_in(ctx, found, &others)
}

/// [`end_session`] for a session whose index keys the caller read already.
fn end_session_in(ctx: &Context, found: Found, others: &[String]) -> RedisString {
    let member = found.member().to_vec();
    let name = delete_session(ctx, found);
    for other in others {
        index_remove(ctx, other.as_bytes(), &[member.as_slice()]);
    }
    name
}

/// Ends the session listed as `member` if it is a session of ours that lists `index` (an
/// index set that left the keyspace). Returns whether it did.
pub(super) fn end_listed_session(
    ctx: &Context,
    settings: &Settings,
    member: &[u8],
    index: &[u8],
) -> bool {
    let Some(found) = find_member(ctx, settings, member, true) else {
        return false;
    };
    if !found.index_keys().iter().any(|k| k.as_bytes() == index) {
        return false;
    }
    // The index set `index` has left already: the session's effect is whole here.
    let name = end_session(ctx, found, Some(index));
    notify(ctx, EVENT_REVOKE, &name);
    true
}

/// True when no key exists for `token`: its session expired or was deleted by hand.
/// A token whose key holds anything at all is left to whoever wrote it.
fn is_stale(ctx: &Context, settings: &Settings, token: &[u8]) -> bool {
    Key::probe(ctx, &session_key(ctx, settings, token)).kind() == Kind::Empty
}

/// Removes the stale tokens among a bounded random sample of `index`, so that a write
/// costs the same whatever the index's size. `live` members are known to be live (the
/// token just added): an index holding no more than those has nothing to check.
fn prune_sample(ctx: &Context, settings: &Settings, index: &[u8], live: usize) {
    let size = {
        let key = Key::probe(ctx, &string(ctx, index));
        if key.kind() != Kind::Set {
            return;
        }
        key.value_length()
    };
    prune_sample_of(ctx, settings, index, size, live);
}

/// [`prune_sample`] for an index set whose size the caller already knows.
fn prune_sample_of(ctx: &Context, settings: &Settings, index: &[u8], size: usize, live: usize) {
    // Also with key events: an RDB load on a primary drops the keys that expired while the
    // server was down without raising any event, so their tokens can stay behind.
    if size <= live {
        return;
    }
    let sample = members(ctx.call("SRANDMEMBER", &[index, PRUNE_SAMPLE]));
    let stale: Vec<&[u8]> = sample
        .iter()
        .map(Vec::as_slice)
        .filter(|t| is_stale(ctx, settings, t))
        .collect();
    if stale_for_good(ctx, settings, &stale).is_err() {
        // A slot being migrated: the tokens may be live on the other node.
        return;
    }
    index_remove(ctx, index, &stale);
    stats::PRUNED.add(stale.len() as u64);
}

/// Deletes a found session's key and replicates `DEL`; returns the key's name. The caller
/// raises the event once the indexes are done too, so that a subscriber never sees a
/// destroyed session still in an index.
fn delete_session(ctx: &Context, found: Found) -> RedisString {
    {
        // The command does the index work itself: the key event of this deletion is ours.
        let _quiet = Quiet::new();
        found.key.delete();
        drop(found.key);
    }
    effects::replicate(ctx, c"DEL", &[found.name.as_slice()]);
    signal_modified(ctx, &found.name);
    found.name
}

/// Moves a session's expiry to `expire_at` (the caller knows it is elsewhere), replicating
/// it. Returns whether it moved.
fn set_session_expiry(ctx: &Context, found: &Found, expire_at: i64) -> bool {
    let moved = found.key.set_abs_expire(expire_at);
    if moved {
        effects::pexpireat(ctx, found.name.as_slice(), expire_at);
        signal_modified(ctx, &found.name);
    }
    moved
}

/// With a key prefix, the key a client names (the token, which COMMAND GETKEYS and client
/// tracking see) is not the key written (`name`, `<prefix><token>`): both are signalled, so
/// that a client caching the session by its token hears of the change. A session stored
/// under its token's hash is not signalled by its token: client tracking in `BCAST` mode
/// would send the token to every client listening (docs/security.md "Hashed tokens").
fn signal_token(ctx: &Context, settings: &Settings, token: &RedisString, name: &RedisString) {
    let named_by_token =
        name.as_slice().strip_prefix(settings.key_prefix.as_bytes()) == Some(token.as_slice());
    if named_by_token && token.as_slice() != name.as_slice() {
        signal_modified(ctx, token);
    }
}

/// Makes the open key `name` the layout-2 session string of `data` with `lifetime` and the
/// index list `indexes`, expiring at `expire_at`, whatever it held (a 0.1.0 hash is rewritten
/// so), and replicates it as one `SET ... PXAT`.
#[allow(clippy::too_many_arguments)]
fn write_session(
    ctx: &Context,
    key: &Key,
    (name, domain): (&RedisString, Domain),
    secret: &layout::Secret,
    lifetime: Lifetime,
    indexes: Option<&[u8]>,
    data: &[u8],
    expire_at: i64,
) -> bool {
    let value = layout::encode(secret, domain, name.as_slice(), lifetime, indexes, data);
    let written = {
        // The old value's key event is the command's own doing (7.2+).
        let _quiet = Quiet::new();
        key.string_set(&string(ctx, &value)) && key.set_abs_expire(expire_at)
    };
    if written {
        effects::set_pxat(ctx, name.as_slice(), &value, expire_at);
        signal_modified(ctx, name);
    }
    written
}

/// The secret a write command signs the session key `name` with, or the error to reply.
fn secret_for_writing(
    ctx: &Context,
    settings: &Settings,
    name: &[u8],
) -> Result<layout::Secret, RedisError> {
    let place = secret::Place::of(settings, name);
    secret::for_writing(ctx, settings, &place, true).map_err(|why| match why {
        secret::Unusable::Other => reply_error(Error::SecretUnusable(secret::key_name(&place))),
        secret::Unusable::Elsewhere => reply_error(Error::TryAgain),
    })
}

/// A new session's token and key.
struct Drawn {
    token: String,
    /// What its indexes list (the key's name after the key prefix).
    member: Vec<u8>,
    name: RedisString,
    domain: Domain,
    /// Open for writing.
    key: Key,
}

/// A new token whose key (in the domain `token-hash` says) is unused. `tag`: the slot tag
/// the token starts with in cluster mode (`{06S}`), or nothing.
fn draw_token(ctx: &Context, settings: &Settings, tag: &[u8]) -> Result<Drawn, RedisError> {
    let token_bytes = usize::try_from(settings.token_bytes).unwrap_or(24);
    let mut rng = rand::rng();
    let tag = String::from_utf8_lossy(tag);
    let domain = new_domain(settings);
    for _ in 0..TOKEN_DRAWS {
        let mut candidate = tag.to_string();
        candidate.push_str(&token::generate(&mut rng, token_bytes));
        let member = member_of(candidate.as_bytes(), domain);
        let name = session_key(ctx, settings, &member);
        let key = Key::write(ctx, &name);
        if key.kind() == Kind::Empty {
            return Ok(Drawn {
                token: candidate,
                member,
                name,
                domain,
                key,
            });
        }
    }
    Err(reply_error(Error::Internal("no unused token found".into())))
}

/// The sessions a CREATE with MAXSESSIONS ends before it creates, and the stale tokens of
/// the primary index it removes on the way.
struct OverTheLimit {
    primary: Vec<u8>,
    /// Each with its index keys.
    ending: Vec<(Found, Vec<String>)>,
    /// The secret of the slot the sessions read are in (0 outside cluster mode), when any
    /// was read: the new session's, when it is in that slot.
    secret: Option<(u16, layout::Secret)>,
    stale: Vec<Vec<u8>>,
}

impl OverTheLimit {
    /// Ends the sessions (each leaves every index it was in, and raises `session.destroy`)
    /// and prunes the stale tokens.
    fn end(self, ctx: &Context) {
        for (found, index_keys) in self.ending {
            let name = end_session_in(ctx, found, &index_keys);
            notify(ctx, EVENT_DESTROY, &name);
            stats::ENDED_BY_LIMIT.add(1);
        }
        index_remove(ctx, &self.primary, &self.stale);
        stats::PRUNED.add(self.stale.len() as u64);
    }
}

/// MAXSESSIONS: the live sessions of the new session's primary index value (the first index
/// it joins) that must end so that, with the new one, `max.limit` remain: those that would
/// expire soonest. Only reads; the caller's permissions for every key those endings write
/// are checked here. An error when the data has no index value, or when DENY is given and
/// the limit is reached.
fn over_the_limit(
    ctx: &Context,
    settings: &Settings,
    caller: &mut Caller,
    plan: &NewSession,
    max: session::MaxSessions,
) -> Result<OverTheLimit, RedisError> {
    let Some(primary) = plan.index_keys.first() else {
        return Err(reply_error(Error::MaxSessionsWithoutIndex));
    };
    let primary = primary.as_bytes().to_vec();
    let members = index_members(ctx, &primary);
    let now = now_ms();
    let mut live: Vec<(i64, Found)> = Vec::new();
    let mut stale = Vec::new();
    let mut secrets = Secrets::new(true);
    for member in members {
        let token = member.as_slice();
        match find_listed(ctx, settings, &member, &mut secrets) {
            Some(found) if !found.stored.lifetime.is_over(now) => {
                let expires = found.key.abs_expire().unwrap_or(i64::MAX);
                live.push((expires, found));
            }
            Some(_) => {}
            None if is_stale(ctx, settings, token) => stale.push(token.to_vec()),
            None => {}
        }
    }
    if secret::take_retry() {
        return Err(reply_error(Error::TryAgain));
    }
    let stale_refs: Vec<&[u8]> = stale.iter().map(Vec::as_slice).collect();
    stale_for_good(ctx, settings, &stale_refs)?;
    let Some(count) = max.to_end(live.len()) else {
        return Err(reply_error(Error::SessionLimit {
            index: String::from_utf8_lossy(&primary).into_owned(),
            live: live.len(),
            limit: max.limit,
        }));
    };
    // Soonest expiry first; the member (after the key prefix all share) breaks ties, so the
    // choice is the same everywhere.
    live.sort_by(|a, b| (a.0, a.1.name.as_slice()).cmp(&(b.0, b.1.name.as_slice())));
    live.truncate(count);
    let mut ending = Vec::with_capacity(live.len());
    for (_, found) in live {
        let index_keys = found.index_keys();
        caller.check(found.name.as_slice(), Access::Write)?;
        caller.check_all(&index_keys, Access::Write)?;
        ending.push((found, index_keys));
    }
    let secret = match secrets.resolved {
        Some((slot, Some(secret))) => Some((slot, secret)),
        _ => None,
    };
    Ok(OverTheLimit {
        primary,
        ending,
        secret,
        stale,
    })
}

/// How many random slots CREATE tries for a session without a primary index value and
/// without ROUTE, looking for one served here (with a third of the slots, one in 10^11 fails).
const SLOT_DRAWS: usize = 64;

/// Cluster mode: the hash slot of a new session, checked to be served here and not being
/// migrated (else the redirection Redis gives: MOVED to the slot's node, TRYAGAIN while the
/// slot is being migrated from here, CLUSTERDOWN), whatever the client routed by. (Redis
/// itself routes module commands by their index key specs, but on every server of the matrix
/// it lets a keyword key spec, CREATE's `ROUTE key`, through unchecked.)
///
/// - With a primary index value, its index key's slot; a `ROUTE` key must be in that slot.
/// - Without one, the `ROUTE` key's slot, or else a random slot served here.
fn place(ctx: &Context, plan: &NewSession, route: Option<&[u8]>) -> Result<u16, RedisError> {
    use super::cluster as server;
    let slot = match (plan.index_keys.first(), route) {
        (Some(primary), route) => {
            let slot = server::key_slot(primary.as_bytes());
            if let Some(route) = route {
                let route_slot = server::key_slot(route);
                if route_slot != slot {
                    return Err(reply_error(Error::CrossSlot(format!(
                        "ROUTE '{}' is in hash slot {route_slot}, the session's primary index \
                         '{primary}' in {slot}",
                        String::from_utf8_lossy(route)
                    ))));
                }
            }
            slot
        }
        (None, Some(route)) => server::key_slot(route),
        (None, None) => {
            let mut rng = rand::rng();
            for _ in 0..SLOT_DRAWS {
                let slot = rand::RngExt::random_range(&mut rng, 0..crate::cluster::SLOTS);
                let probe = server::slot_tag(slot);
                if server::probe(probe.as_bytes()) == server::Slot::Here {
                    return Ok(slot);
                }
            }
            return Err(reply_error(Error::ClusterDown(
                "this node serves no hash slot that is not being migrated: give CREATE a \
                 ROUTE key; nothing was written"
                    .into(),
            )));
        }
    };
    // The new session key does not exist anywhere, and Redis makes no new key in a slot
    // being migrated (a new key goes where the migration is going, which is not the slot's
    // node yet): probed by a name of the slot that no one uses, CREATE in such a slot is
    // TRYAGAIN on both nodes until the migration ends.
    let probe = format!("{{{}}}session-probe", server::slot_tag(slot));
    server::serve_here(ctx, slot, probe.as_bytes()).map_err(reply_error)?;
    Ok(slot)
}

/// SESSION.CREATE data [TTL seconds] [MAXLIFETIME seconds] [MAXSESSIONS n [DENY]] [ROUTE key]
pub fn create(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, data, option_args @ ..] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.create")));
    };
    let settings = settings::current();
    let options: Vec<&[u8]> = option_args.iter().map(RedisString::as_slice).collect();
    let options = CreateOptions::parse(&options).map_err(reply_error)?;
    let now = now_ms();
    let plan = NewSession::plan(data.as_slice(), options, &settings, now).map_err(reply_error)?;
    let route = options
        .route
        .and_then(|at| option_args.get(at))
        .map(|key| key.as_slice());
    // Cluster mode: the slot the session will live in, served here (else the redirection).
    let placement = if settings.cluster {
        Some(place(ctx, &plan, route)?)
    } else {
        None
    };
    // Every check happens before the first write, so a refused CREATE writes nothing.
    let index_is_new = check_indexes(ctx, &settings, &plan.index_keys)?;
    let mut caller = Caller::new(ctx);
    caller.check_all(&plan.index_keys, Access::Write)?;
    if !capabilities::key_events() && !plan.index_keys.is_empty() {
        // Notes whether eviction is on while sessions are made (see `revocable`).
        evicting(ctx);
    }
    // MAXSESSIONS: decided here, before anything is written, in the same atomic step.
    let over = match options.max_sessions {
        Some(max) => Some(over_the_limit(ctx, &settings, &mut caller, &plan, max)?),
        None => None,
    };

    let tag = match &placement {
        Some(slot) => format!("{{{}}}", super::cluster::slot_tag(*slot)),
        None => String::new(),
    };
    let drawn = draw_token(ctx, &settings, tag.as_bytes())?;
    let name = &drawn.name;
    // A new token is no declared key: its key is checked here (a user limited to `~app:*`
    // makes no sessions unless the session keys match).
    caller.check(name.as_slice(), Access::Write)?;

    // The secret MAXSESSIONS read for the sessions of this slot is the one to use.
    let secret = match over.as_ref().and_then(|over| over.secret) {
        Some((read_in, secret)) if read_in == secret_slot(name.as_slice()) => secret,
        _ => secret_for_writing(ctx, &settings, name.as_slice())?,
    };
    // MAXSESSIONS read every member of the primary index and pruned its stale ones: that
    // index needs no sample below.
    let limited = over.is_some();
    if let Some(over) = over {
        over.end(ctx);
    }
    let indexes = plan.indexes_field();
    if !write_session(
        ctx,
        &drawn.key,
        (name, drawn.domain),
        &secret,
        plan.lifetime,
        indexes.as_deref().map(str::as_bytes),
        plan.data.as_bytes(),
        plan.expire_at_ms,
    ) {
        return Err(reply_error(Error::Internal(
            "the session could not be written".into(),
        )));
    }
    drop(drawn.key);
    stats::CREATED.add(1);

    for (i, (index, created_now)) in plan.index_keys.iter().zip(index_is_new).enumerate() {
        let index = index.as_bytes();
        index_add(ctx, index, &drawn.member);
        let target = plan.lifetime.index_expire_at(plan.expire_at_ms);
        let size =
            raise_index_expiry(ctx, index, plan.expire_at_ms, target, created_now).unwrap_or(0);
        if !(limited && i == 0) {
            prune_sample_of(ctx, &settings, index, size, 1);
        }
    }
    // Raised once the token is in its indexes: the event announces the whole session.
    notify(ctx, EVENT_CREATE, name);

    Ok(RedisValue::StringBuffer(
        plan.reply(&drawn.token).into_bytes(),
    ))
}

/// A rotated token's grace record, still open: the session it forwards to.
struct Forward {
    /// The session of the new token.
    found: Found,
    /// The record's key.
    record: RedisString,
}

/// When `token` was rotated with a grace window that is still open, the session its grace
/// record forwards to. Looked up in each domain as [`find_token`] does (the caller's
/// permissions checked the same way, and for the new session's key); only a key's first
/// bytes are looked at unless it is a grace record.
fn forwarded(
    ctx: &Context,
    settings: &Settings,
    caller: &mut Caller,
    token: &RedisString,
    access: Access,
) -> Result<Option<Forward>, RedisError> {
    if !token::is_well_formed(token.as_slice()) {
        return Ok(None);
    }
    check_token(caller, settings, token, access)?;
    for domain in lookup_order(settings) {
        let record = token_key(ctx, settings, token, domain);
        let target = {
            let key = Key::probe(ctx, &record);
            let Some(value) = key.string_value() else {
                continue;
            };
            if !value.starts_with(layout::FORWARD_MAGIC) {
                continue;
            }
            let place = secret::Place::of(settings, record.as_slice());
            let Some(secret) = secret::for_reading(ctx, settings, &place) else {
                continue;
            };
            match layout::parse_forward(value, &secret, domain, record.as_slice()) {
                Some(target) => target.to_vec(),
                None => continue,
            }
        };
        // The record names the new session by what its indexes list: never a token that was
        // not already in its own key's name.
        let Some(found) = find_member(ctx, settings, &target, access != Access::Read) else {
            return Ok(None);
        };
        caller.check(found.name.as_slice(), access)?;
        return Ok(Some(Forward { found, record }));
    }
    Ok(None)
}

/// A rotated token inside its grace window: the new token's data, read-only (nothing is
/// prolonged), as long as that session lives.
fn read_forwarded(
    ctx: &Context,
    settings: &Settings,
    caller: &mut Caller,
    token: &RedisString,
) -> Result<Option<RedisValue>, RedisError> {
    let Some(Forward { found, .. }) = forwarded(ctx, settings, caller, token, Access::Read)? else {
        return Ok(None);
    };
    let live = !found.stored.lifetime.is_over(now_ms()) && revocable(ctx, &found);
    Ok(live.then(|| found.reply_data(ctx)))
}

/// SESSION.ROTATE token [GRACE seconds]
pub fn rotate(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token, options @ ..] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.rotate")));
    };
    let options: Vec<&[u8]> = options.iter().map(RedisString::as_slice).collect();
    let grace = session::parse_rotate_options(&options).map_err(reply_error)?;
    let settings = settings::current();
    let now = now_ms();
    let mut caller = Caller::new(ctx);
    let found = find_token(ctx, &settings, &mut caller, token, Access::Write, true)?
        .filter(|found| !found.stored.lifetime.is_over(now));
    let Some(found) = found else {
        return unknown_or_retry(RedisValue::Null);
    };
    if !revocable_here(ctx, &settings, &found)? {
        end_unrevocable(ctx, found);
        return Ok(RedisValue::Null);
    }
    // The new token joins every index the old one is in (each must still be a set).
    let indexes = found.index_keys();
    let index_is_new = check_indexes(ctx, &settings, &indexes)?;
    caller.check_all(&indexes, Access::Write)?;
    // The new session is stored as `token-hash` says now, whatever the old one was.
    let new = draw_token(ctx, &settings, crate::cluster::tag_prefix(token.as_slice()))?;
    caller.check(new.name.as_slice(), Access::Write)?;
    let secret = secret_for_writing(ctx, &settings, new.name.as_slice())?;

    let lifetime = found.stored.lifetime;
    let expire_at = lifetime.expire_at(now);
    let data = found.data().to_vec();
    // Written anew as compact JSON (a 0.1.0 hash's field may hold any JSON spacing, which a
    // layout-2 header cannot).
    let list = (!indexes.is_empty())
        .then(|| serde_json::to_vec(&indexes).ok())
        .flatten();
    if !write_session(
        ctx,
        &new.key,
        (&new.name, new.domain),
        &secret,
        lifetime,
        list.as_deref(),
        &data,
        expire_at,
    ) {
        return Err(reply_error(Error::Internal(
            "the session could not be written".into(),
        )));
    }
    drop(new.key);
    let old = found.member().to_vec();
    let old_name = found.name.safe_clone(ctx);
    if grace == 0 {
        delete_session(ctx, found);
    } else {
        // The old key becomes a grace record: it reads as the new session, read-only, for
        // at most `grace` seconds (never past the session's own expiry). It names the new
        // session as its indexes do: with `token-hash sha256`, by the hash.
        let record =
            layout::encode_forward(&secret, found.domain, found.name.as_slice(), &new.member);
        let until = now
            .saturating_add(grace.saturating_mul(1000))
            .min(expire_at);
        let written = {
            let _quiet = Quiet::new();
            found.key.string_set(&string(ctx, &record)) && found.key.set_abs_expire(until)
        };
        if written {
            effects::set_pxat(ctx, found.name.as_slice(), &record, until);
            signal_modified(ctx, &found.name);
        }
    }
    signal_token(ctx, &settings, token, &old_name);
    let target = lifetime.index_expire_at(expire_at);
    for (index, created_now) in indexes.iter().zip(index_is_new) {
        let index = index.as_bytes();
        index_add(ctx, index, &new.member);
        index_remove(ctx, index, &[old.as_slice()]);
        raise_index_expiry(ctx, index, expire_at, target, created_now);
    }
    stats::ROTATED.add(1);
    notify(ctx, EVENT_ROTATE, &new.name);
    let data = String::from_utf8_lossy(&data);
    Ok(RedisValue::StringBuffer(
        session::with_token(&data, &new.token).into_bytes(),
    ))
}

/// SESSION.VALIDATE token
pub fn validate(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.validate")));
    };
    let settings = settings::current();
    let now = now_ms();
    let mut caller = Caller::new(ctx);
    let found = find_token(ctx, &settings, &mut caller, token, Access::Write, false)?
        .filter(|found| !found.stored.lifetime.is_over(now));
    let Some(found) = found else {
        if let Some(reply) = read_forwarded(ctx, &settings, &mut caller, token)? {
            stats::VALIDATE_HITS.add(1);
            return Ok(reply);
        }
        let reply = unknown_or_retry(RedisValue::Null)?;
        stats::VALIDATE_MISSES.add(1);
        return Ok(reply);
    };
    let lifetime = found.stored.lifetime;
    // `None`: the session's expiry stays as it is (renew-interval, or already there); its
    // index sets must still not expire before it.
    let current = found.key.abs_expire();
    let renewed = lifetime.renewed_expiry(now, current, settings.renew_interval);
    let expire_at = renewed
        .or(current)
        .unwrap_or_else(|| lifetime.expire_at(now));
    let target = lifetime.index_expire_at(expire_at);
    // The walk checks the whole field before it visits anything, so a malformed one (not a
    // session of ours) is refused here with nothing written. It only reads: the index
    // expiries to raise are raised after the caller's permissions for them are checked.
    // See `revocable`: on 7.0 under eviction the token's membership is checked too.
    let members_checked = !capabilities::key_events() && evicting(ctx);
    // With key events and an expiry that renew-interval leaves where it is, no index set is
    // looked up: none needs checking (a lost one ended its sessions already), and one whose
    // expiry was shortened by hand is raised at the next renewal (if it expires first, its
    // sessions end: fail closed). The list is only checked. With renew-interval 0 every
    // VALIDATE looks them up, also when the expiry is already there (same millisecond).
    let look_up = renewed.is_some() || settings.renew_interval == 0 || !capabilities::key_events();
    let mut every_index_there = true;
    let mut missing: Option<Vec<u8>> = None;
    let mut to_raise: Vec<Vec<u8>> = Vec::new();
    let indexes_ok = found.indexes().is_none_or(|indexes| {
        if !look_up {
            return session::visit_index_list(indexes, |_| {});
        }
        session::visit_index_list(indexes, |index| {
            match index_needs_raise(ctx, index, expire_at) {
                None => {
                    every_index_there = false;
                    if settings.cluster && missing.is_none() && kind_of(ctx, index) == Kind::Empty {
                        missing = Some(index.to_vec());
                    }
                }
                Some(raise) => {
                    if raise {
                        to_raise.push(index.to_vec());
                    }
                    if members_checked && !effects::sismember(ctx, index, found.member()) {
                        every_index_there = false;
                    }
                }
            }
        })
    });
    if !indexes_ok {
        stats::VALIDATE_MISSES.add(1);
        return Ok(RedisValue::Null);
    }
    if let Some(index) = &missing {
        // Cluster mode: an index missing while its slot is being migrated may be on the
        // other node; nothing is prolonged or ended until both are on one.
        super::cluster::missing(ctx, true, index).map_err(reply_error)?;
    }
    if !every_index_there && !capabilities::key_events() {
        // See `revocable`: without its index the session could no longer be revoked.
        end_unrevocable(ctx, found);
        stats::VALIDATE_MISSES.add(1);
        return Ok(RedisValue::Null);
    }
    caller.check_all(&to_raise, Access::Write)?;
    for index in &to_raise {
        raise_index_expiry(ctx, index, expire_at, target, false);
    }
    stats::VALIDATE_HITS.add(1);
    if renewed.is_some() && set_session_expiry(ctx, &found, expire_at) {
        signal_token(ctx, &settings, token, &found.name);
    }
    Ok(found.reply_data(ctx))
}

/// SESSION.GET token
pub fn get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.get")));
    };
    let settings = settings::current();
    let now = now_ms();
    let mut caller = Caller::new(ctx);
    match find_token(ctx, &settings, &mut caller, token, Access::Read, true)? {
        Some(found) if found.stored.lifetime.is_over(now) => Ok(RedisValue::Null),
        Some(found) => {
            if revocable_here(ctx, &settings, &found)? {
                Ok(found.reply_data(ctx))
            } else {
                Ok(RedisValue::Null)
            }
        }
        None => unknown_or_retry(
            read_forwarded(ctx, &settings, &mut caller, token)?.unwrap_or(RedisValue::Null),
        ),
    }
}

/// SESSION.UPDATE token patch
pub fn update(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token, patch] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.update")));
    };
    let settings = settings::current();
    let now = now_ms();
    let mut caller = Caller::new(ctx);
    let found = find_token(ctx, &settings, &mut caller, token, Access::Write, true)?
        .filter(|found| !found.stored.lifetime.is_over(now));
    let Some(found) = found else {
        // An unknown token still gets its patch checked, so errors do not depend on it.
        UpdatedSession::plan(b"{}", patch.as_slice(), &settings).map_err(reply_error)?;
        return unknown_or_retry(RedisValue::Null);
    };
    let plan =
        UpdatedSession::plan(found.data(), patch.as_slice(), &settings).map_err(reply_error)?;
    if !revocable_here(ctx, &settings, &found)? {
        end_unrevocable(ctx, found);
        return Ok(RedisValue::Null);
    }
    let old = &found.index_keys();
    // Sets, not `Vec::contains`: a session may be in thousands of indexes.
    let old_set: HashSet<&String> = old.iter().collect();
    let new_set: HashSet<&String> = plan.index_keys.iter().collect();
    let joined: Vec<String> = plan
        .index_keys
        .iter()
        .filter(|k| !old_set.contains(k))
        .cloned()
        .collect();
    let left: Vec<&String> = old.iter().filter(|k| !new_set.contains(k)).collect();
    if settings.cluster {
        // The session stays in the slot its token names: it cannot join an index elsewhere.
        let slot = super::cluster::key_slot(found.name.as_slice());
        if let Some(other) = joined
            .iter()
            .find(|k| super::cluster::key_slot(k.as_bytes()) != slot)
        {
            return Err(reply_error(Error::CrossSlot(format!(
                "the patch moves the session to the primary index '{other}' in hash slot {}, \
                 its token is in {slot} (create a new session for the new value)",
                super::cluster::key_slot(other.as_bytes())
            ))));
        }
    }
    let joined_is_new = check_indexes(ctx, &settings, &joined)?;
    // Every index it joins, leaves or keeps (whose expiry it may raise) is written.
    caller.check_all(&plan.index_keys, Access::Write)?;
    caller.check_all(&left, Access::Write)?;

    let secret = secret_for_writing(ctx, &settings, found.name.as_slice())?;
    let indexes = plan.indexes_field();
    let lifetime = found.stored.lifetime;
    let expire_at = lifetime.expire_at(now);
    let index_target = lifetime.index_expire_at(expire_at);
    // A 0.1.0 hash becomes a layout-2 string here. The session stays where it is (named by
    // its token or by the hash), whatever `token-hash` says now.
    if !write_session(
        ctx,
        &found.key,
        (&found.name, found.domain),
        &secret,
        lifetime,
        indexes.as_deref().map(str::as_bytes),
        plan.data.as_bytes(),
        expire_at,
    ) {
        return Err(reply_error(Error::Internal(
            "the session could not be written".into(),
        )));
    }
    let member = found.member().to_vec();
    drop(found.key);
    signal_token(ctx, &settings, token, &found.name);

    for index in left {
        index_remove(ctx, index.as_bytes(), &[member.as_slice()]);
        prune_sample(ctx, &settings, index.as_bytes(), 0);
    }
    for (index, created_now) in joined.iter().zip(joined_is_new) {
        index_add(ctx, index.as_bytes(), &member);
        let size = raise_index_expiry(ctx, index.as_bytes(), expire_at, index_target, created_now)
            .unwrap_or(0);
        prune_sample_of(ctx, &settings, index.as_bytes(), size, 1);
    }
    for index in plan.index_keys.iter().filter(|k| old_set.contains(k)) {
        raise_index_expiry(ctx, index.as_bytes(), expire_at, index_target, false);
    }
    Ok(RedisValue::StringBuffer(plan.data.into_bytes()))
}

/// SESSION.DESTROY token
pub fn destroy(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, token] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.destroy")));
    };
    let settings = settings::current();
    let mut caller = Caller::new(ctx);
    let found = match find_token(ctx, &settings, &mut caller, token, Access::Write, true)? {
        Some(found) => found,
        // A rotated token in its grace window logs its session out: the grace record goes,
        // and the new token's session with it.
        None => match forwarded(ctx, &settings, &mut caller, token, Access::Write)? {
            Some(Forward { found, record }) => {
                caller.check_all(&found.index_keys(), Access::Write)?;
                {
                    let _quiet = Quiet::new();
                    Key::write(ctx, &record).delete();
                }
                effects::replicate(ctx, c"DEL", &[record.as_slice()]);
                signal_modified(ctx, &record);
                found
            }
            None => return unknown_or_retry(RedisValue::Integer(0)),
        },
    };
    caller.check_all(&found.index_keys(), Access::Write)?;
    // A session past its max lifetime whose key is still there (time stands still inside a
    // script or transaction) is no session to GET and VALIDATE: its key and entries go, but
    // it is not counted as destroyed.
    let live = !found.stored.lifetime.is_over(now_ms());
    let indexes = found.index_keys();
    let member = found.member().to_vec();
    let name = delete_session(ctx, found);
    signal_token(ctx, &settings, token, &name);
    for index in &indexes {
        index_remove(ctx, index.as_bytes(), &[member.as_slice()]);
        prune_sample(ctx, &settings, index.as_bytes(), 0);
    }
    if !live {
        return Ok(RedisValue::Integer(0));
    }
    stats::DESTROYED.add(1);
    notify(ctx, EVENT_DESTROY, &name);
    Ok(RedisValue::Integer(1))
}

/// SESSION.REVOKEINDEX property value [EXCEPT token]
pub fn revoke_index(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let (property, value, except) = match args.as_slice() {
        [_, property, value] => (property, value, None),
        [_, property, value, keyword, token]
            if keyword.as_slice().eq_ignore_ascii_case(b"EXCEPT") =>
        {
            (property, value, Some(token.as_slice()))
        }
        [_, _, _, keyword, _] => {
            return Err(reply_error(Error::UnknownRevokeOption(
                String::from_utf8_lossy(keyword.as_slice()).into_owned(),
            )))
        }
        _ => return Err(reply_error(Error::WrongArity("session.revokeindex"))),
    };
    let settings = settings::current();
    let index = session::named_index(&settings, property.as_slice(), value.as_slice())
        .map_err(reply_error)?;
    let mut caller = Caller::new(ctx);
    caller.check(&index, Access::ReadWrite)?;
    match kind_of(ctx, &index) {
        Kind::Set => {}
        Kind::Empty => {
            super::cluster::missing(ctx, settings.cluster, &index).map_err(reply_error)?;
            return Ok(RedisValue::Integer(0));
        }
        // As LIST: the named index is no index, and is left alone.
        Kind::String | Kind::Hash | Kind::Other => {
            return Err(reply_error(Error::IndexWrongType(
                String::from_utf8_lossy(&index).into_owned(),
            )))
        }
    }
    let tokens = index_members(ctx, &index);
    let now = now_ms();
    let mut removed: Vec<&[u8]> = Vec::new();
    // First every session is found and the caller's permissions for everything it will
    // write are checked (its key, its other indexes): a refusal writes nothing.
    let mut doomed: Vec<(&[u8], Found)> = Vec::new();
    let mut secrets = Secrets::new(true);
    // The session EXCEPT names is listed by its token or by its hash: which one, its
    // key's tag says (a hash given as EXCEPT is no token, and spares nothing).
    let except_hashed = except.map(token::hashed);
    let spared = |member: &[u8], domain: Domain| match domain {
        Domain::Plain => Some(member) == except,
        Domain::Hashed => Some(member) == except_hashed.as_deref().map(str::as_bytes),
    };
    for listed in &tokens {
        let member = listed.as_slice();
        match find_listed(ctx, &settings, listed, &mut secrets) {
            Some(found) if spared(member, found.domain) => {}
            Some(found) => {
                caller.check(found.name.as_slice(), Access::Write)?;
                caller.check_all(&found.index_keys(), Access::Write)?;
                doomed.push((member, found));
            }
            None if is_stale(ctx, &settings, member) => removed.push(member),
            None => {}
        }
    }
    if secret::take_retry() {
        return Err(reply_error(Error::TryAgain));
    }
    stale_for_good(ctx, &settings, &removed)?;
    let mut ended: Vec<RedisString> = Vec::new();
    let mut revoked = 0i64;
    for (member, found) in doomed {
        // Past its max lifetime (see DESTROY): removed, not counted.
        let live = !found.stored.lifetime.is_over(now);
        let name = end_session(ctx, found, Some(index.as_slice()));
        removed.push(member);
        if live {
            ended.push(name);
            revoked += 1;
        }
    }
    index_remove(ctx, &index, &removed);
    for name in &ended {
        notify(ctx, EVENT_REVOKE, name);
    }
    stats::REVOKED.add(revoked.unsigned_abs());
    stats::PRUNED.add((removed.len() as u64).saturating_sub(revoked.unsigned_abs()));
    Ok(RedisValue::Integer(revoked))
}

/// SESSION.LIST property value
pub fn list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, property, value] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.list")));
    };
    let settings = settings::current();
    let index = session::named_index(&settings, property.as_slice(), value.as_slice())
        .map_err(reply_error)?;
    // LIST reads the index and prunes it (a write), and reads every session it lists.
    let mut caller = Caller::new(ctx);
    caller.check(&index, Access::ReadWrite)?;
    match kind_of(ctx, &index) {
        Kind::Set => {}
        Kind::Empty => {
            super::cluster::missing(ctx, settings.cluster, &index).map_err(reply_error)?;
            return Ok(RedisValue::Array(Vec::new()));
        }
        Kind::String | Kind::Hash | Kind::Other => {
            return Err(reply_error(Error::IndexWrongType(
                String::from_utf8_lossy(&index).into_owned(),
            )))
        }
    }
    let tokens = index_members(ctx, &index);
    let now = now_ms();
    let mut sessions = Vec::with_capacity(tokens.len());
    let mut stale: Vec<&[u8]> = Vec::new();
    for token in tokens.iter().map(RedisString::as_slice) {
        if token::is_well_formed(token) {
            let mut name = settings.key_prefix.as_bytes().to_vec();
            name.extend_from_slice(token);
            caller.check(&name, Access::Read)?;
        }
    }
    let mut secrets = Secrets::new(false);
    for listed in &tokens {
        let token = listed.as_slice();
        match find_listed(ctx, &settings, listed, &mut secrets) {
            // Past its max lifetime (see DESTROY): GET says nil, so LIST does not show it.
            Some(found) if found.stored.lifetime.is_over(now) => {}
            Some(found) => {
                let data = String::from_utf8_lossy(found.data());
                // A found member is well-formed (a slot tag and hex), so it is valid UTF-8.
                let member = String::from_utf8_lossy(token);
                // With `token-hash sha256` no token is replied, not even of a session made
                // before the switch; a hashed session has none to reply.
                let shown = (settings.token_hash == TokenHash::None
                    && found.domain == Domain::Plain)
                    .then_some(member.as_ref());
                let id = identifier(token, found.domain);
                let element = session::listed(&data, shown, &id);
                sessions.push(RedisValue::StringBuffer(element.into_bytes()));
            }
            None if is_stale(ctx, &settings, token) => stale.push(token),
            None => {}
        }
    }
    if secret::take_retry() {
        return Err(reply_error(Error::TryAgain));
    }
    stale_for_good(ctx, &settings, &stale)?;
    index_remove(ctx, &index, &stale);
    stats::PRUNED.add(stale.len() as u64);
    Ok(RedisValue::Array(sessions))
}

/// SESSION.REVOKEID property value session-id
///
/// Ends the one session of the index `property:value` that LIST showed with this
/// `sessionId` (an "active devices" page ending one device), without knowing its token.
/// Replies 1, or 0 when no live session of that index has it.
pub fn revoke_id(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    let [_, property, value, id] = args.as_slice() else {
        return Err(reply_error(Error::WrongArity("session.revokeid")));
    };
    let settings = settings::current();
    let index = session::named_index(&settings, property.as_slice(), value.as_slice())
        .map_err(reply_error)?;
    let mut caller = Caller::new(ctx);
    caller.check(&index, Access::ReadWrite)?;
    match kind_of(ctx, &index) {
        Kind::Set => {}
        Kind::Empty => {
            super::cluster::missing(ctx, settings.cluster, &index).map_err(reply_error)?;
            return Ok(RedisValue::Integer(0));
        }
        Kind::String | Kind::Hash | Kind::Other => {
            return Err(reply_error(Error::IndexWrongType(
                String::from_utf8_lossy(&index).into_owned(),
            )))
        }
    }
    let id = id.as_slice();
    // An identifier is a slot tag and hex, as a token is: anything else names no session.
    if !token::is_well_formed(id) {
        return Ok(RedisValue::Integer(0));
    }
    let listed = index_members(ctx, &index);
    let mut secrets = Secrets::new(true);
    let mut target = None;
    for listed in &listed {
        let member = listed.as_slice();
        // A hashed session is listed by its identifier; a session stored by its token has
        // the token's hash as identifier. Which one it is, its key's tag says.
        let domain = if member == id {
            Domain::Hashed
        } else if token::hashed(member).as_bytes() == id {
            Domain::Plain
        } else {
            continue;
        };
        target = find_listed(ctx, &settings, listed, &mut secrets).filter(|f| f.domain == domain);
        break;
    }
    let Some(found) = target else {
        return unknown_or_retry(RedisValue::Integer(0));
    };
    caller.check(found.name.as_slice(), Access::Write)?;
    caller.check_all(&found.index_keys(), Access::Write)?;
    // Past its max lifetime (see DESTROY): removed, not counted.
    let live = !found.stored.lifetime.is_over(now_ms());
    let name = end_session(ctx, found, None);
    prune_sample(ctx, &settings, &index, 0);
    if !live {
        return Ok(RedisValue::Integer(0));
    }
    stats::REVOKED_BY_ID.add(1);
    notify(ctx, EVENT_REVOKE, &name);
    Ok(RedisValue::Integer(1))
}
