//! What each SESSION.* command says about itself in `COMMAND INFO` and `COMMAND DOCS`:
//! summary, complexity, arity, the key it declares and its arguments. Plain data; the glue
//! (`redis::docs`) hands it to `RedisModule_SetCommandInfo`.

use std::ffi::CStr;

/// The first release, which had CREATE, VALIDATE, GET, UPDATE, DESTROY, REVOKEINDEX and LIST.
pub const V0_1_0: &CStr = c"0.1.0";
/// The release that added ROTATE, REVOKEID and CREATE's MAXSESSIONS, DENY and ROUTE.
pub const V0_2_0: &CStr = c"0.2.0";

/// How a command uses the session key named by its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Reads it (GET).
    Read,
    /// Reads it and changes its expiry or fields (VALIDATE, UPDATE).
    Update,
    /// Reads it and deletes it (DESTROY).
    Delete,
}

/// The key argument a command is routed by in cluster mode besides the token (README
/// "Cluster"), declared in its key specs so that cluster clients find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `<keyword> key` anywhere after `data` (CREATE's `ROUTE key`): a key name in the slot
    /// the session will live in, judged by ACL key patterns like any key.
    Keyword(&'static CStr),
    /// The argument at this position (REVOKEINDEX's and LIST's `value`), which is not a key
    /// but hashes to the slot of the index key it names: declared `NOT_KEY`, so that ACL key
    /// patterns do not judge it (the index key itself is checked by the module).
    NotKeyAt(i32),
}

/// The type of an argument as COMMAND DOCS shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// The token: declared as the command's key.
    Key,
    /// The cluster routing key ([`Route`]).
    RouteKey,
    String,
    Integer,
    /// A keyword alone (`DENY`), its name being the keyword.
    PureToken,
}

/// One argument.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static CStr,
    pub kind: ArgKind,
    /// The keyword that introduces it (`TTL`), if any.
    pub token: Option<&'static CStr>,
    pub optional: bool,
    /// The version it was added in, when later than its command's.
    pub since: Option<&'static CStr>,
}

/// One command's documentation.
#[derive(Debug, Clone, Copy)]
pub struct CommandDoc {
    pub name: &'static CStr,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    /// The version the command first appeared in (COMMAND DOCS `since`).
    pub since: &'static CStr,
    /// Redis arity: positive exact, negative minimum, command name included.
    pub arity: i32,
    /// The key at argument 1, when the command declares one.
    pub key: Option<KeyUse>,
    /// The routing key it declares besides, if any.
    pub route: Option<Route>,
    /// The ACL categories its flags imply (`@write`/`@read`, `@fast`/`@slow`), given to
    /// `RedisModule_SetCommandACLCategories` where the server has it (7.2+), so that
    /// `ACL SETUSER u -@write` keeps a read-only user from every writing SESSION.* command.
    pub acl_categories: &'static CStr,
    pub args: &'static [Arg],
}

const fn arg(name: &'static CStr, kind: ArgKind) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        since: None,
    }
}

const fn option(name: &'static CStr, kind: ArgKind, token: &'static CStr) -> Arg {
    Arg {
        name,
        kind,
        token: Some(token),
        optional: true,
        since: None,
    }
}

/// An option added after its command.
const fn added(arg: Arg, since: &'static CStr) -> Arg {
    Arg {
        since: Some(since),
        ..arg
    }
}

const TOKEN: Arg = arg(c"token", ArgKind::Key);
const PROPERTY: Arg = arg(c"property", ArgKind::String);
/// REVOKEINDEX's and LIST's value: also their cluster routing key ([`Route::NotKeyAt`]).
const VALUE: Arg = arg(c"value", ArgKind::RouteKey);

/// Every command, in the order the README documents them.
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: c"session.create",
        summary: c"Stores a new session for a JSON object and returns it with its new token",
        complexity: c"O(N) in the size of the data, plus O(1) per configured index; with MAXSESSIONS, plus O(M) in the sessions of the primary index value",
        since: V0_1_0,
        arity: -2,
        key: None,
        route: Some(Route::Keyword(c"ROUTE")),
        acl_categories: c"write slow",
        args: &[
            arg(c"data", ArgKind::String),
            option(c"seconds", ArgKind::Integer, c"TTL"),
            option(c"max-seconds", ArgKind::Integer, c"MAXLIFETIME"),
            added(option(c"limit", ArgKind::Integer, c"MAXSESSIONS"), V0_2_0),
            added(option(c"deny", ArgKind::PureToken, c"DENY"), V0_2_0),
            added(option(c"key", ArgKind::RouteKey, c"ROUTE"), V0_2_0),
        ],
    },
    CommandDoc {
        name: c"session.validate",
        summary: c"Returns a session's data and prolongs its expiry",
        complexity: c"O(1) for the session plus O(1) per index it is in",
        since: V0_1_0,
        arity: 2,
        route: None,
        key: Some(KeyUse::Update),
        acl_categories: c"write fast",
        args: &[TOKEN],
    },
    CommandDoc {
        name: c"session.get",
        summary: c"Returns a session's data without prolonging it",
        complexity: c"O(1)",
        since: V0_1_0,
        arity: 2,
        route: None,
        key: Some(KeyUse::Read),
        acl_categories: c"read fast",
        args: &[TOKEN],
    },
    CommandDoc {
        name: c"session.update",
        summary: c"Applies a JSON Merge Patch to a session's data and prolongs it",
        complexity: c"O(N) in the size of the data, plus O(1) per index it joins or leaves",
        since: V0_1_0,
        arity: 3,
        route: None,
        key: Some(KeyUse::Update),
        acl_categories: c"write slow",
        args: &[TOKEN, arg(c"patch", ArgKind::String)],
    },
    CommandDoc {
        name: c"session.rotate",
        summary: c"Gives a session a new token; the old one ends, or reads for a grace window",
        complexity: c"O(N) in the size of the data, plus O(1) per index the session is in",
        since: V0_2_0,
        arity: -2,
        route: None,
        key: Some(KeyUse::Delete),
        acl_categories: c"write slow",
        args: &[TOKEN, option(c"seconds", ArgKind::Integer, c"GRACE")],
    },
    CommandDoc {
        name: c"session.destroy",
        summary: c"Deletes a session and removes its token from its indexes",
        complexity: c"O(1) per index the session is in",
        since: V0_1_0,
        arity: 2,
        route: None,
        key: Some(KeyUse::Delete),
        acl_categories: c"write slow",
        args: &[TOKEN],
    },
    CommandDoc {
        name: c"session.revokeindex",
        summary: c"Destroys every session in an index, optionally except one",
        complexity: c"O(N) where N is the number of tokens in the index",
        since: V0_1_0,
        arity: -3,
        key: None,
        route: Some(Route::NotKeyAt(2)),
        acl_categories: c"write slow",
        args: &[
            PROPERTY,
            VALUE,
            option(c"token", ArgKind::String, c"EXCEPT"),
        ],
    },
    CommandDoc {
        name: c"session.revokeid",
        summary: c"Destroys the session of an index that LIST gave this identifier (sessionId)",
        complexity: c"O(N) where N is the number of tokens in the index",
        since: V0_2_0,
        arity: 4,
        key: None,
        route: Some(Route::NotKeyAt(2)),
        acl_categories: c"write slow",
        args: &[PROPERTY, VALUE, arg(c"session-id", ArgKind::String)],
    },
    CommandDoc {
        name: c"session.list",
        summary: c"Returns every live session in an index, pruning stale tokens",
        complexity: c"O(N) where N is the number of tokens in the index",
        since: V0_1_0,
        arity: 3,
        key: None,
        route: Some(Route::NotKeyAt(2)),
        acl_categories: c"write slow",
        args: &[PROPERTY, VALUE],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_documented_once() {
        let names: Vec<_> = COMMANDS.iter().map(|c| c.name.to_str().unwrap()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
        assert_eq!(names.len(), 9);
    }

    #[test]
    fn commands_with_a_key_take_the_token_first() {
        for c in COMMANDS {
            let first_is_key = c.args.first().map(|a| a.kind) == Some(ArgKind::Key);
            assert_eq!(c.key.is_some(), first_is_key, "{:?}", c.name);
        }
    }

    #[test]
    fn arity_matches_the_arguments() {
        for c in COMMANDS {
            let required = c.args.iter().filter(|a| !a.optional).count() as i32 + 1;
            let has_optional = c.args.iter().any(|a| a.optional);
            let want = if has_optional { -required } else { required };
            assert_eq!(c.arity, want, "{:?}", c.name);
        }
    }
}
