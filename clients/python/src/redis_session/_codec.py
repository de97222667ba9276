"""JSON in and out with exact numbers, index values, cluster placement (no I/O here)."""

from __future__ import annotations

import binascii
import hashlib
import itertools
import json
import re
import secrets
import threading
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import InvalidDataError

#: What ``create`` and ``update`` take: a mapping (encoded here), or JSON text sent as it is.
Data = Union[Mapping[str, Any], str, bytes]

#: A value argument of LIST, REVOKEINDEX, REVOKEID: as the index key writes it.
IndexValue = Union[str, bytes, int, float, Decimal]

SLOTS = 16384
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class _Number(str):
    """The text of a JSON number read from JSON text given by the caller (for routing)."""


def decimal_text(value: Decimal) -> str:
    """A Decimal as a JSON number with the same digits and exponent, in the form the module
    writes it back (lower-case ``e``, the exponent's sign always there): ``0.10``,
    ``1e+5``."""
    if not value.is_finite():
        raise InvalidDataError(f"{value} cannot be sent as JSON (not a finite number)")
    return str(value).replace("E", "e")


def _number_text(text: str) -> str:
    """A JSON number's text as the module writes it: ``1E5`` -> ``1e+5``, ``2.5E-3`` ->
    ``2.5e-3``; digits kept."""
    m = re.match(r"^([^eE]*)[eE]([+-]?)(.*)$", text)
    if not m:
        return text
    return f"{m.group(1)}e{m.group(2) or '+'}{m.group(3)}"


def dumps(data: Any) -> str:
    """Compact JSON of ``data`` (a mapping), non-ASCII kept, Decimal numbers written with their
    exact digits. Raises InvalidDataError for NaN, infinities or nesting too deep to encode,
    TypeError for values JSON has no form for."""
    nonce = secrets.token_hex(8)
    opening, closing = f"\x01redis-session-decimal-{nonce}:", f":{nonce}\x01"
    used = False

    def default(value: Any) -> Any:
        nonlocal used
        if isinstance(value, Decimal):
            used = True
            return opening + decimal_text(value) + closing
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, (tuple, list)):
            return list(value)
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    try:
        text = json.dumps(
            data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default
        )
    except RecursionError:
        raise InvalidDataError("data is nested too deep to encode as JSON") from None
    except ValueError as e:
        if isinstance(e, InvalidDataError):
            raise
        raise InvalidDataError(f"data cannot be sent as JSON: {e}") from e
    if used:
        # json.dumps wrote each placeholder as a string: `"\u0001...:<digits>:...\u0001"`.
        pattern = re.escape(json.dumps(opening)[:-1]) + r"([^\"\\]*)" + re.escape(
            json.dumps(closing)[1:]
        )
        text = re.sub(pattern, lambda m: m.group(1), text)
    return text


def loads(text: Union[str, bytes], parse_float: Callable[[str], Any]) -> Any:
    """Parses a reply: integers as ints whatever their size, other numbers by
    ``parse_float`` (Decimal by default)."""
    return json.loads(text, parse_float=parse_float)


def encode_data(data: Data) -> Tuple[Union[str, bytes], Optional[Mapping[str, Any]]]:
    """The argument to send for ``data``, and the mapping to find its index values in (None
    when JSON text was given that is not an object)."""
    if isinstance(data, (str, bytes)):
        try:
            parsed = json.loads(data, parse_float=_Number, parse_int=_Number)
        except (ValueError, RecursionError):
            return data, None
        return data, parsed if isinstance(parsed, dict) else None
    if not isinstance(data, Mapping):
        raise TypeError(
            f"data must be a mapping or JSON text (str or bytes), not {type(data).__name__}"
        )
    return dumps(data), data


def index_text(value: Any) -> Optional[str]:
    """The text a data value takes in an index key (docs/storage.md): a string's raw text, a
    number's or boolean's compact JSON; None for what is not indexed."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Number):
        return _number_text(str(value))
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    return None


def value_argument(value: IndexValue) -> Union[str, bytes]:
    """The value argument of LIST, REVOKEINDEX and REVOKEID for a value as the data holds it:
    ``150`` -> ``"150"``, ``True`` -> ``"true"``, ``Decimal("1.50")`` -> ``"1.50"``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise InvalidDataError(f"{value!r} is no index value (not a finite number)")
    text = index_text(value)
    if text is None:
        raise TypeError(f"an index value is a str, number or bool, not {type(value).__name__}")
    return text


def primary_value(
    data: Optional[Mapping[str, Any]], indexes: Sequence[str]
) -> Optional[Tuple[str, str]]:
    """The property and text of the session's primary index value: the first property of
    ``indexes`` the data has with a string, number or boolean value (docs/cluster.md)."""
    if data is None:
        return None
    for name in indexes:
        if name in data:
            value = data[name]
            text = index_text(value)
            if text is not None:
                return name, text
            if value is not None:
                # An object or an array: the server refuses the data; no route.
                return None
    return None


def key_slot(key: Union[str, bytes]) -> int:
    """The hash slot of a key name, as CLUSTER KEYSLOT gives it."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return binascii.crc_hqx(raw, 0) % SLOTS


_tags: List[str] = []
_tags_lock = threading.Lock()


def slot_tag(slot: int) -> str:
    """The slot tag the module gives ``slot``: the shortest string of letters and digits
    (digits, then upper case, then lower case, shorter first) whose own slot it is."""
    with _tags_lock:
        if not _tags:
            tags = [""] * SLOTS
            missing = SLOTS
            for length in (1, 2, 3, 4):
                for chars in itertools.product(_ALPHANUMERIC, repeat=length):
                    name = "".join(chars)
                    s = binascii.crc_hqx(name.encode("ascii"), 0) % SLOTS
                    if not tags[s]:
                        tags[s] = name
                        missing -= 1
                        if not missing:
                            break
                if not missing:
                    break
            _tags.extend(tags)
    return _tags[slot % SLOTS]


def cluster_index_key(prefix: str, prop: str, value: str) -> str:
    """The name of an index key in cluster mode (docs/cluster.md): ``user_id:{150}``; for an
    empty value or one holding a brace, ``user_id:{<slot tag of the value>}:<value>``."""
    if value and "{" not in value and "}" not in value:
        return f"{prefix}{prop}:{{{value}}}"
    return f"{prefix}{prop}:{{{slot_tag(key_slot(value))}}}:{value}"


_TAGGED = re.compile(r"^\{[0-9A-Za-z]{1,4}\}")


def session_id(token: Union[str, bytes]) -> str:
    """The identifier SESSION.LIST shows for the session of ``token``, which REVOKEID takes:
    the token's slot tag (cluster mode), then the hex SHA-256 of the whole token."""
    raw = token.encode("utf-8") if isinstance(token, str) else token
    text = raw.decode("utf-8", "replace")
    m = _TAGGED.match(text)
    return (m.group(0) if m else "") + hashlib.sha256(raw).hexdigest()


def option(name: str, value: Any) -> Union[str, bytes]:
    """A whole-number option's argument: an int, or text the server checks."""
    if isinstance(value, bool) or not isinstance(value, (int, str, bytes)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return str(value) if isinstance(value, int) else value


def create_options(
    ttl: Optional[Union[int, str]],
    max_lifetime: Optional[Union[int, str]],
    max_sessions: Optional[Union[int, str]],
    deny: bool,
) -> List[Union[str, bytes]]:
    args: List[Union[str, bytes]] = []
    if ttl is not None:
        args += ["TTL", option("ttl", ttl)]
    if max_lifetime is not None:
        args += ["MAXLIFETIME", option("max_lifetime", max_lifetime)]
    if max_sessions is not None:
        args += ["MAXSESSIONS", option("max_sessions", max_sessions)]
    if deny:
        args.append("DENY")
    return args


def text_of(value: Union[str, bytes]) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_index_config(reply: Any) -> Tuple[Tuple[str, ...], str]:
    """``indexes`` and ``index-prefix`` from a CONFIG GET session.index* reply (a dict, or
    a flat list from some clients)."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        flat = list(reply or [])
        items = list(zip(flat[0::2], flat[1::2]))
    config: Dict[str, str] = {text_of(k).lower(): text_of(v) for k, v in items}
    if "session.indexes" not in config:
        raise RuntimeError(
            "CONFIG GET session.indexes replied nothing: is the module loaded? "
            "(or pass indexes= to the store)"
        )
    names = tuple(n.strip() for n in config["session.indexes"].split(",") if n.strip())
    return names, config.get("session.index-prefix", "")
