"""Verification and exports on every core (audit.parallel) say exactly what one pass says: the
same first bad seq and message for every tampering, the same bytes exported; and
`audit verify --since-checkpoint` checks the signature and the entries after it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import audit.parallel
import cli
from audit.checkpoint import generate_keypair
from audit.log import Filters
from engine.db import Database
from engine.errors import IntegrityError, UsageError
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
from tests.test_audit_tamper import TAMPERING, cut_tail, forge_duplicate, rewrite_from


class Mode:
    """Switches between one pass and parallel parts of 4 seqs on 2 workers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.started: list[int] = []
        real = audit.parallel._Worker.__init__

        def counting(worker: Any, job: dict[str, Any]) -> None:
            self.started.append(len(job["parts"]))
            real(worker, job)

        monkeypatch.setattr(audit.parallel._Worker, "__init__", counting)
        self.here: list[Any] = []
        real_here = audit.parallel._Plan._here

        def here(plan: Any, after: Any, through: Any) -> Any:
            self.here.append((after, through))
            return real_here(plan, after, through)

        monkeypatch.setattr(audit.parallel._Plan, "_here", here)

    def parallel(self) -> None:
        self.monkeypatch.setattr(audit.parallel, "MIN_ENTRIES", 1)
        self.monkeypatch.setattr(audit.parallel, "PART", 4)
        self.monkeypatch.setattr(audit.parallel, "cores", lambda: 2)

    def single(self) -> None:
        self.monkeypatch.setattr(audit.parallel, "MIN_ENTRIES", 10**12)


@pytest.fixture(name="mode")
def fixture_mode(monkeypatch: pytest.MonkeyPatch) -> Mode:
    return Mode(monkeypatch)


def outcome(call: Any) -> Any:
    """The result (without the durations it may report), or the error's kind and message."""
    try:
        found = call()
    except (IntegrityError, UsageError) as exc:
        return type(exc), exc.message
    if isinstance(found, dict):
        found = {key: {k: v for k, v in value.items() if k != "seconds"}
                 if isinstance(value, dict) else value for key, value in found.items()}
    return found


def both(mode: Mode, call: Any) -> Any:
    """The outcome of ``call`` in one pass and in parallel parts, which must be the same."""
    mode.single()
    single = outcome(call)
    assert mode.started == []
    mode.parallel()
    parallel = outcome(call)
    assert mode.started, "no worker was started"
    assert parallel == single
    mode.started.clear()
    return single


def test_a_sound_log_verifies_the_same(db: Database, mode: Mode) -> None:
    """Parts of 4 seqs on 2 workers (4 parts, then the part after the head here)."""
    result = both(mode, lambda: AuditService(db).verify())
    assert (result["entries"], result["head_seq"]) == (15, 15)
    assert mode.here == [(15, None)]  # the workers did every part up to the head


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_named_the_same(db: Database, raw: Raw, mode: Mode, case: str) -> None:
    """Every tampering of the tamper tests fails in parallel at the seq and with the message
    of one pass (a part's first row linked to the part before, a gap across parts)."""
    tamper, seq, _ = TAMPERING[case]
    tamper(raw)
    kind, message = both(mode, lambda: AuditService(db).verify())
    assert kind is IntegrityError and f"failed at seq {seq}:" in message


@pytest.mark.parametrize("where", [
    "UPDATE audit_entry SET prev_hash = ? WHERE seq = 5",  # the first row of a part
    "UPDATE audit_entry SET hash = ? WHERE seq = 4",  # the last row of a part
    "UPDATE audit_head SET seq = 12, hash = ?",  # entries after the head
])
def test_part_boundaries(db: Database, raw: Raw, mode: Mode, where: str) -> None:
    """Links broken right at a part's edge, and entries past the head, are named as in one
    pass."""
    raw.execute(where, ("ab" * 32,))
    kind, message = both(mode, lambda: AuditService(db).verify())
    assert kind is IntegrityError and "failed at seq" in message


def test_more_tampering(db: Database, raw: Raw, mode: Mode, tmp_path: Path) -> None:
    """Forged duplicate keys, a cut tail and a rewritten chain (with a checkpoint)."""
    key, public = generate_keypair(tmp_path / "key")
    checkpoint = tmp_path / "cp.json"
    AuditService(db).checkpoint(key, out=checkpoint)  # seq 16
    append(db, correction(4, 9004, 101))  # 17..21
    forge_duplicate(raw, 3)
    assert "seq 3" in both(mode, lambda: AuditService(db).verify())[1]
    raw.execute("UPDATE audit_entry SET evidence = ? WHERE seq = 3",
                (json.dumps(json.loads(raw.execute(
                    "SELECT evidence FROM audit_entry WHERE seq = 3")[0][0]),
                    separators=(",", ":"), sort_keys=True),))
    raw.execute("UPDATE audit_entry SET reason = 'Approved' WHERE seq = 9")
    rewrite_from(raw, 9)
    assert "seq 16" in both(mode, lambda: AuditService(db).verify(
        checkpoint=checkpoint, public_key=public))[1]
    cut_tail(raw, 11)
    assert "failed at seq 12" in both(mode, lambda: AuditService(db).verify(
        checkpoint=checkpoint, public_key=public))[1]


def test_undecodable_text_falls_back_to_this_process(sqlite_url: str, mode: Mode) -> None:
    """A worker that cannot read a part (bytes that are not UTF-8, on SQLite) leaves it to this
    process, which names the seq as one pass does."""
    with opened(sqlite_url) as db:
        build_log(db)
        raw = Raw(db)
        raw.drop_triggers()
        raw.execute("UPDATE audit_entry SET message = CAST(X'80ff' AS TEXT) WHERE seq = 6")
        raw.close()
        kind, message = both(mode, lambda: AuditService(db).verify())
    assert kind is IntegrityError and "failed at seq 6: its message is not UTF-8" in message


def test_workers_that_cannot_start_leave_it_all_here(
    db: Database, mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Python to start: everything is done in this process, with the same result."""
    mode.parallel()
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert AuditService(db).verify()["entries"] == 15


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "ocsf"])
@pytest.mark.parametrize("filters", [Filters(), Filters(actor_login=
                                     "luis.ortega@harborbuild.example"),
                                     Filters(since="2000-01-01")], ids=["all", "actor", "since"])
def test_exports_are_the_same_bytes(
    db: Database, mode: Mode, tmp_path: Path, fmt: str, filters: Filters
) -> None:
    """Every format, with and without a filter, to a file and to stdout: the same bytes in
    parallel as in one pass (a time window is always one pass: its order is not seq's)."""
    written: list[bytes] = []
    for parallel in (False, True):
        mode.parallel() if parallel else mode.single()
        out = tmp_path / f"{parallel}.{fmt}"
        count = AuditService(db).export(filters, fmt, out)
        written.append(out.read_bytes())
        assert count == (15 if filters.actor_login is None else 10)
    assert written[0] == written[1]
    assert bool(mode.started) == (filters.since is None)
    assert mode.here == ([(15, None)] if mode.started else [])


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "ocsf"])
def test_a_forged_entry_stops_an_export_the_same(
    db: Database, raw: Raw, mode: Mode, tmp_path: Path, fmt: str
) -> None:
    """An export that meets a forged entry in a worker's part fails as one pass fails."""
    forge_duplicate(raw, 8)
    kind, message = both(mode, lambda: AuditService(db).export(Filters(), fmt, tmp_path / "x"))
    assert kind is IntegrityError and "seq 8" in message
    assert not (tmp_path / "x").exists()


# --since-checkpoint ----------------------------------------------------------------------------


@pytest.fixture(name="signed")
def fixture_signed(db: Database, tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint at seq 16, then 5 more entries (17..21)."""
    key, public = generate_keypair(tmp_path / "key")
    AuditService(db).checkpoint(key, out=tmp_path / "cp.json")
    append(db, correction(4, 9004, 101))
    return tmp_path / "cp.json", public


def since(db: Database, signed: tuple[Path, Path]) -> Any:
    return outcome(lambda: AuditService(db).verify(since_checkpoint=signed[0],
                                                   public_key=signed[1]))


def test_since_a_checkpoint_checks_only_what_follows(
    db: Database, raw: Raw, signed: tuple[Path, Path]
) -> None:
    """The entries after the checkpoint are checked, the ones before are not (the signature
    covers them): an alteration before is left to a full verify."""
    result = since(db, signed)
    assert (result["entries"], result["head_seq"], result["checkpoint"]["seq"]) == (5, 21, 16)
    assert result["since_checkpoint"] is True
    raw.execute("UPDATE audit_entry SET reason = 'x' WHERE seq = 3")
    assert since(db, signed)["entries"] == 5
    assert "failed at seq 3" in outcome(lambda: AuditService(db).verify())[1]


@pytest.mark.parametrize(("sql", "seq", "cause"), [
    ("UPDATE audit_entry SET reason = 'x' WHERE seq = 18", 18, "altered"),
    ("UPDATE audit_entry SET reason = 'x' WHERE seq = 16", 16, "altered"),
    ("DELETE FROM audit_entry WHERE seq = 19", 19, "deleted"),
    ("DELETE FROM audit_entry WHERE seq > 20", 21, "cut off"),
    ("UPDATE audit_entry SET prev_hash = hash WHERE seq = 17", 17, "prev_hash"),
    ("UPDATE audit_entry SET hash = prev_hash WHERE seq = 16", 16, "differs from the signed"),
])
def test_since_a_checkpoint_finds_what_follows(
    db: Database, raw: Raw, signed: tuple[Path, Path], sql: str, seq: int, cause: str
) -> None:
    """The entry at the checkpoint and every one after it are checked: an alteration, a gap,
    a cut tail, a broken link, a hash other than the signed one."""
    raw.execute(sql)
    kind, message = since(db, signed)
    assert kind is IntegrityError and f"failed at seq {seq}" in message and cause in message


def test_since_a_checkpoint_needs_its_signature(
    db: Database, signed: tuple[Path, Path], tmp_path: Path
) -> None:
    """Another key, another log, a tail cut below the checkpoint: exit 5; no public key or a
    checkpoint too: exit 2."""
    _, other = generate_keypair(tmp_path / "other")
    assert "another key" in since(db, (signed[0], other))[1]
    assert since(db, (signed[0], None))[0] is UsageError  # type: ignore[arg-type]
    assert outcome(lambda: AuditService(db).verify(
        checkpoint=signed[0], public_key=signed[1], since_checkpoint=signed[0]))[0] is UsageError
    document = json.loads(signed[0].read_text())
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document | {"seq": 15}))
    assert "bad checkpoint signature" in since(db, (altered, signed[1]))[1]
    other_log = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other_log.upgrade()
    build_log(other_log, corrections=5)
    assert "not of this log" in since(other_log, signed)[1]
    other_log.dispose()


def test_cli_since_checkpoint(db_url: str, tmp_path: Path) -> None:
    """`relink audit verify --since-checkpoint CP --public-key PUB`: exit 0 with the count of
    entries after the checkpoint, 5 on a bad entry after it, 2 without the public key."""
    with opened(db_url) as db:
        build_log(db, corrections=1)
        key, public = generate_keypair(tmp_path / "k")
        AuditService(db).checkpoint(key, out=tmp_path / "cp.json")
        append(db, correction(2, 9002, 101))

    def relink(*args: str) -> Any:
        return CliRunner().invoke(cli.app, ["--db", db_url, "audit", "verify", *args],
                                  env={"RELINK_CONFIG": ""})

    ok = relink("--since-checkpoint", str(tmp_path / "cp.json"), "--public-key", str(public))
    assert ok.exit_code == 0, ok.output
    assert "checkpoint at seq 6 verified; the 5 entries after it intact, head 11" in ok.stdout
    alone = relink("--since-checkpoint", str(tmp_path / "cp.json"))
    assert alone.exit_code == 2 and "--public-key" in alone.stderr
    as_json = CliRunner().invoke(
        cli.app, ["--db", db_url, "--json", "audit", "verify", "--since-checkpoint",
                  str(tmp_path / "cp.json"), "--public-key", str(public)],
        env={"RELINK_CONFIG": ""})
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["entries"] == 5
    with opened(db_url) as db:
        raw = Raw(db)
        raw.drop_triggers()
        raw.execute("UPDATE audit_entry SET message = 'forged' WHERE seq = 9")
        raw.close()
    bad = relink("--since-checkpoint", str(tmp_path / "cp.json"), "--public-key", str(public))
    assert bad.exit_code == 5 and "failed at seq 9" in bad.stderr
