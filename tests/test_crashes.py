"""R2 at CI size: `relink advance` processes killed (SIGKILL) or stopped (SIGSTOP, then SIGCONT)
at random moments inside their steps, with refused and unavailable resumes in between; `resume`
settles every correction, local state matches the sandbox, no remote change happens twice, the
audit chain holds. The scenario is ``bench/crashes.py`` (100 rounds there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import crashes
from bench.scenario import Target
from tests.conftest import Sandbox

pytestmark = pytest.mark.slow  # leases run out, processes are killed: see `make test-fast`

LATENCY_MS = 50
KILLS = 10


@pytest.fixture(name="slow_sandbox")
def fixture_slow_sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox whose every API call takes 50 ms, so a kill can land inside a step."""
    from sandbox.server import SandboxServer, integrator_env

    with SandboxServer(erp="qbo", latency_ms=LATENCY_MS) as server:
        yield Sandbox(url=server.url, erp="qbo", env={**server.env(), **integrator_env()})


def test_killed_steps_are_settled_by_resume(db_url: str, slow_sandbox: Sandbox) -> None:
    """8 steps killed at seeded random moments (after the first API call, or while in flight):
    after each, resume exits 0 with nothing left in flight and the local state is the one the
    sandbox implies; no correction's remote change happened twice; `audit verify` passes."""
    target = Target(db_url, slow_sandbox.url, slow_sandbox.env)
    report = crashes.run(target, kills=KILLS, seed=7, latency_ms=LATENCY_MS)
    assert report["violations"] == []
    assert sum(report["resume"].values()) == KILLS
    landed = report["landed"]
    assert landed.get("kill:in_flight", 0) > 0 and landed.get("stop:in_flight", 0) > 0, landed
    refusals = report["refused_resumes"]
    assert refusals.get("refused:Refused", 0) > 0 and refusals.get("leased:Conflict", 0) > 0
