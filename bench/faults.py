"""R3 of spec/targets.md: full corrections through a sandbox that fails 30% of API calls in every
way it knows (500, 503, 429, timeout, reset, garbage), driven the way an operator would: re-run a
command that exits 3, run `relink resume ID` when a step is left in flight (or exit 4 says so).

Checked on every command: never a traceback; on exit 3 the correction's state has not moved (and
no correction was created by a failed start) and the failure is the newest audit entry, as
``failed``. At the end: every correction is Reentered, each ERP bill is gone, each invoice was
deleted and re-entered exactly once, and `relink audit verify` passes.

    .venv/bin/python bench/faults.py                 # 50 corrections
    .venv/bin/python bench/faults.py --corrections 5 # smoke size

Progress goes to stderr; the figures are ONE JSON object on the last line of stdout. The CI-sized
run is tests/test_faults.py, which uses this driver.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from typer.testing import CliRunner

import cli
from engine.db import Database
from integrations.http import tls_context
from sandbox.server import SandboxServer, integrator_env

FAULT_KINDS = ["500", "503", "429", "timeout", "reset", "garbage"]
STEPS = ("delete-in-erp", "unlink", "delete-in-procore", "reenter")
FIRST_BATCH_INVOICE = 9200  # 9200-9399: 200 batch invoices in project 102
PROJECT = 102
MAX_COMMANDS_PER_STEP = 60  # a step that needs more re-runs than this is a bug, not bad luck
# Keep the run short: relink gives up reading after 0.5 s, the sandbox's "timeout" fault holds
# the answer back for 1 s, and the waits between retries are small.
FAST_ENV = {
    "RELINK_HTTP_READ_TIMEOUT": "0.5",
    "RELINK_HTTP_CONNECT_TIMEOUT": "0.5",
    "RELINK_LEASE_SECONDS": "0.5",  # a lease then ends ~3 s after the last request it covered
    "RELINK_HTTP_BACKOFF_INITIAL": "0.05",
    "RELINK_HTTP_BACKOFF_MAX": "0.2",
}
FAULT_TIMEOUT_SECONDS = 1.0


def wait_for_lease(in_flight: dict[str, Any]) -> None:
    """Sleep until the lease of a step in flight has ended (resume is refused before)."""
    import datetime as dt

    until = in_flight.get("lease_until")
    if until:
        left = dt.datetime.fromisoformat(until) - dt.datetime.now(dt.UTC)
        time.sleep(max(0.0, left.total_seconds()) + 0.02)


@dataclass
class Tally:
    """What the run went through."""

    commands: int = 0
    exits: Counter[int] = field(default_factory=Counter)
    failed_audited: int = 0
    resumes: int = 0
    completed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "commands": self.commands,
            "exits": {str(code): n for code, n in sorted(self.exits.items())},
            "failed_audited": self.failed_audited,
            "resumes": self.resumes,
            "completed": self.completed,
        }


class FaultDriver:
    """Runs `relink` in-process against one database and sandbox, checking R3 on every command."""

    def __init__(self, db_url: str, sandbox_env: dict[str, str], scratch: Path) -> None:
        self.env = {
            **sandbox_env,
            **FAST_ENV,
            "RELINK_PROCORE_TOKEN": "sandbox-ana",
            "RELINK_DATABASE_URL": db_url,
            "RELINK_CONFIG": "",
            "NO_COLOR": "1",
            "COLUMNS": "160",
        }
        self.scratch = scratch
        self.runner = CliRunner()
        self.tally = Tally()

    # running commands ----------------------------------------------------------------------

    def run(self, *args: str) -> tuple[int, Any, str]:
        """One `relink --json ...`; exit code, parsed document (None if no JSON), all output."""
        result = self.runner.invoke(
            cli.app, ["--json", *args], env=self.env, catch_exceptions=False, prog_name="relink"
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, f"traceback from relink {' '.join(args)}:\n{output}"
        self.tally.commands += 1
        self.tally.exits[result.exit_code] += 1
        try:
            doc = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError as exc:
            raise AssertionError(f"relink {' '.join(args)} printed no JSON: {output}") from exc
        return result.exit_code, doc, output

    def read(self, *args: str) -> Any:
        """A read-only command (database only: faults cannot touch it); must succeed."""
        code, doc, output = self.run(*args)
        assert code == 0, f"relink {' '.join(args)} exited {code}: {output}"
        return doc

    def entries(self, *filters: str) -> list[dict[str, Any]]:
        return list(self.read("audit", "log", *filters, "--format", "json")["entries"])

    # one correction --------------------------------------------------------------------------

    def correct(self, invoice: int) -> int:
        """Start and finish the correction of ``invoice``; return its id."""
        wid = self.start(invoice)
        data = self.scratch / f"fix-{invoice}.json"
        data.write_text(json.dumps({"invoice_number": f"INV-{invoice}-C"}))
        for step in STEPS:
            extra = ("--data", str(data)) if step == "reenter" else ()
            self.advance(wid, step, extra)
        doc = self.read("show", str(wid))
        assert doc["state"] == "Reentered" and doc["in_flight"] is None, doc
        self.tally.completed += 1
        return wid

    def start(self, invoice: int) -> int:
        for _ in range(MAX_COMMANDS_PER_STEP):
            before = self.entries("--invoice", str(invoice))
            code, doc, output = self.run(
                "start", str(invoice), "--project", str(PROJECT), "--reason", "R3 fault run"
            )
            if code == 0:
                return int(doc["id"])
            assert code == 3, f"start {invoice} exited {code}: {output}"
            after = self.entries("--invoice", str(invoice))
            self.check_failure_audited(before, after, output)
            assert not [w for w in self.read("list", "--project", str(PROJECT), "--limit", "10000")
                        ["items"] if w["invoice_id"] == invoice], "a failed start left a correction"
        raise AssertionError(f"start {invoice} never got through")

    def advance(self, wid: int, step: str, extra: tuple[str, ...]) -> None:
        target = self.read("show", str(wid))
        for _ in range(MAX_COMMANDS_PER_STEP):
            before = self.read("show", str(wid))
            if before["state"] != target["state"] and before["in_flight"] is None:
                return  # a resume completed the step
            if before["in_flight"] is not None:
                code, doc, output = self.run("resume", str(wid))
                self.tally.resumes += 1
            else:
                code, doc, output = self.run("advance", str(wid), step, *extra)
            after = self.read("show", str(wid))
            if code == 0:
                continue  # the loop's first check sees the moved state
            if code == 4:
                assert after["in_flight"] is not None, f"exit 4 with nothing in flight: {output}"
                wait_for_lease(after["in_flight"])
                continue
            assert code == 3, f"{step} on {wid} exited {code}: {output}"
            assert after["state"] == before["state"], f"state moved on a failed call: {output}"
            assert after["new_invoice_id"] == before["new_invoice_id"], output
            self.check_failure_audited(before["history"], after["history"], output)
            if after["in_flight"] is not None:
                assert "relink resume" in doc["message"], doc
        raise AssertionError(f"{step} on correction {wid} never got through")

    def check_failure_audited(
        self, before: list[dict[str, Any]], after: list[dict[str, Any]], output: str
    ) -> None:
        """The failed command appended entries ending with its `failed` one."""
        new = after[len(before):]
        assert new and new[-1]["outcome"] == "failed", f"failure not audited: {new} {output}"
        assert all(e["outcome"] in ("in_flight", "failed") for e in new), new
        assert [e["outcome"] for e in new].count("failed") == 1, new
        self.tally.failed_audited += 1

    # the whole run -----------------------------------------------------------------------------

    def verify(self, sandbox_url: str, invoices: list[int]) -> None:
        """Every correction done once on both sides; the audit chain intact."""
        with httpx.Client(verify=tls_context(False), base_url=sandbox_url, timeout=10) as control:
            requisitions = control.get(
                "/_sandbox/state/requisitions", params={"project_id": PROJECT}
            ).json()
            bills = {b["invoice_number"]: b for b in control.get("/_sandbox/state/bills").json()}
        by_number = Counter(r["invoice_number"] for r in requisitions if not r["deleted"])
        for invoice in invoices:
            number = f"INV-{3000 + invoice - FIRST_BATCH_INVOICE}"
            original = next(r for r in requisitions if r["id"] == invoice)
            assert original["deleted"] is True, f"invoice {invoice} not deleted"
            assert by_number[f"INV-{invoice}-C"] == 1, f"invoice {invoice} re-entered twice"
            assert bills[number]["exists"] is False, f"bill of {invoice} still in the ERP"
        code, _, output = self.run("audit", "verify")
        assert code == 0, f"audit verify failed: {output}"


@contextmanager
def fault_sandbox(erp: str = "qbo", seed: int = 7, rate: float = 0.3) -> Iterator[SandboxServer]:
    """A sandbox of its own failing ``rate`` of API calls, every fault kind, short timeouts."""
    server = SandboxServer(
        erp=erp, fault_rate=rate, fault_kinds=FAULT_KINDS, fault_seed=seed,
        fault_timeout_seconds=FAULT_TIMEOUT_SECONDS,
    )
    with server:
        yield server


def run_corrections(
    db_url: str,
    server: SandboxServer,
    scratch: Path,
    count: int,
    *,
    first_invoice: int = FIRST_BATCH_INVOICE,
    extra_env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Drive ``count`` full corrections through the faulty sandbox; the run's figures.

    ``extra_env`` adds settings (e.g. ``RELINK_HTTP_MAX_WAIT``) for every command.
    """
    driver = FaultDriver(
        db_url, {**server.env(), **integrator_env(), **(extra_env or {})}, scratch
    )
    invoices = list(range(first_invoice, first_invoice + count))
    rate = server.world.fault_settings.rate
    started = time.perf_counter()
    for n, invoice in enumerate(invoices, 1):
        driver.correct(invoice)
        progress(f"{n}/{count} corrections done ({driver.tally.commands} commands so far)")
    with httpx.Client(verify=tls_context(False), base_url=server.url, timeout=10) as control:
        control.post("/_sandbox/faults", json={"rate": 0})
        calls = control.get("/_sandbox/calls").json()
    driver.verify(server.url, invoices)
    faulted = Counter(str(c["status"]) for c in calls if c["status"] in (0, 429, 500, 503))
    return {
        "corrections": count,
        "erp": server.world.erp,
        "fault_rate": rate,
        "api_calls": len(calls),
        "faulted_by_status": dict(sorted(faulted.items())),
        "wall_s": round(time.perf_counter() - started, 2),
        **driver.tally.as_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corrections", type=int, default=50)
    parser.add_argument("--erp", choices=("qbo", "xero", "intacct"), default="qbo")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not 1 <= args.corrections <= 200:
        parser.error("--corrections must be between 1 and 200 (the batch invoices)")
    with tempfile.TemporaryDirectory() as scratch:
        db_url = f"sqlite:///{scratch}/faults.db"
        db = Database(db_url)
        db.upgrade()
        db.dispose()
        with fault_sandbox(args.erp, args.seed) as server:
            figures = run_corrections(
                db_url, server, Path(scratch), args.corrections,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
    figures["ok"] = figures["completed"] == args.corrections
    figures["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    print(json.dumps(figures, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
