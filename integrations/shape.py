"""Reading JSON answers: strict parsing, shape checks (a RemoteProtocolError naming the field),
and the human words of error bodies."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.errors import RemoteProtocolError

_MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """The leaves of a JSON value by path (``items[0].amount``); an empty object or list is a
    leaf."""
    if isinstance(value, Mapping) and value:
        leaves: dict[str, Any] = {}
        for key, item in value.items():
            leaves.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return leaves
    if isinstance(value, list) and value:
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(flatten(item, f"{prefix}[{index}]"))
        return leaves
    return {prefix or "(value)": value}


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Shape:
    """Reads fields out of one answer; ``fail(detail)`` builds the error to raise."""

    def __init__(self, fail: Callable[[str], RemoteProtocolError]) -> None:
        self.fail = fail

    def mapping(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} should be an object, got {type_name(value)}")
        return value

    def array(self, value: Any, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{what} should be a list, got {type_name(value)}")
        return value

    def _get(self, obj: dict[str, Any], key: str, optional: bool) -> Any:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if optional:
                return None
            raise self.fail(f"field {key!r} is missing")
        return value

    def field(self, obj: dict[str, Any], key: str) -> Any:
        """Any present, non-null value."""
        return self._get(obj, key, False)

    def integer(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> int | None:
        value = self._get(obj, key, optional)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise self.fail(f"field {key!r} should be an integer, got {type_name(value)}")
        return value

    def text(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
        value = self._get(obj, key, optional)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"field {key!r} should be a string, got {type_name(value)}")
        return value

    def req_text(self, obj: dict[str, Any], key: str) -> str:
        value = self.text(obj, key)
        assert value is not None
        return value

    def req_int(self, obj: dict[str, Any], key: str) -> int:
        value = self.integer(obj, key)
        assert value is not None
        return value

    def boolean(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> bool | None:
        value = self._get(obj, key, optional)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"field {key!r} should be true or false, got {type_name(value)}")
        return value

    def number(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> float | None:
        value = self._get(obj, key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"field {key!r} should be a number, got {type_name(value)}")
        return float(value)

    def choice(
        self, obj: dict[str, Any], key: str, allowed: Collection[str], *, optional: bool = False
    ) -> str | None:
        value = self.text(obj, key, optional=optional)
        if value is not None and value not in allowed:
            raise self.fail(f"field {key!r} has an undocumented value")
        return value

    def date(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
        value = self.text(obj, key, optional=optional)
        if value is not None:
            try:
                ok = len(value) == 10 and bool(dt.date.fromisoformat(value))
            except ValueError:
                ok = False
            if not ok:
                raise self.fail(f"field {key!r} should be a date YYYY-MM-DD")
        return value

    def timestamp(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
        value = self.text(obj, key, optional=optional)
        if value is not None:
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(f"field {key!r} should be an ISO 8601 timestamp") from None
        return value

    def money(self, obj: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
        value = self.text(obj, key, optional=optional)
        if value is not None:
            try:
                ok = Decimal(value).is_finite()
            except (InvalidOperation, ValueError):
                ok = False
            if not ok:
                raise self.fail(f"field {key!r} should be an amount as a decimal string")
        return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN/Infinity), and I-JSON (RFC 7493) as the audit log's canonical form
    needs it: no integer beyond 2^53, no number that overflows, no lone surrogate escape. Raises
    ValueError on anything else, before any of it can reach a step's audit entry."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    try:
        value = json.loads(raw, parse_constant=no_constants)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    _check_i_json(value)
    return value


_EXACT = 2**53 - 1


def _check_i_json(value: Any) -> None:
    pending = [value]
    while pending:  # iterative: json.loads already bounded the depth
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text that is not Unicode (a lone surrogate escape)") from None
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not -_EXACT <= item <= _EXACT:
            raise ValueError("an integer beyond 2^53, which JSON cannot carry exactly")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("a number too large for JSON")


_WORD_KEYS = ("message", "Message", "error_description", "Detail", "detail", "error", "errors",
              "reason", "Title")


def remote_words(body: Any, depth: int = 0) -> str | None:
    """The human words of a generic error body: the first ``message``-like string found."""
    if depth > 4:
        return None
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        found = [w for w in (remote_words(item, depth + 1) for item in body[:5]) if w]
        return "; ".join(found) or None
    if isinstance(body, dict):
        for key in _WORD_KEYS:
            if key in body:
                words = remote_words(body[key], depth + 1)
                if words:
                    return words
    return None

