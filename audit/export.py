"""Exports of audit entries to a text stream, one entry at a time (memory stays flat).

- ``jsonl``: one entry per line in its wire form (:mod:`audit.chain`), every field of
  spec/audit.md: a format-1 entry with the keys of :data:`FIELDS` in that order and no
  ``format`` key (byte for byte the line exported before format 2 existed), a format-2 entry
  with those of :data:`FIELDS_2`. The format a chain is re-verified from: hash each line's
  object as it is.
- ``csv``: a header row of :data:`COLUMNS` (:data:`FIELDS`, then ``format``, ``subject_type``
  and ``subject_id``), then one row per entry; ``evidence`` is compact JSON and a null is an
  empty cell. An empty ``format`` cell means a format-1 entry, which has no ``format``,
  ``subject_type`` or ``subject_id`` at all: a verifier working from CSV drops those three keys
  (rather than reading them as nulls) before hashing such a row. Neutralisation rule: every
  cell holding a *string* whose first character is ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a single quote (``'``) in front, so that no spreadsheet runs it as a
  formula (``-150.00`` in a message comes out as ``'-150.00``). Integer fields (``seq``, ids,
  ``workflow_version``, ``format``) are written as plain numbers, never prefixed: a number
  cannot run as a formula. CSV is for reading; re-verify from ``jsonl``.
- ``ocsf``: one OCSF *API Activity* event (class 6003) per line, mapped as described in
  :func:`ocsf_event`, with the whole entry (its wire form) under ``unmapped``.

Writers take entries (dicts in wire form), or for ``jsonl`` and ``csv`` stored rows (tuples in
:data:`COLUMNS` order with ``evidence`` as its stored compact JSON text, which is spliced in
as is rather than parsed and re-encoded); each returns the number of entries written.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable
from json.encoder import encode_basestring
from typing import IO, Any

from audit.chain import (
    COLUMNS,
    FIELDS,
    FIELDS_2,
    FORMAT_2,
    FORMAT_2_KEYS,
    evidence_text,
    wire_values,
)

BATCH = 512
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# the JSONL line of each format: its template and where its evidence goes
_LINE_1 = "{" + ",".join(f'"{field}":%s' for field in FIELDS) + "}"
_LINE_2 = "{" + ",".join(f'"{field}":%s' for field in FIELDS_2) + "}"
_EVIDENCE_1, _EVIDENCE_2 = FIELDS.index("evidence"), FIELDS_2.index("evidence")
_SIZE_1, _SIZE_2 = len(FIELDS), len(FIELDS_2)
_FORMAT, _SUBJECT_TYPE, _SUBJECT_ID = (COLUMNS.index(key) for key in FORMAT_2_KEYS)


def write_jsonl(entries: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """One compact JSON object per line, in the order given."""
    return _write_lines(map(_JSON.encode, entries), stream)


def jsonl_line(row: tuple[Any, ...]) -> str:
    """A stored row as its JSONL line: the same text :func:`write_jsonl` gives for its entry
    (FormatError for a row in neither format)."""
    if row[_FORMAT] is None and row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
        wire, line, evidence, size = row, _LINE_1, _EVIDENCE_1, _SIZE_1  # its first columns
    else:
        _, wire = wire_values(row)
        line, evidence, size = _LINE_2, _EVIDENCE_2, _SIZE_2
    encode = _JSON.encode
    values = [
        encode_basestring(value) if type(value) is str
        else "null" if value is None
        else int.__repr__(value) if type(value) is int
        else encode(value)
        for value in wire
    ]
    values[evidence] = wire[evidence]
    del values[size:]  # a format-1 row's three NULL columns after FIELDS
    return line % tuple(values)


def write_jsonl_rows(rows: Iterable[tuple[Any, ...]], stream: IO[str]) -> int:
    """:func:`write_jsonl` for stored rows, without parsing and re-encoding the evidence."""
    return _write_lines(map(jsonl_line, rows), stream)


def _hash_layout(fields: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """The JCS body template of a format's hashed fields (sorted keys: they are ASCII) and the
    stored columns that fill it, in order (the evidence's column included)."""
    hashed = sorted(field for field in fields if field != "hash")
    body = "{" + ",".join(f'"{field}":%s' for field in hashed) + "}"
    return body, tuple(COLUMNS.index(field) for field in hashed)


_HASHED_1, _HASHED_2 = _hash_layout(FIELDS), _hash_layout(FIELDS_2)
_WIRE_COLUMNS_1 = tuple(COLUMNS.index(field) for field in FIELDS)
_WIRE_COLUMNS_2 = tuple(COLUMNS.index(field) for field in FIELDS_2)
_HASH, _ROW_EVIDENCE = COLUMNS.index("hash"), COLUMNS.index("evidence")
_JCS_INT = 2**53 - 1


def checked_jsonl_line(row: tuple[Any, ...], *, canonical_from: int = 1) -> str:
    """The JSONL line of a stored row once the row is checked against its own hash: the same as
    :func:`audit.verify.check_row` then :func:`jsonl_line`, each scalar encoded once for both
    (an export's hot path). Any row the fast path does not settle — another format, a value
    beyond JCS's integers, evidence stored in the pre-0002 encoding, a mismatch — goes the
    long way, which raises ChainBroken naming the seq where the row is bad."""
    from audit.verify import check_row

    if row[_FORMAT] is None and row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
        (body, hashed), wire, line = _HASHED_1, _WIRE_COLUMNS_1, _LINE_1
    elif type(row[_FORMAT]) is int and row[_FORMAT] == FORMAT_2:
        (body, hashed), wire, line = _HASHED_2, _WIRE_COLUMNS_2, _LINE_2
    else:
        wire = ()
    encoded: list[str] = []
    if wire and type(row[_ROW_EVIDENCE]) is str:
        for value in row:
            if type(value) is str:
                encoded.append(encode_basestring(value))
            elif value is None:
                encoded.append("null")
            elif type(value) is int and -_JCS_INT <= value <= _JCS_INT:
                encoded.append(int.__repr__(value))
            else:
                break
        else:
            encoded[_ROW_EVIDENCE] = row[_ROW_EVIDENCE]  # spliced as stored: the bytes hashed
            try:
                data = (body % tuple(encoded[i] for i in hashed)).encode("utf-8")
            except UnicodeEncodeError:
                data = b""
            if hashlib.sha256(data).hexdigest() == row[_HASH]:
                return line % tuple(encoded[i] for i in wire)
    check_row(row, canonical_from=canonical_from)  # raises ChainBroken where the row is bad
    return jsonl_line(row)


def write_lines(lines: Iterable[str], stream: IO[str]) -> int:
    """Write ``lines`` (without their line ends) to ``stream`` in batches; how many."""
    return _write_lines(lines, stream)


def _write_lines(lines: Iterable[str], stream: IO[str]) -> int:
    count = 0
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == BATCH:
            count += BATCH
            batch.append("")
            stream.write("\n".join(batch))
            batch.clear()
    if batch:
        count += len(batch)
        batch.append("")
        stream.write("\n".join(batch))
    return count


# csv -----------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` made inert in a spreadsheet: a leading formula character gets a ``'`` before it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cells(row: tuple[Any, ...]) -> list[Any]:
    """The CSV cells of a stored row (see the module's rule)."""
    return [
        ("'" + value if value.startswith(FORMULA_STARTS) else value) if type(value) is str
        else "" if value is None
        else value if type(value) is int
        else neutralise(_JSON.encode(value))
        for value in row
    ]


def csv_row(entry: dict[str, Any]) -> list[Any]:
    """The CSV cells of one entry, in :data:`COLUMNS` order."""
    return csv_cells(entry_row(entry))


def entry_row(entry: dict[str, Any]) -> tuple[Any, ...]:
    """An entry as a stored row: values in :data:`COLUMNS` order (None for a key it lacks, as
    a format-1 entry lacks the format-2 keys), evidence as compact JSON."""
    evidence = entry.get("evidence")
    return tuple(
        evidence_text(evidence) if field == "evidence" and isinstance(evidence, dict)
        else entry.get(field)
        for field in COLUMNS
    )


def write_csv_rows(rows: Iterable[tuple[Any, ...]], stream: IO[str]) -> int:
    """A header row and one row per stored row; open files with ``newline=""``."""
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(csv_cells(row))
        count += 1
    return count


def write_csv(entries: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """A header row and one row per entry; open files with ``newline=""``."""
    return write_csv_rows(map(entry_row, entries), stream)


# ocsf ----------------------------------------------------------------------------------------

OCSF_VERSION = "1.6.0"
CLASS_UID = 6003  # API Activity
CATEGORY_UID = 6  # Application Activity
CREATE, READ, UPDATE, DELETE, OTHER = 1, 2, 3, 4, 99
ACTIVITY_NAMES = {CREATE: "Create", READ: "Read", UPDATE: "Update", DELETE: "Delete",
                  OTHER: "Other"}
# What each action does to its subject; any other action (e.g. a future step) is an Update.
ACTIVITIES = {
    "start": CREATE,  # opens a correction (and snapshots the invoice)
    "reenter": CREATE,  # creates the corrected invoice in Procore
    "delete-in-erp": DELETE,
    "delete-in-procore": DELETE,
    "confirm-erp-deletion": READ,  # reads the ERP to confirm a bill is gone
    "unlink": UPDATE,
    "cancel": UPDATE,
    "resume": UPDATE,
    "checkpoint": OTHER,  # log-level: a signed checkpoint of the log's head
}
# outcome -> (status_id, status, severity_id)
STATUSES = {
    "succeeded": (1, "Success", 1),  # Informational
    "in_flight": (99, "Other", 1),  # Informational: the step's result follows in another entry
    "failed": (2, "Failure", 2),  # Low: a remote system was unavailable, nothing changed
    "refused": (2, "Failure", 3),  # Medium: a denied attempt to change financial records
}


@functools.cache
def _product() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    product = {"name": "relink", "vendor_name": "relink"}
    with contextlib.suppress(PackageNotFoundError):
        product["version"] = version("relink")
    return product


def epoch_ms(recorded_at: Any) -> int:
    """``2026-11-27T18:04:05.123456Z`` as whole milliseconds since the Unix epoch (0 if bad)."""
    try:
        moment = dt.datetime.fromisoformat(str(recorded_at))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MS


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


def ocsf_event(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry as an OCSF API Activity event.

    ``activity_id`` by action (:data:`ACTIVITIES`, default Update); ``status_id``/``status``
    and ``severity_id`` by outcome (:data:`STATUSES`); ``actor.user`` from the Procore actor
    (``name`` = login, ``email_addr`` = login when it is an address); ``api.operation`` = action;
    ``resources`` = the subject of a format-2 entry (``uid`` = ``subject_id``, ``type`` =
    ``subject_type``), the Procore invoice and the ERP bill, each when the entry has it;
    ``metadata.uid`` = the entry's hash, ``metadata.sequence`` = its seq; the entry itself (its
    wire form) under ``unmapped``. Null fields are left out, as OCSF expects.
    """
    action = entry.get("action") or ""
    activity_id = ACTIVITIES.get(action, UPDATE)
    status_id, status, severity_id = STATUSES.get(entry.get("outcome") or "", (99, "Other", 1))
    event: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": ACTIVITY_NAMES[activity_id],
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": f"API Activity: {ACTIVITY_NAMES[activity_id]}",
        "time": epoch_ms(entry.get("recorded_at")),
        "severity_id": severity_id,
        "status_id": status_id,
        "status": status,
        "status_detail": entry.get("outcome"),
        "message": entry.get("message"),
        "actor": _actor(entry),
        "api": _compact({
            "operation": action,
            "service": _compact({
                "name": entry.get("workflow"),
                "version": _text(entry.get("workflow_version")),
            }),
        }),
        "src_endpoint": {"name": "relink"},  # relink does not record the operator's host
        "resources": _resources(entry),
        "metadata": _compact({
            "version": OCSF_VERSION,
            "product": _product(),
            "log_name": "audit",
            "log_provider": "relink",
            "uid": entry.get("hash"),
            "sequence": entry.get("seq"),
            "original_time": entry.get("recorded_at"),
            "correlation_uid": _text(entry.get("workflow_id")),
            "event_code": action,
        }),
        "unmapped": entry,
    }
    return _compact(event)


def _actor(entry: dict[str, Any]) -> dict[str, Any]:
    login = entry.get("actor_login")
    user = _compact({
        "uid": _text(entry.get("actor_id")),
        "name": login,
        "full_name": entry.get("actor_name"),
        "email_addr": login if isinstance(login, str) and "@" in login else None,
        "type_id": 1 if login or entry.get("actor_id") is not None else None,  # User
    })
    return {"user": user} if user else {"app_name": "relink"}


def _resources(entry: dict[str, Any]) -> list[dict[str, Any]]:
    resources = []
    where = _compact({
        "company_id": entry.get("company_id"),
        "project_id": entry.get("project_id"),
    }) or None
    if entry.get("subject_id") is not None or entry.get("subject_type") is not None:
        resources.append(_compact({
            "uid": _text(entry.get("subject_id")),
            "type": _text(entry.get("subject_type")),
            "data": where,
        }))
    if entry.get("invoice_id") is not None:
        resources.append(_compact({
            "uid": _text(entry["invoice_id"]),
            "type": "Procore Requisition",
            "data": where,
        }))
    if entry.get("erp_bill_id") is not None:
        resources.append({"uid": _text(entry["erp_bill_id"]), "type": "ERP Bill"})
    return resources


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None and value != []}


def write_ocsf(entries: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """One OCSF API Activity event per line."""
    return write_jsonl((ocsf_event(entry) for entry in entries), stream)
