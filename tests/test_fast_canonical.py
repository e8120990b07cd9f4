"""The fast canonical encoder (audit.canonical, on orjson) gives exactly the bytes of RFC 8785 as
the rfc8785 package writes them, or the same error, for every value generated; and the hot paths
built on orjson (a stored row's hash, an export's JSONL and OCSF lines) give exactly the bytes of
the long way. Differential tests: the reference is always the pure-Python path."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit import canonical
from audit.chain import (
    COLUMNS,
    FIELDS,
    FIELDS_2,
    GENESIS,
    entry_from_row,
    entry_hash,
    evidence_text,
    jcs_row_hash,
    legacy_evidence_text,
    row_hash,
)
from audit.errors import ChainBroken
from audit.export import (
    _JSON,
    checked_jsonl_bytes,
    checked_jsonl_line,
    checked_ocsf_bytes,
    jsonl_line,
    ocsf_event,
)

MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# characters where JCS and a fast encoder could part ways: every escape, DEL, the line and
# paragraph separators, the top of the Basic Multilingual Plane (which sorts after the
# surrogates of a non-BMP character in UTF-16), non-BMP characters and lone surrogates
ODD = ["\x00", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1b", "\x1f", '"', "\\", "/", "\x7f",
       "\x80", "é", "\u2028", "\u2029", "\ud7ff", "\ue000", "\ufeff", "\uffff", "\U00010000",
       "\U0001f600", "\U0010ffff", "𝄞"]
SURROGATES = ["\ud800", "\udfff"]
chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(ODD))
texts = st.text(chars, max_size=12)
keys = st.one_of(texts, st.sampled_from(["", "a", "b", "aa", "\ue000", "\U0001f600", "é"]))
ints = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from([0, -1, 2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**63 - 1, 2**63,
                     2**64, -(2**63) - 1, 10**30]),
)
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1.0, 1e21, 1e-7, 1.5, 2.0**60]))


class Colour(enum.Enum):
    RED = "red"


class Level(enum.StrEnum):
    ADMIN = "admin"


class Text(str):
    pass


strange = st.sampled_from([Colour.RED, Level.ADMIN, Text("x"), uuid.UUID(int=7), b"bytes",
                           frozenset(), object()])
scalars = st.one_of(st.none(), st.booleans(), ints, texts)
values = st.recursive(
    st.one_of(scalars, floats),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=24,
)


def outcome(encode: Any, value: Any) -> Any:
    """The result, or the kind of error (and its message, but for running out of stack)."""
    try:
        return encode(value)
    except RecursionError:
        return RecursionError
    except Exception as exc:  # the point is that both raise the same
        return (type(exc), str(exc))


@MANY
@given(values)
@example({"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "z": 4})  # UTF-16 order, not code points
@example({"a": [1e21, 1e-7, 2.0**60, -0.0]})
@example({"big": 2**53, "small": -(2**53)})
@example("\x00\x1f\x7f\u2028\u2029\"\\/")
@example({"\ud800": 1})
@example(["\udfff"])
@example([[[[[[]]]]]] * 2)
def test_the_fast_encoder_writes_rfc8785s_bytes(value: Any) -> None:
    """For any JSON-like value, the bytes (or the error) of rfc8785 itself."""
    assert outcome(canonical.dumps, value) == outcome(rfc8785.dumps, value)


@SOME
@given(st.one_of(strange, st.lists(strange, min_size=1, max_size=2),
                 st.dictionaries(keys, strange, min_size=1, max_size=2),
                 st.dictionaries(st.integers(), scalars, min_size=1, max_size=2)))
def test_values_outside_json_are_rfc8785s_business(value: Any) -> None:
    """Enums, str subclasses, UUIDs, bytes, non-string keys: rfc8785's answer, never orjson's
    (orjson would happily write a UUID or an Enum)."""
    assert not canonical.plain(value)
    assert outcome(canonical.dumps, value) == outcome(rfc8785.dumps, value)


def test_deep_nesting_is_rfc8785s_business() -> None:
    """Deeper than orjson goes (255) the answer is rfc8785's too; deeper than Python recurses,
    its RecursionError."""
    for depth in (254, 256, 400, 5_000):
        value: Any = []
        for _ in range(depth):
            value = [value]
        assert outcome(canonical.dumps, value) == outcome(rfc8785.dumps, value)


# relink's own values ---------------------------------------------------------------------------

money = st.builds(lambda units, cents: f"{units}.{cents:02d}", st.integers(-10**9, 10**9),
                  st.integers(0, 99))
level = st.sampled_from(["None", "Read Only", "Standard", "Admin", "admin"])
call = st.fixed_dictionaries(
    {"system": st.sampled_from(["procore", "erp"]), "method": st.sampled_from(["GET", "DELETE"]),
     "path": texts, "status": st.integers(100, 599), "request_id": texts},
    optional={"elapsed_ms": st.integers(0, 10**6), "error": texts},
)
invoice = st.fixed_dictionaries(
    {"id": ints, "invoice_number": texts, "total": money, "retainage": money},
    optional={"origin_id": st.one_of(st.none(), texts), "billing_date": texts,
              "items": st.lists(st.fixed_dictionaries({"line_item_id": ints,
                                                       "work_completed_this_period": money}),
                                max_size=3),
              "paid": st.booleans(), "comment": st.one_of(st.none(), texts)},
)
evidence = st.fixed_dictionaries(
    {},
    optional={
        "permissions": st.dictionaries(texts, st.one_of(level, st.booleans(),
                                                        st.lists(level, max_size=3)),
                                       max_size=4),
        "required": st.dictionaries(texts, st.lists(level, max_size=2), max_size=3),
        "calls": st.lists(call, max_size=3),
        "idempotency_key": texts,
        "before": invoice,
        "after": invoice,
        "corrected": st.dictionaries(texts, st.one_of(texts, money, ints), max_size=3),
        "erp_bill": st.fixed_dictionaries({"id": texts, "status": texts}),
        "erp_reply": st.dictionaries(keys, scalars, max_size=4),
        "key": texts,
        "local_user": st.one_of(st.none(), texts),
    },
)


@MANY
@given(evidence)
def test_relinks_evidence_takes_the_fast_path(found: dict[str, Any]) -> None:
    """Evidence shaped like the engine's (no floats, BMP keys, safe integers mostly) is encoded
    by orjson, byte for byte rfc8785's; an integer beyond JCS's is rfc8785's error."""
    expected = outcome(rfc8785.dumps, found)
    assert outcome(canonical.dumps, found) == expected
    assert canonical.plain(found) or any(
        ord(c) > 0xFFFF for c in json.dumps(found, ensure_ascii=False))
    if isinstance(expected, bytes):
        assert evidence_text(found) == expected.decode("utf-8")


# stored rows: hashes and export lines ----------------------------------------------------------

column_text = st.one_of(st.none(), texts)
column_int = st.one_of(st.none(), ints)


@st.composite
def stored_rows(draw: Any, *, odd: bool = False) -> tuple[Any, ...]:
    """A stored row (COLUMNS order, evidence as its JCS text, hash set), format 1 or 2;
    ``odd``: columns may also hold what only tampering puts there (floats, big integers)."""
    number = st.one_of(column_int, floats) if odd else column_int
    row = {
        "seq": draw(st.integers(1, 2**53 - 1)), "recorded_at": draw(texts),
        "workflow_id": draw(number), "workflow": draw(texts),
        "workflow_version": draw(number), "company_id": draw(number),
        "project_id": draw(number), "invoice_id": draw(number),
        "erp_bill_id": draw(column_text), "actor_id": draw(number),
        "actor_login": draw(column_text), "actor_name": draw(column_text),
        "action": draw(st.one_of(texts, st.sampled_from(["start", "unlink", "checkpoint"]))),
        "from_state": draw(column_text), "to_state": draw(column_text),
        "outcome": draw(st.sampled_from(["succeeded", "refused", "failed", "in_flight", "x"])),
        "message": draw(texts), "reason": draw(column_text),
        "prev_hash": draw(st.sampled_from([GENESIS, "ab" * 32])),
    }
    if draw(st.booleans()):
        row |= {"format": 2, "subject_type": draw(column_text),
                "subject_id": draw(column_text)}
    found = draw(evidence)
    if odd and draw(st.booleans()):
        found["amount"] = draw(floats)  # legacy evidence held floats
    wire = FIELDS_2 if "format" in row else FIELDS
    entry = {key: found if key == "evidence" else row.get(key) for key in wire if key != "hash"}
    try:
        row["hash"] = hashlib.sha256(rfc8785.dumps(entry)).hexdigest()
        row["evidence"] = rfc8785.dumps(found).decode("utf-8")
    except (ValueError, TypeError):
        row["hash"] = "00" * 32
        row["evidence"] = legacy_evidence_text(found)
    return tuple(row.get(column) for column in COLUMNS)


@MANY
@given(stored_rows(odd=True))
def test_a_rows_hash_is_the_long_ways(row: tuple[Any, ...]) -> None:
    """row_hash (orjson, the stored evidence spliced) equals the pure-Python reference, or
    fails as it does; where the evidence is stored as JCS, it is SHA-256 of rfc8785's bytes of
    the entry itself."""
    found = outcome(row_hash, row)
    assert found == outcome(jcs_row_hash, row)
    entry = outcome(entry_from_row, row)
    if isinstance(entry, dict) and isinstance(found, str) \
            and row[COLUMNS.index("evidence")] == outcome(evidence_text, entry["evidence"]):
        assert found == entry_hash(entry)


@MANY
@given(stored_rows(odd=True))
def test_export_lines_are_the_long_ways(row: tuple[Any, ...]) -> None:
    """The fused JSONL line is the checked line of the long way; the OCSF line is the event of
    the parsed entry with that very line under ``unmapped``; both refuse the same rows."""
    from audit.verify import check_row

    checked = outcome(check_row, row)
    jsonl = outcome(checked_jsonl_bytes, row)
    ocsf = outcome(checked_ocsf_bytes, row)
    if checked is None:
        assert jsonl == checked_jsonl_line(row).encode("utf-8") == jsonl_line(row).encode()
        assert ocsf.endswith(b',"unmapped":' + jsonl + b"}")  # the line, byte for byte
        event = json.loads(ocsf)
        event["unmapped"] = entry_from_row(row)
        assert event == ocsf_event(entry_from_row(row))
    else:
        assert checked[0] is ChainBroken
        assert jsonl == checked == ocsf


@SOME
@given(stored_rows())
def test_a_row_altered_anywhere_is_refused(row: tuple[Any, ...]) -> None:
    """Change one stored value and the fast paths refuse the row, naming its seq."""
    for index, column in enumerate(COLUMNS):
        if column in ("seq", "hash", "format"):
            continue
        altered = list(row)
        value = row[index]
        if column == "evidence":
            altered[index] = value.replace("{", '{"x":1,', 1) if value != "{}" else '{"x":1}'
        elif column in ("subject_type", "subject_id") and row[COLUMNS.index("format")] is None:
            continue  # a format-1 row with a subject is another refusal, tested elsewhere
        else:
            altered[index] = 7 if value is None else None
        for line in (checked_jsonl_bytes, checked_ocsf_bytes):
            with pytest.raises(ChainBroken) as refused:
                line(tuple(altered))
            assert refused.value.seq == row[0]


def test_orjson_is_the_json_modules_for_the_fast_paths_values() -> None:
    """The premise of the export lines: for strings, integers, null, lists and dicts orjson and
    json (compact, ensure_ascii=False) agree on every character class (checked one by one over
    the Basic Multilingual Plane below the surrogates and a sample above)."""
    for code in [*range(0xD800), *range(0xE000, 0x10000, 7), *range(0x10000, 0x110000, 997)]:
        text = chr(code)
        assert orjson.dumps(text) == _JSON.encode(text).encode("utf-8") == rfc8785.dumps(text)
