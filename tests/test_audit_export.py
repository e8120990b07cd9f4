"""Exports: JSONL round-trips, CSV cells are inert in a spreadsheet, OCSF events parse as API
Activity; files are written atomically."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import audit.export
import cli
from audit.chain import COLUMNS, FIELDS
from audit.export import csv_row, neutralise, ocsf_event, write_csv_rows, write_jsonl
from audit.log import Filters
from engine.db import Database
from engine.errors import UsageError
from engine.reviews import AuditService
from tests.audit_support import append, build_log, correction, opened

FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    with opened(db_url) as db:
        build_log(db, corrections=2)
        hostile = correction(3, 9003, 102, reason=FORMULA)
        hostile[1]["message"] = "-150.00 retainage released"
        hostile[2]["actor_name"] = "@Dana"
        append(db, hostile)
        yield db


@pytest.fixture(name="service")
def fixture_service(db: Database) -> AuditService:
    return AuditService(db)


def test_jsonl_round_trips(service: AuditService, tmp_path: Path) -> None:
    """Every exported JSONL line parses back to the stored entry, in seq order, all fields."""
    out = tmp_path / "audit.jsonl"
    count = service.export(Filters(), "jsonl", out)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert count == len(lines) == 15
    assert lines == list(service.entries(Filters()))
    assert [list(line) for line in lines] == [list(FIELDS)] * 15
    assert [line["seq"] for line in lines] == list(range(1, 16))


def test_jsonl_from_rows_is_byte_identical_to_jsonl_from_entries(
    service: AuditService, db: Database, tmp_path: Path
) -> None:
    """The export's fast path (evidence spliced in as stored) writes exactly what encoding the
    parsed entries writes, unicode, quotes and control characters included."""
    append(db, [correction(4, 9004, 101)[0] | {
        "reason": 'Line "3" \\ retainage\n\u00e9\u2028\U0001f600\x01',
        "evidence": {"note": "tab\there", "z": [1, None, True, "\u00fc"], "a": {"b": "=1"}},
    }])
    out = tmp_path / "audit.jsonl"
    service.export(Filters(), "jsonl", out)
    expected = io.StringIO()
    write_jsonl(service.entries(Filters()), expected)
    assert out.read_text(encoding="utf-8") == expected.getvalue()


def test_export_honours_filters(service: AuditService, tmp_path: Path) -> None:
    """Filters select the same entries in an export as in the log view."""
    out = tmp_path / "invoice.jsonl"
    assert service.export(Filters(invoice_id=9002), "jsonl", out) == 5
    assert {json.loads(line)["invoice_id"] for line in out.read_text().splitlines()} == {9002}


def test_csv_neutralises_formulas(service: AuditService, tmp_path: Path) -> None:
    """A reason like =HYPERLINK(...) comes out behind a quote; no cell starts a formula."""
    out = tmp_path / "audit.csv"
    assert service.export(Filters(), "csv", out) == 15
    with out.open(newline="", encoding="utf-8") as stream:
        header, *rows = list(csv.reader(stream))
    assert header == list(COLUMNS)
    cells = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    for name in ("format", "subject_type", "subject_id"):  # format 1: empty, as no such key
        assert cells[name] == [""] * 15
    assert "'" + FORMULA in cells["reason"]
    assert "'-150.00 retainage released" in cells["message"]
    assert "'@Dana" in cells["actor_name"]
    starts = ("=", "+", "-", "@", "\t", "\r")
    assert all(not cell.startswith(starts) for row in rows for cell in row)
    assert cells["seq"] == [str(n) for n in range(1, 16)]
    evidence = json.loads(cells["evidence"][0])
    assert evidence["permissions"] == {"invoices": "admin"}


def test_neutralise_touches_only_formula_starts() -> None:
    """Only strings starting with = + - @ tab or CR get the quote; integers stay numbers."""
    for text in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(text) == "'" + text
    for text in ("Successfully Unlinked", "1-2", " =1", ""):
        assert neutralise(text) == text
    row = csv_row({"seq": 3, "invoice_id": -5, "reason": "-5", "evidence": {"a": "=1"}})
    assert row[FIELDS.index("seq")] == 3
    assert row[FIELDS.index("invoice_id")] == -5
    assert row[FIELDS.index("reason")] == "'-5"
    assert row[FIELDS.index("evidence")] == '{"a":"=1"}'
    assert row[FIELDS.index("erp_bill_id")] == ""


def test_ocsf_lines_are_api_activity_events(service: AuditService, tmp_path: Path) -> None:
    """Every OCSF line parses as class 6003 with its type, time, actor, resources and the entry."""
    out = tmp_path / "audit.ocsf.jsonl"
    assert service.export(Filters(), "ocsf", out) == 15
    entries = list(service.entries(Filters()))
    events = [json.loads(line) for line in out.read_text().splitlines()]
    for event, entry in zip(events, entries, strict=True):
        assert (event["class_uid"], event["category_uid"]) == (6003, 6)
        assert event["type_uid"] == 600300 + event["activity_id"]
        assert event["api"]["operation"] == entry["action"]
        recorded = dt.datetime.fromisoformat(entry["recorded_at"])
        assert event["time"] == int(recorded.timestamp() * 1000)
        assert event["metadata"]["uid"] == entry["hash"]
        assert event["metadata"]["product"]["name"] == "relink"
        assert event["actor"]["user"]["email_addr"] == entry["actor_login"]
        assert {r["uid"] for r in event["resources"]} == {str(entry["invoice_id"]),
                                                          entry["erp_bill_id"]}
        assert event["unmapped"] == entry
    by_action = {e["api"]["operation"]: e["activity_id"] for e in events}
    assert by_action == {"start": 1, "delete-in-erp": 4, "delete-in-procore": 4, "unlink": 3}
    statuses = {(e["unmapped"]["outcome"], e["status_id"], e["status"]) for e in events}
    assert statuses == {("succeeded", 1, "Success"), ("in_flight", 99, "Other"),
                        ("refused", 2, "Failure")}


def test_ocsf_log_level_entry_has_an_app_actor() -> None:
    """An entry without a Procore actor or subject still maps to a valid event."""
    event = ocsf_event({"seq": 1, "recorded_at": "2026-11-27T18:04:05.123456Z",
                        "workflow": "audit", "action": "checkpoint", "outcome": "succeeded",
                        "message": "Checkpoint signed", "hash": "0" * 64})
    assert event["actor"] == {"app_name": "relink"}
    assert event["activity_id"] == 99 and event["type_uid"] == 600399
    moment = dt.datetime(2026, 11, 27, 18, 4, 5, 123000, tzinfo=dt.UTC)
    assert event["time"] == int(moment.timestamp()) * 1000 + 123
    assert "resources" not in event


def test_a_failed_export_leaves_no_file(
    service: AuditService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export that fails half-way leaves the previous file untouched and no temporary file."""
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "audit.csv"
    out.write_text("previous export\n")

    def half_then_fail(rows: Any, stream: io.TextIOBase) -> int:
        write_csv_rows(list(rows)[:3], stream)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit.export, "write_csv_rows", half_then_fail)
    with pytest.raises(UsageError, match="No space left on device"):
        service.export(Filters(), "csv", out)
    assert out.read_text() == "previous export\n"
    assert [p.name for p in folder.iterdir()] == ["audit.csv"]


def test_cli_export_to_a_file_and_to_stdout(db_url: str, tmp_path: Path) -> None:
    """`relink audit export` writes a file (exit 0) or streams to stdout; bad format is exit 2."""
    with opened(db_url) as db:
        build_log(db, corrections=1)

    def relink(*args: str) -> Any:
        return CliRunner().invoke(cli.app, ["--db", db_url, "audit", "export", *args],
                                  env={"RELINK_CONFIG": ""})

    out = tmp_path / "a.csv"
    result = relink("--format", "csv", "--out", str(out), "--action", "unlink")
    assert result.exit_code == 0 and "Exported 1 entries" in result.stderr
    assert len(out.read_text().splitlines()) == 2
    streamed = relink("--format", "jsonl")
    assert streamed.exit_code == 0
    assert [json.loads(line)["seq"] for line in streamed.stdout.splitlines()] == [1, 2, 3, 4, 5]
    assert relink("--format", "xml").exit_code == 2


def test_the_fused_export_line_is_the_checked_line(db_url: str) -> None:
    """The export's hot path (one encoding of each row for its hash and its line) gives exactly
    the line of the long way (check the row, then write it), for both formats and for text that
    needs escapes; a row whose hash does not match is refused the same way."""
    from audit.errors import ChainBroken
    from audit.export import checked_jsonl_line, jsonl_line
    from audit.log import rows
    from audit.verify import check_row
    from tests.audit_support import generic

    odd = {"reason": 'quote " backslash \\ tab \t é 𝄞 \u2028', "actor_name": "Zoë \x1b[31m"}
    with opened(db_url) as db:
        append(db, [e | odd for e in correction(1, 9001, 101)]
               + generic(2, "commitment", "6001") + generic(3, "requisition", "9002"))
        with db.read() as conn:
            stored = list(rows(conn, Filters()))
    assert {row[COLUMNS.index("format")] for row in stored} == {None, 2}  # both formats
    for row in stored:
        check_row(row)
        assert checked_jsonl_line(row) == jsonl_line(row)
    tampered = list(stored[3])
    tampered[COLUMNS.index("workflow")] = "another-workflow"
    with pytest.raises(ChainBroken) as refused:
        checked_jsonl_line(tuple(tampered))
    assert refused.value.seq == stored[3][0]
