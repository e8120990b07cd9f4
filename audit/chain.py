"""The entry's wire form and its hash: lowercase hex SHA-256 of the RFC 8785 (JCS) bytes of the
entry without its ``hash`` field.

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

import rfc8785

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
OUTCOMES = ("in_flight", "succeeded", "refused", "failed")


def entry_hash(entry: dict[str, Any]) -> str:
    """The hash of an entry (its ``hash`` field, if present, is left out)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def evidence_text(evidence: dict[str, Any]) -> str:
    """How evidence is stored: its JCS text, the very bytes its entry's hash covers."""
    return rfc8785.dumps(evidence).decode("utf-8")


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


def entry_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """The wire form of a stored row (values in :data:`FIELDS` order); EvidenceError if its
    evidence is not one unambiguous JSON object."""
    entry = dict(zip(FIELDS, row, strict=True))
    entry["evidence"] = parse_evidence(entry["evidence"])
    return entry


# hashing stored rows -------------------------------------------------------------------------

_HASHED = sorted(field for field in FIELDS if field != "hash")  # JCS order: the keys are ASCII
_BODY = "{" + ",".join(f'"{field}":%s' for field in _HASHED) + "}"
_IN_SCALARS = operator.itemgetter(*(FIELDS.index(f) for f in _HASHED if f != "evidence"))
_SPLICE = _HASHED.index("evidence")
_EVIDENCE = FIELDS.index("evidence")
_INT_MAX = 2**53 - 1


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
    """The hash of a stored row (values in :data:`FIELDS` order), its evidence text spliced
    into the JCS bytes as stored (or ``evidence`` instead). Raises CanonicalizationError (a
    ValueError) when a value has no JCS form, TypeError when the evidence is not text."""
    text = row[_EVIDENCE] if evidence is None else evidence
    if type(text) is not str:
        raise TypeError("evidence is not text")
    encode = encode_basestring
    values = [  # jcs_scalar, its common cases inline: this runs for every entry verified
        encode(value) if type(value) is str else "null" if value is None else jcs_scalar(value)
        for value in _IN_SCALARS(row)
    ]
    values.insert(_SPLICE, text)
    try:
        body = (_BODY % tuple(values)).encode("utf-8")
    except UnicodeEncodeError:
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from None
    return hashlib.sha256(body).hexdigest()

