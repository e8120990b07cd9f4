"""RFC 8785 (JCS) bytes at C speed: :func:`dumps` gives exactly ``rfc8785.dumps``'s bytes.

The fast path is orjson with sorted keys and JavaScript's integer limit
(``OPT_SORT_KEYS | OPT_STRICT_INTEGER``). Within the domain where its output is JCS, proven
equal by the differential test tests/test_fast_canonical.py, it is used; anything outside goes
through ``rfc8785`` itself, so the bytes, and the errors, are that package's:

- the domain: ``dict`` (string keys), ``list``, ``tuple``, ``str``, ``int``, ``bool`` and
  ``None``, exactly those types (no subclasses, no floats, no other types orjson would accept
  and ``rfc8785`` refuses, such as UUIDs or datetimes), with no key holding a character outside
  the Basic Multilingual Plane;
- why: orjson sorts keys by code point and RFC 8785 by UTF-16 code unit, which agree within the
  Basic Multilingual Plane only; its floats are not ECMAScript's; its strings escape exactly
  JCS's characters (``"``, ``\\``, U+0000 to U+001F, with the short forms ``\\b \\f \\n \\r
  \\t`` and lowercase ``\\u00xx``) and leave everything else, U+2028 and U+2029 included, as
  UTF-8;
- orjson refuses what JCS has no form for in that domain (an integer beyond ±(2**53 - 1), a lone
  surrogate, nesting deeper than 255): those go to ``rfc8785`` too, which raises its own
  ``CanonicalizationError`` (or, for a lone surrogate in a key, ``UnicodeEncodeError``).
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_SCALARS = frozenset((str, int, bool, type(None)))
_BMP_END = "\uffff"


def dumps(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (what ``rfc8785.dumps`` returns, or raises)."""
    try:
        fast = plain(value)
    except RecursionError:
        fast = False
    if fast:
        try:
            return orjson.dumps(value, option=OPTIONS)
        except orjson.JSONEncodeError:
            pass  # beyond JCS's integers, a lone surrogate, too deep: rfc8785 says what
    return rfc8785.dumps(value)


def dumps_text(value: Any) -> str:
    """:func:`dumps` as text."""
    return dumps(value).decode("utf-8")


def plain(value: Any) -> bool:
    """Whether ``value`` lies in the domain where orjson's output is JCS (see the module)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and key and max(key) > _BMP_END):
                return False
            if type(item) not in _SCALARS and not plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) in _SCALARS or plain(item) for item in value)
    return False
