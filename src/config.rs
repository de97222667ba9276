//! The module's settings: names, defaults, ranges and validation, with no Redis in sight.
//!
//! The Redis glue (`redis::settings`) registers each [`Setting`] as a module config and
//! forwards every change here, so a value is checked the same way whether it arrives as a
//! load argument, a redis.conf line, `MODULE LOADEX ... CONFIG` or `CONFIG SET`.

use crate::error::{Error, Result};
use crate::limits::MAX_SECONDS;

/// One module config. `name()` is what follows `session.` in `CONFIG GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Ttl,
    TokenBytes,
    Indexes,
    MaxLifetime,
    KeyPrefix,
    IndexPrefix,
    MaxDataBytes,
    RenewInterval,
    TokenHash,
}

/// `token-hash`: what a session is stored under after the key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenHash {
    /// The token itself (`none`).
    #[default]
    None,
    /// The token's SHA-256 (`sha256`), so that no key, index member or grace record holds a
    /// token (`crate::token::hashed`).
    Sha256,
}

impl TokenHash {
    /// The setting's text.
    pub fn name(self) -> &'static str {
        match self {
            TokenHash::None => "none",
            TokenHash::Sha256 => "sha256",
        }
    }

    /// The value of the text `value`, case-insensitively, spaces around it ignored.
    pub fn from_name(value: &str) -> Option<TokenHash> {
        [TokenHash::None, TokenHash::Sha256]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(value.trim()))
    }
}

impl Setting {
    /// Every setting, in the order the README lists them.
    pub const ALL: [Setting; 9] = [
        Setting::Ttl,
        Setting::TokenBytes,
        Setting::Indexes,
        Setting::MaxLifetime,
        Setting::KeyPrefix,
        Setting::IndexPrefix,
        Setting::MaxDataBytes,
        Setting::RenewInterval,
        Setting::TokenHash,
    ];

    /// The config's name without the `session.` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Ttl => "ttl",
            Setting::TokenBytes => "token-bytes",
            Setting::Indexes => "indexes",
            Setting::MaxLifetime => "max-lifetime",
            Setting::KeyPrefix => "key-prefix",
            Setting::IndexPrefix => "index-prefix",
            Setting::MaxDataBytes => "max-data-bytes",
            Setting::RenewInterval => "renew-interval",
            Setting::TokenHash => "token-hash",
        }
    }

    /// Looks a name up case-insensitively, with or without the `session.` prefix.
    pub fn from_name(name: &str) -> Option<Setting> {
        let bare = match name.get(..8) {
            Some(head) if head.eq_ignore_ascii_case("session.") => name.get(8..).unwrap_or(""),
            _ => name,
        };
        Setting::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(bare))
    }

    /// Whether the setting can be given only at load (load argument, redis.conf line,
    /// `MODULE LOADEX ... CONFIG`), never by `CONFIG SET`. The prefixes name every key the
    /// module has written: changed at run time, existing sessions would no longer be found by
    /// their tokens, and index pruning would take them for stale (issue 16, item 4).
    pub fn load_time_only(self) -> bool {
        matches!(self, Setting::KeyPrefix | Setting::IndexPrefix)
    }

    /// `Some((min, max))` for numeric settings, `None` for string ones.
    pub fn range(self) -> Option<(i64, i64)> {
        match self {
            Setting::Ttl => Some((1, MAX_SECONDS)),
            Setting::TokenBytes => Some((16, 128)),
            Setting::MaxLifetime => Some((0, MAX_SECONDS)),
            Setting::MaxDataBytes => Some((1024, 536_870_912)),
            Setting::RenewInterval => Some((0, MAX_SECONDS)),
            Setting::Indexes | Setting::KeyPrefix | Setting::IndexPrefix | Setting::TokenHash => {
                None
            }
        }
    }

    fn error(self, reason: impl Into<String>) -> Error {
        Error::Setting {
            name: self.name().to_string(),
            reason: reason.into(),
        }
    }
}

/// The values in force. Commands read a snapshot of it; the glue swaps in a new one on change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub ttl: i64,
    pub token_bytes: i64,
    /// Property names, in the order given, without duplicates.
    pub indexes: Vec<String>,
    pub max_lifetime: i64,
    pub key_prefix: String,
    pub index_prefix: String,
    pub max_data_bytes: i64,
    /// Seconds: VALIDATE rewrites a session's expiry only when its remaining time is at most
    /// TTL minus this (0: on every VALIDATE).
    pub renew_interval: i64,
    /// What new sessions are stored under; sessions made under the other value keep working.
    pub token_hash: TokenHash,
    /// Not a setting: whether the server runs in cluster mode (fixed for the process, read
    /// at load). Sessions and indexes are then placed by hash slot (`crate::cluster`).
    pub cluster: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ttl: 7200,
            token_bytes: 24,
            indexes: Vec::new(),
            max_lifetime: 0,
            key_prefix: String::new(),
            index_prefix: String::new(),
            max_data_bytes: 65536,
            renew_interval: 0,
            token_hash: TokenHash::None,
            cluster: false,
        }
    }
}

impl Settings {
    /// The current value of a numeric setting (0 for string ones).
    pub fn numeric(&self, setting: Setting) -> i64 {
        match setting {
            Setting::Ttl => self.ttl,
            Setting::TokenBytes => self.token_bytes,
            Setting::MaxLifetime => self.max_lifetime,
            Setting::MaxDataBytes => self.max_data_bytes,
            Setting::RenewInterval => self.renew_interval,
            Setting::Indexes | Setting::KeyPrefix | Setting::IndexPrefix | Setting::TokenHash => 0,
        }
    }

    /// The current value of a setting as `CONFIG GET` shows it.
    pub fn text(&self, setting: Setting) -> String {
        match setting {
            Setting::Indexes => self.indexes.join(","),
            Setting::KeyPrefix => self.key_prefix.clone(),
            Setting::IndexPrefix => self.index_prefix.clone(),
            Setting::TokenHash => self.token_hash.name().to_string(),
            _ => self.numeric(setting).to_string(),
        }
    }

    /// Sets a numeric setting, refusing values out of its range.
    pub fn set_numeric(&mut self, setting: Setting, value: i64) -> Result<()> {
        let Some((min, max)) = setting.range() else {
            return Err(setting.error("is not a numeric setting"));
        };
        if !(min..=max).contains(&value) {
            return Err(setting.error(format!(
                "{value} is out of range (must be between {min} and {max})"
            )));
        }
        match setting {
            Setting::Ttl => self.ttl = value,
            Setting::TokenBytes => self.token_bytes = value,
            Setting::MaxLifetime => self.max_lifetime = value,
            Setting::MaxDataBytes => self.max_data_bytes = value,
            Setting::RenewInterval => self.renew_interval = value,
            Setting::Indexes | Setting::KeyPrefix | Setting::IndexPrefix | Setting::TokenHash => {}
        }
        Ok(())
    }

    /// Sets any setting from its text form, as a load argument or redis.conf line gives it.
    pub fn set_text(&mut self, setting: Setting, value: &str) -> Result<()> {
        if value.contains('\0') {
            return Err(setting.error("value contains a NUL byte"));
        }
        if self.cluster {
            let names = match setting {
                Setting::Indexes => parse_indexes(value)?,
                Setting::KeyPrefix | Setting::IndexPrefix => vec![value.to_string()],
                _ => Vec::new(),
            };
            for name in &names {
                crate::cluster::check_names(setting.name(), name)
                    .map_err(|reason| setting.error(format!("in cluster mode {reason}")))?;
            }
        }
        match setting {
            Setting::Indexes => self.indexes = parse_indexes(value)?,
            Setting::KeyPrefix => self.key_prefix = value.to_string(),
            Setting::IndexPrefix => self.index_prefix = value.to_string(),
            Setting::TokenHash => {
                self.token_hash = TokenHash::from_name(value).ok_or_else(|| {
                    setting.error(format!("'{value}' is not one of none, sha256"))
                })?;
            }
            _ => {
                let number = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| setting.error(format!("'{value}' is not a whole number")))?;
                self.set_numeric(setting, number)?;
            }
        }
        Ok(())
    }

    /// Applies module load arguments: `name value` pairs, names case-insensitive.
    /// An unknown name, a missing value or a bad value is an error naming the setting.
    pub fn apply_load_args(&mut self, args: &[&[u8]]) -> Result<()> {
        let mut pairs = args.chunks(2);
        for pair in &mut pairs {
            let raw_name = pair.first().copied().unwrap_or_default();
            let name = String::from_utf8_lossy(raw_name);
            let setting = Setting::from_name(&name).ok_or_else(|| Error::Setting {
                name: name.to_string(),
                reason: format!(
                    "unknown setting (expected one of {})",
                    Setting::ALL.map(Setting::name).join(", ")
                ),
            })?;
            let Some(raw_value) = pair.get(1) else {
                return Err(setting.error("missing value"));
            };
            let value = std::str::from_utf8(raw_value)
                .map_err(|_| setting.error("value is not valid UTF-8"))?;
            self.set_text(setting, value)?;
        }
        Ok(())
    }
}

/// Parses `indexes`: comma-separated property names, spaces around each trimmed.
/// The empty string means no indexes; an empty name inside a list is refused.
pub fn parse_indexes(value: &str) -> Result<Vec<String>> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in value.split(',') {
        let name = part.trim();
        if name.is_empty() {
            return Err(Setting::Indexes.error(format!("empty property name in '{value}'")));
        }
        // `<property>:<value>` must name one index only: with `:` in property names,
        // `a`="b:c" and `a:b`="c" would share the key `a:b:c`, and revoking one would reach
        // the other's sessions.
        if name.contains(':') {
            return Err(Setting::Indexes.error(format!(
                "property name '{name}' contains ':', which separates property and value in index keys"
            )));
        }
        if seen.insert(name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_names_are_refused_in_cluster_mode_only() {
        let mut standalone = Settings::default();
        assert!(standalone.set_text(Setting::KeyPrefix, "s{x}:").is_ok());
        let mut cluster = Settings {
            cluster: true,
            ..Settings::default()
        };
        for (setting, value) in [
            (Setting::KeyPrefix, "s{x}:"),
            (Setting::IndexPrefix, "}"),
            (Setting::Indexes, "user_id,a{b"),
        ] {
            let e = cluster.set_text(setting, value).unwrap_err().to_string();
            assert!(e.contains("in cluster mode"), "{e}");
        }
        assert_eq!(
            cluster,
            Settings {
                cluster: true,
                ..Settings::default()
            }
        );
        assert!(cluster.set_text(Setting::Indexes, "user_id,tenant").is_ok());
    }

    #[test]
    fn property_names_with_a_colon_are_refused() {
        for value in ["a:b", "user_id,a:b", ":", "x:"] {
            let e = parse_indexes(value).unwrap_err().to_string();
            assert!(e.contains("contains ':'"), "{value}: {e}");
        }
        assert_eq!(parse_indexes("a,b,a").unwrap(), ["a", "b"]);
    }

    #[test]
    fn names_match_case_insensitively_with_or_without_prefix() {
        let cases = [
            ("ttl", Some(Setting::Ttl)),
            ("TTL", Some(Setting::Ttl)),
            ("session.ttl", Some(Setting::Ttl)),
            ("SESSION.Token-Bytes", Some(Setting::TokenBytes)),
            ("max-data-bytes", Some(Setting::MaxDataBytes)),
            ("bogus", None),
            ("session.", None),
            ("", None),
            ("sessio", None),
        ];
        for (name, want) in cases {
            assert_eq!(Setting::from_name(name), want, "{name}");
        }
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::default();
        assert_eq!(s.ttl, 7200);
        assert_eq!(s.token_bytes, 24);
        assert!(s.indexes.is_empty());
        assert_eq!(s.max_lifetime, 0);
        assert_eq!(s.key_prefix, "");
        assert_eq!(s.index_prefix, "");
        assert_eq!(s.max_data_bytes, 65536);
    }

    #[test]
    fn numeric_ranges_are_enforced() {
        let cases = [
            (Setting::Ttl, 0, false),
            (Setting::Ttl, 1, true),
            (Setting::Ttl, MAX_SECONDS, true),
            (Setting::Ttl, MAX_SECONDS + 1, false),
            (Setting::TokenBytes, 15, false),
            (Setting::TokenBytes, 16, true),
            (Setting::TokenBytes, 128, true),
            (Setting::TokenBytes, 129, false),
            (Setting::MaxLifetime, -1, false),
            (Setting::MaxLifetime, 0, true),
            (Setting::MaxDataBytes, 1023, false),
            (Setting::MaxDataBytes, 536_870_912, true),
            (Setting::MaxDataBytes, 536_870_913, false),
        ];
        for (setting, value, ok) in cases {
            let mut s = Settings::default();
            let before = s.clone();
            let result = s.set_numeric(setting, value);
            assert_eq!(result.is_ok(), ok, "{setting:?} {value}");
            if !ok {
                assert_eq!(s, before, "a refused value changes nothing");
            }
        }
    }

    #[test]
    fn load_args_apply_in_pairs() {
        let mut s = Settings::default();
        let args: [&[u8]; 6] = [
            b"TTL",
            b"3600",
            b"indexes",
            b"user_id, tenant_id",
            b"key-prefix",
            b"s:",
        ];
        s.apply_load_args(&args).unwrap();
        assert_eq!(s.ttl, 3600);
        assert_eq!(s.indexes, vec!["user_id", "tenant_id"]);
        assert_eq!(s.key_prefix, "s:");
    }

    #[test]
    fn bad_load_args_name_the_setting() {
        let cases: [(&[&[u8]], &str); 5] = [
            (&[b"ttl", b"0"], "ERR session.ttl: 0 is out of range"),
            (
                &[b"ttl", b"abc"],
                "ERR session.ttl: 'abc' is not a whole number",
            ),
            (&[b"ttl"], "ERR session.ttl: missing value"),
            (&[b"bogus", b"1"], "ERR session.bogus: unknown setting"),
            (
                &[b"indexes", b"a,,b"],
                "ERR session.indexes: empty property name",
            ),
        ];
        for (args, want) in cases {
            let err = Settings::default().apply_load_args(args).unwrap_err();
            assert!(err.to_string().starts_with(want), "{err} / {want}");
        }
    }

    #[test]
    fn nul_bytes_are_refused_in_every_setting() {
        for setting in Setting::ALL {
            let mut s = Settings::default();
            assert!(s.set_text(setting, "a\0b").is_err(), "{setting:?}");
            assert_eq!(s, Settings::default());
        }
    }

    #[test]
    fn indexes_parse_trims_and_dedupes() {
        assert_eq!(parse_indexes("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_indexes("  ").unwrap(), Vec::<String>::new());
        assert_eq!(parse_indexes("a").unwrap(), vec!["a"]);
        assert_eq!(parse_indexes(" a , b ,a").unwrap(), vec!["a", "b"]);
        assert!(parse_indexes("a,").is_err());
        assert!(parse_indexes(",a").is_err());
    }

    #[test]
    fn token_hash_is_none_or_sha256() {
        let mut s = Settings::default();
        assert_eq!(s.text(Setting::TokenHash), "none");
        s.set_text(Setting::TokenHash, "SHA256").unwrap();
        assert_eq!(s.token_hash, TokenHash::Sha256);
        assert_eq!(s.text(Setting::TokenHash), "sha256");
        for bad in ["", "sha-256", "md5", "sha2567", "none,sha256"] {
            let before = s.clone();
            let e = s.set_text(Setting::TokenHash, bad).unwrap_err().to_string();
            assert!(e.contains("is not one of none, sha256"), "{bad}: {e}");
            assert_eq!(s, before);
        }
        s.set_text(Setting::TokenHash, " none ").unwrap();
        assert_eq!(s.token_hash, TokenHash::None);
        assert!(!Setting::TokenHash.load_time_only());
        assert_eq!(Setting::TokenHash.range(), None);
    }

    #[test]
    fn text_shows_what_config_get_shows() {
        let mut s = Settings::default();
        s.set_text(Setting::Indexes, "user_id,tenant_id").unwrap();
        assert_eq!(s.text(Setting::Indexes), "user_id,tenant_id");
        assert_eq!(s.text(Setting::Ttl), "7200");
        assert_eq!(s.text(Setting::KeyPrefix), "");
    }
}
