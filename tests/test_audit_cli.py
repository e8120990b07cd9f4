"""The audit trail through the CLI: filters, formats, and tampering found by `audit verify`."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from tests.conftest import Relink


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Tampering goes through the raw SQLite file."""
    return sqlite_url


@pytest.fixture(name="trail")
def fixture_trail(relink: Relink) -> int:
    """A correction with successes and refusals in its history."""
    _, doc = relink.json("start", "9001", "--project", "101", "--reason", "audit me")
    wid = int(doc["id"])
    relink("advance", str(wid), "unlink")
    relink("advance", str(wid), "delete-in-erp", "--reason", "bill had the wrong amount")
    relink("advance", str(wid), "unlink", token="sandbox-ben")
    return wid


def test_log_filters(relink: Relink, trail: int) -> None:
    """Filters by actor, action and outcome narrow the log."""
    def count(*args: str) -> int:
        return len(relink.json("audit", "log", "--format", "json", *args)[1]["entries"])

    assert count() == 5
    assert count("--actor", "ben@summit.example") == 1
    assert count("--action", "unlink") == 2
    assert count("--outcome", "refused") == 2
    assert count("--workflow", str(trail), "--outcome", "in_flight") == 1
    assert count("--since", "2000-01-01", "--until", "2000-01-02") == 0
    assert count("--project", "102") == 0


def test_log_formats(relink: Relink, trail: int) -> None:
    """jsonl gives one entry per line, csv one row per entry, table is human."""
    jsonl = relink("audit", "log", "--format", "jsonl")
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    rows = list(csv.DictReader(io.StringIO(relink("audit", "log", "--format", "csv").stdout)))
    assert [r["action"] for r in rows] == [e["action"] for e in lines]
    table = relink("audit", "log")
    assert table.exit_code == 0 and "delete-in-erp" in table.stdout


def test_edited_entry_is_found(relink: Relink, trail: int) -> None:
    """An entry edited through sqlite3 with the trigger dropped: verify exits 5 naming it."""
    path = relink.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER audit_entry_no_update")
        conn.execute("UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 3")
    outcome = relink("audit", "verify")
    assert outcome.exit_code == 5
    assert "Traceback" not in outcome.stderr
    assert "seq 3" in outcome.stderr.strip().splitlines()[0]


def test_update_through_a_normal_connection_is_rejected(relink: Relink, trail: int) -> None:
    """With the triggers in place, UPDATE and DELETE on the audit table abort."""
    path = relink.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        for statement in ("UPDATE audit_entry SET reason = 'x'", "DELETE FROM audit_entry"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    assert relink("audit", "verify").exit_code == 0
