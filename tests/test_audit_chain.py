"""The chain can be re-verified from a JSONL export by anyone, with nothing but spec/audit.md:
an independent verifier agrees with ``AuditService.verify``."""

from __future__ import annotations

import hashlib
import json
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

import engine.reviews
from audit.chain import FIELDS, entry_hash, legacy_evidence_text
from audit.checkpoint import generate_keypair
from audit.log import Filters, utc_now
from audit.tables import ENTRY
from engine.db import MIGRATIONS, Database
from engine.errors import IntegrityError
from engine.reviews import AuditService
from tests.audit_support import Raw, append, build_log, correction, generic, opened
from tests.conftest import BACKENDS, _fresh_postgres

# The independent verifier ---------------------------------------------------------------------
# Written from spec/audit.md alone: rfc8785, hashlib and json, nothing from relink.

SPEC_FIELDS = {
    "seq", "recorded_at", "workflow_id", "workflow", "workflow_version", "company_id",
    "project_id", "invoice_id", "erp_bill_id", "actor_id", "actor_login", "actor_name",
    "action", "from_state", "to_state", "outcome", "message", "reason", "evidence",
    "prev_hash", "hash",
}
FORMAT_2_FIELDS = SPEC_FIELDS | {"format", "subject_type", "subject_id"}


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused if it holds a key twice (parsers disagree on which value wins)."""
    keys = [key for key, _ in pairs]
    assert len(set(keys)) == len(keys), f"a key held twice in {keys}"
    return dict(pairs)


def independent_verify(lines: list[str]) -> tuple[int, str]:
    """(last seq, last hash) of a JSONL export; AssertionError names the first bad seq."""
    expected_prev, expected_seq = "0" * 64, 1
    for line in lines:
        entry = json.loads(line, object_pairs_hook=unique_keys)
        seq = entry.get("seq")
        fields = SPEC_FIELDS  # format 1: an entry without "format"
        if "format" in entry:
            assert type(entry["format"]) is int and entry["format"] == 2, \
                f"seq {seq}: unknown format {entry['format']!r}"
            fields = FORMAT_2_FIELDS
        assert set(entry) == fields, f"seq {seq}: fields {sorted(set(entry) ^ fields)}"
        assert seq == expected_seq, f"seq {expected_seq}: found seq {seq}"
        assert entry["prev_hash"] == expected_prev, f"seq {seq}: prev_hash breaks the chain"
        body = {key: value for key, value in entry.items() if key != "hash"}
        digest = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
        assert digest == entry["hash"], f"seq {seq}: hash does not match the content"
        expected_prev, expected_seq = entry["hash"], seq + 1
    return expected_seq - 1, expected_prev


# ----------------------------------------------------------------------------------------------


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    with opened(db_url) as db:
        yield db


def export_lines(service: AuditService, folder: Path) -> list[str]:
    out = folder / "audit.jsonl"
    service.export(Filters(), "jsonl", out)
    return out.read_text(encoding="utf-8").splitlines()


def test_independent_verifier_agrees_with_relink(
    db: Database, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """Recomputing every hash of a JSONL export gives relink's head, checkpoint entry included."""
    build_log(db, corrections=4)
    service = AuditService(db)
    service.checkpoint(keys[0])
    append(db, correction(5, 9005, 101, reason="Duplicate — 'Ajustement' über € 1 200,50 ✓"))
    result = service.verify()
    assert independent_verify(export_lines(service, tmp_path)) == (
        result["head_seq"], result["head_hash"]
    )
    assert result["entries"] == 26


def test_independent_verifier_checks_a_log_of_both_formats(
    db: Database, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """A log of format-1 entries (appended without ``format``), a checkpoint, then format-2
    entries: the independent verifier recomputes every hash of the JSONL export, each entry as
    written (format-1 lines without the format-2 keys), and reaches relink's head."""
    build_log(db, corrections=2)
    service = AuditService(db)
    service.checkpoint(keys[0])
    append(db, generic(3, "requisition", "9103") + generic(4, "commitment", "CO-77"))
    result = service.verify()
    lines = export_lines(service, tmp_path)
    assert independent_verify(lines) == (result["head_seq"], result["head_hash"])
    assert result["entries"] == 21
    formats = [json.loads(line).get("format") for line in lines]
    assert formats == [None] * 11 + [2] * 10
    assert all('"format"' not in line and '"subject_' not in line for line in lines[:11])


def test_independent_verifier_rejects_a_forged_subject(db: Database, tmp_path: Path) -> None:
    """A format-2 line whose subject was changed, or whose format keys were dropped to pass it
    off as format 1, fails the independent verifier at its seq."""
    build_log(db, corrections=1)
    append(db, generic(2, "commitment", "CO-77"))
    lines = export_lines(AuditService(db), tmp_path)
    forged = json.loads(lines[6])
    forged["subject_id"] = "CO-78"
    with pytest.raises(AssertionError, match="seq 7: hash does not match"):
        independent_verify([*lines[:6], json.dumps(forged)])
    downgraded = {key: value for key, value in json.loads(lines[6]).items()
                  if key not in ("format", "subject_type", "subject_id")}
    with pytest.raises(AssertionError, match="seq 7: hash does not match"):
        independent_verify([*lines[:6], json.dumps(downgraded)])
    future = json.loads(lines[6]) | {"format": 3}
    with pytest.raises(AssertionError, match="seq 7: unknown format 3"):
        independent_verify([*lines[:6], json.dumps(future)])


def test_independent_verifier_rejects_a_forged_export(db: Database, tmp_path: Path) -> None:
    """An altered line of an export fails the independent verifier at that line's seq."""
    build_log(db, corrections=2)
    lines = export_lines(AuditService(db), tmp_path)
    forged = json.loads(lines[7])
    forged["evidence"]["erp_reply"]["status"] = "Active"
    lines[7] = json.dumps(forged)
    with pytest.raises(AssertionError, match="seq 8: hash does not match"):
        independent_verify(lines)


def test_independent_verifier_rejects_a_key_held_twice(db: Database, tmp_path: Path) -> None:
    """A line whose evidence holds a forged value before the real key fails the independent
    verifier, although parsing it last-key-wins gives the hashed value."""
    build_log(db, corrections=1)
    lines = export_lines(AuditService(db), tmp_path)
    lines[2] = lines[2].replace('"status":"Deleted"', '"status":"Active","status":"Deleted"')
    with pytest.raises(AssertionError, match="a key held twice"):
        independent_verify(lines)


def test_both_verifiers_accept_an_empty_log(db: Database, tmp_path: Path) -> None:
    """An empty log verifies: no entries, head at seq 0 with the zero hash."""
    result = AuditService(db).verify()
    assert (result["entries"], result["head_seq"]) == (0, 0)
    assert independent_verify(export_lines(AuditService(db), tmp_path)) == (0, "0" * 64)


JSON_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str)  # money as strings
)
EVIDENCE = st.dictionaries(
    st.text(max_size=10),
    st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8),
    max_size=5,
)


@pytest.fixture(name="sqlite_db", scope="module")
def fixture_sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('chain') / 'relink.db'}"
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence=EVIDENCE, reason=st.none() | st.text(max_size=40), message=st.text(max_size=40))
def test_any_evidence_survives_storage_and_export(
    sqlite_db: Database, evidence: dict[str, Any], reason: str | None, message: str
) -> None:
    """Whatever JSON evidence and text an entry holds, both verifiers accept the chain."""
    fields = correction(1, 9001, 101)[0] | {"evidence": evidence, "reason": reason,
                                            "message": message}
    append(sqlite_db, [fields])
    service = AuditService(sqlite_db)
    result = service.verify()
    lines = [json.dumps(entry) for entry in service.entries(Filters())]
    assert independent_verify(lines) == (result["head_seq"], result["head_hash"])
    assert json.loads(lines[-1])["evidence"] == evidence


def test_verify_reports_the_first_bad_entry_only(db: Database) -> None:
    """A broken chain is reported once, at its first bad seq, as exit 5."""
    build_log(db, corrections=1)
    raw = Raw(db)
    raw.drop_triggers()
    raw.execute("UPDATE audit_entry SET message = 'Nothing happened' WHERE seq IN (2, 4)")
    raw.close()
    with pytest.raises(IntegrityError, match=r"^audit log verification failed at seq 2: "):
        AuditService(db).verify()


@pytest.fixture(name="keys")
def fixture_keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "signing.key")


def test_verify_reads_one_snapshot_while_entries_are_appended(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append committed while verify runs (after it read the head) is not mistaken for
    tampering: verify checks the log as of one snapshot."""
    build_log(db, corrections=1)
    real_head = engine.reviews.head

    def head_then_append(conn: Any, **kwargs: Any) -> dict[str, Any]:
        found = real_head(conn, **kwargs)
        append(db, correction(2, 9002, 101)[:1])  # another operator, another connection
        return found

    monkeypatch.setattr(engine.reviews, "head", head_then_append)
    assert AuditService(db).verify()["head_seq"] == 5
    monkeypatch.undo()
    assert AuditService(db).verify()["head_seq"] == 6


# entries stored before schema 0002 ------------------------------------------------------------

# Evidence whose sorted compact json.dumps text (the 0001 writer's) is not its JCS text.
NOT_JCS_BEFORE_0002 = {"rate": 1.0, "small": 2.5e-7, "\U0001F600": "grin", "\uff01": "bang",
                       "total": "18250.00"}


@pytest.fixture(name="old_db", params=BACKENDS)
def fixture_old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at schema 0001, as the relink before issue 8 left it."""
    cleanup = None if request.param == "sqlite" else _fresh_postgres()
    url = f"sqlite:///{tmp_path / 'old.db'}" if cleanup is None else next(cleanup)
    db = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn.execution_options(relink_write=True)
        command.upgrade(config, "0001")
        if conn.in_transaction():
            conn.commit()
    yield db
    db.dispose()
    if cleanup is not None:
        next(cleanup, None)


def append_as_0001(db: Database, fields: dict[str, Any]) -> None:
    """Append one entry as schema 0001's writer did: evidence stored as sorted json.dumps."""
    with db.write() as conn:
        seq, prev = conn.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        entry = {key: None for key in FIELDS[:-1]} | fields
        entry |= {"seq": seq + 1, "recorded_at": utc_now(), "prev_hash": prev}
        entry["hash"] = entry_hash(entry)
        conn.execute(ENTRY.insert(), {**entry,
                                      "evidence": legacy_evidence_text(entry["evidence"])})
        conn.execute(sa.text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                     {"seq": entry["seq"], "hash": entry["hash"]})


def test_entries_from_before_0002_keep_their_encoding_and_new_ones_are_jcs(
    old_db: Database, tmp_path: Path
) -> None:
    """After the upgrade, entries stored by the 0001 writer verify as they are (JCS required
    where that writer's text was JCS); new entries are stored as JCS and must stay so."""
    old = correction(1, 9001, 101)[:3]
    old[1]["evidence"] = NOT_JCS_BEFORE_0002
    for fields in old:
        append_as_0001(old_db, fields)
    old_db.upgrade()
    assert AuditService(old_db).verify()["entries"] == 3
    new = correction(2, 9002, 101)[:2]
    new[1]["evidence"] = NOT_JCS_BEFORE_0002
    append(old_db, new)
    service = AuditService(old_db)
    result = service.verify()
    assert independent_verify(export_lines(service, tmp_path)) == (
        result["head_seq"], result["head_hash"]
    )
    raw = Raw(old_db)
    raw.drop_triggers()
    try:
        stored = {seq: str(raw.execute("SELECT evidence FROM audit_entry WHERE seq = ?",
                                       (seq,))[0][0]) for seq in (1, 2, 5)}
        assert stored[2] == legacy_evidence_text(NOT_JCS_BEFORE_0002) != stored[5]
        assert stored[5] == rfc8785.dumps(NOT_JCS_BEFORE_0002).decode()
        for seq, text in ((1, stored[1].replace(",", ", ")), (5, stored[2])):
            raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = ?", (text, seq))
            with pytest.raises(IntegrityError, match=f"at seq {seq}: evidence is not stored in"
                               " its canonical"):
                service.verify()
            raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = ?", (stored[seq], seq))
    finally:
        raw.close()
    assert service.verify()["entries"] == 5
