"""The entry's wire form and its hash: lowercase hex SHA-256 of the RFC 8785 (JCS) bytes of the
entry without its ``hash`` field.

Two entry formats share one chain (spec/audit.md):

- **Format 1**, every entry written before the generic engine: the keys of :data:`FIELDS`, in
  that order on the wire (JSON, JSONL), and no ``format`` key.
- **Format 2**: :data:`FIELDS` plus ``format`` (the integer 2), ``subject_type`` and
  ``subject_id`` (strings), in the wire order of :data:`FIELDS_2`: ``format`` right after
  ``workflow_version``, ``subject_type`` and ``subject_id`` right after ``project_id`` (before
  ``invoice_id`` and ``erp_bill_id``, null when the subject is not an invoice).

Key order on the wire is for readers only: JCS sorts keys, so the hash does not depend on it.
An entry is hashed exactly as it was written: a format-1 entry without the three keys (never as
nulls), a format-2 entry with them.

Stored rows hold their values in :data:`COLUMNS` order: :data:`FIELDS`, then
:data:`FORMAT_2_KEYS` (NULL on format-1 entries). A row whose ``format`` is NULL is format 1 and
must have NULL subject columns; one whose ``format`` is 2 is format 2; anything else is not an
entry relink can read (:class:`FormatError`).

Evidence is stored as its JCS text, so the bytes stored (and exported) are the bytes hashed:
:func:`row_hash` hashes a stored row with its evidence text spliced in unchanged, and it matches
the row's ``hash`` only if that text is, byte for byte, the JCS encoding the writer hashed (the
other fields are scalars, so no other split of the hashed bytes exists). Before schema 0002 the
writer stored sorted compact ``json.dumps`` text (:func:`legacy_evidence_text`), which is JCS
except for floats and for keys outside the Basic Multilingual Plane.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

import orjson
import rfc8785

from audit import canonical

GENESIS = "0" * 64

FIELDS = (
    "seq",
    "recorded_at",
    "workflow_id",
    "workflow",
    "workflow_version",
    "company_id",
    "project_id",
    "invoice_id",
    "erp_bill_id",
    "actor_id",
    "actor_login",
    "actor_name",
    "action",
    "from_state",
    "to_state",
    "outcome",
    "message",
    "reason",
    "evidence",
    "prev_hash",
    "hash",
)
"""Format 1: the keys of an entry without ``format``, in wire order (never change it: it is the
key order of every format-1 line ever exported)."""
FORMAT_2 = 2
FORMAT_2_KEYS = ("format", "subject_type", "subject_id")
FIELDS_2 = (
    "seq",
    "recorded_at",
    "workflow_id",
    "workflow",
    "workflow_version",
    "format",
    "company_id",
    "project_id",
    "subject_type",
    "subject_id",
    "invoice_id",
    "erp_bill_id",
    *FIELDS[FIELDS.index("actor_id") :],
)
"""Format 2: the keys of an entry with ``format`` 2, in wire order."""
COLUMNS = FIELDS + FORMAT_2_KEYS
"""The stored row's values, in order: what :func:`audit.log.rows` yields, the CSV columns."""
OUTCOMES = ("in_flight", "succeeded", "refused", "failed")


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry (its ``hash`` field, if present, is left out)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(canonical.dumps(body)).hexdigest()


def evidence_text(evidence: dict[str, Any]) -> str:
    """How evidence is stored: its JCS text, the very bytes its entry's hash covers."""
    return canonical.dumps(evidence).decode("utf-8")


def legacy_evidence_text(evidence: dict[str, Any]) -> str:
    """How schema 0001's writer stored evidence: sorted compact JSON (JCS for most evidence)."""
    return json.dumps(evidence, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class EvidenceError(ValueError):
    """Stored evidence text that is not one unambiguous JSON object; ``str()`` says why."""


class DuplicateKey(ValueError):
    """A JSON object that holds a key twice: readers would disagree on its value."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {json.dumps(key[:40])} twice")
        self.key = key


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: DuplicateKey for a key held twice."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


def parse_evidence(text: Any) -> dict[str, Any]:
    """Stored evidence text as an object; EvidenceError if it is not JSON, not an object, holds
    a key twice in any object (readers would disagree on its value), or a non-finite number."""
    if not isinstance(text, str):
        raise EvidenceError("evidence is not JSON text (the entry was altered)")
    try:
        value = json.loads(
            text, object_pairs_hook=unique_object, parse_constant=_constant, parse_float=_finite
        )
    except DuplicateKey as exc:
        raise EvidenceError(f"evidence holds {exc} (the entry was altered)") from None
    except EvidenceError:
        raise
    except (ValueError, RecursionError):
        raise EvidenceError("evidence is not valid JSON (the entry was altered)") from None
    if not isinstance(value, dict):
        raise EvidenceError("evidence is not a JSON object (the entry was altered)")
    return value


def _constant(name: str) -> Any:
    raise EvidenceError(f"evidence holds {name}, which is not JSON (the entry was altered)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise EvidenceError(f"evidence holds {text[:40]}, beyond a JSON number's range"
                            " (the entry was altered)")
    return value


class FormatError(ValueError):
    """A stored row that is neither format 1 nor format 2; ``str()`` says why."""


_FORMAT, _SUBJECT_TYPE, _SUBJECT_ID = (COLUMNS.index(key) for key in FORMAT_2_KEYS)


def row_format(row: Sequence[Any]) -> int:
    """The format of a stored row (values in :data:`COLUMNS` order): 1 when ``format`` and the
    subject columns are NULL, 2 when ``format`` is 2; FormatError for anything else."""
    found = row[_FORMAT]
    if found is None:
        if row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
            return 1
        raise FormatError("an entry without a format (format 1) holds subject_type or"
                          " subject_id (the entry was altered)")
    if type(found) is int and found == FORMAT_2:
        return FORMAT_2
    raise FormatError(f"format {repr(found)[:40]} is not an entry format relink knows (1 or 2):"
                      " the entry was altered or written by a newer relink")


_WIRE_1 = operator.itemgetter(*range(len(FIELDS)))
_WIRE_2 = operator.itemgetter(*(COLUMNS.index(key) for key in FIELDS_2))


def wire_values(row: Sequence[Any]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The wire keys of a stored row (:data:`FIELDS` or :data:`FIELDS_2`) and its values in
    that order, evidence still text; FormatError as :func:`row_format`."""
    if row_format(row) == 1:
        return FIELDS, _WIRE_1(row)
    return FIELDS_2, _WIRE_2(row)


def entry_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """The wire form of a stored row (values in :data:`COLUMNS` order): a format-1 entry without
    the format-2 keys, a format-2 entry with them. EvidenceError if its evidence is not one
    unambiguous JSON object, FormatError as :func:`row_format`."""
    keys, values = wire_values(row)
    entry = dict(zip(keys, values, strict=True))
    entry["evidence"] = parse_evidence(entry["evidence"])
    return entry


# hashing stored rows -------------------------------------------------------------------------

_INT_MAX = 2**53 - 1
_EVIDENCE = COLUMNS.index("evidence")


def _layout(fields: tuple[str, ...]) -> tuple[str, Any, int]:
    """How :func:`row_hash` hashes a row of one format: the JCS body template (keys sorted:
    they are ASCII), a getter of its scalar values from a stored row, the evidence's place."""
    hashed = sorted(field for field in fields if field != "hash")
    body = "{" + ",".join(f'"{field}":%s' for field in hashed) + "}"
    scalars = operator.itemgetter(*(COLUMNS.index(f) for f in hashed if f != "evidence"))
    return body, scalars, hashed.index("evidence")


_LAYOUT_1 = _layout(FIELDS)
_LAYOUT_2 = _layout(FIELDS_2)


def _fast_layout(fields: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
    """How :func:`row_hash`'s fast path hashes a row of one format: its hashed keys, sorted
    (they are ASCII, so this is JCS's order), and a getter of their values from a stored row."""
    hashed = tuple(sorted(field for field in fields if field != "hash"))
    return hashed, operator.itemgetter(*(COLUMNS.index(field) for field in hashed))


_FAST_2 = _fast_layout(FIELDS_2)
_HASHED_1 = FIELDS[:-1]
assert FIELDS[-1] == "hash" and COLUMNS[: len(_HASHED_1)] == _HASHED_1
_COLUMN_TYPES = frozenset((str, int, type(None)))
_Fragment = orjson.Fragment
_orjson_dumps = orjson.dumps
_STRICT = orjson.OPT_STRICT_INTEGER
_SORTED_STRICT = canonical.OPTIONS


def jcs_scalar(value: Any) -> str:
    """The JCS text of a stored column's value (a string, an integer or null; anything else
    goes through rfc8785, which raises CanonicalizationError where JCS has no form)."""
    if type(value) is str:
        return encode_basestring(value)  # JCS's escapes exactly; surrogates fail at encode
    if value is None:
        return "null"
    if type(value) is int and -_INT_MAX <= value <= _INT_MAX:
        return int.__repr__(value)
    return rfc8785.dumps(value).decode("utf-8")


def row_hash(row: Sequence[Any], evidence: str | None = None) -> str:
    """The hash of a stored row (values in :data:`COLUMNS` order), its evidence text spliced
    into the JCS bytes as stored (or ``evidence`` instead): without the format-2 keys when its
    ``format`` is NULL, with them when it is 2. Raises FormatError (a ValueError) for any other
    row (:func:`row_format`), CanonicalizationError (a ValueError) when a value has no JCS
    form, TypeError when the evidence is not text.

    orjson writes the body (keys already in JCS order, the evidence text spliced as a
    fragment) when every value is a string, an integer or null, the domain where its bytes are
    JCS's (tests/test_fast_canonical.py); anything else, an integer beyond JCS's or a string
    that is not UTF-8 included, goes through :func:`jcs_row_hash`, the pure-Python reference.
    """
    text = row[_EVIDENCE] if evidence is None else evidence
    if type(text) is str and _COLUMN_TYPES.issuperset(map(type, row)):
        if row[_FORMAT] is None and row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
            # a format-1 row's first columns are its hashed fields (then hash): orjson sorts
            fields = dict(zip(_HASHED_1, row, strict=False))
            option = _SORTED_STRICT
        elif type(row[_FORMAT]) is int and row[_FORMAT] == FORMAT_2:
            fields = dict(zip(_FAST_2[0], _FAST_2[1](row), strict=True))
            option = _STRICT
        else:
            return jcs_row_hash(row, evidence)  # FormatError
        fields["evidence"] = _Fragment(text)
        try:
            return hashlib.sha256(_orjson_dumps(fields, option=option)).hexdigest()
        except orjson.JSONEncodeError:
            pass
    return jcs_row_hash(row, evidence)


def jcs_row_hash(row: Sequence[Any], evidence: str | None = None) -> str:
    """:func:`row_hash` the long way: each value written in JCS by Python (:func:`jcs_scalar`)
    into the body's template, the reference the fast path is tested against."""
    text = row[_EVIDENCE] if evidence is None else evidence
    if type(text) is not str:
        raise TypeError("evidence is not text")
    if row[_FORMAT] is None and row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
        body, scalars, splice = _LAYOUT_1
    else:
        row_format(row)  # FormatError unless it is format 2
        body, scalars, splice = _LAYOUT_2
    encode = encode_basestring
    values = [  # jcs_scalar, its common cases inline
        encode(value) if type(value) is str else "null" if value is None else jcs_scalar(value)
        for value in scalars(row)
    ]
    values.insert(splice, text)
    try:
        data = (body % tuple(values)).encode("utf-8")
    except UnicodeEncodeError:
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from None
    return hashlib.sha256(data).hexdigest()
