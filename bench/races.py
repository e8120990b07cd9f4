"""R1 of spec/targets.md: worker processes race on the same corrections, each trying every step.

Every worker (a process of its own) goes through the same corrections in the same order and, for
each, tries ``start`` (a loser looks the correction up with ``list``) and then every step —
delete-in-erp, unlink, delete-in-procore, reenter — whatever happened meanwhile. Workers are
released together from a barrier. Drivers:

- ``cli`` (default): each attempt is a real ``relink`` process (``--json``), its exit code kept;
- ``service``: each attempt is a call of the service layer (``CorrectionService``) inside the
  worker process, its exit code the one the CLI would map the error to.

What must hold (each failure is listed under ``violations``): every step of every correction
succeeded exactly once (attempts and the audit log agree), every loser exited 4 or 1, every
mutating remote call happened exactly once per correction (the sandbox's call log), every
correction is Reentered locally and in the sandbox with nothing left in flight, and
``relink audit verify`` passes.

    .venv/bin/python bench/races.py                                   # 8 workers x 50, both
    .venv/bin/python bench/races.py --workers 3 --corrections 2      # smoke run

The figures are ONE JSON object on the last line of stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from typing import Any

from bench.backends import (
    add_backend_options,
    chosen_backends,
    emit,
    log,
    machine,
    temporary_database,
)
from bench.scenario import (
    ACTIONS,
    PROJECT,
    STEPS,
    Target,
    corrected_number,
    data_file,
    invoices,
    local_states,
    mutation,
    mutations,
    succeeded,
    verify,
)

LOSER_CODES = frozenset({1, 4})
MUTATIONS = ("erp-delete", "unlink", "procore-delete", "procore-create")


# a worker ------------------------------------------------------------------------------------


class CliAttempts:
    """Attempts as real ``relink`` processes."""

    def __init__(self, target: Target, folder: Path) -> None:
        self.target = target
        self.folder = folder

    def start(self, invoice_id: int) -> tuple[int, int | None, str]:
        done = self.target.relink("--json", "start", str(invoice_id), "--project", str(PROJECT),
                                  "--reason", "race")
        wid = json.loads(done.stdout)["id"] if done.returncode == 0 else None
        return done.returncode, wid, done.stderr.strip()[-300:]

    def find(self, invoice_id: int) -> int | None:
        done = self.target.relink("--json", "list", "--project", str(PROJECT), "--limit", "10000")
        items = json.loads(done.stdout)["items"] if done.returncode == 0 else []
        found = [item["id"] for item in items if item["invoice_id"] == invoice_id]
        return max(found) if found else None

    def advance(self, wid: int, invoice_id: int, step: str) -> tuple[int, str]:
        extra = ["--data", str(data_file(self.folder, invoice_id))] if step == "reenter" else []
        done = self.target.relink("--json", "advance", str(wid), step, *extra)
        return done.returncode, done.stderr.strip()[-300:]

    def close(self) -> None:
        pass


class ServiceAttempts:
    """Attempts as calls of the service layer, in this process."""

    def __init__(self, target: Target) -> None:
        self.service = target.service()

    def start(self, invoice_id: int) -> tuple[int, int | None, str]:
        from commands.app import exit_code
        from engine.errors import EngineError

        try:
            return 0, int(self.service.start(invoice_id, PROJECT, "race").id or 0), ""
        except EngineError as exc:
            return exit_code(exc), None, ""
        except Exception as exc:  # reported as a violation, like the CLI's exit 70
            return 70, None, f"{type(exc).__name__}: {exc}"

    def find(self, invoice_id: int) -> int | None:
        items = self.service.list(project_id=PROJECT, limit=10000)
        found = [item["id"] for item in items if item["invoice_id"] == invoice_id]
        return max(found) if found else None

    def advance(self, wid: int, invoice_id: int, step: str) -> tuple[int, str]:
        from commands.app import exit_code
        from engine.errors import EngineError

        data = {"invoice_number": corrected_number(invoice_id)} if step == "reenter" else None
        try:
            self.service.advance(wid, step, data=data)
            return 0, ""
        except EngineError as exc:
            return exit_code(exc), ""
        except Exception as exc:  # reported as a violation, like the CLI's exit 70
            return 70, f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.service.close()


def work(driver: str, wanted: list[int], barrier: Path, number: int,
         target: Target | None = None) -> list[dict[str, Any]]:
    """One worker: wait at the barrier, then try every action on every correction."""
    if target is None:  # a worker process: what to work on comes in the environment
        target = Target(os.environ["RELINK_DATABASE_URL"], os.environ["RELINK_PROCORE_URL"],
                        dict(os.environ))
    attempts: Any = (CliAttempts(target, barrier) if driver == "cli"
                     else ServiceAttempts(target))
    (barrier / f"ready-{number}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.005)
    tried = []
    for invoice_id in wanted:
        code, wid, why = attempts.start(invoice_id)
        tried.append({"invoice": invoice_id, "action": "start", "exit": code, "why": why})
        if wid is None:
            wid = attempts.find(invoice_id)
        if wid is None:
            tried.append({"invoice": invoice_id, "action": "list", "exit": -1,
                          "why": "the correction was not found"})
            continue
        for step in STEPS:
            code, why = attempts.advance(wid, invoice_id, step)
            tried.append({"invoice": invoice_id, "action": step, "exit": code, "why": why})
    attempts.close()
    return tried


# the race ------------------------------------------------------------------------------------


def run(target: Target, *, workers: int, corrections: int, driver: str = "cli",
        threads: bool = False) -> dict[str, Any]:
    """Race ``workers`` on ``corrections`` corrections; the report (see module doc).

    Workers are processes; with ``threads`` (service driver only) threads of this process.
    """
    wanted = invoices(corrections)
    calls_before = len(target.calls())
    violations: list[str] = []
    tried: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="relink-race-") as folder:
        barrier = Path(folder)
        for invoice_id in wanted:
            data_file(barrier, invoice_id)  # before any worker may read one
        if threads:
            race = _in_threads(target, driver, wanted, barrier, workers)
        else:
            race = _in_processes(target, driver, wanted, barrier, workers)
        while len(list(barrier.glob("ready-*"))) < workers and not race.failed():
            time.sleep(0.01)
        started = time.perf_counter()
        (barrier / "go").touch()
        for found in race.results():
            if isinstance(found, str):
                violations.append(found)
            else:
                tried += found
        seconds = time.perf_counter() - started
    violations += check(target, wanted, tried, calls_before)
    codes = Counter(str(t["exit"]) for t in tried)
    return {
        "driver": driver, "workers": workers, "corrections": corrections,
        "attempts": len(tried), "exit_codes": dict(sorted(codes.items())),
        "mutations": dict(mutations(target.calls()[calls_before:])),
        "seconds": round(seconds, 2), "violations": violations[:50],
        "violation_count": len(violations), "ok": not violations,
    }


class _Processes:
    def __init__(self, processes: list[subprocess.Popen[str]]) -> None:
        self.processes = processes

    def failed(self) -> bool:
        return any(p.poll() is not None for p in self.processes)

    def results(self) -> list[list[dict[str, Any]] | str]:
        found: list[list[dict[str, Any]] | str] = []
        for n, process in enumerate(self.processes):
            out, err = process.communicate()
            if process.returncode != 0 or not out.strip():
                found.append(f"worker {n} exited {process.returncode}: {err.strip()[-500:]}")
            else:
                found.append(json.loads(out.strip().splitlines()[-1]))
        return found


def _in_processes(target: Target, driver: str, wanted: list[int], barrier: Path,
                  workers: int) -> _Processes:
    return _Processes([
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(n),
             "--driver", driver, "--barrier", str(barrier),
             "--invoices", ",".join(map(str, wanted))],
            env=target.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n in range(workers)
    ])


class _Threads:
    def __init__(self, futures: list[Any], pool: Any) -> None:
        self.futures = futures
        self.pool = pool

    def failed(self) -> bool:
        return any(f.done() for f in self.futures)

    def results(self) -> list[list[dict[str, Any]] | str]:
        found: list[list[dict[str, Any]] | str] = []
        for n, future in enumerate(self.futures):
            try:
                found.append(future.result())
            except Exception as exc:  # reported as a violation
                found.append(f"worker {n} failed: {type(exc).__name__}: {exc}")
        self.pool.shutdown()
        return found


def _in_threads(target: Target, driver: str, wanted: list[int], barrier: Path,
                workers: int) -> _Threads:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="race")
    return _Threads([pool.submit(work, driver, wanted, barrier, n, target)
                     for n in range(workers)], pool)


def check(target: Target, wanted: list[int], tried: list[dict[str, Any]],
          calls_before: int) -> list[str]:
    """Every property of R1 that does not hold, one line each."""
    violations = []
    outcomes: dict[tuple[int, str], list[int]] = defaultdict(list)
    for attempt in tried:
        outcomes[(attempt["invoice"], attempt["action"])].append(attempt["exit"])
        if attempt["exit"] not in LOSER_CODES | {0}:
            violations.append(f"{attempt['action']} of {attempt['invoice']} exited"
                              f" {attempt['exit']}: {attempt['why']}")
    audited = succeeded(target.db_url)
    local = local_states(target.db_url)
    remote = target.remote_states(wanted)
    for invoice_id in wanted:
        for action in ACTIONS:
            wins = outcomes[(invoice_id, action)].count(0)
            if wins != 1:
                violations.append(f"{action} of {invoice_id} exited 0 {wins} times")
            if audited[(invoice_id, action)] != 1:
                violations.append(f"{action} of {invoice_id} audited as succeeded"
                                  f" {audited[(invoice_id, action)]} times")
        row = local.get(invoice_id)
        if row is None or len(row["ids"]) != 1:
            violations.append(f"invoice {invoice_id} has corrections {row and row['ids']}")
        elif (row["state"], row["in_flight"]) != ("Reentered", None):
            violations.append(f"invoice {invoice_id} is {row['state']} locally"
                              f" (in flight: {row['in_flight']})")
        if remote[invoice_id] != "Reentered":
            violations.append(f"invoice {invoice_id} is {remote[invoice_id]} in the sandbox")
    extra = {key for key in audited if key[1] not in ACTIONS and key[0] in wanted}
    violations += [f"{action} of {invoice_id} was audited as succeeded"
                   for invoice_id, action in sorted(extra)]
    calls = target.calls()[calls_before:]
    made = mutations(calls)
    for kind in MUTATIONS:
        if made[kind] != len(wanted):
            violations.append(f"{made[kind]} {kind} calls for {len(wanted)} corrections")
    violations += [f"unexpected remote change: {kind}" for kind in made if kind not in MUTATIONS]
    deleted = Counter(c["path"].split("?")[0] for c in calls if mutation(c) == "procore-delete")
    violations += [f"{path} was called {n} times" for path, n in deleted.items() if n != 1]
    if (code := verify(target)) != 0:
        violations.append(f"relink audit verify exited {code}")
    return violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="racing processes")
    parser.add_argument("--corrections", type=int, default=50, help="corrections (at most 200)")
    parser.add_argument("--driver", choices=("cli", "service"), default="cli")
    parser.add_argument("--threads", action="store_true",
                        help="service driver: workers are threads of one process")
    parser.add_argument("--latency-ms", type=float, default=0, help="sandbox latency per call")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", help=argparse.SUPPRESS)
    parser.add_argument("--invoices", help=argparse.SUPPRESS)
    add_backend_options(parser)
    args = parser.parse_args()
    if args.worker is not None:
        wanted = [int(n) for n in args.invoices.split(",")]
        emit_list = work(args.driver, wanted, Path(args.barrier), args.worker)
        print(json.dumps(emit_list), flush=True)
        return
    from sandbox.server import SandboxServer, integrator_env

    figures: dict[str, Any] = {"bench": "races", "workers": args.workers,
                               "corrections": args.corrections, "driver": args.driver,
                               "latency_ms": args.latency_ms, "machine": machine(),
                               "backends": {}, "ok": {}}
    for backend in chosen_backends(args):
        with temporary_database(backend, args.postgres) as url, \
                SandboxServer(erp="qbo", latency_ms=args.latency_ms) as server:
            target = Target(url, server.url, {**server.env(), **integrator_env()})
            log(f"races {backend}: {args.workers} x {args.corrections} ({args.driver})")
            report = run(target, workers=args.workers, corrections=args.corrections,
                         driver=args.driver, threads=args.threads and args.driver == "service")
        log(f"races {backend}: {report['seconds']} s, exit codes {report['exit_codes']},"
            f" {report['violation_count']} violations")
        figures["backends"][backend] = report
        figures["ok"][backend] = report["ok"]
    emit(figures)


if __name__ == "__main__":
    main()
