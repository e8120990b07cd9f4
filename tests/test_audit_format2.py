"""Format 2 (spec/audit.md): entries of the generic engine carry ``format``, ``subject_type`` and
``subject_id``; a log holds both formats, each entry hashed, verified and exported exactly as it
was written, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cli
from audit.chain import COLUMNS, FIELDS, FIELDS_2, GENESIS, entry_hash, evidence_text
from audit.export import ocsf_event, write_jsonl
from audit.log import AuditLog, Filters, query
from audit.tables import ENTRY
from commands.app import exit_code
from engine.db import MIGRATIONS, Database
from engine.errors import IntegrityError
from engine.reviews import AuditService
from tests.audit_support import Raw, append, build_log, correction, generic, opened
from tests.conftest import BACKENDS, _fresh_postgres

FORMAT_2_KEYS = ("format", "subject_type", "subject_id")


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    """A log of both formats: seqs 1-10 format 1 (appended without ``format``, as before the
    generic engine), 11-15 a requisition and 16-20 a commitment in format 2."""
    with opened(db_url) as db:
        build_log(db, corrections=2)
        append(db, generic(3, "requisition", "9103") + generic(4, "commitment", "CO-77"))
        yield db


def test_a_log_of_both_formats_verifies_and_reads_back_as_written(db: Database) -> None:
    """Every entry reads back in its own wire form (format-1 keys only, or format 2's in its
    order) and the whole mixed chain verifies."""
    assert AuditService(db).verify()["entries"] == 20
    entries = list(AuditService(db).entries(Filters()))
    assert [list(entry) for entry in entries] == [list(FIELDS)] * 10 + [list(FIELDS_2)] * 10
    assert [entry.get("format") for entry in entries] == [None] * 10 + [2] * 10
    commitment = entries[15]
    assert (commitment["subject_type"], commitment["subject_id"]) == ("commitment", "CO-77")
    assert (commitment["invoice_id"], commitment["erp_bill_id"]) == (None, None)
    assert (entries[10]["subject_id"], entries[10]["invoice_id"]) == ("9103", 9103)
    assert all(entry_hash(entry) == entry["hash"] for entry in entries)


def test_append_returns_the_wire_form_it_stored(db: Database) -> None:
    """``append`` returns each format's wire form, equal to what the log reads back."""
    written = append(db, correction(5, 9005, 101)[:1] + generic(6, "commitment", "CO-78")[:1])
    assert [list(entry) for entry in written] == [list(FIELDS), list(FIELDS_2)]
    with db.read() as conn:
        assert list(query(conn, Filters(), limit=2, newest_first=True))[::-1] == written


def test_filters_select_by_subject(db: Database) -> None:
    """``subject_type`` and ``subject_id`` filters match format-2 entries only."""
    def seqs(**kwargs: Any) -> list[int]:
        return [e["seq"] for e in AuditService(db).entries(Filters(**kwargs))]

    assert seqs(subject_type="commitment") == list(range(16, 21))
    assert seqs(subject_type="requisition", subject_id="9103") == list(range(11, 16))
    assert seqs(subject_id="CO-77", action="unlink") == [20]
    assert seqs(subject_type="requisition", subject_id="9001") == []  # a format-1 invoice
    assert seqs(invoice_id=9103) == list(range(11, 16))


@pytest.mark.parametrize("fields", [
    {"format": 3},
    {"format": "2"},
    {"format": True},
    {"subject_type": "commitment", "subject_id": "CO-1"},  # a subject needs format 2
    {"format": 2, "subject_type": "commitment", "subject_id": 77},
    {"format": 2, "subject": "commitment"},
], ids=["format 3", "format as text", "format true", "subject without format",
        "subject_id an integer", "unknown key"])
def test_append_refuses_an_entry_it_could_not_store_as_hashed(
    db: Database, fields: dict[str, Any]
) -> None:
    """An entry whose stored row would not hash as written is refused before anything moves."""
    with pytest.raises(ValueError, match=r"format|subject"), db.write() as conn:
        AuditLog(dialect=db.dialect).append(conn, correction(5, 9005, 101)[0] | fields)
    assert AuditService(db).verify()["entries"] == 20


# what reviewers export ------------------------------------------------------------------------

# The JSONL line that relink wrote before format 2 existed for this entry (seq 1 of a new log at
# GOLDEN_TIME): format-1 lines stay byte for byte the same.
GOLDEN_TIME = "2026-11-27T18:04:05.123456Z"
GOLDEN_LINE = (
    '{"seq":1,"recorded_at":"2026-11-27T18:04:05.123456Z","workflow_id":1,'
    '"workflow":"subcontractor-invoice","workflow_version":1,"company_id":4021,"project_id":101,'
    '"invoice_id":9001,"erp_bill_id":"181","actor_id":7001,'
    '"actor_login":"dana.whitfield@harborbuild.example","actor_name":"Dana Whitfield",'
    '"action":"start","from_state":null,"to_state":"Exported","outcome":"succeeded",'
    '"message":"Correction 1 started","reason":"Wrong retainage on line 3 — über € 1 200,50",'
    '"evidence":{"before":{"total":"18250.00"},"permissions":{"invoices":"admin"}},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"hash":"d97dc377c3dbd269dd65410d4706464a9f105e19be2bcd9b66cb9dae1ed2123c"}'
)


def test_format_1_jsonl_is_byte_identical_to_the_export_before_format_2(
    db_url: str, tmp_path: Path
) -> None:
    """A format-1 entry exports exactly the line (and hash) it did before format 2: no format
    key, nothing reordered; format-2 lines carry the three keys in FIELDS_2 order."""
    fields = correction(1, 9001, 101)[0] | {
        "reason": "Wrong retainage on line 3 — über € 1 200,50",
        "evidence": {"permissions": {"invoices": "admin"}, "before": {"total": "18250.00"}},
    }
    with opened(db_url) as db:
        with db.write() as conn:
            AuditLog(dialect=db.dialect, clock=lambda: GOLDEN_TIME).append(conn, fields)
        append(db, generic(2, "commitment", "CO-77")[:1])
        out = tmp_path / "audit.jsonl"
        AuditService(db).export(Filters(), "jsonl", out)
        lines = out.read_text(encoding="utf-8").splitlines()
        assert lines[0] == GOLDEN_LINE
        assert list(json.loads(lines[1])) == list(FIELDS_2)
        expected = io.StringIO()  # the fast path (rows) writes what encoding entries writes
        write_jsonl(AuditService(db).entries(Filters()), expected)
        assert out.read_text(encoding="utf-8") == expected.getvalue()


INTEGERS = {"seq", "workflow_id", "workflow_version", "company_id", "project_id", "invoice_id",
            "actor_id", "format"}


def csv_verify(text: str) -> int:
    """Re-hash the rows of a CSV export by the rule of audit/export.py: an empty ``format`` is
    a format-1 entry, whose format-2 keys are dropped, not read as nulls (rows free of
    neutralised cells only). Returns the rows checked."""
    header, *rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        entry: dict[str, Any] = {
            name: None if cell == "" else int(cell) if name in INTEGERS else cell
            for name, cell in zip(header, row, strict=True)
        }
        if entry["format"] is None:
            for key in FORMAT_2_KEYS:
                del entry[key]
        entry["evidence"] = json.loads(entry["evidence"])
        stored = entry.pop("hash")
        assert hashlib.sha256(rfc8785.dumps(entry)).hexdigest() == stored, entry["seq"]
    return len(rows)


def test_csv_has_the_format_2_columns_empty_for_format_1(db: Database, tmp_path: Path) -> None:
    """The CSV header ends with format, subject_type and subject_id; format-1 rows leave them
    empty, and dropping them there re-hashes every row."""
    out = tmp_path / "audit.csv"
    assert AuditService(db).export(Filters(), "csv", out) == 20
    text = out.read_text(encoding="utf-8")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == list(COLUMNS)
    assert [row[-3:] for row in rows] == [["", "", ""]] * 10 + [
        ["2", "requisition", "9103"]] * 5 + [["2", "commitment", "CO-77"]] * 5
    assert csv_verify(text) == 20


def test_ocsf_events_name_the_subject(db: Database, tmp_path: Path) -> None:
    """A format-2 event has its subject among its resources and the entry, format keys and all,
    under unmapped; a format-1 event is mapped as before."""
    out = tmp_path / "audit.ocsf.jsonl"
    assert AuditService(db).export(Filters(), "ocsf", out) == 20
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["type"] for r in events[0]["resources"]] == ["Procore Requisition", "ERP Bill"]
    assert "format" not in events[0]["unmapped"]
    commitment = events[15]
    assert commitment["resources"] == [
        {"uid": "CO-77", "type": "commitment", "data": {"company_id": 4021, "project_id": 101}}
    ]
    assert list(commitment["unmapped"]) == list(FIELDS_2)
    assert [r["uid"] for r in events[10]["resources"]] == ["9103", "9103", "183"]
    log_level = ocsf_event({"seq": 1, "action": "checkpoint", "format": 2, "subject_type": None,
                            "subject_id": None, "hash": GENESIS})
    assert "resources" not in log_level


# tampering with format-2 entries ----------------------------------------------------------

TAMPERING: dict[str, tuple[str, int, str]] = {
    "subject_id of a format-2 entry": (
        "UPDATE audit_entry SET subject_id = 'CO-78' WHERE seq = 17", 17,
        "does not match its hash"),
    "subject_type of a format-2 entry": (
        "UPDATE audit_entry SET subject_type = 'commitment' WHERE seq = 12", 12,
        "does not match its hash"),
    "format-2 entry passed off as format 1": (
        "UPDATE audit_entry SET format = NULL, subject_type = NULL, subject_id = NULL"
        " WHERE seq = 18", 18, "does not match its hash"),
    "format-1 entry passed off as format 2": (
        "UPDATE audit_entry SET format = 2, subject_type = 'requisition', subject_id = '9001'"
        " WHERE seq = 3", 3, "does not match its hash"),
    "unknown format": (
        "UPDATE audit_entry SET format = 3 WHERE seq = 14", 14,
        "format 3 is not an entry format relink knows"),
    "format dropped, subject kept": (
        "UPDATE audit_entry SET format = NULL WHERE seq = 19", 19,
        "without a format (format 1) holds subject_type or subject_id"),
    "subject added to a format-1 entry": (
        "UPDATE audit_entry SET subject_id = '9001' WHERE seq = 4", 4,
        "without a format (format 1) holds subject_type or subject_id"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_with_the_format_2_columns_is_named_by_its_seq(
    db: Database, tmp_path: Path, case: str
) -> None:
    """Each change to the format or subject columns fails verify (exit 5) at its seq, and the
    export (and, for a row in neither format, the log view) stops there."""
    statement, seq, cause = TAMPERING[case]
    raw = Raw(db)
    raw.drop_triggers()
    raw.execute(statement)
    raw.close()
    with pytest.raises(IntegrityError) as caught:
        AuditService(db).verify()
    assert exit_code(caught.value) == 5
    assert f"failed at seq {seq}: " in caught.value.message
    assert cause in caught.value.message
    out = tmp_path / "audit.jsonl"
    with pytest.raises(IntegrityError, match=f"seq {seq}: "):
        AuditService(db).export(Filters(), "jsonl", out)
    assert not out.exists()
    if "hash" not in cause:  # a row in neither format has no wire form to show
        with pytest.raises(IntegrityError, match=f"seq {seq}: .*{re.escape(cause)}"):
            list(AuditService(db).entries(Filters()))


def test_cli_verify_exits_5_on_a_tampered_subject_id(db: Database) -> None:
    """`relink audit verify` exits 5 with one line naming the format-2 entry whose subject_id
    was changed (and 0 before)."""
    def verify() -> Any:
        return CliRunner().invoke(cli.app, ["--db", db.url, "audit", "verify"],
                                  env={"RELINK_CONFIG": ""})

    assert verify().exit_code == 0
    raw = Raw(db)
    raw.drop_triggers()
    raw.execute("UPDATE audit_entry SET subject_id = 'CO-78' WHERE seq = 17")
    raw.close()
    outcome = verify()
    assert (outcome.exit_code, outcome.stdout) == (5, "")
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in outcome.stderr, outcome.stderr
    assert "seq 17" in lines[0]


# logs from before format 2 ------------------------------------------------------------------


@pytest.fixture(name="db_0003", params=BACKENDS)
def fixture_db_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at schema 0003, before the audit table had the format-2 columns."""
    cleanup = None if request.param == "sqlite" else _fresh_postgres()
    url = f"sqlite:///{tmp_path / 'old.db'}" if cleanup is None else next(cleanup)
    db = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn.execution_options(relink_write=True)
        command.upgrade(config, "0003")
        if conn.in_transaction():
            conn.commit()
    yield db
    db.dispose()
    if cleanup is not None:
        next(cleanup, None)


def append_as_0003(db: Database, fields: dict[str, Any]) -> None:
    """Append one entry as the writer before format 2 did: the FIELDS columns only."""
    with db.write() as conn:
        seq, prev = conn.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        entry = {key: None for key in FIELDS[:-1]} | fields
        entry |= {"seq": seq + 1, "recorded_at": "2026-03-02T09:00:00.000000Z",
                  "prev_hash": prev}
        entry["hash"] = entry_hash(entry)
        conn.execute(sa.insert(ENTRY).values(
            {ENTRY.c[key]: evidence_text(value) if key == "evidence" else value
             for key, value in entry.items()}))
        conn.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                     {"seq": entry["seq"], "hash": entry["hash"]})


def test_a_log_from_before_0004_verifies_and_grows_in_format_2(
    db_0003: Database, tmp_path: Path
) -> None:
    """Entries stored before migration 0004 (no format columns) verify unchanged after it, and
    the log grows with format-2 entries; the JSONL export re-hashes line by line."""
    for fields in correction(1, 9001, 101):
        append_as_0003(db_0003, fields)
    db_0003.upgrade()
    service = AuditService(db_0003)
    before = service.verify()
    append(db_0003, generic(2, "commitment", "CO-77"))
    assert service.verify()["entries"] == 10
    out = tmp_path / "audit.jsonl"
    service.export(Filters(), "jsonl", out)
    prev = GENESIS
    for line in out.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert ("format" in entry) == (entry["seq"] > 5)
        stored = entry.pop("hash")
        assert entry["prev_hash"] == prev
        prev = hashlib.sha256(rfc8785.dumps(entry)).hexdigest()
        assert prev == stored, entry["seq"]
    assert json.loads(out.read_text().splitlines()[4])["hash"] == before["head_hash"]


# any subject ------------------------------------------------------------------------------------


@pytest.fixture(name="sqlite_db", scope="module")
def fixture_sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('format2') / 'relink.db'}")
    db.upgrade()
    yield db
    db.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject_type=st.none() | st.text(max_size=50), subject_id=st.none() | st.text(max_size=100),
       old=st.booleans())
def test_any_subject_survives_storage_and_export(
    sqlite_db: Database, subject_type: str | None, subject_id: str | None, old: bool
) -> None:
    """Whatever text a subject holds, interleaved with format-1 entries, the chain verifies
    and every entry reads back as written."""
    fields: dict[str, Any] = correction(1, 9001, 101)[0]
    if not old:
        fields |= {"format": 2, "subject_type": subject_type, "subject_id": subject_id}
    written = append(sqlite_db, [fields])[0]
    service = AuditService(sqlite_db)
    result = service.verify()
    assert result["head_hash"] == written["hash"]
    [last] = list(service.entries(Filters(), limit=1, newest_first=True))
    assert last == written
    assert ("subject_id" in last) is not old

