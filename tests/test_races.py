"""R1 at CI size: operators racing on the same corrections. Each step succeeds once per
correction, each remote change happens once, the losers exit 4 or 1, the audit chain holds.
The scenario is ``bench/races.py`` (8 processes x 50 corrections there)."""

from __future__ import annotations

import pytest

from audit.log import Filters
from bench import races
from bench.scenario import Target, local_states
from commands.app import exit_code
from engine.errors import Conflict
from engine.reviews import AuditService
from tests.audit_support import Raw
from tests.conftest import INTEGRATOR_ENV, Relink, Sandbox


def test_eight_workers_race_on_ten_corrections(db_url: str, sandbox: Sandbox) -> None:
    """8 workers (threads, each with its own service, database pool and clients) try start and
    every step of the same 10 corrections: every R1 property holds."""
    target = Target(db_url, sandbox.url, {**sandbox.env, **INTEGRATOR_ENV})
    report = races.run(target, workers=8, corrections=10,
                       driver="service", threads=True)
    assert report["violations"] == []
    assert report["exit_codes"]["0"] == 10 * 5
    assert set(report["exit_codes"]) <= {"0", "1", "4"}
    assert report["mutations"] == {kind: 10 for kind in races.MUTATIONS}


def test_relink_processes_race_on_one_correction(db_url: str, sandbox: Sandbox) -> None:
    """2 workers each running real `relink` processes (start, then every step) on the same
    correction: one winner per step, the loser exits 4 or 1, each remote change made once."""
    target = Target(db_url, sandbox.url, {**sandbox.env, **INTEGRATOR_ENV})
    report = races.run(target, workers=2, corrections=1,
                       driver="cli")
    assert report["violations"] == []
    assert report["exit_codes"]["0"] == 5
    assert set(report["exit_codes"]) <= {"0", "1", "4"}


def test_a_held_database_lock_is_exit_4(
    relink: Relink, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another operator's transaction holds the lock, `advance` waits a bounded time,
    then exits 4 with one line and changes nothing, remotely or locally; later it goes through."""
    import engine.db

    code, doc = relink.json("start", "9001", "--project", "101", "--reason", "lock test")
    assert code == 0
    wid = str(doc["id"])
    monkeypatch.setattr(engine.db, "LOCK_TIMEOUT_MS", 200)
    db = engine.db.Database(relink.db_url)
    raw = Raw(db)
    try:
        raw.execute("BEGIN IMMEDIATE" if db.dialect == "sqlite" else "BEGIN")
        if db.dialect == "postgresql":
            raw.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        busy = relink("advance", wid, "delete-in-erp")
        raw.execute("ROLLBACK")
    finally:
        raw.close()
        db.dispose()
    assert busy.exit_code == 4
    assert busy.stderr.strip().splitlines() == [
        "Error: the database is busy with another operator's step; try again"]
    assert sandbox.mutating_calls() == []
    assert relink.json("show", wid)[1]["in_flight"] is None
    code, doc = relink.json("advance", wid, "delete-in-erp")
    assert (code, doc["state"]) == (0, "DeletedInERP")
    assert relink("audit", "verify").exit_code == 0


def test_a_start_overtaken_by_another_correction_is_a_conflict(
    db_url: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start whose invoice read is overtaken by a whole other correction of that invoice
    (started and finished meanwhile) refuses with Conflict (exit 4) rather than keep a snapshot
    that may predate the other's changes; the refusal is audited."""
    target = Target(db_url, sandbox.url, {**sandbox.env, **INTEGRATOR_ENV})
    slow, quick = target.service(), target.service()
    read = slow.remotes.procore.get_requisition

    def read_while_another_operator_corrects(project_id: int, invoice_id: int) -> object:
        found = read(project_id, invoice_id)
        wid = quick.start(invoice_id, project_id, "quick").id
        quick.advance(wid, "cancel")
        return found

    monkeypatch.setattr(slow.remotes.procore, "get_requisition",
                        read_while_another_operator_corrects)
    try:
        with pytest.raises(Conflict, match="corrected invoice 9001 meanwhile") as refused:
            slow.start(9001, 101, "slow")
        assert exit_code(refused.value) == 4
        assert local_states(db_url)[9001]["ids"] == [1]
        history = [(e["action"], e["outcome"]) for e in slow.show(1)["history"]]
        assert history == [("start", "succeeded"), ("cancel", "succeeded")]
        assert [e["message"][:9] for e in AuditService(slow.db).entries(
            Filters(outcome="refused"))] == ["Conflict:"]
    finally:
        slow.close()
        quick.close()
