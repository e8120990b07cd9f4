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
  :func:`ocsf_event`, with the entry's JSONL line, byte for byte, under ``unmapped``: the
  entry as it was hashed, re-verifiable from the event alone.

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
import io
import json
import operator
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring
from typing import IO, Any

import orjson

from audit import canonical
from audit.chain import (
    COLUMNS,
    FIELDS,
    FIELDS_2,
    FORMAT_2,
    FORMAT_2_KEYS,
    entry_from_row,
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


# the same at C speed: orjson writes the hashed body and the line (their keys in JCS order and
# in wire order; the evidence spliced as stored), where its bytes are JCS's and json's: every
# value a string, an integer within JCS's range or null (tests/test_fast_canonical.py)


_WIRE_2 = operator.itemgetter(*(COLUMNS.index(field) for field in FIELDS_2))
_INTEGER_COLUMNS = operator.itemgetter(*(
    COLUMNS.index(field) for field in ("seq", "workflow_id", "workflow_version", "company_id",
                                       "project_id", "invoice_id", "actor_id", "format")))
_COLUMN_TYPES = frozenset((str, int, type(None)))
_Fragment = orjson.Fragment
_dumps = orjson.dumps
_STRICT = orjson.OPT_STRICT_INTEGER
_SORTED_STRICT = canonical.OPTIONS


def _matched(row: tuple[Any, ...]) -> dict[str, Any] | None:
    """The wire form of a row that hashes to its own ``hash`` on the fast path, its evidence
    as a fragment of the stored text; None for any other row (a mismatch, or a row outside
    the fast path's domain: the long way tells). The object without its ``hash`` (the last
    key of both formats) written with sorted keys is the hashed body; with its ``hash`` back,
    in wire order, the line."""
    if row[_FORMAT] is None and row[_SUBJECT_TYPE] is None and row[_SUBJECT_ID] is None:
        line = dict(zip(FIELDS, row, strict=False))  # a format-1 row's first columns
    elif type(row[_FORMAT]) is int and row[_FORMAT] == FORMAT_2:
        line = dict(zip(FIELDS_2, _WIRE_2(row), strict=True))
    else:
        return None
    # a stored row's text columns hold text (or NULL: None) on either database; an integer
    # column may hold a REAL on SQLite, which orjson would write, so its integer columns are
    # checked (anything else orjson refuses: JSONEncodeError, the long way)
    if float in map(type, _INTEGER_COLUMNS(row)) or type(row[_ROW_EVIDENCE]) is not str:
        return None
    line["evidence"] = _Fragment(row[_ROW_EVIDENCE])
    stored = line.pop("hash")
    try:
        if hashlib.sha256(_dumps(line, option=_SORTED_STRICT)).hexdigest() != stored:
            return None
    except orjson.JSONEncodeError:
        return None
    line["hash"] = stored
    return line


def checked_jsonl_bytes(row: tuple[Any, ...], *, canonical_from: int = 1) -> bytes:
    """:func:`checked_jsonl_line` as UTF-8 bytes, the common case at C speed."""
    line = _matched(row)
    if line is not None:
        return _dumps(line, option=_STRICT)  # the values orjson just wrote for the body
    return checked_jsonl_line(row, canonical_from=canonical_from).encode("utf-8")


def checked_ocsf_bytes(row: tuple[Any, ...], *, canonical_from: int = 1) -> bytes:
    """The OCSF line of a stored row once the row is checked against its own hash: its event
    (:func:`ocsf_mapped`) with its JSONL line (:func:`checked_jsonl_bytes`), byte for byte,
    under ``unmapped``. Raises ChainBroken where the row is bad or its evidence ambiguous (not
    one JSON object, a key twice: as :func:`audit.log.query`), for an event is a reading."""
    entry = _matched(row)
    if entry is not None:  # every value a string, an integer within JCS's or null
        text = row[_ROW_EVIDENCE]
        try:
            evidence = orjson.loads(text)
        except orjson.JSONDecodeError:
            evidence = None
        # unambiguous when orjson writes back exactly what it read (so no key twice): the
        # line carries the text as stored, so orjson's bytes need not be JCS's here; anything
        # else is looked into the long way
        if type(evidence) is dict and _dumps(evidence) == text.encode("utf-8"):
            return _ocsf_fast(entry, _dumps(entry, option=_STRICT))
    line = checked_jsonl_line(row, canonical_from=canonical_from)
    try:
        entry_from_row(row)  # EvidenceError for evidence that is not one JSON object
    except ValueError as exc:
        from audit.errors import ChainBroken

        raise ChainBroken(row[0], str(exc)) from None
    keys, values = wire_values(row)
    return ocsf_text(dict(zip(keys, values, strict=True)), line).encode("utf-8")


def csv_block(rows: Iterable[tuple[Any, ...]]) -> str:
    """The CSV rows (no header) of stored rows, as :func:`write_csv_rows` writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(map(csv_cells, rows))
    return buffer.getvalue()


def export_part(
    rows: Iterable[tuple[Any, ...]], fmt: str, *, canonical_from: int = 1
) -> Iterator[tuple[bytes, int]]:
    """The lines of stored rows in ``fmt`` (``jsonl``, ``csv`` without its header, ``ocsf``),
    each row checked against its own hash first, in blocks of up to :data:`BATCH` rows: (UTF-8
    text, rows in it). Raises ChainBroken at the first bad row."""
    from audit.verify import check_row

    batch: list[Any] = []
    if fmt == "csv":
        for row in rows:
            check_row(row, canonical_from=canonical_from)
            batch.append(row)
            if len(batch) == BATCH:
                yield csv_block(batch).encode("utf-8"), BATCH
                batch.clear()
        if batch:
            yield csv_block(batch).encode("utf-8"), len(batch)
        return
    line = checked_jsonl_bytes if fmt == "jsonl" else checked_ocsf_bytes
    for row in rows:
        batch.append(line(row, canonical_from=canonical_from))
        if len(batch) == BATCH:
            batch.append(b"")
            yield b"\n".join(batch), BATCH
            batch.clear()
    if batch:
        count = len(batch)
        batch.append(b"")
        yield b"\n".join(batch), count


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
    wire form) under ``unmapped``: in an export, its JSONL line, byte for byte (:func:`ocsf_text`).
    Null fields are left out, as OCSF expects.
    """
    event = ocsf_mapped(entry)
    event["unmapped"] = entry
    return event


def ocsf_mapped(entry: dict[str, Any]) -> dict[str, Any]:
    """:func:`ocsf_event` without ``unmapped`` (the evidence is not read)."""
    get = entry.get
    action = get("action") or ""
    activity_id = ACTIVITIES.get(action, UPDATE)
    name, type_uid, type_name = _ACTIVITY[activity_id]
    outcome = get("outcome")
    status_id, status, severity_id = STATUSES.get(outcome or "", _OTHER_STATUS)
    recorded_at = get("recorded_at")
    event: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": name,
        "type_uid": type_uid,
        "type_name": type_name,
        "time": epoch_ms(recorded_at),
        "severity_id": severity_id,
        "status_id": status_id,
        "status": status,
    }
    # built in place, key by key, leaving out nulls and empty lists (as _compact would)
    message = get("message")
    if outcome is not None and outcome != []:
        event["status_detail"] = outcome
    if message is not None and message != []:
        event["message"] = message
    event["actor"] = _actor(entry)
    service: dict[str, Any] = {}
    workflow, version = get("workflow"), get("workflow_version")
    if workflow is not None and workflow != []:
        service["name"] = workflow
    if version is not None:
        service["version"] = str(version)
    event["api"] = {"operation": action, "service": service}
    event["src_endpoint"] = {"name": "relink"}  # relink does not record the operator's host
    resources = _resources(entry)
    if resources:
        event["resources"] = resources
    metadata = {"version": OCSF_VERSION, "product": _product(), "log_name": "audit",
                "log_provider": "relink"}
    uid, sequence, workflow_id = get("hash"), get("seq"), get("workflow_id")
    if uid is not None and uid != []:
        metadata["uid"] = uid
    if sequence is not None and sequence != []:
        metadata["sequence"] = sequence
    if recorded_at is not None and recorded_at != []:
        metadata["original_time"] = recorded_at
    if workflow_id is not None:
        metadata["correlation_uid"] = str(workflow_id)
    metadata["event_code"] = action
    event["metadata"] = metadata
    return event


_ACTIVITY = {activity: (name, CLASS_UID * 100 + activity, f"API Activity: {name}")
             for activity, name in ACTIVITY_NAMES.items()}
_OTHER_STATUS = (99, "Other", 1)


# the same at C speed, for an entry whose every value is a string, an integer within JCS's or
# null: orjson writes each member of the event (its bytes are the json module's there), the
# members that repeat from entry to entry (what an action, an outcome, an actor, a workflow or
# an invoice maps to) written once and kept; tests/test_ocsf.py holds it to the long way


def _ocsf_fast(entry: dict[str, Any], line: bytes) -> bytes:
    get = entry.get
    action, outcome = get("action") or "", get("outcome")
    recorded_at, message = get("recorded_at"), get("message")
    parts = [_opening(action), b',"time":%d' % epoch_ms(recorded_at), _status(outcome)]
    if message is not None:
        parts += (b',"message":', _dumps(message))
    parts += (b',"actor":', _actor_bytes(get("actor_id"), get("actor_login"), get("actor_name")),
              _api_bytes(action, get("workflow"), get("workflow_version")),
              _resources_bytes(get("company_id"), get("project_id"), get("subject_id"),
                               get("subject_type"), get("invoice_id"), get("erp_bill_id")),
              _metadata_head())
    uid, sequence, workflow_id = get("hash"), get("seq"), get("workflow_id")
    if uid is not None:
        parts += (b',"uid":', _dumps(uid))
    if sequence is not None:
        parts += (b',"sequence":', _dumps(sequence))
    if recorded_at is not None:
        parts += (b',"original_time":', _dumps(recorded_at))
    if workflow_id is not None:
        parts += (b',"correlation_uid":', _dumps(str(workflow_id)))
    parts += (b',"event_code":', _dumps(action), b'},"unmapped":', line, b"}")
    return b"".join(parts)


def _members(found: dict[str, Any]) -> bytes:
    """The members of an object as orjson writes them, without the braces."""
    return _dumps(found)[1:-1]


@functools.lru_cache(maxsize=256)
def _opening(action: str) -> bytes:
    event = ocsf_mapped({"action": action})
    return b"{" + _members({key: event[key] for key in list(event)[:8]})


@functools.lru_cache(maxsize=256)
def _status(outcome: str | None) -> bytes:
    event = ocsf_mapped({"outcome": outcome})
    keys = ("severity_id", "status_id", "status", "status_detail")
    return b"," + _members({key: event[key] for key in keys if key in event})


@functools.lru_cache(maxsize=1024)
def _actor_bytes(actor_id: Any, login: Any, full_name: Any) -> bytes:
    return _dumps(_actor({"actor_id": actor_id, "actor_login": login, "actor_name": full_name}))


@functools.lru_cache(maxsize=1024)
def _api_bytes(action: str, workflow: Any, version: Any) -> bytes:
    event = ocsf_mapped({"action": action, "workflow": workflow, "workflow_version": version})
    return b"," + _members({"api": event["api"], "src_endpoint": event["src_endpoint"]})


@functools.lru_cache(maxsize=4096)
def _resources_bytes(company_id: Any, project_id: Any, subject_id: Any, subject_type: Any,
                     invoice_id: Any, bill: Any) -> bytes:
    found = _resources({"company_id": company_id, "project_id": project_id,
                        "subject_id": subject_id, "subject_type": subject_type,
                        "invoice_id": invoice_id, "erp_bill_id": bill})
    return b',"resources":' + _dumps(found) if found else b""


@functools.cache
def _metadata_head() -> bytes:
    metadata = {"version": OCSF_VERSION, "product": _product(), "log_name": "audit",
                "log_provider": "relink"}
    return b',"metadata":{' + _members(metadata)


def _actor(entry: dict[str, Any]) -> dict[str, Any]:
    get = entry.get
    login, actor_id, full_name = get("actor_login"), get("actor_id"), get("actor_name")
    user: dict[str, Any] = {}
    if actor_id is not None:
        user["uid"] = str(actor_id)
    if login is not None and login != []:
        user["name"] = login
    if full_name is not None and full_name != []:
        user["full_name"] = full_name
    if isinstance(login, str) and "@" in login:
        user["email_addr"] = login
    if login or actor_id is not None:
        user["type_id"] = 1  # User
    return {"user": user} if user else {"app_name": "relink"}


def _resources(entry: dict[str, Any]) -> list[dict[str, Any]]:
    get = entry.get
    resources = []
    company_id, project_id = get("company_id"), get("project_id")
    found: dict[str, Any] = {}
    if company_id is not None and company_id != []:
        found["company_id"] = company_id
    if project_id is not None and project_id != []:
        found["project_id"] = project_id
    where = found or None
    subject_id, subject_type = get("subject_id"), get("subject_type")
    if subject_id is not None or subject_type is not None:
        resource: dict[str, Any] = {"uid": str(subject_id)} if subject_id is not None else {}
        if subject_type is not None:
            resource["type"] = str(subject_type)
        if where is not None:
            resource["data"] = where
        resources.append(resource)
    invoice_id = get("invoice_id")
    if invoice_id is not None:
        resource = {"uid": str(invoice_id), "type": "Procore Requisition"}
        if where is not None:
            resource["data"] = where
        resources.append(resource)
    bill = get("erp_bill_id")
    if bill is not None:
        resources.append({"uid": str(bill), "type": "ERP Bill"})
    return resources


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None and value != []}


def ocsf_text(entry: dict[str, Any], line: str | None = None) -> str:
    """The OCSF line of an entry: its mapped event, then its JSONL ``line`` (the json module's
    text of the entry when not given) under ``unmapped``, the event's last key."""
    mapped = _JSON.encode(ocsf_mapped(entry))
    return mapped[:-1] + ',"unmapped":' + (_JSON.encode(entry) if line is None else line) + "}"


def write_ocsf(entries: Iterable[dict[str, Any]], stream: IO[str]) -> int:
    """One OCSF API Activity event per line."""
    return _write_lines(map(ocsf_text, entries), stream)
