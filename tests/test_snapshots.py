"""What people read, pinned with syrupy: the workflow diagram, `relink --help`, and the golden
audit trail of a complete correction (times, ids and hashes masked)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import Relink, Sandbox

HEX64 = re.compile(r"^[0-9a-f]{64}$")
KEY = re.compile(r"\b[0-9a-f]{32}\b")


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Snapshots are taken on SQLite only (the PostgreSQL suite runs the same scenarios)."""
    return sqlite_url


def test_mermaid_diagram(relink: Relink, snapshot: SnapshotAssertion) -> None:
    """The subcontractor-invoice diagram, as mermaid, drawn by transitions."""
    outcome = relink("workflows", "graph", "subcontractor-invoice")
    assert outcome.exit_code == 0
    assert outcome.stdout == snapshot


def test_help(relink: Relink, snapshot: SnapshotAssertion) -> None:
    """`relink --help` at a fixed width."""
    outcome = relink("--help", COLUMNS="100")
    assert outcome.exit_code == 0
    assert outcome.stdout == snapshot


OWNER = re.compile(r" on .+ \(pid \d+\)$")


def mask(entry: dict[str, Any], ids: dict[Any, str]) -> dict[str, Any]:
    """Replace what differs from run to run (times, hashes, request ids, keys, new ids)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if key in ("recorded_at", "created_at", "updated_at", "since", "time", "original_time",
                   "lease_until"):
            return "<time>" if value else value
        if key == "owner" and isinstance(value, str):
            return OWNER.sub(" on <host> (pid <pid>)", value)
        if key in ("request_id", "idempotency_key") and value:
            return "<id>"
        if isinstance(value, str) and HEX64.match(value):
            return ids.setdefault(value, f"<hash {len(ids) + 1}>")
        if isinstance(value, str):
            return KEY.sub("<key>", value)
        return value

    masked = walk(entry)
    for field in ("id", "new_invoice_id"):
        after = masked.get("evidence", {}).get("after")
        if isinstance(after, dict) and field in after:
            after[field] = "<new id>"
    return masked


@pytest.fixture(name="golden")
def fixture_golden(relink: Relink, sandbox: Sandbox, tmp_path: Path) -> Relink:
    """Scenario 1: ana corrects invoice 9001 from start to Reentered."""
    _, doc = relink.json("start", "9001", "--project", "101", "--reason", "Wrong amount")
    wid = str(doc["id"])
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        assert relink.json("advance", wid, step, "--reason", f"golden {step}")[0] == 0
    data = tmp_path / "corrected.toml"
    data.write_text('invoice_number = "INV-1001-C"\n')
    assert relink.json("advance", wid, "reenter", "--data", str(data))[0] == 0
    return relink


def test_golden_audit_trail(golden: Relink, snapshot: SnapshotAssertion) -> None:
    """The audit trail of scenario 1, every field but the masked ones, is exactly as recorded."""
    entries = golden.json("audit", "log", "--format", "json")[1]["entries"]
    hashes: dict[Any, str] = {}
    masked = [mask(e, hashes) for e in entries]
    assert json.loads(json.dumps(masked)) == snapshot(extension_class=JSONSnapshotExtension)


def test_golden_ocsf_export(golden: Relink, snapshot: SnapshotAssertion) -> None:
    """The OCSF export of scenario 1: API Activity (6003) events, exactly as mapped."""
    outcome = golden("audit", "export", "--format", "ocsf")
    assert outcome.exit_code == 0
    events = [json.loads(line) for line in outcome.stdout.splitlines()]
    assert {event["class_uid"] for event in events} == {6003}
    hashes: dict[Any, str] = {}
    masked = [_mask_event(event, hashes) for event in events]
    assert json.loads(json.dumps(masked)) == snapshot(extension_class=JSONSnapshotExtension)


def _mask_event(event: dict[str, Any], hashes: dict[Any, str]) -> dict[str, Any]:
    masked = dict(event)
    masked["unmapped"] = mask(event["unmapped"], hashes)
    masked["metadata"] = mask(event["metadata"], hashes)
    masked["time"] = "<time>"
    return masked
