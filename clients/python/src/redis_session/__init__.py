"""redis-session for Python: the SESSION.* commands of the redis-session Redis module on
redis-py, sync and asyncio, standalone and Redis Cluster.

    >>> store = SessionStore(redis.Redis())
    >>> session = store.create({"user_id": 150}, ttl=3600)
    >>> store.validate(session["token"])
    {'user_id': 150, 'createdAt': '...'}
"""

from ._codec import Data, IndexValue, cluster_index_key, key_slot, slot_tag
from ._codec import session_id
from .errors import (
    CrossSlotError,
    DataTooDeepError,
    DataTooLargeError,
    InternalError,
    InvalidDataError,
    InvalidIndexValueError,
    InvalidJSONError,
    InvalidOptionError,
    ModuleNotLoadedError,
    OutOfMemoryError,
    ReservedPropertyError,
    SecondaryIndexError,
    SessionError,
    SessionLimitError,
    UnknownIndexError,
    WrongTypeError,
)
from .store import AsyncSessionStore, Option, Session, SessionStore, Token

__version__ = "0.1.0"

__all__ = [
    "SessionStore",
    "AsyncSessionStore",
    "Session",
    "Token",
    "Option",
    "Data",
    "IndexValue",
    "session_id",
    "cluster_index_key",
    "key_slot",
    "slot_tag",
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
]
