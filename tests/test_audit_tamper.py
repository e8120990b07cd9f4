"""R4: tampering through the raw database is found, and named by its first bad seq, on SQLite
and PostgreSQL; the append-only triggers reject changes through a normal connection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit.chain import FIELDS, entry_hash
from audit.checkpoint import generate_keypair
from engine.db import Database
from engine.errors import IntegrityError
from engine.reviews import AuditService
from tests.audit_support import Raw, append, build_log, correction, opened

COLUMNS = ", ".join(FIELDS)


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    with opened(db_url) as db:
        build_log(db)  # 15 entries: 3 corrections of 5 entries
        yield db


@pytest.fixture(name="raw")
def fixture_raw(db: Database) -> Iterator[Raw]:
    raw = Raw(db)
    raw.drop_triggers()
    yield raw
    raw.close()


def failure(db: Database, **kwargs: Path) -> str:
    with pytest.raises(IntegrityError) as caught:
        AuditService(db).verify(**kwargs)
    assert caught.value.exit_code == 5
    return caught.value.message


def rewrite_from(raw: Raw, seq: int) -> None:
    """Recompute every hash from ``seq`` on and move the head: a consistent forged chain."""
    rows = raw.execute(f"SELECT {COLUMNS} FROM audit_entry WHERE seq >= ? ORDER BY seq", (seq,))
    prev = raw.execute("SELECT hash FROM audit_entry WHERE seq = ?", (seq - 1,))[0][0]
    for row in rows:
        entry = dict(zip(FIELDS, row, strict=True))
        entry["evidence"] = json.loads(entry["evidence"])
        entry["prev_hash"] = prev
        prev = entry_hash(entry)
        raw.execute("UPDATE audit_entry SET prev_hash = ?, hash = ? WHERE seq = ?",
                    (entry["prev_hash"], prev, entry["seq"]))
    raw.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))


def cut_tail(raw: Raw, keep: int) -> None:
    """Delete every entry after ``keep`` and move the head back to it."""
    raw.execute("DELETE FROM audit_entry WHERE seq > ?", (keep,))
    last = raw.execute("SELECT hash FROM audit_entry WHERE seq = ?", (keep,))[0][0]
    raw.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (keep, last))


def swap(raw: Raw, a: int, b: int) -> None:
    raw.execute("UPDATE audit_entry SET seq = -1 WHERE seq = ?", (a,))
    raw.execute("UPDATE audit_entry SET seq = ? WHERE seq = ?", (a, b))
    raw.execute("UPDATE audit_entry SET seq = ? WHERE seq = -1", (b,))


def rewrite_one(raw: Raw, seq: int) -> None:
    """Recompute the hash of entry ``seq`` alone (the next entry's prev_hash now disagrees)."""
    row = raw.execute(f"SELECT {COLUMNS} FROM audit_entry WHERE seq = ?", (seq,))[0]
    entry = dict(zip(FIELDS, row, strict=True))
    entry["evidence"] = json.loads(entry["evidence"])
    raw.execute("UPDATE audit_entry SET hash = ? WHERE seq = ?", (entry_hash(entry), seq))


TAMPERING: dict[str, tuple[Callable[[Raw], None], int, str]] = {
    "edit reason": (
        lambda raw: raw.execute("UPDATE audit_entry SET reason = 'Approved' WHERE seq = 7"),
        7, "altered",
    ),
    "edit outcome": (
        lambda raw: raw.execute("UPDATE audit_entry SET outcome = 'succeeded' WHERE seq = 4"),
        4, "altered",
    ),
    "edit evidence": (
        lambda raw: raw.execute(
            "UPDATE audit_entry SET evidence = replace(evidence, '18250.00', '1825.00')"
            " WHERE seq = 11"),
        11, "altered",
    ),
    "evidence not JSON": (
        lambda raw: raw.execute("UPDATE audit_entry SET evidence = '{oops' WHERE seq = 9"),
        9, "not valid JSON",
    ),
    "edit and rehash one entry": (
        lambda raw: (raw.execute("UPDATE audit_entry SET actor_login = 'x' WHERE seq = 5"),
                     rewrite_one(raw, 5)),
        6, "prev_hash",
    ),
    "delete a middle entry": (
        lambda raw: raw.execute("DELETE FROM audit_entry WHERE seq = 8"), 8, "deleted",
    ),
    "delete the first entry": (
        lambda raw: raw.execute("DELETE FROM audit_entry WHERE seq = 1"), 1, "deleted",
    ),
    "delete the tail, head left": (
        lambda raw: raw.execute("DELETE FROM audit_entry WHERE seq > 12"), 13, "cut off",
    ),
    "swap two entries": (lambda raw: swap(raw, 6, 10), 6, "prev_hash"),
    "swap neighbours": (lambda raw: swap(raw, 14, 15), 14, "prev_hash"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_named_by_its_first_bad_seq(db: Database, raw: Raw, case: str) -> None:
    """Each raw tampering makes verify fail (exit 5) naming the first bad seq and the cause."""
    tamper, seq, cause = TAMPERING[case]
    AuditService(db).verify()
    tamper(raw)
    message = failure(db)
    assert f"failed at seq {seq}:" in message
    assert cause in message


def test_a_cut_tail_with_a_moved_head_needs_a_checkpoint(
    db: Database, raw: Raw, tmp_path: Path
) -> None:
    """Cutting the tail and moving the head back passes the chain alone; a checkpoint of a later
    seq names the first missing seq."""
    key, public = generate_keypair(tmp_path / "key")
    checkpoint = tmp_path / "cp.json"
    signed = AuditService(db).checkpoint(key, out=checkpoint)  # seq 16
    append(db, correction(4, 9004, 101))  # 17..21
    cut_tail(raw, 11)
    assert AuditService(db).verify()["head_seq"] == 11
    message = failure(db, checkpoint=checkpoint, public_key=public)
    assert "failed at seq 12: the log ends at seq 11 but the signed checkpoint covers seq" \
        f" {signed['seq']}" in message


def test_a_rewritten_chain_needs_a_checkpoint(db: Database, raw: Raw, tmp_path: Path) -> None:
    """Rewriting an entry and recomputing every hash after it passes the chain alone; a checkpoint
    names the seq whose signed hash no longer matches."""
    key, public = generate_keypair(tmp_path / "key")
    checkpoint = tmp_path / "cp.json"
    signed = AuditService(db).checkpoint(key, out=checkpoint)
    append(db, correction(4, 9004, 101))
    raw.execute("UPDATE audit_entry SET reason = 'Approved by the owner' WHERE seq = 2")
    rewrite_from(raw, 2)
    AuditService(db).verify()
    message = failure(db, checkpoint=checkpoint, public_key=public)
    assert f"failed at seq {signed['seq']}: its hash differs from the signed checkpoint" in message


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entry SET reason = 'x' WHERE seq = 3",
    "UPDATE audit_entry SET hash = prev_hash",
    "DELETE FROM audit_entry WHERE seq = 15",
    "DELETE FROM audit_entry",
    "TRUNCATE audit_entry",
])
def test_changes_through_a_normal_connection_are_rejected(db: Database, statement: str) -> None:
    """UPDATE, DELETE and TRUNCATE of audit entries fail through relink's own connections."""
    if statement.startswith("TRUNCATE") and db.dialect == "sqlite":
        pytest.skip("SQLite has no TRUNCATE (DELETE without WHERE covers it)")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.write() as conn:
        conn.exec_driver_sql(statement)
    assert AuditService(db).verify()["entries"] == 15
