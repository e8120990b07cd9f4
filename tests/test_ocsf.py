"""The OCSF export (audit.export): each event maps the entry as audit.export.ocsf_event
documents, checked key by key and in order against an independent reference that builds the
event from the rules, and carries the entry's JSONL line, byte for byte, under ``unmapped``; the
fast path (orjson, the line spliced as a fragment) writes the long way's bytes."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings

from audit.chain import entry_from_row, wire_values
from audit.errors import ChainBroken
from audit.export import (
    checked_jsonl_bytes,
    checked_jsonl_line,
    checked_ocsf_bytes,
    ocsf_event,
    ocsf_text,
)
from tests.test_fast_canonical import stored_rows

# the OCSF mapping against a reference that builds the event as an object --------------------


def reference_event(entry: dict[str, Any]) -> dict[str, Any]:
    """The OCSF event of an entry, built as an object from the rules of ocsf_event (without
    ``unmapped``)."""
    from audit.export import ACTIVITIES, ACTIVITY_NAMES, STATUSES, UPDATE, _product

    get = entry.get
    action = get("action") or ""
    activity = ACTIVITIES.get(action, UPDATE)
    status_id, status, severity = STATUSES.get(get("outcome") or "", (99, "Other", 1))
    try:
        moment = dt.datetime.fromisoformat(str(get("recorded_at")))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        time = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    except ValueError:
        time = 0
    user = {key: value for key, value in {
        "uid": None if get("actor_id") is None else str(get("actor_id")),
        "name": get("actor_login"), "full_name": get("actor_name"),
        "email_addr": get("actor_login") if "@" in str(get("actor_login") or "") else None,
        "type_id": 1 if get("actor_login") or get("actor_id") is not None else None,
    }.items() if value is not None}
    where = {key: get(key) for key in ("company_id", "project_id") if get(key) is not None}
    resources = []
    if get("subject_id") is not None or get("subject_type") is not None:
        resources.append({key: value for key, value in {
            "uid": None if get("subject_id") is None else str(get("subject_id")),
            "type": None if get("subject_type") is None else str(get("subject_type")),
            "data": where or None}.items() if value is not None})
    if get("invoice_id") is not None:
        resources.append({"uid": str(get("invoice_id")), "type": "Procore Requisition",
                          **({"data": where} if where else {})})
    if get("erp_bill_id") is not None:
        resources.append({"uid": str(get("erp_bill_id")), "type": "ERP Bill"})
    name = ACTIVITY_NAMES[activity]
    event: dict[str, Any] = {
        "class_uid": 6003, "class_name": "API Activity", "category_uid": 6,
        "category_name": "Application Activity", "activity_id": activity,
        "activity_name": name, "type_uid": 600300 + activity,
        "type_name": f"API Activity: {name}", "time": time, "severity_id": severity,
        "status_id": status_id, "status": status, "status_detail": get("outcome"),
        "message": get("message"),
        "actor": {"user": user} if user else {"app_name": "relink"},
        "api": {"operation": action, "service": {key: value for key, value in {
            "name": get("workflow"),
            "version": None if get("workflow_version") is None
            else str(get("workflow_version"))}.items() if value is not None}},
        "src_endpoint": {"name": "relink"}, "resources": resources or None,
        "metadata": {key: value for key, value in {
            "version": "1.6.0", "product": _product(), "log_name": "audit",
            "log_provider": "relink", "uid": get("hash"), "sequence": get("seq"),
            "original_time": get("recorded_at"),
            "correlation_uid": None if get("workflow_id") is None else str(get("workflow_id")),
            "event_code": action}.items() if value is not None},
    }
    return {key: value for key, value in event.items() if value is not None}


@settings(max_examples=300, deadline=None)
@given(stored_rows())
def test_the_ocsf_mapping_is_the_references(row: tuple[Any, ...]) -> None:
    """Key by key and in order, the event audit.ocsf writes is the reference's; ``unmapped``
    is the entry's JSONL line, byte for byte."""
    try:
        entry = entry_from_row(row)
    except ValueError:
        return
    event = ocsf_event(entry)
    unmapped = event.pop("unmapped")
    assert list(event.items()) == list(reference_event(entry).items())
    assert unmapped == entry
    try:
        line = checked_jsonl_bytes(row).decode()
    except ChainBroken:
        return  # a row the export refuses (its hash is not of this entry)
    assert json.loads(line) == entry
    written = checked_ocsf_bytes(row).decode()
    assert written.endswith(',"unmapped":' + line + "}")
    # the fast path's bytes are the long way's: the json module's event, the line spliced
    keys, values = wire_values(row)
    assert written == ocsf_text(dict(zip(keys, values, strict=True)), checked_jsonl_line(row))


def test_the_ocsf_line_of_a_log_level_entry() -> None:
    """An entry without a correction, an actor or an invoice (a checkpoint) maps to the app."""
    entry = {"seq": 1, "recorded_at": "2026-12-01T00:00:00.000000Z", "workflow_id": None,
             "workflow": "audit", "workflow_version": 1, "format": 2, "company_id": None,
             "project_id": None, "subject_type": None, "subject_id": None,
             "invoice_id": None, "erp_bill_id": None, "actor_id": None, "actor_login": None,
             "actor_name": None, "action": "checkpoint", "from_state": None, "to_state": None,
             "outcome": "succeeded", "message": "Checkpoint", "reason": None, "evidence": {},
             "prev_hash": "0" * 64, "hash": "ab" * 32}
    event = ocsf_event(entry)
    assert event["actor"] == {"app_name": "relink"}
    assert "resources" not in event
    assert event["activity_id"] == 99
    assert event["time"] == calendar.timegm((2026, 12, 1, 0, 0, 0)) * 1000
    assert event == {**reference_event(entry), "unmapped": entry}


def test_an_event_is_a_reading_so_ambiguous_evidence_stops_it() -> None:
    """Evidence holding a key twice, its hash recomputed over those very bytes: the JSONL line
    carries the bytes as hashed, but an OCSF event, a reading, refuses the entry (as every
    reader does), naming its seq; the same evidence once is exported both ways."""
    from audit.chain import COLUMNS, row_hash

    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values |= {"seq": 7, "recorded_at": "2026-12-06T10:00:00.000001Z", "workflow_id": 3,
               "workflow": "subcontractor-invoice", "workflow_version": 1,
               "action": "delete-in-erp", "outcome": "succeeded", "message": "Deleted",
               "prev_hash": "0" * 64}
    for evidence, ambiguous in (('{"status":"Active","status":"Deleted"}', True),
                                ('{"status":"Deleted"}', False)):
        values["evidence"], values["hash"] = evidence, None
        values["hash"] = row_hash(tuple(values[column] for column in COLUMNS))
        row = tuple(values[column] for column in COLUMNS)
        assert evidence.encode() in checked_jsonl_bytes(row)
        if ambiguous:
            with pytest.raises(ChainBroken) as refused:
                checked_ocsf_bytes(row)
            assert refused.value.seq == 7 and "twice" in refused.value.problem
        else:
            assert json.loads(checked_ocsf_bytes(row))["unmapped"]["evidence"] == {
                "status": "Deleted"}
