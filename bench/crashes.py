"""R2 of spec/targets.md: a process is killed (SIGKILL) at a random moment inside a step.

Against a sandbox with latency (so a step lasts a while), corrections are driven forward by
``relink advance`` processes that are all killed: each kill picks, with a seeded RNG, either a
moment just after the process's first API call (permissions, the in-flight transaction) or a
moment after the step went in flight (before, during or after its remote change). After each
kill ``relink resume`` — the service layer's ``resume``, in-process — settles the correction; a
step it released is simply tried (and killed) again.

The killed processes run relink's CLI entry point (``cli.main``) in a process started ahead of
time with relink already imported (so the kill lands in the step, not in Python's start-up), and
told its command on stdin when its turn comes.

What must hold (each failure is listed under ``violations``): resume exits 0 and leaves nothing
in flight; after every kill the local state matches what the sandbox's data implies; no remote
change happened twice for one correction (the sandbox's call log); ``relink audit verify``
passes at the end.

    .venv/bin/python bench/crashes.py                     # 100 kills, both backends
    .venv/bin/python bench/crashes.py --kills 5           # smoke run

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
import random
import shutil
import signal
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
    PROJECT,
    STEPS,
    Target,
    data_file,
    invoices,
    local_states,
    mutations,
    verify,
)

NEXT_STEP = dict(zip(("Exported", "DeletedInERP", "Unlinked", "DeletedInProcore"), STEPS,
                     strict=True))
CALLS = {"delete-in-erp": 4, "unlink": 3, "delete-in-procore": 2, "reenter": 2}  # per step
WAIT_SECONDS = 60
PRELOAD = ("audit.log", "engine.app", "engine.service", "integrations.erp",
           "integrations.factory", "integrations.procore", "sqlalchemy.dialects.sqlite.pysqlite",
           "sqlalchemy.dialects.postgresql.psycopg")  # what a step needs, before it is told


class Warm:
    """A process with relink imported, waiting on stdin for the command it is to run."""

    def __init__(self, target: Target) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child"],
            env=target.env(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def run(self, *args: str) -> subprocess.Popen[bytes]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(list(args)).encode() + b"\n")
        self.process.stdin.flush()
        return self.process


def child() -> None:
    """``--child``: import relink, read one command, run it as ``relink`` would."""
    import importlib

    import cli

    for name in PRELOAD:
        importlib.import_module(name)
    line = sys.stdin.readline()
    if line:
        sys.argv = ["relink", *json.loads(line)]
        cli.main()


def in_flight(db: Any, wid: int) -> str | None:
    from engine.store import WorkflowStore

    with db.read(single=True) as conn:
        instance = WorkflowStore().get(conn, wid)
    return instance.in_flight_step if instance else None


def wait_until(ready: Any, process: subprocess.Popen[bytes]) -> bool:
    """Poll ``ready`` until true (True), the process ended or the wait is over (False)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def run(target: Target, *, kills: int, seed: int, latency_ms: float) -> dict[str, Any]:
    """Kill ``kills`` steps at random moments; the report (see module doc)."""
    from engine.db import Database

    rng = random.Random(seed)
    latency = latency_ms / 1000
    service = target.service()
    poll = Database(target.db_url)
    folder = Path(tempfile.mkdtemp(prefix="relink-crash-"))  # the reenter data files
    pending = iter(invoices(min(200, kills // 4 + 2)))  # a correction takes >= 4 kills
    violations: list[str] = []
    landed: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    changes: dict[int, Counter[str]] = defaultdict(Counter)
    touched: dict[int, int] = {}  # invoice -> correction
    current: dict[str, Any] | None = None
    warm = Warm(target)
    started = time.perf_counter()
    try:
        for n in range(kills):
            if current is None or current["state"] not in NEXT_STEP:
                invoice_id = next(pending)
                current = service.start(invoice_id, PROJECT, "crash test")
                touched[invoice_id] = current["id"]
            wid, invoice_id = current["id"], current["invoice_id"]
            step = NEXT_STEP[current["state"]]
            extra = ["--data", str(data_file(folder, invoice_id))] if step == "reenter" else []
            calls_before = len(target.calls())
            process = warm.run("advance", str(wid), step, *extra)
            warm = Warm(target)  # the next one imports relink while this step runs
            if rng.random() < 0.25:
                moment, window = "early", 4 * latency
                seen = wait_until(lambda n=calls_before: len(target.calls()) > n, process)
            else:
                moment, window = "in_flight", (CALLS[step] + 1) * latency
                seen = wait_until(lambda w=wid: in_flight(poll, w) is not None, process)
            time.sleep(rng.uniform(0, window))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                landed[moment if seen else "unseen"] += 1
            else:
                landed["after_exit"] += 1
            _, err = process.communicate()  # closes its pipes
            if process.returncode not in (0, -signal.SIGKILL):
                violations.append(f"kill {n}: advance exited {process.returncode}:"
                                  f" {err.decode()[-300:]}")
            try:
                current = service.resume(wid)
            except Exception as exc:  # reported as a violation: resume must settle it
                violations.append(f"kill {n}: resume of {wid} failed: {exc}")
                current = service.show(wid)
            message = str(current.get("message", ""))
            settled["released" if message.startswith("Released") else
                    "nothing" if message.startswith("Nothing in flight") else "completed"] += 1
            if current["in_flight"] is not None:
                violations.append(f"kill {n}: {wid} still in flight after resume")
            changes[invoice_id].update(mutations(target.calls()[calls_before:]))
            remote = target.remote_states([invoice_id])[invoice_id]
            if remote != current["state"]:
                violations.append(f"kill {n} ({step}, {moment}): {wid} is {current['state']}"
                                  f" locally, {remote} in the sandbox")
    finally:
        warm.process.kill()
        warm.process.communicate()
        service.close()
        poll.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - started
    for invoice_id, made in changes.items():
        violations += [f"invoice {invoice_id}: {kind} happened {count} times"
                       for kind, count in made.items() if count > 1]
    remote = target.remote_states(list(touched))
    rows = local_states(target.db_url)
    local = {i: rows[i]["state"] if i in rows else "missing" for i in touched}
    violations += [f"invoice {i}: {local[i]} locally, {remote[i]} in the sandbox"
                   for i in touched if local[i] != remote[i]]
    if (code := verify(target)) != 0:
        violations.append(f"relink audit verify exited {code}")
    return {
        "kills": kills, "seed": seed, "latency_ms": latency_ms, "seconds": round(seconds, 2),
        "corrections": len(touched), "landed": dict(landed), "resume": dict(settled),
        "states": dict(Counter(local.values())), "violations": violations[:50],
        "violation_count": len(violations), "ok": not violations,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="killed steps per backend")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the kill moments")
    parser.add_argument("--latency-ms", type=float, default=100, help="sandbox latency per call")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_backend_options(parser)
    args = parser.parse_args()
    if args.child:
        child()
        return
    from integrations.sandbox.server import SandboxServer

    figures: dict[str, Any] = {"bench": "crashes", "kills": args.kills, "seed": args.seed,
                               "latency_ms": args.latency_ms, "machine": machine(),
                               "backends": {}, "ok": {}}
    for backend in chosen_backends(args):
        with temporary_database(backend, args.postgres) as url, \
                SandboxServer(erp="qbo", latency_ms=args.latency_ms) as server:
            report = run(Target(url, server.url, server.env()), kills=args.kills,
                         seed=args.seed, latency_ms=args.latency_ms)
        log(f"crashes {backend}: {report['seconds']} s, landed {report['landed']},"
            f" resume {report['resume']}, {report['violation_count']} violations")
        figures["backends"][backend] = report
        figures["ok"][backend] = report["ok"]
    emit(figures)


if __name__ == "__main__":
    main()
