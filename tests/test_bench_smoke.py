"""The audit scale benchmark runs at a smoke size and ends with its figures as one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "audit_scale.py"


def test_audit_scale_smoke_run_prints_its_figures() -> None:
    """`bench/audit_scale.py --entries 2000` exits 0; its last line is JSON with P3a-P3d
    figures for each backend it ran (no timing is asserted)."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--entries", "2000", "--queries", "5"],
        capture_output=True, text=True, timeout=600, check=False, env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["entries"] == 2000
    with_postgres = bool(os.environ.get("RELINK_TEST_POSTGRES_URL"))
    expected = {"sqlite", "postgresql"} if with_postgres else {"sqlite"}
    assert set(figures["backends"]) == expected
    for backend in figures["backends"].values():
        assert set(backend["p3a"]) == {"invoice", "actor", "project", "time_window_1d",
                                       "invoice_full", "time_window_1h_full"}
        assert {"p50_ms", "p95_ms"} <= set(backend["p3a"]["invoice"])
        assert {"verify_s", "floor_s", "ratio", "verify_peak_mb"} <= set(backend["p3b"])
        assert {"entries_per_s", "peak_mb"} <= set(backend["p3c"]["jsonl"])
        assert {"first_call_ms", "median_ms"} <= set(backend["p3d"])
        assert set(backend["ok"]) == {"p3a", "p3b", "p3c", "p3d"}
