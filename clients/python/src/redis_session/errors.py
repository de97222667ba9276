"""Typed exceptions for the error replies of the SESSION.* commands.

Every exception here is a :class:`SessionError`, which is a
:class:`redis.exceptions.ResponseError`: code that already catches redis-py's
``ResponseError`` keeps catching these, and ``except SessionError`` catches every error the
module replies. The message (``str(e)``, also ``e.message``) is the server's text as
redis-py gives it: without the leading ``ERR``, with any other code (``WRONGTYPE ...``)
kept. The texts are those of docs/errors.md.

An unknown, expired or malformed token is not an error: the store's methods return ``None``
(``False`` for ``destroy``). Cluster redirections (``MOVED``, ``ASK``, ``TRYAGAIN``,
``CLUSTERDOWN``) are left to redis-py, which follows or retries them.
"""

from __future__ import annotations

import re
from typing import Optional

from redis.exceptions import ClusterCrossSlotError
from redis.exceptions import OutOfMemoryError as _RedisOutOfMemoryError
from redis.exceptions import ResponseError

__all__ = [
    "SessionError",
    "InvalidDataError",
    "InvalidJSONError",
    "DataTooLargeError",
    "DataTooDeepError",
    "ReservedPropertyError",
    "InvalidIndexValueError",
    "InvalidOptionError",
    "SessionLimitError",
    "UnknownIndexError",
    "SecondaryIndexError",
    "WrongTypeError",
    "OutOfMemoryError",
    "CrossSlotError",
    "InternalError",
    "ModuleNotLoadedError",
    "translate",
]


class SessionError(ResponseError):
    """An error reply of a SESSION.* command: the base of every exception of this package.

    ``message`` is the server's text (``str(e)`` too); ``code`` the error code when the
    reply had one other than ``ERR`` (``WRONGTYPE``, ``OOM``, ``CROSSSLOT``), else ``None``.
    """

    message: str
    code: Optional[str]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidDataError(SessionError, ValueError):
    """``data`` or ``patch`` was refused: not a JSON object (``data must be a JSON object``),
    or one of the subclasses. Also raised before sending, with a message of this package,
    for a value JSON cannot hold (``NaN``, infinities) or data nested too deep to encode.
    It is a :class:`ValueError` too."""


class InvalidJSONError(InvalidDataError):
    """``data is not valid JSON: <detail>`` (data or a patch given as JSON text)."""


class DataTooLargeError(InvalidDataError):
    """``data is larger than max-data-bytes (<n> bytes)``: the data, the patch, or the data
    an UPDATE would produce. ``max_bytes`` is the limit the server named."""

    max_bytes: Optional[int]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.search(r"\((\d+) bytes\)", message)
        self.max_bytes = int(m.group(1)) if m else None


class DataTooDeepError(InvalidDataError):
    """``data is nested more than 100 levels deep``."""


class ReservedPropertyError(InvalidDataError):
    """``data must not contain the reserved property '<name>'`` (``token`` or
    ``sessionId``). ``property`` is that name."""

    property: Optional[str]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.search(r"reserved property '([^']*)'", message)
        self.property = m.group(1) if m else None


class InvalidIndexValueError(InvalidDataError):
    """``indexed property '<name>' must be a string, number, boolean or null``.
    ``property`` is that name."""

    property: Optional[str]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.match(r"indexed property '(.*)' must be", message)
        self.property = m.group(1) if m else None


class InvalidOptionError(SessionError):
    """An option was refused: ``TTL``/``MAXLIFETIME``/``MAXSESSIONS``/``GRACE`` not a whole
    number in range, an unknown option, an option given twice, ``MAXSESSIONS`` for data that
    joins no index."""


class SessionLimitError(SessionError):
    """``MAXSESSIONS <n> DENY: index '<key>' already has <live> live sessions; nothing was
    written``: ``create(..., max_sessions=n, deny=True)`` at the limit. ``limit``,
    ``index_key`` and ``live`` are the numbers and the key the server named."""

    limit: Optional[int]
    index_key: Optional[str]
    live: Optional[int]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.match(r"MAXSESSIONS (\d+) DENY: index '(.*)' already has (\d+) live", message)
        self.limit = int(m.group(1)) if m else None
        self.index_key = m.group(2) if m else None
        self.live = int(m.group(3)) if m else None


class UnknownIndexError(SessionError):
    """``property '<p>' is not a configured index (see session.indexes)``: LIST,
    REVOKEINDEX or REVOKEID of a property that is not in the ``indexes`` setting (names are
    case-sensitive). ``property`` is that name."""

    property: Optional[str]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.match(r"property '(.*)' is not a configured index", message)
        self.property = m.group(1) if m else None


class SecondaryIndexError(UnknownIndexError):
    """``in cluster mode only the first property of session.indexes ('<p>') can be revoked
    or listed: ...``: LIST or REVOKEINDEX of another property on a cluster."""


class WrongTypeError(SessionError):
    """``WRONGTYPE index key '<key>' holds a value that is not a set``; ``key`` is that
    key's name."""

    key: Optional[str]

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message, code)
        m = re.search(r"index key '(.*)' holds", message)
        self.key = m.group(1) if m else None


class OutOfMemoryError(SessionError, _RedisOutOfMemoryError):
    """``OOM command not allowed when used memory > 'maxmemory'.``: CREATE, UPDATE or
    ROTATE while Redis is over ``maxmemory``. Also a redis-py ``OutOfMemoryError``."""


class CrossSlotError(SessionError, ClusterCrossSlotError):
    """Cluster mode: a ROUTE key outside the session's slot, or an UPDATE whose patch would
    move the session to another slot (change its primary index value). Also a redis-py
    ``ClusterCrossSlotError``."""


class InternalError(SessionError):
    """``internal error in redis-session (see the server log); nothing was changed``."""


class ModuleNotLoadedError(SessionError):
    """``unknown command 'SESSION....'``: the server has not loaded the module."""


_DATA_PREFIXES = (
    ("data is not valid JSON", InvalidJSONError),
    ("data must be a JSON object", InvalidDataError),
    ("data is larger than max-data-bytes", DataTooLargeError),
    ("data is nested more than", DataTooDeepError),
    ("data must not contain the reserved property", ReservedPropertyError),
    ("indexed property '", InvalidIndexValueError),
    ("TTL must be", InvalidOptionError),
    ("MAXLIFETIME must be", InvalidOptionError),
    ("MAXSESSIONS must be", InvalidOptionError),
    ("MAXSESSIONS needs", InvalidOptionError),
    ("GRACE must be", InvalidOptionError),
    ("ROUTE needs", InvalidOptionError),
    ("unknown option '", InvalidOptionError),
    ("in cluster mode only the first property", SecondaryIndexError),
    ("internal error in redis-session", InternalError),
)


def translate(error: ResponseError) -> Optional[SessionError]:
    """The typed exception for an error reply of a SESSION.* command, or ``None`` when the
    reply is not one of the module's (a ``NOPERM``, a ``READONLY``, ...), which the caller
    then raises unchanged."""
    if isinstance(error, SessionError):
        return error
    message = str(error)
    text = message[4:] if message.startswith("ERR ") else message
    if isinstance(error, _RedisOutOfMemoryError) or text.startswith("OOM "):
        return OutOfMemoryError(message, "OOM")
    if isinstance(error, ClusterCrossSlotError) or text.startswith("CROSSSLOT "):
        return CrossSlotError(message, "CROSSSLOT")
    if text.startswith("WRONGTYPE"):
        return WrongTypeError(message, "WRONGTYPE")
    for prefix, kind in _DATA_PREFIXES:
        if text.startswith(prefix):
            return kind(message)
    if re.match(r"MAXSESSIONS \d+ DENY:", text):
        return SessionLimitError(message)
    if re.match(r"option '.*' given twice", text):
        return InvalidOptionError(message)
    if re.match(r"property '.*' is not a configured index", text):
        return UnknownIndexError(message)
    if text.lower().startswith("unknown command 'session."):
        return ModuleNotLoadedError(message)
    if text.startswith("wrong number of arguments for 'session."):
        return SessionError(message)
    return None
