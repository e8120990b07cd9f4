"""R4: tampering through the raw database is found, and named by its first bad seq, on SQLite
and PostgreSQL; the append-only triggers reject changes through a normal connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import cli
from audit.chain import FIELDS, entry_hash
from audit.checkpoint import generate_keypair
from audit.log import Filters
from commands.app import exit_code
from engine.db import Database
from engine.errors import IntegrityError
from engine.reviews import AuditService
from tests.audit_support import (  # noqa: F401 (fixture_db, fixture_raw: fixtures)
    Raw,
    append,
    build_log,
    correction,
    fixture_db,
    fixture_raw,
    opened,
)
from tests.conftest import Relink

COLUMNS = ", ".join(FIELDS)


def failure(db: Database, **kwargs: Path) -> str:
    with pytest.raises(IntegrityError) as caught:
        AuditService(db).verify(**kwargs)
    assert exit_code(caught.value) == 5
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


# the stored bytes are the hashed bytes (issue 8: defects 7 and 9) ----------------------------


def evidence_of(raw: Raw, seq: int) -> str:
    return str(raw.execute("SELECT evidence FROM audit_entry WHERE seq = ?", (seq,))[0][0])


def forge_duplicate(raw: Raw, seq: int = 3) -> None:
    """A forged value placed before the real key: a last-key-wins parser sees the real value,
    so the parsed evidence still hashes right; a first-key-wins reader sees the forgery."""
    text = evidence_of(raw, seq)
    forged = text.replace('"status":"Deleted"', '"status":"Active","status":"Deleted"')
    assert forged != text and json.loads(forged) == json.loads(text)
    raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = ?", (forged, seq))


@pytest.mark.parametrize("signed", [False, True], ids=["chain", "checkpoint"])
def test_a_key_held_twice_in_evidence_is_named_by_its_seq(
    db: Database, raw: Raw, tmp_path: Path, signed: bool
) -> None:
    """Evidence re-stored with a forged value before the real key fails verify (exit 5) at its
    seq, with or without a signed checkpoint covering it."""
    kwargs: dict[str, Path] = {}
    if signed:
        key, public = generate_keypair(tmp_path / "key")
        AuditService(db).checkpoint(key, out=tmp_path / "cp.json")
        kwargs = {"checkpoint": tmp_path / "cp.json", "public_key": public}
    AuditService(db).verify(**kwargs)
    forge_duplicate(raw)
    assert 'failed at seq 3: evidence holds the key "status" twice' in failure(db, **kwargs)


RESPELLED: dict[str, Callable[[str], str]] = {
    "spaces": lambda text: text.replace(",", ", "),
    "key order": lambda text: json.dumps(dict(reversed(json.loads(text).items())),
                                         separators=(",", ":")),
    "escapes": lambda text: text.replace("D", "\\u0044"),
    "number": lambda text: text.replace(":200", ":2e2"),
}


@pytest.mark.parametrize("spelling", RESPELLED)
def test_evidence_spelled_otherwise_is_found(db: Database, raw: Raw, spelling: str) -> None:
    """Evidence re-stored as other JSON text for the same value (spaces, key order, escapes, a
    number's form) fails verify: the stored bytes must be the JCS bytes its hash covers."""
    text = evidence_of(raw, 3)
    respelled = RESPELLED[spelling](text)
    assert respelled != text and json.loads(respelled) == json.loads(text)
    raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = 3", (respelled,))
    message = failure(db)
    assert "failed at seq 3: evidence is not stored in its canonical (RFC 8785) form" in message


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "ocsf"])
def test_an_export_never_carries_forged_evidence(
    db: Database, raw: Raw, tmp_path: Path, fmt: str
) -> None:
    """Exports check each entry against its hash: forged evidence stops them (exit 5, naming the
    seq) before anything is written, to a file or to stdout."""
    forge_duplicate(raw)
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(IntegrityError, match="seq 3: evidence holds the key"):
        AuditService(db).export(Filters(), fmt, folder / f"audit.{fmt}")
    assert list(folder.iterdir()) == []
    streamed = run_cli(db.url, "audit", "export", "--format", fmt)
    assert (streamed.exit_code, streamed.stdout) == (5, "")
    assert "seq 3" in one_line(streamed.stderr)


def run_cli(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(cli.app, ["--db", db_url, *args], env={"RELINK_CONFIG": ""})


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# nothing replaces a row; the head only moves forward (issue 8: defect 8) ---------------------

_FORGED_5 = (
    f"INSERT INTO audit_entry ({COLUMNS}) SELECT "
    + ", ".join("'Approved'" if field == "reason" else field for field in FIELDS)
    + " FROM audit_entry WHERE seq = 5"
)
_HEAD_ROW = f"(1, 'forged', 0, '{'0' * 64}', 1)"
REPLACING = {
    "sqlite": [
        _FORGED_5.replace("INSERT", "INSERT OR REPLACE", 1),
        _FORGED_5.replace("INSERT", "REPLACE", 1),
        _FORGED_5 + " ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason",
        _FORGED_5.replace("INSERT", "INSERT OR IGNORE", 1),
        f"INSERT OR REPLACE INTO audit_head (id, log_id, seq, hash, canonical_from)"
        f" VALUES {_HEAD_ROW}",
    ],
    "postgresql": [
        _FORGED_5 + " ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason",
        "MERGE INTO audit_entry e USING (SELECT 5 AS seq) s ON e.seq = s.seq"
        " WHEN MATCHED THEN UPDATE SET reason = 'Approved'",
        "MERGE INTO audit_entry e USING (SELECT 5 AS seq) s ON e.seq = s.seq"
        " WHEN MATCHED THEN DELETE",
        f"INSERT INTO audit_head (id, log_id, seq, hash, canonical_from) VALUES {_HEAD_ROW}"
        " ON CONFLICT (id) DO UPDATE SET log_id = excluded.log_id",
        "TRUNCATE audit_head",
    ],
    "both": [
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = seq - 1, hash = 'x'",
        "UPDATE audit_head SET log_id = 'forged'",
        "UPDATE audit_head SET canonical_from = 99",
        "UPDATE audit_head SET id = 2",
    ],
}


@pytest.mark.parametrize("statement", [s for v in REPLACING.values() for s in v],
                         ids=lambda statement: " ".join(statement.split()[:4]))
def test_nothing_replaces_an_entry_or_moves_the_head_back(db: Database, statement: str) -> None:
    """With the triggers in place, INSERT OR REPLACE, REPLACE, upserts and MERGE cannot replace
    an entry, and the head row cannot be replaced, deleted or moved back, through relink's own
    connections; the log still verifies."""
    if statement not in REPLACING["both"] + REPLACING[db.dialect]:
        pytest.skip(f"not {db.dialect} SQL")
    with pytest.raises(sa.exc.DBAPIError, match=r"append-only|only moves forward"), \
            db.write() as conn:
        conn.exec_driver_sql(statement)
    result = AuditService(db).verify()
    assert (result["entries"], result["head_seq"]) == (15, 15)


# the head row deleted (issue 8: defect 9) ----------------------------------------------------


def test_a_deleted_head_row_is_an_integrity_failure(db: Database, raw: Raw, tmp_path: Path) -> None:
    """With the head row gone, verify, checkpoint, appends, audit log and export fail with exit 5
    and one line naming audit_head, never an unexpected error."""
    raw.execute("DELETE FROM audit_head")
    assert "audit_head) is missing" in failure(db)
    with pytest.raises(IntegrityError, match=r"audit_head\) is missing"):
        append(db, correction(4, 9004, 101)[:1])
    key, _ = generate_keypair(tmp_path / "key")
    with pytest.raises(IntegrityError, match=r"audit_head\) is missing"):
        AuditService(db).checkpoint(key)
    for args in (("audit", "verify"), ("audit", "checkpoint", "--key", str(key)),
                 ("audit", "export", "--format", "jsonl"), ("audit", "log"),
                 ("audit", "log", "--format", "jsonl")):
        outcome = run_cli(db.url, *args)
        assert outcome.exit_code == 5 and outcome.stdout == "", args
        assert "audit_head) is missing" in one_line(outcome.stderr)


# a corrupted evidence value (issue 8: defect 9) ----------------------------------------------

CORRUPTED: dict[str, Callable[[str], str]] = {
    "not JSON": lambda text: "{oops",
    "truncated": lambda text: text[: len(text) // 2],
    "nested 30,000 deep": lambda text: '{"a":' + "[" * 30_000 + "]" * 30_000 + "}",
    "a key twice": lambda text: f'{{"{next(iter(json.loads(text)))}":"forged",' + text[1:],
    "not an object": lambda text: f"[{text}]",
    "NaN": lambda text: '{"total":NaN}',
}


@pytest.mark.parametrize("corruption", CORRUPTED)
def test_readers_refuse_corrupted_evidence_in_one_line(
    relink: Relink, tmp_path: Path, corruption: str
) -> None:
    """Every reader (audit log in each format, show, export in each format, verify) exits 5
    with one line naming the seq, and writes nothing to stdout but, with --json, one error
    document; an export to a file leaves no file."""
    _, doc = relink.json("start", "9001", "--project", "101", "--reason", "audit me")
    wid = str(doc["id"])
    with opened(relink.db_url) as db:
        raw = Raw(db)
        raw.drop_triggers()
        text = evidence_of(raw, 1)
        raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = 1",
                    (CORRUPTED[corruption](text),))
        raw.close()
    readers = [("audit", "log"), ("show", wid), ("audit", "verify")]
    readers += [("audit", "log", "--format", fmt) for fmt in ("json", "jsonl", "csv")]
    readers += [("audit", "export", "--format", fmt) for fmt in ("jsonl", "csv", "ocsf")]
    for args in readers:
        for json_output in (False, True):
            outcome = relink(*(("--json",) if json_output else ()), *args)
            assert outcome.exit_code == 5, (args, outcome)
            assert "seq 1" in one_line(outcome.stderr), args
            if json_output:
                assert json.loads(outcome.stdout)["exit_code"] == 5, args
            else:
                assert outcome.stdout == "", args
    out = tmp_path / "exports" / "audit.jsonl"
    out.parent.mkdir()
    outcome = relink("audit", "export", "--format", "jsonl", "--out", str(out))
    assert outcome.exit_code == 5 and list(out.parent.iterdir()) == []


def test_evidence_cut_inside_a_character_is_named_by_its_seq(sqlite_url: str) -> None:
    """SQLite evidence bytes cut inside a UTF-8 character (no text at all): verify, audit log and
    exports exit 5 with one line naming the seq, not an unexpected error."""
    with opened(sqlite_url) as db:
        build_log(db, corrections=1)
        raw = Raw(db)
        raw.drop_triggers()
        raw.execute("UPDATE audit_entry SET evidence = CAST(X'7B2261223A22E282' AS TEXT)"
                    " WHERE seq = 2")  # {"a":" and the first two bytes of "€"
        raw.close()
    for args in (("audit", "verify"), ("audit", "log"), ("audit", "log", "--format", "json"),
                 ("audit", "export", "--format", "jsonl"), ("audit", "export", "--format", "ocsf")):
        outcome = run_cli(sqlite_url, *args)
        assert (outcome.exit_code, outcome.stdout) == (5, ""), args
        assert "seq 2: its evidence is not UTF-8 text" in one_line(outcome.stderr), args
