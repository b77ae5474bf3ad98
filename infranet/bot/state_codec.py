"""Bot state values as JSON: what `persistence.ChatStore` stores of user_data and
chat_data, and reads back as it was.

Handler modules keep JSON-friendly values in user_data/chat_data; dates, datetimes,
times, Decimals, tuples, sets and dicts with non-string keys are tagged and restored.
Anything else (an ORM object, say) is dropped with a warning rather than breaking the
save of everything else. Pure functions, apart from the rows they end up in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)


class NotStorable(TypeError):
    pass


def encode(value: Any) -> Any:
    """Plain data to JSON-able data, with tags for the types JSON lacks."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if isinstance(value, time):
        return {"__time__": value.isoformat()}
    if isinstance(value, Decimal):
        return {"__dec__": str(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"__set__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__map__": [[encode(k), encode(v)] for k, v in value.items()]}
    raise NotStorable(f"{type(value).__name__} cannot be stored in bot persistence")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "__dt__": datetime.fromisoformat,
    "__date__": date.fromisoformat,
    "__time__": time.fromisoformat,
    "__dec__": Decimal,
    "__tuple__": lambda v: tuple(decode(x) for x in v),
    "__set__": lambda v: {decode(x) for x in v},
    "__map__": lambda v: {_hashable(decode(k)): decode(x) for k, x in v},
}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag in _DECODERS:
                return _DECODERS[tag](inner)
        return {k: decode(v) for k, v in value.items()}
    return value


def encode_data(data: dict[Any, Any], where: str) -> dict[str, Any]:
    """Encode a user/chat/bot data dict key by key, dropping what cannot be stored."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        try:
            encoded_key = key if isinstance(key, str) else json.dumps(encode(key))
            out[encoded_key] = encode(value)
        except (NotStorable, TypeError) as exc:
            log.warning("bot persistence: %s[%r] not stored: %s", where, key, exc)
    return out
