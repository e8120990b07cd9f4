"""Batches run by real `relink batch run` processes against a sandbox with latency: a run
SIGKILLed half-way and run again completes, each remote change made once; three workers share
one batch on PostgreSQL, every step exactly once and no 429, and one of them killed while it
holds claims loses nothing. The scenarios are bench/batch.py's (P4), at CI size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import batch as scenario
from bench.scenario import Target
from tests.conftest import _fresh_postgres

pytestmark = pytest.mark.slow  # real processes, killed ones, leases running out

CHANGES = ("erp-delete", "unlink", "procore-delete", "procore-create")
REENTERED = "Reentered"


@pytest.fixture(name="slow_sandbox")
def fixture_slow_sandbox() -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh sandbox of this module's own, 30 ms a call, integrator mode, short leases."""
    with scenario.sandbox(latency_ms=30, rate_limit=None) as (url, env):
        yield url, {**env, **scenario.SHORT_LEASE}


@pytest.fixture(name="postgres_url")
def fixture_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, with relink's schema in it."""
    from engine.db import Database

    for url in _fresh_postgres():
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url


def invoices(count: int) -> list[int]:
    return [scenario.FIRST_INVOICE + n for n in range(count)]


def test_a_batch_killed_half_way_completes_when_run_again(
    db_url: str, slow_sandbox: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Acceptance 2: `relink batch run` SIGKILLed half-way through 12 corrections; the same
    command again settles what was in flight and completes every correction, each remote
    change made once (the sandbox's call log), every step once, `audit verify` passing."""
    url, env = slow_sandbox
    target = Target(db_url, url, env)
    wanted = invoices(12)
    batch = scenario.create(target, tmp_path, wanted)
    resumed = scenario.kill_and_resume(target, batch, until=None, concurrency=4,
                                       at_steps=len(wanted) * 5 // 2)
    assert resumed["code"] == 0, resumed
    assert resumed["killed_at_steps"] < len(wanted) * 5  # killed with work left
    assert scenario.check(target, wanted, until=REENTERED, changes=CHANGES) == []
    summary = resumed["summary"]
    assert summary["counts"] == {"done": 12} and summary["batch"]["status"] == "finished"


@pytest.mark.postgres
def test_three_workers_share_a_batch_of_sixty_within_the_rate_limit(
    postgres_url: str, tmp_path: Path
) -> None:
    """Acceptance 2: three `relink batch run` processes on one batch of 60 on PostgreSQL, under
    a Procore rate limit the three would overrun if each took the whole budget: every step
    exactly once, each remote change once, zero 429 answers, `audit verify` passing."""
    # 600 a minute: 100 per 10-second spike window, shared by the three workers' operator
    # token (each worker takes its share of what Procore says is left)
    with scenario.sandbox(latency_ms=30, rate_limit=(600, 60.0)) as (url, env):
        target = Target(postgres_url, url, {**env, **scenario.SHORT_LEASE})
        wanted = invoices(60)
        batch = scenario.create(target, tmp_path, wanted)
        ran = scenario.workers(target, batch, count=3, until=None, concurrency=4)
        assert ran["codes"] == [0, 0, 0], ran
        assert scenario.check(target, wanted, until=REENTERED, changes=CHANGES) == []
        workers = {call["actor"] for call in target.calls()}
        assert "ana@summit.example" in workers


@pytest.mark.postgres
def test_a_worker_killed_while_holding_claims_loses_nothing(
    postgres_url: str, slow_sandbox: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Acceptance 2: of three workers on one batch of 60, one is SIGKILLed while it holds
    claims; the other two take its items over (its claims end with it, its steps in flight
    settle by resume) and finish the batch: nothing lost, nothing done twice."""
    url, env = slow_sandbox
    target = Target(postgres_url, url, env)
    wanted = invoices(60)
    batch = scenario.create(target, tmp_path, wanted)
    ran = scenario.workers(target, batch, count=3, until=None, concurrency=4,
                           kill_one_at=60)
    assert ran["killed_holding"], ran  # it died holding claims
    assert ran["codes"][1:] == [0, 0], ran
    assert scenario.check(target, wanted, until=REENTERED, changes=CHANGES) == []
    shown = target.relink("--json", "batch", "show", str(batch))
    assert json.loads(shown.stdout)["counts"] == {"done": 60}


def test_ctrl_c_stops_the_batch_which_continues_when_run_again(
    sqlite_url: str, slow_sandbox: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Ctrl-C (SIGINT) stops claiming; the steps running end as steps do, the run is audited as
    interrupted (exit 130) and says how to continue; the same command then finishes the
    batch, each remote change made once."""
    import signal
    import subprocess
    import time

    url, env = slow_sandbox
    target = Target(sqlite_url, url, env)
    wanted = invoices(10)
    batch = scenario.create(target, tmp_path, wanted)
    process = subprocess.Popen([scenario.RELINK, "batch", "run", str(batch), "--concurrency",
                                "2"], env=target.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while scenario.steps_done(target) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130, out
    assert f"Run `relink batch run {batch}` to continue" in out
    assert ": delete-in-erp succeeded → DeletedInERP" in out  # plain lines, not a terminal
    left = scenario.steps_done(target)
    assert left < len(wanted) * 5
    ran = json.loads(target.relink("--json", "audit", "log", "--action", "batch-run",
                                   "--format", "json").stdout)["entries"]
    assert [(e["outcome"], e["evidence"]["interrupted"]) for e in ran] == [("failed", True)]
    again = target.relink("batch", "run", str(batch))
    assert again.returncode == 0, again.stderr
    assert scenario.check(target, wanted, until=REENTERED, changes=CHANGES) == []
