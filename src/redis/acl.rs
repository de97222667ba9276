//! ACL key permissions for the keys a command computes. Redis checks the key a command
//! declares (the token of VALIDATE, GET, UPDATE and DESTROY, when there is no key prefix)
//! before the command runs; every other key a SESSION.* command reads or writes (a session
//! key made from a prefix or a new token, index sets) is checked here against the calling
//! user, for read or write as the access is, before anything is written. A refusal is a
//! `NOPERM` error.
//!
//! The calling user is found without ever asking Redis for the user of a client that has
//! none (`RedisModule_GetCurrentUserName` dereferences it): a client without a user (the
//! replication link, a module's own client) may do anything, as it may with any command.

use redis_module::{raw, Context, RedisError, RedisString};
use std::ffi::c_int;

/// How a command uses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// Read and then write (REVOKEINDEX and LIST on their index set).
    ReadWrite,
}

impl Access {
    fn flags(self) -> c_int {
        let read = raw::REDISMODULE_CMD_KEY_ACCESS;
        let write = raw::REDISMODULE_CMD_KEY_UPDATE;
        (match self {
            Access::Read => read,
            Access::Write => write,
            Access::ReadWrite => read | write,
        }) as c_int
    }
}

/// The error of a refused key.
pub fn no_permission() -> RedisError {
    RedisError::Str(
        "NOPERM this user has no permissions to access one of the keys this command uses",
    )
}

/// The user a command runs as, found on first use.
pub struct Caller<'a> {
    ctx: &'a Context,
    who: Option<Who>,
}

/// Whom the checks are for.
enum Who {
    /// A client without a user (the replication link, a module's own client).
    Anyone,
    /// A user that no longer exists.
    Nobody,
    /// A module handle on the ACL user, freed on drop.
    User(*mut raw::RedisModuleUser),
}

impl Drop for Who {
    fn drop(&mut self) {
        if let Who::User(user) = *self {
            // SAFETY: the handle came from GetModuleUserFromUserName and is freed once.
            unsafe {
                if let Some(free) = raw::RedisModule_FreeModuleUser {
                    free(user);
                }
            }
        }
    }
}

impl<'a> Caller<'a> {
    pub fn new(ctx: &'a Context) -> Caller<'a> {
        Caller { ctx, who: None }
    }

    /// `Ok` when the calling user may use `key` as `access` says.
    pub fn check(&mut self, key: &[u8], access: Access) -> Result<(), RedisError> {
        let user = match self.who.get_or_insert_with(|| find_user(self.ctx)) {
            Who::Anyone => return Ok(()),
            Who::Nobody => return Err(no_permission()),
            Who::User(user) => *user,
        };
        let name = RedisString::create_from_slice(self.ctx.get_raw(), key);
        // SAFETY: the API table is filled once at load; user is a live handle and name a
        // live string for the duration of the call.
        let status = unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.map_or(raw::REDISMODULE_OK as c_int, |check| {
                check(user, name.inner, access.flags())
            })
        };
        if status == raw::REDISMODULE_OK as c_int {
            Ok(())
        } else {
            Err(no_permission())
        }
    }

    /// [`Caller::check`] for each key.
    pub fn check_all<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
        access: Access,
    ) -> Result<(), RedisError> {
        keys.iter().try_for_each(|k| self.check(k.as_ref(), access))
    }
}

/// The calling client's user.
fn find_user(ctx: &Context) -> Who {
    let none = Who::Anyone;
    // SAFETY (whole block): the API table is filled once at load; ctx is the running
    // command's context; every string made here is freed by its RedisString wrapper.
    unsafe {
        let flags = raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.get_raw())) as u32;
        if flags & raw::REDISMODULE_CTX_FLAGS_REPLICATED != 0 {
            return none;
        }
        let (Some(client_id), Some(name_by_id), Some(from_name)) = (
            raw::RedisModule_GetClientId,
            raw::RedisModule_GetClientUserNameById,
            raw::RedisModule_GetModuleUserFromUserName,
        ) else {
            return none;
        };
        let id = client_id(ctx.get_raw());
        let mut name = name_by_id(ctx.get_raw(), id);
        if name.is_null() {
            // ENOTSUP: a linked client without a user. ENOENT: a client Redis does not list
            // (a script's, or another module's): ask through a call as that client's user,
            // which fails with ENOTSUP exactly when it has none.
            if std::io::Error::last_os_error().raw_os_error() != Some(libc_enoent())
                || !has_user(ctx)
            {
                return none;
            }
            let Some(current) = raw::RedisModule_GetCurrentUserName else {
                return none;
            };
            name = current(ctx.get_raw());
            if name.is_null() {
                return none;
            }
        }
        let name = RedisString::from_redis_module_string(ctx.get_raw(), name);
        let user = from_name(name.inner);
        if user.is_null() {
            // A user deleted while its client runs: nothing is allowed.
            return Who::Nobody;
        }
        Who::User(user)
    }
}

/// `ENOENT`, without a libc dependency (the same value on every Linux and BSD).
const fn libc_enoent() -> i32 {
    2
}

/// Whether the context's client has a user: `PING` through `RM_Call` as that user fails
/// with ENOTSUP when there is none (and only then; an ACL refusal of PING is EACCES).
fn has_user(ctx: &Context) -> bool {
    // SAFETY: the API table is filled once at load; "C" takes no arguments; the reply, if
    // any, is freed at once.
    unsafe {
        let (Some(call), Some(free)) = (raw::RedisModule_Call, raw::RedisModule_FreeCallReply)
        else {
            return false;
        };
        let reply = call(ctx.get_raw(), c"PING".as_ptr(), c"C".as_ptr());
        if reply.is_null() {
            return std::io::Error::last_os_error().raw_os_error() != Some(95); // ENOTSUP
        }
        free(reply);
        true
    }
}
