//! The one error type of the domain. Every variant becomes an error reply whose first word
//! is a Redis error code (`ERR`, `WRONGTYPE`), so that clients classify it as usual.

use std::fmt;

use crate::limits::{MAX_DEPTH, MAX_GRACE, MAX_SECONDS, MAX_SESSIONS_LIMIT};

/// Anything a command can refuse. The `Display` text is the reply, code included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The command got too few or too many arguments (the name is the command's, lowercase).
    WrongArity(&'static str),
    /// `data` or `patch` is not JSON; the detail comes from the parser.
    NotJson(String),
    /// `data` or `patch` is JSON but not an object.
    NotObject,
    /// The JSON text is longer than `max-data-bytes`.
    TooLarge(i64),
    /// The JSON is nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// `token` is reserved for the reply.
    ReservedToken,
    /// `sessionId` is reserved for LIST's replies.
    ReservedSessionId,
    /// An indexed property holds an object or an array.
    BadIndexValue(String),
    /// `TTL` option not a whole number in range.
    BadTtl,
    /// `MAXLIFETIME` option not a whole number in range.
    BadMaxLifetime,
    /// `MAXSESSIONS` option not a whole number in range.
    BadMaxSessions,
    /// `MAXSESSIONS` given for data without a value of any index.
    MaxSessionsWithoutIndex,
    /// `MAXSESSIONS n DENY` and the primary index value has `n` live sessions or more.
    SessionLimit {
        index: String,
        live: usize,
        limit: i64,
    },
    /// CREATE's `ROUTE` without its key.
    MissingRoute,
    /// An option the command does not know.
    UnknownOption(String),
    /// The same option twice.
    DuplicateOption(String),
    /// An index key holds something other than a set.
    IndexWrongType(String),
    /// ROTATE's `GRACE` not a whole number from 0 to 300 (or missing, or followed by more).
    BadGrace,
    /// ROTATE got an option other than `GRACE`.
    UnknownRotateOption(String),
    /// REVOKEINDEX got a fourth argument other than `EXCEPT`.
    UnknownRevokeOption(String),
    /// REVOKEINDEX or LIST named a property that is not in `indexes`.
    NotAnIndex(String),
    /// A setting was given a bad value (load argument or CONFIG SET).
    Setting { name: String, reason: String },
    /// The session secret's key holds something other than a secret.
    SecretUnusable(String),
    /// Cluster mode: REVOKEINDEX or LIST of a property other than the first of `indexes`,
    /// whose sessions are spread over the cluster.
    NotThePrimaryIndex { property: String, primary: String },
    /// Cluster mode: the keys a command would write are in different hash slots (ROUTE not
    /// in the session's slot, UPDATE moving a session to another primary index value).
    CrossSlot(String),
    /// Cluster mode: a key the command needs is missing here while its slot is being
    /// migrated, so it may be on the other node: retry, as for Redis's multi-key commands.
    TryAgain,
    /// Cluster mode: the slot is served by another node.
    Moved { slot: u16, address: String },
    /// Cluster mode: the cluster is down (or this node cannot tell where a slot is).
    ClusterDown(String),
    /// Something inside the module went wrong that no input should cause.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongArity(cmd) => {
                write!(f, "ERR wrong number of arguments for '{cmd}' command")
            }
            Error::NotJson(detail) => write!(f, "ERR data is not valid JSON: {detail}"),
            Error::NotObject => f.write_str("ERR data must be a JSON object"),
            Error::TooLarge(max) => {
                write!(f, "ERR data is larger than max-data-bytes ({max} bytes)")
            }
            Error::TooDeep => write!(
                f,
                "ERR data is nested more than {} levels deep",
                MAX_DEPTH
            ),
            Error::ReservedToken => {
                f.write_str("ERR data must not contain the reserved property 'token'")
            }
            Error::ReservedSessionId => f.write_str(
                "ERR data must not contain the reserved property 'sessionId' (LIST replies \
                 each session's identifier under it)",
            ),
            Error::BadIndexValue(name) => write!(
                f,
                "ERR indexed property '{name}' must be a string, number, boolean or null"
            ),
            Error::BadTtl => write!(
                f,
                "ERR TTL must be a whole number from 1 to {}",
                MAX_SECONDS
            ),
            Error::BadMaxLifetime => write!(
                f,
                "ERR MAXLIFETIME must be a whole number from 0 to {}",
                MAX_SECONDS
            ),
            Error::BadMaxSessions => write!(
                f,
                "ERR MAXSESSIONS must be a whole number from 1 to {}",
                MAX_SESSIONS_LIMIT
            ),
            Error::MaxSessionsWithoutIndex => f.write_str(
                "ERR MAXSESSIONS needs a value of an index: data has none of the properties in session.indexes",
            ),
            Error::SessionLimit { index, live, limit } => write!(
                f,
                "ERR MAXSESSIONS {limit} DENY: index '{index}' already has {live} live sessions; nothing was written"
            ),
            Error::MissingRoute => f.write_str("ERR ROUTE needs a key name after it"),
            Error::UnknownOption(opt) => {
                write!(
                    f,
                    "ERR unknown option '{opt}' (expected TTL, MAXLIFETIME, MAXSESSIONS or ROUTE)"
                )
            }
            Error::DuplicateOption(opt) => write!(f, "ERR option '{opt}' given twice"),
            Error::IndexWrongType(key) => write!(
                f,
                "WRONGTYPE index key '{key}' holds a value that is not a set"
            ),
            Error::BadGrace => write!(
                f,
                "ERR GRACE must be a whole number from 0 to {}",
                MAX_GRACE
            ),
            Error::UnknownRotateOption(opt) => {
                write!(f, "ERR unknown option '{opt}' (expected GRACE seconds)")
            }
            Error::UnknownRevokeOption(opt) => {
                write!(f, "ERR unknown option '{opt}' (expected EXCEPT token)")
            }
            Error::NotAnIndex(property) => write!(
                f,
                "ERR property '{property}' is not a configured index (see session.indexes)"
            ),
            Error::Setting { name, reason } => write!(f, "ERR session.{name}: {reason}"),
            Error::SecretUnusable(key) => write!(
                f,
                "ERR key '{key}' holds something other than the session secret \
                 (32 lowercase hex digits): sessions cannot be written until it is deleted"
            ),
            Error::NotThePrimaryIndex { property, primary } => write!(
                f,
                "ERR in cluster mode only the first property of session.indexes ('{primary}') \
                 can be revoked or listed: sessions live in the hash slot of their first \
                 indexed value, so an index of '{property}' would not reach all of them"
            ),
            Error::CrossSlot(what) => write!(f, "CROSSSLOT {what}; nothing was written"),
            Error::TryAgain => f.write_str(
                "TRYAGAIN a key this command needs is not on this node while its hash slot is \
                 being migrated; nothing was written",
            ),
            Error::Moved { slot, address } => write!(f, "MOVED {slot} {address}"),
            Error::ClusterDown(what) => write!(f, "CLUSTERDOWN {what}"),
            Error::Internal(what) => write!(f, "ERR internal error in redis-session: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the domain.
pub type Result<T> = std::result::Result<T, Error>;
