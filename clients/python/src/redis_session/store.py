"""SessionStore (redis.Redis, redis.cluster.RedisCluster) and AsyncSessionStore (their
asyncio forms): one method per SESSION.* command."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import RedisClusterException, ResponseError

from . import _codec
from ._codec import Data, IndexValue
from .errors import CrossSlotError, translate

__all__ = ["SessionStore", "AsyncSessionStore", "Session", "Token", "Option"]

#: Session data as a dict: JSON objects are dicts, arrays lists, integers ints (any size),
#: other numbers ``parse_float`` of their text (Decimal by default).
Session = Dict[str, Any]
#: A token as CREATE or ROTATE replied it (``str``; ``bytes`` are sent as they are).
Token = Union[str, bytes]
#: A whole-number option: an int (text is sent as it is, for the server to check).
Option = Union[int, str]

_SyncClient = Union[redis.Redis, redis.cluster.RedisCluster]
_AsyncClient = Union[redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster]


class _Base:
    """What both stores share: settings, arguments, replies."""

    def __init__(
        self,
        client: Any,
        cluster: bool,
        indexes: Optional[Sequence[str]],
        index_prefix: Optional[str],
        parse_float: Callable[[str], Any],
    ) -> None:
        if isinstance(indexes, (str, bytes)):
            raise TypeError("indexes is a sequence of property names, e.g. ['user_id']")
        self._client = client
        self._cluster = cluster
        self._fixed = indexes is not None
        self._indexes: Optional[Tuple[str, ...]] = tuple(indexes) if indexes is not None else None
        self._index_prefix = index_prefix if index_prefix is not None else ""
        self._prefix_given = index_prefix is not None
        self._parse_float = parse_float

    @property
    def client(self) -> Any:
        """The redis-py client the store sends its commands through."""
        return self._client

    @property
    def is_cluster(self) -> bool:
        """True for a RedisCluster client: CREATE is then routed by its primary index key."""
        return self._cluster

    def _set_config(self, reply: Any) -> Tuple[Tuple[str, ...], str]:
        indexes, prefix = _codec.parse_index_config(reply)
        self._indexes = indexes
        if not self._prefix_given:
            self._index_prefix = prefix
        return indexes, self._index_prefix

    @staticmethod
    def _route(mapping: Any, indexes: Sequence[str], prefix: str) -> Optional[str]:
        """CREATE's ROUTE key on a cluster: the primary index key of the data, or None when
        the data has no primary index value."""
        primary = _codec.primary_value(mapping, indexes)
        if primary is None:
            return None
        return _codec.cluster_index_key(prefix, primary[0], primary[1])

    def _session(self, reply: Any) -> Session:
        value = _codec.loads(reply, self._parse_float)
        return cast(Session, value)

    def _maybe(self, reply: Any) -> Optional[Session]:
        return None if reply is None else self._session(reply)

    def _list(self, reply: Any) -> List[Session]:
        return [self._session(item) for item in reply or []]

    @staticmethod
    def _raise(error: ResponseError) -> None:
        typed = translate(error)
        if typed is None:
            raise error
        raise typed from error

    @staticmethod
    def _create_args(
        data: Data,
        ttl: Optional[Option],
        max_lifetime: Optional[Option],
        max_sessions: Optional[Option],
        deny: bool,
    ) -> Tuple[List[Union[str, bytes]], Any]:
        text, mapping = _codec.encode_data(data)
        args: List[Union[str, bytes]] = ["SESSION.CREATE", text]
        args += _codec.create_options(ttl, max_lifetime, max_sessions, deny)
        return args, mapping

    @staticmethod
    def _patch_arg(patch: Data) -> Union[str, bytes]:
        return _codec.encode_data(patch)[0]

    @staticmethod
    def _rotate_args(token: Token, grace: Optional[Option]) -> List[Union[str, bytes]]:
        args: List[Union[str, bytes]] = ["SESSION.ROTATE", token]
        if grace is not None:
            args += ["GRACE", _codec.option("grace", grace)]
        return args

    @staticmethod
    def _revoke_args(
        prop: str, value: IndexValue, except_token: Optional[Token]
    ) -> List[Union[str, bytes]]:
        args: List[Union[str, bytes]] = ["SESSION.REVOKEINDEX", prop, _codec.value_argument(value)]
        if except_token is not None:
            args += ["EXCEPT", except_token]
        return args


class SessionStore(_Base):
    """Sessions of the redis-session module through a redis-py client.

    ``client`` is a ``redis.Redis`` or a ``redis.cluster.RedisCluster``, with
    ``decode_responses`` True or False. On a cluster, every command goes to the node of its
    key (docs/cluster.md): token commands by the token and LIST, REVOKEINDEX, REVOKEID by
    the value (redis-py reads both from COMMAND INFO), and CREATE with ``ROUTE <primary
    index key>``, for which the store needs the ``indexes`` setting: pass ``indexes`` (and
    ``index_prefix`` when not empty), or the store reads ``CONFIG GET session.index*`` from
    the cluster once, at the first CREATE, and again when a CREATE answers CROSSSLOT (the
    setting changed since).

    ``parse_float`` makes the numbers with a fraction or an exponent (``Decimal`` by
    default, which keeps their digits); integers are ints whatever their size.
    """

    def __init__(
        self,
        client: _SyncClient,
        *,
        indexes: Optional[Sequence[str]] = None,
        index_prefix: Optional[str] = None,
        parse_float: Callable[[str], Any] = Decimal,
    ) -> None:
        if isinstance(client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
            raise TypeError("an asyncio client: use AsyncSessionStore")
        if not isinstance(client, (redis.Redis, redis.cluster.RedisCluster)):
            raise TypeError(
                f"client must be a redis.Redis or a redis.cluster.RedisCluster, "
                f"not {type(client).__name__}"
            )
        cluster = isinstance(client, redis.cluster.RedisCluster)
        super().__init__(client, cluster, indexes, index_prefix, parse_float)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._client.execute_command(*args, **kwargs)
        except ResponseError as e:
            self._raise(e)

    def _index_config(self, refresh: bool = False) -> Tuple[Tuple[str, ...], str]:
        if self._indexes is not None and not refresh:
            return self._indexes, self._index_prefix
        rc: Any = self._client
        reply = rc.execute_command(
            "CONFIG", "GET", "session.index*", target_nodes=rc.get_default_node()
        )
        return self._set_config(reply)

    def refresh_indexes(self) -> Tuple[Tuple[str, ...], str]:
        """Reads the ``indexes`` and ``index-prefix`` settings again (cluster CREATE routing)
        and returns them."""
        return self._index_config(refresh=True) if self._cluster else (
            _codec.parse_index_config(self._client.config_get("session.index*"))
        )

    def create(
        self,
        data: Data,
        *,
        ttl: Optional[Option] = None,
        max_lifetime: Optional[Option] = None,
        max_sessions: Optional[Option] = None,
        deny: bool = False,
    ) -> Session:
        """SESSION.CREATE: stores a new session and returns its data with ``token`` first and
        ``createdAt`` (unless ``data`` has its own). ``data`` is a mapping, or JSON text sent
        as it is. ``ttl`` (idle timeout), ``max_lifetime`` (absolute cap, 0: none),
        ``max_sessions`` (at most that many live sessions for the primary index value; the
        ones nearest their end are ended first) and ``deny`` (refuse instead:
        SessionLimitError) are the command's options."""
        args, mapping = self._create_args(data, ttl, max_lifetime, max_sessions, deny)
        if not self._cluster:
            return self._session(self._call(*args))
        rc: Any = self._client
        for attempt in (1, 2):
            indexes, prefix = self._index_config(refresh=attempt == 2)
            route = self._route(mapping, indexes, prefix)
            try:
                if route is None:
                    reply = self._call(*args, target_nodes=rc.get_default_node())
                else:
                    reply = self._call(*args, "ROUTE", route, target_nodes=rc.get_node_from_key(route))
                return self._session(reply)
            except (CrossSlotError, RedisClusterException):
                # Routed by a stale `indexes` setting? Read it again, once; nothing was written.
                if attempt == 2 or self._fixed:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def validate(self, token: Token) -> Optional[Session]:
        """SESSION.VALIDATE: the session's data, prolonged; None for an unknown, expired,
        revoked or malformed token."""
        return self._maybe(self._call("SESSION.VALIDATE", token))

    def get(self, token: Token) -> Optional[Session]:
        """SESSION.GET: the session's data without prolonging it (runs on replicas); None
        for an unknown token."""
        return self._maybe(self._call("SESSION.GET", token))

    def update(self, token: Token, patch: Data) -> Optional[Session]:
        """SESSION.UPDATE: applies ``patch`` as a JSON Merge Patch (``None`` removes a
        property), prolongs, and returns the new data; None for an unknown token."""
        return self._maybe(self._call("SESSION.UPDATE", token, self._patch_arg(patch)))

    def rotate(self, token: Token, *, grace: Optional[Option] = None) -> Optional[Session]:
        """SESSION.ROTATE: a new token for the session (returned with its data, as
        ``create``); the old one ends at once, or reads read-only for ``grace`` seconds
        (1 .. 300). None for an unknown token."""
        return self._maybe(self._call(*self._rotate_args(token, grace)))

    def destroy(self, token: Token) -> bool:
        """SESSION.DESTROY: True when a session was ended, False when there was none."""
        return bool(self._call("SESSION.DESTROY", token))

    def revoke_index(
        self, property: str, value: IndexValue, *, except_token: Optional[Token] = None
    ) -> int:
        """SESSION.REVOKEINDEX: ends every session of ``property`` = ``value`` (but the one
        of ``except_token``) and returns how many."""
        return int(self._call(*self._revoke_args(property, value, except_token)))

    def list(self, property: str, value: IndexValue) -> List[Session]:
        """SESSION.LIST: the live sessions of ``property`` = ``value``, each with
        ``sessionId`` (and ``token``, unless the server runs ``token-hash sha256``)."""
        return self._list(self._call("SESSION.LIST", property, _codec.value_argument(value)))

    def revoke_id(self, property: str, value: IndexValue, session_id: str) -> bool:
        """SESSION.REVOKEID: ends the session of that index whose ``sessionId`` (from
        ``list``, or :func:`redis_session.session_id` of its token) is given; True when it
        ended one."""
        return bool(
            self._call("SESSION.REVOKEID", property, _codec.value_argument(value), session_id)
        )


class AsyncSessionStore(_Base):
    """:class:`SessionStore` for ``redis.asyncio.Redis`` and
    ``redis.asyncio.cluster.RedisCluster``: the same methods, as coroutines."""

    def __init__(
        self,
        client: _AsyncClient,
        *,
        indexes: Optional[Sequence[str]] = None,
        index_prefix: Optional[str] = None,
        parse_float: Callable[[str], Any] = Decimal,
    ) -> None:
        if not isinstance(client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
            raise TypeError(
                "client must be a redis.asyncio.Redis or a redis.asyncio.cluster.RedisCluster"
                f" (for {type(client).__name__}, use SessionStore)"
            )
        cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
        super().__init__(client, cluster, indexes, index_prefix, parse_float)

    async def _call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._client.execute_command(*args, **kwargs)
        except ResponseError as e:
            self._raise(e)

    async def _cluster_client(self) -> Any:
        rc: Any = self._client
        await rc.initialize()
        return rc

    async def _index_config(self, refresh: bool = False) -> Tuple[Tuple[str, ...], str]:
        if self._indexes is not None and not refresh:
            return self._indexes, self._index_prefix
        rc = await self._cluster_client()
        reply = await rc.execute_command(
            "CONFIG", "GET", "session.index*", target_nodes=rc.get_default_node()
        )
        return self._set_config(reply)

    async def refresh_indexes(self) -> Tuple[Tuple[str, ...], str]:
        """As :meth:`SessionStore.refresh_indexes`."""
        if self._cluster:
            return await self._index_config(refresh=True)
        return _codec.parse_index_config(await self._client.config_get("session.index*"))

    async def create(
        self,
        data: Data,
        *,
        ttl: Optional[Option] = None,
        max_lifetime: Optional[Option] = None,
        max_sessions: Optional[Option] = None,
        deny: bool = False,
    ) -> Session:
        """As :meth:`SessionStore.create`."""
        args, mapping = self._create_args(data, ttl, max_lifetime, max_sessions, deny)
        if not self._cluster:
            return self._session(await self._call(*args))
        for attempt in (1, 2):
            indexes, prefix = await self._index_config(refresh=attempt == 2)
            route = self._route(mapping, indexes, prefix)
            rc = await self._cluster_client()
            try:
                if route is None:
                    reply = await self._call(*args, target_nodes=rc.get_default_node())
                else:
                    node = rc.get_node_from_key(route)
                    reply = await self._call(*args, "ROUTE", route, target_nodes=node)
                return self._session(reply)
            except (CrossSlotError, RedisClusterException):
                if attempt == 2 or self._fixed:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def validate(self, token: Token) -> Optional[Session]:
        """As :meth:`SessionStore.validate`."""
        return self._maybe(await self._call("SESSION.VALIDATE", token))

    async def get(self, token: Token) -> Optional[Session]:
        """As :meth:`SessionStore.get`."""
        return self._maybe(await self._call("SESSION.GET", token))

    async def update(self, token: Token, patch: Data) -> Optional[Session]:
        """As :meth:`SessionStore.update`."""
        return self._maybe(await self._call("SESSION.UPDATE", token, self._patch_arg(patch)))

    async def rotate(self, token: Token, *, grace: Optional[Option] = None) -> Optional[Session]:
        """As :meth:`SessionStore.rotate`."""
        return self._maybe(await self._call(*self._rotate_args(token, grace)))

    async def destroy(self, token: Token) -> bool:
        """As :meth:`SessionStore.destroy`."""
        return bool(await self._call("SESSION.DESTROY", token))

    async def revoke_index(
        self, property: str, value: IndexValue, *, except_token: Optional[Token] = None
    ) -> int:
        """As :meth:`SessionStore.revoke_index`."""
        return int(await self._call(*self._revoke_args(property, value, except_token)))

    async def list(self, property: str, value: IndexValue) -> List[Session]:
        """As :meth:`SessionStore.list`."""
        return self._list(
            await self._call("SESSION.LIST", property, _codec.value_argument(value))
        )

    async def revoke_id(self, property: str, value: IndexValue, session_id: str) -> bool:
        """As :meth:`SessionStore.revoke_id`."""
        return bool(
            await self._call(
                "SESSION.REVOKEID", property, _codec.value_argument(value), session_id
            )
        )
