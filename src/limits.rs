//! The contract's fixed limits, in one place that both the parsers that enforce them and the
//! error texts that name them use (SPEC: SESSION.CREATE, SESSION.ROTATE, Configuration).
//! This module imports nothing from the crate.

/// Ten 365-day years: the largest TTL, max lifetime or renew interval, in seconds.
pub const MAX_SECONDS: i64 = 315_360_000;

/// The deepest nesting of session data accepted, the outer object being level 1.
pub const MAX_DEPTH: usize = 100;

/// The largest `MAXSESSIONS` limit of SESSION.CREATE.
pub const MAX_SESSIONS_LIMIT: i64 = 1_000_000;

/// The longest grace window of SESSION.ROTATE, in seconds.
pub const MAX_GRACE: i64 = 300;
