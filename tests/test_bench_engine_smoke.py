"""The P2 benchmarks (`bench/floor.py`, `bench/engine.py`) run at a smoke size and end with their
figures as one JSON line (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUN_KEYS = {"steps", "seconds", "steps_per_s"}


def bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
        timeout=300, check=False, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def backends() -> set[str]:
    return {"sqlite", "postgresql"} if os.environ.get("RELINK_TEST_POSTGRES_URL") else {"sqlite"}


def test_floor_smoke_run_prints_its_figures() -> None:
    """`bench/floor.py --corrections 3 --rounds 1`: a JSON last line with, per backend, the
    steps and transactions done and their rates."""
    figures = bench("floor.py", "--corrections", "3", "--rounds", "1")
    assert (figures["bench"], figures["corrections"]) == ("floor", 3)
    assert set(figures["backends"]) == backends()
    for run in figures["backends"].values():
        assert RUN_KEYS | {"transactions", "transactions_per_s"} <= set(run)
        assert (run["steps"], run["transactions"]) == (12, 24)


def test_engine_smoke_run_prints_its_figures() -> None:
    """`bench/engine.py --corrections 3 --rounds 1`: a JSON last line with, per backend, the
    floor's and the engine's runs, their ratio and the target, and whether it was met."""
    figures = bench("engine.py", "--corrections", "3", "--rounds", "1")
    assert (figures["bench"], figures["remotes"]) == ("engine", "fake")
    assert set(figures["backends"]) == set(figures["ok"]) == backends()
    for name, backend in figures["backends"].items():
        assert {"floor", "engine", "ratio", "median_paired_ratio", "target"} <= set(backend)
        assert set(backend["floor"]) >= RUN_KEYS
        assert set(backend["engine"]) >= RUN_KEYS
        assert backend["engine"]["steps"] == 12
        assert backend["engine"]["audit_entries"] == 3 * 9  # start + 4 x (in flight + result)
        assert backend["target"] == {"sqlite": 0.25, "postgresql": 0.5}[name]


def test_engine_smoke_run_through_the_real_clients() -> None:
    """`--remotes http`: the same steps through relink's HTTP clients over the in-process
    sandbox transport."""
    figures = bench("engine.py", "--corrections", "2", "--rounds", "1", "--remotes", "http",
                    "--backends", "sqlite")
    assert figures["backends"]["sqlite"]["engine"]["steps"] == 8
