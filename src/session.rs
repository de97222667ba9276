//! What a session is, apart from where it is kept: CREATE's options and plan, what the
//! fields of a session hash must hold, the reply shapes, and the expiry arithmetic (the field
//! names themselves are the glue's, `redis::keys::Field`). Time comes in as `now_ms`
//! (unix milliseconds) so that every rule here is tested without a clock.

use serde_json::Value;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::json::{self, Object};
use crate::limits::{MAX_GRACE, MAX_SECONDS, MAX_SESSIONS_LIMIT};

/// The property CREATE adds unless the data has its own.
pub const CREATED_AT: &str = "createdAt";
/// The property reserved for the reply.
pub const TOKEN: &str = "token";
/// The property reserved for LIST's replies: the session's identifier (`crate::token::hashed`).
pub const SESSION_ID: &str = "sessionId";

/// CREATE's `MAXSESSIONS n [DENY]`: at most `limit` live sessions per value of the primary
/// index; with `deny`, a CREATE over the limit fails instead of ending the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSessions {
    pub limit: i64,
    pub deny: bool,
}

impl MaxSessions {
    /// How many of `live` sessions a CREATE ends so that, with the new one, `limit` remain;
    /// `None` when it must fail instead (DENY at or over the limit).
    pub fn to_end(&self, live: usize) -> Option<usize> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        match live.checked_sub(limit - 1) {
            None | Some(0) => Some(0),
            Some(_) if self.deny => None,
            Some(over) => Some(over),
        }
    }
}

/// CREATE's options, each overriding a setting for one session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    pub ttl: Option<i64>,
    pub max_lifetime: Option<i64>,
    pub max_sessions: Option<MaxSessions>,
    /// `ROUTE key`: where in the parsed arguments the key is (the cluster routing key: a key
    /// name in the hash slot the session will live in).
    pub route: Option<usize>,
}

impl CreateOptions {
    /// Parses `[TTL seconds] [MAXLIFETIME seconds] [MAXSESSIONS n [DENY]] [ROUTE key]` in
    /// any order, keywords case-insensitive, each once.
    pub fn parse(args: &[&[u8]]) -> Result<CreateOptions> {
        let mut options = CreateOptions::default();
        let mut rest = args.iter().enumerate().peekable();
        while let Some((_, keyword)) = rest.next() {
            let value_at = rest.next();
            let value = value_at.map(|(_, v)| v);
            if keyword.eq_ignore_ascii_case(b"ROUTE") {
                if options.route.is_some() {
                    return Err(Error::DuplicateOption("ROUTE".into()));
                }
                let Some((at, _)) = value_at else {
                    return Err(Error::MissingRoute);
                };
                options.route = Some(at);
            } else if keyword.eq_ignore_ascii_case(b"TTL") {
                if options.ttl.is_some() {
                    return Err(Error::DuplicateOption("TTL".into()));
                }
                let ttl = value
                    .and_then(|v| whole_number(v, 1))
                    .ok_or(Error::BadTtl)?;
                options.ttl = Some(ttl);
            } else if keyword.eq_ignore_ascii_case(b"MAXLIFETIME") {
                if options.max_lifetime.is_some() {
                    return Err(Error::DuplicateOption("MAXLIFETIME".into()));
                }
                let max = value
                    .and_then(|v| whole_number(v, 0))
                    .ok_or(Error::BadMaxLifetime)?;
                options.max_lifetime = Some(max);
            } else if keyword.eq_ignore_ascii_case(b"MAXSESSIONS") {
                if options.max_sessions.is_some() {
                    return Err(Error::DuplicateOption("MAXSESSIONS".into()));
                }
                let limit = value
                    .and_then(|v| whole_number(v, 1))
                    .filter(|n| *n <= MAX_SESSIONS_LIMIT)
                    .ok_or(Error::BadMaxSessions)?;
                let deny = rest
                    .next_if(|(_, next)| next.eq_ignore_ascii_case(b"DENY"))
                    .is_some();
                options.max_sessions = Some(MaxSessions { limit, deny });
            } else {
                return Err(Error::UnknownOption(
                    String::from_utf8_lossy(keyword).into_owned(),
                ));
            }
        }
        Ok(options)
    }
}

/// SESSION.ROTATE's `[GRACE seconds]`: the seconds the old token still reads, 0 for none.
pub fn parse_rotate_options(args: &[&[u8]]) -> Result<i64> {
    match args {
        [] => Ok(0),
        [keyword, rest @ ..] if keyword.eq_ignore_ascii_case(b"GRACE") => match rest {
            [value] => whole_number(value, 0)
                .filter(|n| *n <= MAX_GRACE)
                .ok_or(Error::BadGrace),
            _ => Err(Error::BadGrace),
        },
        [keyword, ..] => Err(Error::UnknownRotateOption(
            String::from_utf8_lossy(keyword).into_owned(),
        )),
    }
}

/// A decimal whole number from `min` to [`MAX_SECONDS`], digits only.
/// Leading zeros are allowed (`060` is 60), whatever their number.
pub(crate) fn whole_number(text: &[u8], min: i64) -> Option<i64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let significant = match text.iter().position(|&b| b != b'0') {
        Some(first) => text.get(first..).unwrap_or_default(),
        None => b"0",
    };
    // More than 12 digits is out of range whatever they are; this also keeps the parse
    // below from overflowing.
    if significant.len() > 12 {
        return None;
    }
    let n = std::str::from_utf8(significant).ok()?.parse::<i64>().ok()?;
    (min..=MAX_SECONDS).contains(&n).then_some(n)
}

/// A stored deadline: unix milliseconds as 1 to 19 decimal digits (`0` for none) that fit an
/// `i64`.
pub(crate) fn deadline(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse::<i64>().ok()
}

/// How long a session lives: its idle timeout and the moment it can no longer be prolonged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Idle timeout in seconds.
    pub ttl: i64,
    /// Unix ms past which the session is never prolonged; 0 for no cap.
    pub deadline_ms: i64,
}

impl Lifetime {
    /// The expiry a session gets when created or validated at `now_ms`.
    pub fn expire_at(&self, now_ms: i64) -> i64 {
        let idle = now_ms.saturating_add(self.ttl.saturating_mul(1000));
        if self.deadline_ms > 0 {
            idle.min(self.deadline_ms)
        } else {
            idle
        }
    }

    /// The expiry an index key is raised to when it would end before `session_expire_ms`:
    /// a sixteenth of the TTL later, so that VALIDATE rewrites (and replicates) an index's
    /// expiry at most once per sixteenth of the TTL instead of on every call, while the
    /// index still never expires before any of its sessions.
    pub fn index_expire_at(&self, session_expire_ms: i64) -> i64 {
        session_expire_ms.saturating_add(self.ttl.saturating_mul(1000) / 16)
    }

    /// The expiry a VALIDATE at `now_ms` sets on a session whose expiry is `current_ms`, or
    /// `None` when it leaves it as it is: already there, or, with a renew interval of
    /// `renew_s` seconds, still more than TTL − interval away (so a session may expire up to
    /// the interval before exact sliding would have it, never later, and most VALIDATEs
    /// write and replicate nothing).
    pub fn renewed_expiry(
        &self,
        now_ms: i64,
        current_ms: Option<i64>,
        renew_s: i64,
    ) -> Option<i64> {
        let next = self.expire_at(now_ms);
        let Some(current) = current_ms else {
            return Some(next);
        };
        if current == next {
            return None;
        }
        let threshold = self.ttl.saturating_sub(renew_s).saturating_mul(1000);
        (renew_s == 0 || current.saturating_sub(now_ms) <= threshold).then_some(next)
    }

    /// True when the max lifetime has run out at `now_ms`.
    pub fn is_over(&self, now_ms: i64) -> bool {
        self.deadline_ms > 0 && self.deadline_ms <= now_ms
    }
}

/// Everything CREATE will write, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The `data` field: the data with `createdAt`, without `token`.
    pub data: String,
    pub lifetime: Lifetime,
    /// The session key's expiry.
    pub expire_at_ms: i64,
    /// Index keys the token joins, without duplicates.
    pub index_keys: Vec<String>,
}

impl NewSession {
    /// Checks `data` and the options against the settings and plans the session.
    pub fn plan(
        data: &[u8],
        options: CreateOptions,
        settings: &Settings,
        now_ms: i64,
    ) -> Result<NewSession> {
        let mut object = json::parse_object(data, settings.max_data_bytes)?;
        if object.contains_key(TOKEN) {
            return Err(Error::ReservedToken);
        }
        if object.contains_key(SESSION_ID) {
            return Err(Error::ReservedSessionId);
        }
        if !object.contains_key(CREATED_AT) {
            object.insert(
                CREATED_AT.to_string(),
                Value::String(format_created_at(now_ms)),
            );
        }
        // After `createdAt` is in: one rule for CREATE and UPDATE, the stored data decides
        // (so a configured `createdAt` index holds sessions from their creation on).
        let index_keys = index_keys(&object, settings)?;
        let ttl = options.ttl.unwrap_or(settings.ttl);
        let max_lifetime = options.max_lifetime.unwrap_or(settings.max_lifetime);
        let deadline_ms = if max_lifetime > 0 {
            now_ms.saturating_add(max_lifetime.saturating_mul(1000))
        } else {
            0
        };
        let lifetime = Lifetime { ttl, deadline_ms };
        Ok(NewSession {
            data: json::to_text(&object),
            lifetime,
            expire_at_ms: lifetime.expire_at(now_ms),
            index_keys,
        })
    }

    /// The `indexes` field's value, or `None` when the token joins no index.
    pub fn indexes_field(&self) -> Option<String> {
        indexes_field(&self.index_keys)
    }

    /// CREATE's reply: `{"token":"...", ...data...}`.
    pub fn reply(&self, token: &str) -> String {
        with_token(&self.data, token)
    }
}

/// What UPDATE will write, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedSession {
    /// The new `data` field.
    pub data: String,
    /// Index keys the token belongs in after the update.
    pub index_keys: Vec<String>,
}

impl UpdatedSession {
    /// Applies `patch` (a JSON Merge Patch) to the stored `data` and plans the result under
    /// `settings`: the patch and the merged text are bounded by `max-data-bytes`.
    pub fn plan(stored: &[u8], patch: &[u8], settings: &Settings) -> Result<UpdatedSession> {
        let patch = json::parse_object(patch, settings.max_data_bytes)?;
        if patch.contains_key(TOKEN) {
            return Err(Error::ReservedToken);
        }
        // `null` removes it: a session stored before the name was reserved may have one.
        if patch.get(SESSION_ID).is_some_and(|v| !v.is_null()) {
            return Err(Error::ReservedSessionId);
        }
        // The stored data was checked when written; a lowered max-data-bytes bounds only
        // the merged result below.
        let mut object = json::parse_object(stored, i64::MAX)?;
        json::merge_patch(&mut object, &patch);
        if !json::within_depth(&object) {
            return Err(Error::TooDeep);
        }
        let data = json::to_text(&object);
        if i64::try_from(data.len()).map_or(true, |len| len > settings.max_data_bytes) {
            return Err(Error::TooLarge(settings.max_data_bytes));
        }
        Ok(UpdatedSession {
            index_keys: index_keys(&object, settings)?,
            data,
        })
    }

    /// The `indexes` field's value, or `None` when the token is in no index.
    pub fn indexes_field(&self) -> Option<String> {
        indexes_field(&self.index_keys)
    }
}

/// The JSON array text of index keys, or `None` for none.
fn indexes_field(keys: &[String]) -> Option<String> {
    if keys.is_empty() {
        None
    } else {
        serde_json::to_string(keys).ok()
    }
}

/// REVOKEINDEX's and LIST's `property value`: the index key they name, once the property is
/// known to be a configured index.
pub fn named_index(settings: &Settings, property: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    let known = std::str::from_utf8(property)
        .ok()
        .filter(|p| settings.indexes.iter().any(|i| i == p));
    let Some(property) = known else {
        return Err(Error::NotAnIndex(
            String::from_utf8_lossy(property).into_owned(),
        ));
    };
    if settings.cluster {
        let primary = settings.indexes.first().map_or("", String::as_str);
        if property != primary {
            return Err(Error::NotThePrimaryIndex {
                property: property.to_string(),
                primary: primary.to_string(),
            });
        }
        return Ok(crate::cluster::index_key(
            settings.index_prefix.as_bytes(),
            property.as_bytes(),
            value,
        ));
    }
    let mut key =
        Vec::with_capacity(settings.index_prefix.len() + property.len() + 1 + value.len());
    key.extend_from_slice(settings.index_prefix.as_bytes());
    key.extend_from_slice(property.as_bytes());
    key.push(b':');
    key.extend_from_slice(value);
    Ok(key)
}

/// Whether `name` is the key of an index under `settings` (`<index-prefix><property>:...`
/// for a configured property): the test the key-event handler applies to every set that
/// leaves the keyspace, so it must be cheap and exact.
pub fn is_index_key(settings: &Settings, name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(settings.index_prefix.as_bytes()) else {
        return false;
    };
    settings.indexes.iter().any(|property| {
        rest.strip_prefix(property.as_bytes())
            .is_some_and(|tail| tail.first() == Some(&b':'))
    })
}

/// The token a session key `name` stands for under `settings` (the name without the key
/// prefix), or `None` when `name` cannot be a session key: no prefix, or not a token after it.
pub fn token_of_key<'a>(settings: &Settings, name: &'a [u8]) -> Option<&'a [u8]> {
    name.strip_prefix(settings.key_prefix.as_bytes())
        .filter(|token| crate::token::is_well_formed(token))
}

/// The index keys a session with `data` joins under `settings`. In cluster mode only the
/// primary one (the first property of `indexes` that the data has a value of), named as
/// `cluster::index_key` says: the session lives in its hash slot.
fn index_keys(data: &Object, settings: &Settings) -> Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    // `config::parse_indexes` keeps each property once and none holds `:`, so distinct
    // properties give distinct keys: no repeat to catch.
    for property in &settings.indexes {
        let Some(value) = data.get(property) else {
            continue;
        };
        if let Some(text) = json::index_value(property, value)? {
            if settings.cluster {
                let key = crate::cluster::index_key(
                    settings.index_prefix.as_bytes(),
                    property.as_bytes(),
                    text.as_bytes(),
                );
                // Built from UTF-8 parts with ASCII braces and tags only.
                keys.push(String::from_utf8_lossy(&key).into_owned());
                // Every property is checked (a bad value is refused as without cluster).
                continue;
            }
            keys.push(index_key(&settings.index_prefix, property, &text));
        }
    }
    if settings.cluster {
        keys.truncate(1);
    }
    Ok(keys)
}

/// `<index-prefix><property>:<value>`, the original library's layout.
pub fn index_key(prefix: &str, property: &str, value: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + property.len() + 1 + value.len());
    key.push_str(prefix);
    key.push_str(property);
    key.push(':');
    key.push_str(value);
    key
}

/// `createdAt` as the original library wrote it: UTC `YYYY-MM-DD HH:MM:SS`.
pub fn format_created_at(now_ms: i64) -> String {
    use chrono::{Datelike, Timelike};
    // Digit by digit: `format!` would cost every CREATE more than the rest of this.
    let t = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let mut text = String::with_capacity(19);
    let mut push = |n: u32, width: u32, separator: Option<char>| {
        for place in (0..width).rev() {
            let digit = (n / 10u32.pow(place)) % 10;
            text.push(char::from_digit(digit, 10).unwrap_or('0'));
        }
        if let Some(c) = separator {
            text.push(c);
        }
    };
    push(u32::try_from(t.year()).unwrap_or(0), 4, Some('-'));
    push(t.month(), 2, Some('-'));
    push(t.day(), 2, Some(' '));
    push(t.hour(), 2, Some(':'));
    push(t.minute(), 2, Some(':'));
    push(t.second(), 2, None);
    text
}

/// Puts `"token":"<token>"` first in the JSON object text `data`.
pub fn with_token(data: &str, token: &str) -> String {
    with_property(data, TOKEN, token)
}

/// Puts `"<name>":"<value>"` first in the JSON object text `data`; neither `name` nor
/// `value` (a token, an identifier: hex after a slot tag) needs escaping.
fn with_property(data: &str, name: &str, value: &str) -> String {
    let body = data.strip_prefix('{').unwrap_or("}");
    let mut reply = String::with_capacity(data.len() + name.len() + value.len() + 8);
    reply.push_str("{\"");
    reply.push_str(name);
    reply.push_str("\":\"");
    reply.push_str(value);
    reply.push('"');
    if !body.starts_with('}') {
        reply.push(',');
    }
    reply.push_str(body);
    reply
}

/// One element of LIST's reply: `{"token":"<token>","sessionId":"<id>", ...data}`, without
/// the token when `token` is `None` (`token-hash sha256`). A `sessionId` the data has (stored
/// before the name was reserved) gives way to the identifier.
pub fn listed(data: &str, token: Option<&str>, id: &str) -> String {
    let cleaned;
    let mut data = data;
    if data.contains(&format!("\"{SESSION_ID}\"")) {
        if let Ok(mut object) = json::parse_object(data.as_bytes(), i64::MAX) {
            object.remove(SESSION_ID);
            cleaned = json::to_text(&object);
            data = &cleaned;
        }
    }
    let element = with_property(data, SESSION_ID, id);
    match token {
        Some(token) => with_property(&element, TOKEN, token),
        None => element,
    }
}

/// A session hash's fields as read from Redis, checked for being one this module wrote.
/// The index keys stay in their field, read with [`visit_index_list`] or
/// [`parse_index_list`] by the commands that need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub lifetime: Lifetime,
}

/// Visits each index key named by an `indexes` field (a JSON array of strings) in order;
/// `false`, having visited nothing, when the field is not such an array. Arrays of plain
/// strings (no escapes: the usual case, read on every VALIDATE) are walked in place without
/// allocating; anything else goes through the JSON parser.
pub fn visit_index_list(text: &[u8], mut visit: impl FnMut(&[u8])) -> bool {
    if let Some(inner) = text
        .strip_prefix(b"[\"")
        .and_then(|t| t.strip_suffix(b"\"]"))
    {
        if is_plain_list(inner) {
            for (i, piece) in inner.split(|&b| b == b'"').enumerate() {
                if i % 2 == 0 {
                    visit(piece);
                }
            }
            return true;
        }
    }
    match serde_json::from_slice::<Vec<String>>(text) {
        Ok(keys) => {
            keys.iter().for_each(|k| visit(k.as_bytes()));
            true
        }
        Err(_) => false,
    }
}

/// Whether the inside of `["..."]` is strings without escapes or control characters, valid
/// UTF-8, separated by exactly `","` (white space around a comma is left to the JSON
/// parser): one pass over the bytes.
fn is_plain_list(inner: &[u8]) -> bool {
    let mut in_string = true;
    let mut separator = 0usize;
    for &b in inner {
        if b == b'\\' || b < 0x20 {
            return false;
        }
        if in_string {
            if b == b'"' {
                in_string = false;
                separator = 0;
            }
        } else {
            // Between two strings: exactly `,` then `"`.
            match (separator, b) {
                (0, b',') => separator = 1,
                (1, b'"') => in_string = true,
                _ => return false,
            }
        }
    }
    in_string && std::str::from_utf8(inner).is_ok()
}

/// The index keys named by an `indexes` field, or `None` when it is malformed.
pub fn parse_index_list(text: &[u8]) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut utf8 = true;
    let ok = visit_index_list(text, |k| match std::str::from_utf8(k) {
        Ok(k) => keys.push(k.to_string()),
        Err(_) => utf8 = false,
    });
    (ok && utf8).then_some(keys)
}

impl Stored {
    /// Decodes the fields of a hash; `None` when it is not a session this module wrote
    /// (a field missing or malformed), so that such a key is treated as unknown.
    pub fn decode(
        data: Option<&[u8]>,
        ttl: Option<&[u8]>,
        deadline: Option<&[u8]>,
        indexes: Option<&[u8]>,
    ) -> Option<Stored> {
        if data?.first() != Some(&b'{') {
            return None;
        }
        let ttl = whole_number(ttl?, 1)?;
        let deadline_ms = self::deadline(deadline?)?;
        if let Some(text) = indexes {
            if !visit_index_list(text, |_| {}) {
                return None;
            }
        }
        Some(Stored {
            lifetime: Lifetime { ttl, deadline_ms },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_230_400_123; // 2025-11-27 08:00:00.123 UTC

    fn settings(indexes: &str) -> Settings {
        Settings {
            indexes: crate::config::parse_indexes(indexes).unwrap(),
            ..Settings::default()
        }
    }

    type Fields<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        Option<&'a [u8]>,
    );

    #[test]
    fn options_parse_case_insensitively() {
        let cases: [(&[&[u8]], Result<CreateOptions>); 9] = [
            (&[], Ok(CreateOptions::default())),
            (
                &[b"ttl", b"60"],
                Ok(CreateOptions {
                    ttl: Some(60),
                    ..CreateOptions::default()
                }),
            ),
            (
                &[b"MaxLifetime", b"0", b"TTL", b"1"],
                Ok(CreateOptions {
                    ttl: Some(1),
                    max_lifetime: Some(0),
                    max_sessions: None,
                    route: None,
                }),
            ),
            (&[b"TTL", b"0"], Err(Error::BadTtl)),
            (&[b"TTL", b"315360001"], Err(Error::BadTtl)),
            (&[b"TTL", b"-5"], Err(Error::BadTtl)),
            (&[b"TTL"], Err(Error::BadTtl)),
            (
                &[b"TTL", b"1", b"ttl", b"2"],
                Err(Error::DuplicateOption("TTL".into())),
            ),
            (&[b"EX", b"1"], Err(Error::UnknownOption("EX".into()))),
        ];
        for (args, want) in cases {
            assert_eq!(CreateOptions::parse(args), want, "{args:?}");
        }
    }

    #[test]
    fn maxsessions_takes_a_limit_and_an_optional_deny() {
        let limit = |limit, deny| {
            Ok(CreateOptions {
                max_sessions: Some(MaxSessions { limit, deny }),
                ..CreateOptions::default()
            })
        };
        let cases: [(&[&[u8]], Result<CreateOptions>); 15] = [
            (&[b"MAXSESSIONS", b"3"], limit(3, false)),
            (&[b"maxsessions", b"3", b"deny"], limit(3, true)),
            (
                &[b"MAXSESSIONS", b"1000000", b"DENY"],
                limit(1_000_000, true),
            ),
            (
                &[b"MAXSESSIONS", b"2", b"TTL", b"5"],
                Ok(CreateOptions {
                    ttl: Some(5),
                    max_lifetime: None,
                    max_sessions: Some(MaxSessions {
                        limit: 2,
                        deny: false,
                    }),
                    route: None,
                }),
            ),
            (
                &[b"TTL", b"5", b"route", b"user_id:{150}"],
                Ok(CreateOptions {
                    ttl: Some(5),
                    route: Some(3),
                    ..CreateOptions::default()
                }),
            ),
            (&[b"ROUTE"], Err(Error::MissingRoute)),
            (
                &[b"ROUTE", b"a", b"ROUTE", b"a"],
                Err(Error::DuplicateOption("ROUTE".into())),
            ),
            (&[b"MAXSESSIONS", b"0"], Err(Error::BadMaxSessions)),
            (&[b"MAXSESSIONS", b"1000001"], Err(Error::BadMaxSessions)),
            (&[b"MAXSESSIONS", b"-1"], Err(Error::BadMaxSessions)),
            (&[b"MAXSESSIONS"], Err(Error::BadMaxSessions)),
            (&[b"MAXSESSIONS", b"DENY"], Err(Error::BadMaxSessions)),
            (&[b"DENY"], Err(Error::UnknownOption("DENY".into()))),
            (
                &[b"MAXSESSIONS", b"3", b"DENY", b"DENY"],
                Err(Error::UnknownOption("DENY".into())),
            ),
            (
                &[b"MAXSESSIONS", b"3", b"MAXSESSIONS", b"4"],
                Err(Error::DuplicateOption("MAXSESSIONS".into())),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(CreateOptions::parse(args), want, "{args:?}");
        }
    }

    #[test]
    fn rotate_takes_an_optional_grace_of_at_most_300_seconds() {
        let cases: [(&[&[u8]], Result<i64>); 9] = [
            (&[], Ok(0)),
            (&[b"GRACE", b"0"], Ok(0)),
            (&[b"grace", b"300"], Ok(300)),
            (&[b"GRACE", b"301"], Err(Error::BadGrace)),
            (&[b"GRACE", b"-1"], Err(Error::BadGrace)),
            (&[b"GRACE"], Err(Error::BadGrace)),
            (&[b"GRACE", b"5", b"6"], Err(Error::BadGrace)),
            (&[b"GRACE", b"1.5"], Err(Error::BadGrace)),
            (
                &[b"TTL", b"5"],
                Err(Error::UnknownRotateOption("TTL".into())),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse_rotate_options(args), want, "{args:?}");
        }
    }

    #[test]
    fn maxsessions_ends_the_excess_or_denies() {
        let end = MaxSessions {
            limit: 3,
            deny: false,
        };
        let deny = MaxSessions {
            limit: 3,
            deny: true,
        };
        for (live, ends, denies) in [
            (0, Some(0), Some(0)),
            (2, Some(0), Some(0)),
            (3, Some(1), None),
            (7, Some(5), None),
        ] {
            assert_eq!(end.to_end(live), ends, "{live}");
            assert_eq!(deny.to_end(live), denies, "{live}");
        }
        let one = MaxSessions {
            limit: 1,
            deny: false,
        };
        assert_eq!(one.to_end(1), Some(1));
        assert_eq!(one.to_end(0), Some(0));
    }

    #[test]
    fn leading_zeros_are_allowed_whatever_their_number() {
        let padded = format!("{}60", "0".repeat(40));
        let got = CreateOptions::parse(&[b"TTL", padded.as_bytes(), b"MAXLIFETIME", b"0000"]);
        assert_eq!(
            got,
            Ok(CreateOptions {
                ttl: Some(60),
                max_lifetime: Some(0),
                max_sessions: None,
                route: None,
            })
        );
        assert_eq!(CreateOptions::parse(&[b"TTL", b"000"]), Err(Error::BadTtl));
    }

    #[test]
    fn ttl_values_must_be_plain_digits() {
        for bad in [
            &b"1.5"[..],
            b"+5",
            b" 5",
            b"5 ",
            b"1e3",
            b"",
            b"99999999999999999999",
        ] {
            assert_eq!(
                CreateOptions::parse(&[b"TTL", bad]),
                Err(Error::BadTtl),
                "{bad:?}"
            );
        }
        assert_eq!(
            CreateOptions::parse(&[b"MAXLIFETIME", b"-1"]),
            Err(Error::BadMaxLifetime)
        );
    }

    #[test]
    fn create_adds_created_at_and_keeps_key_order() {
        let s = NewSession::plan(
            br#"{"user_id":150,"foo":"bar"}"#,
            Default::default(),
            &settings(""),
            NOW,
        )
        .unwrap();
        assert_eq!(
            s.data,
            r#"{"user_id":150,"foo":"bar","createdAt":"2025-11-27 08:00:00"}"#
        );
        assert_eq!(
            s.reply("ab12"),
            r#"{"token":"ab12","user_id":150,"foo":"bar","createdAt":"2025-11-27 08:00:00"}"#
        );
    }

    #[test]
    fn create_keeps_the_datas_own_created_at() {
        let s = NewSession::plan(
            br#"{"createdAt":"yesterday","a":1}"#,
            Default::default(),
            &settings(""),
            NOW,
        )
        .unwrap();
        assert_eq!(s.data, r#"{"createdAt":"yesterday","a":1}"#);
    }

    #[test]
    fn create_refuses_a_token_property() {
        let got = NewSession::plan(br#"{"token":"x"}"#, Default::default(), &settings(""), NOW);
        assert_eq!(got, Err(Error::ReservedToken));
    }

    #[test]
    fn create_uses_settings_unless_options_override() {
        let mut st = settings("");
        st.ttl = 100;
        st.max_lifetime = 50;
        let s = NewSession::plan(b"{}", Default::default(), &st, NOW).unwrap();
        assert_eq!(
            s.lifetime,
            Lifetime {
                ttl: 100,
                deadline_ms: NOW + 50_000
            }
        );
        assert_eq!(s.expire_at_ms, NOW + 50_000);

        let opts = CreateOptions {
            ttl: Some(10),
            max_lifetime: Some(0),
            max_sessions: None,
            route: None,
        };
        let s = NewSession::plan(b"{}", opts, &st, NOW).unwrap();
        assert_eq!(
            s.lifetime,
            Lifetime {
                ttl: 10,
                deadline_ms: 0
            }
        );
        assert_eq!(s.expire_at_ms, NOW + 10_000);
    }

    #[test]
    fn indexed_properties_become_index_keys() {
        let mut st = settings("user_id,tenant_id,role,active,missing,gone");
        st.index_prefix = "idx:".into();
        let s = NewSession::plan(
            r#"{"user_id":150,"tenant_id":"Zoë","active":true,"gone":null,"other":1}"#.as_bytes(),
            Default::default(),
            &st,
            NOW,
        )
        .unwrap();
        assert_eq!(
            s.index_keys,
            vec!["idx:user_id:150", "idx:tenant_id:Zoë", "idx:active:true"]
        );
        assert_eq!(
            s.indexes_field().unwrap(),
            r#"["idx:user_id:150","idx:tenant_id:Zoë","idx:active:true"]"#
        );
    }

    #[test]
    fn no_index_means_no_indexes_field() {
        let s =
            NewSession::plan(br#"{"a":1}"#, Default::default(), &settings("user_id"), NOW).unwrap();
        assert_eq!(s.indexes_field(), None);
    }

    #[test]
    fn indexed_objects_and_arrays_are_refused() {
        for data in [&br#"{"user_id":{}}"#[..], br#"{"user_id":[150]}"#] {
            let got = NewSession::plan(data, Default::default(), &settings("user_id"), NOW);
            assert_eq!(got, Err(Error::BadIndexValue("user_id".into())));
        }
    }

    #[test]
    fn expiry_slides_but_never_past_the_deadline() {
        let open = Lifetime {
            ttl: 60,
            deadline_ms: 0,
        };
        assert_eq!(open.expire_at(NOW), NOW + 60_000);
        let capped = Lifetime {
            ttl: 60,
            deadline_ms: NOW + 30_000,
        };
        assert_eq!(capped.expire_at(NOW), NOW + 30_000);
        assert_eq!(capped.expire_at(NOW - 40_000), NOW + 20_000);
        assert!(!capped.is_over(NOW + 29_999));
        assert!(capped.is_over(NOW + 30_000));
        assert!(!open.is_over(i64::MAX));
    }

    #[test]
    fn renew_interval_leaves_a_recent_expiry_alone() {
        let l = Lifetime {
            ttl: 100,
            deadline_ms: 0,
        };
        let at = |s: i64| NOW + s * 1000;
        // (now, current expiry, interval) -> new expiry
        let cases: [(i64, Option<i64>, i64, Option<i64>); 9] = [
            (NOW, Some(at(50)), 0, Some(at(100))),
            (NOW, Some(at(100)), 0, None),
            (NOW, None, 60, Some(at(100))),
            // 60 s interval: rewritten once no more than 40 s remain.
            (NOW, Some(at(41)), 60, None),
            (NOW, Some(at(40)), 60, Some(at(100))),
            (NOW, Some(at(99)), 60, None),
            // An interval of the TTL or more: never slid.
            (NOW, Some(at(1)), 100, None),
            (NOW, Some(at(1)), 1000, None),
            (NOW, Some(at(0)), 100, Some(at(100))),
        ];
        for (now, current, renew, want) in cases {
            assert_eq!(
                l.renewed_expiry(now, current, renew),
                want,
                "{current:?} {renew}"
            );
        }
        let capped = Lifetime {
            ttl: 100,
            deadline_ms: at(30),
        };
        assert_eq!(
            capped.renewed_expiry(NOW, Some(at(30)), 60),
            None,
            "at the deadline"
        );
        assert_eq!(capped.renewed_expiry(NOW, Some(at(20)), 60), Some(at(30)));
    }

    #[test]
    fn index_expiry_has_a_sixteenth_of_the_ttl_in_hand() {
        let l = Lifetime {
            ttl: 160,
            deadline_ms: 0,
        };
        assert_eq!(l.index_expire_at(NOW), NOW + 10_000);
        let tiny = Lifetime {
            ttl: 1,
            deadline_ms: 0,
        };
        assert_eq!(tiny.index_expire_at(NOW), NOW + 62);
        assert!(tiny.index_expire_at(i64::MAX) == i64::MAX);
    }

    #[test]
    fn list_elements_carry_the_identifier_and_the_token_if_shown() {
        assert_eq!(
            listed(r#"{"a":1}"#, Some("ab"), "{x}cd"),
            r#"{"token":"ab","sessionId":"{x}cd","a":1}"#
        );
        assert_eq!(listed("{}", None, "cd"), r#"{"sessionId":"cd"}"#);
        // The data's own sessionId (stored before it was reserved) gives way.
        assert_eq!(
            listed(r#"{"a":1,"sessionId":"mine","b":[2]}"#, None, "cd"),
            r#"{"sessionId":"cd","a":1,"b":[2]}"#
        );
        // Only a property of that name, not a string holding it.
        assert_eq!(
            listed(r#"{"a":"\"sessionId\""}"#, None, "cd"),
            r#"{"sessionId":"cd","a":"\"sessionId\""}"#
        );
    }

    #[test]
    fn session_id_is_reserved_in_data_and_patches() {
        let got = NewSession::plan(
            br#"{"sessionId":"x"}"#,
            Default::default(),
            &settings(""),
            NOW,
        );
        assert_eq!(got.err(), Some(Error::ReservedSessionId));
        let stored = br#"{"sessionId":"old","a":1}"#;
        let patched = UpdatedSession::plan(stored, br#"{"sessionId":"x"}"#, &settings(""));
        assert_eq!(patched.err(), Some(Error::ReservedSessionId));
        let removed =
            UpdatedSession::plan(stored, br#"{"sessionId":null}"#, &settings("")).unwrap();
        assert_eq!(removed.data, r#"{"a":1}"#);
    }

    #[test]
    fn with_token_handles_empty_objects() {
        assert_eq!(with_token("{}", "ab"), r#"{"token":"ab"}"#);
        assert_eq!(with_token(r#"{"a":1}"#, "ab"), r#"{"token":"ab","a":1}"#);
    }

    #[test]
    fn stored_fields_decode_only_when_written_by_this_module() {
        let ok = Stored::decode(Some(b"{}"), Some(b"60"), Some(b"0"), None).unwrap();
        assert_eq!(
            ok.lifetime,
            Lifetime {
                ttl: 60,
                deadline_ms: 0
            }
        );
        let with_idx = Stored::decode(
            Some(b"{}"),
            Some(b"60"),
            Some(b"123"),
            Some(br#"["user_id:1"]"#),
        )
        .unwrap();
        assert_eq!(with_idx.lifetime.deadline_ms, 123);

        let not_ours: [Fields; 8] = [
            (None, Some(b"60"), Some(b"0"), None),
            (Some(b"{}"), None, Some(b"0"), None),
            (Some(b"{}"), Some(b"60"), None, None),
            (Some(b"bar"), Some(b"60"), Some(b"0"), None),
            (Some(b"{}"), Some(b"0"), Some(b"0"), None),
            (Some(b"{}"), Some(b"x"), Some(b"0"), None),
            (Some(b"{}"), Some(b"60"), Some(b"-1"), None),
            (Some(b"{}"), Some(b"60"), Some(b"0"), Some(b"not json")),
        ];
        for (d, t, dl, i) in not_ours {
            assert_eq!(
                Stored::decode(d, t, dl, i),
                None,
                "{d:?} {t:?} {dl:?} {i:?}"
            );
        }
    }

    #[test]
    fn update_merges_and_moves_indexes() {
        let st = settings("user_id");
        let u = UpdatedSession::plan(
            br#"{"user_id":150,"foo":"bar","createdAt":"x"}"#,
            br#"{"user_id":151,"foo":null,"n":{"a":1}}"#,
            &st,
        )
        .unwrap();
        assert_eq!(u.data, r#"{"user_id":151,"createdAt":"x","n":{"a":1}}"#);
        assert_eq!(u.index_keys, vec!["user_id:151"]);
    }

    #[test]
    fn update_refuses_what_create_refuses() {
        let st = settings("user_id");
        let stored = br#"{"user_id":150}"#;
        let cases: [(&[u8], Error); 4] = [
            (br#"{"token":"x"}"#, Error::ReservedToken),
            (br#"{"token":null}"#, Error::ReservedToken),
            (br#"[1]"#, Error::NotObject),
            (
                br#"{"user_id":[1]}"#,
                Error::BadIndexValue("user_id".into()),
            ),
        ];
        for (patch, want) in cases {
            assert_eq!(UpdatedSession::plan(stored, patch, &st), Err(want));
        }
    }

    #[test]
    fn update_bounds_the_merged_size() {
        let mut st = settings("");
        st.max_data_bytes = 1024;
        let half = format!("{{\"b\":\"{}\"}}", "x".repeat(600));
        let stored = format!("{{\"a\":\"{}\"}}", "x".repeat(600));
        assert_eq!(
            UpdatedSession::plan(stored.as_bytes(), half.as_bytes(), &st),
            Err(Error::TooLarge(1024))
        );
    }

    #[test]
    fn created_at_is_indexed_from_creation_when_configured() {
        let s = settings("createdAt,user_id");
        let plan =
            NewSession::plan(br#"{"user_id":1}"#, CreateOptions::default(), &s, NOW).unwrap();
        assert_eq!(
            plan.index_keys,
            ["createdAt:2025-11-27 08:00:00", "user_id:1"]
        );
        let own = NewSession::plan(
            br#"{"createdAt":"then"}"#,
            CreateOptions::default(),
            &s,
            NOW,
        )
        .unwrap();
        assert_eq!(own.index_keys, ["createdAt:then"]);
        let updated = UpdatedSession::plan(plan.data.as_bytes(), br#"{"x":1}"#, &s).unwrap();
        assert_eq!(
            updated.index_keys, plan.index_keys,
            "UPDATE keeps the same rule"
        );
    }

    #[test]
    fn index_keys_are_recognised_by_prefix_and_configured_property() {
        let mut s = settings("user_id,tenant");
        let cases: [(&[u8], bool); 8] = [
            (b"user_id:150", true),
            (b"user_id:", true),
            (b"tenant:a:b", true),
            (b"user_id", false),
            (b"user_idx:1", false),
            (b"role:admin", false),
            (b"", false),
            (b"x:user_id:1", false),
        ];
        for (name, want) in cases {
            assert_eq!(
                is_index_key(&s, name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        s.index_prefix = "idx:".into();
        assert!(is_index_key(&s, b"idx:user_id:150"));
        assert!(!is_index_key(&s, b"user_id:150"));
    }

    #[test]
    fn session_keys_give_back_their_token() {
        let token = "ab".repeat(24);
        let mut s = settings("");
        assert_eq!(token_of_key(&s, token.as_bytes()), Some(token.as_bytes()));
        assert_eq!(token_of_key(&s, b"user_id:150"), None);
        assert_eq!(token_of_key(&s, b"abcd"), None);
        s.key_prefix = "sess:".into();
        let prefixed = format!("sess:{token}");
        assert_eq!(
            token_of_key(&s, prefixed.as_bytes()),
            Some(token.as_bytes())
        );
        assert_eq!(token_of_key(&s, token.as_bytes()), None);
    }

    #[test]
    fn named_index_requires_a_configured_property() {
        let mut st = settings("user_id");
        st.index_prefix = "i:".into();
        assert_eq!(
            named_index(&st, b"user_id", b"150").unwrap(),
            b"i:user_id:150"
        );
        assert_eq!(
            named_index(&st, b"tenant_id", b"1"),
            Err(Error::NotAnIndex("tenant_id".into()))
        );
        assert!(named_index(&st, b"\xff", b"1").is_err());
    }

    #[test]
    fn index_lists_parse_fast_and_slow_alike() {
        let cases: [&[u8]; 9] = [
            br#"["user_id:150"]"#,
            br#"["user_id:150","tenant_id:7"]"#,
            br#"[]"#,
            br#"[""]"#,
            br#"["a\"b","c"]"#,
            br#"["a","b",]"#,
            br#"["a" ,"b"]"#,
            br#"["a""b"]"#,
            br#"["a\u0000b"]"#,
        ];
        for text in cases {
            let slow = serde_json::from_slice::<Vec<String>>(text).ok();
            assert_eq!(
                parse_index_list(text),
                slow,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(
            parse_index_list("[\"user:Zoë\"]".as_bytes()),
            Some(vec!["user:Zoë".to_string()])
        );
    }

    #[test]
    fn created_at_is_utc() {
        assert_eq!(format_created_at(0), "1970-01-01 00:00:00");
        assert_eq!(format_created_at(NOW), "2025-11-27 08:00:00");
    }
}
