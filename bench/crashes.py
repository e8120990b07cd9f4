"""R2 of spec/targets.md: the owner of a step is killed (SIGKILL) or stopped (SIGSTOP, later
SIGCONT) at a random moment inside the step, while other operators try to settle it.

Against a sandbox with latency (so a step lasts a while), corrections are driven forward by
``relink advance`` processes. Each one, with a seeded RNG, is either killed or stopped, at a moment
just after its first API call or after the step went in flight (before, during or after its remote
change). Then, in-process through the service layer's ``resume`` (as ``relink resume`` runs it):

1. while the owner's lease lives, a resume must be refused (Conflict) and change nothing;
2. after it, a resume by a user without the permission (``sandbox-rita``) and a resume that cannot
   reach Procore or the ERP must leave a step in flight in flight;
3. then ``resume`` settles the step (completes or releases it); a stopped owner is continued
   (SIGCONT) and must finish without changing anything more (it finds its lease lost, or its
   second transaction overtaken) and exit 0 or 4.

A step that was released is simply tried (and killed or stopped) again.

The owners run relink's CLI entry point (``cli.main``) in a process started ahead of time with
relink already imported (so the signal lands in the step, not in Python's start-up), and told its
command on stdin when its turn comes. They run with short timeouts and a short lease
(``SHORT_LEASE``), so a lease ends about 2.4 s after the last request it covered.

What must hold (each failure is listed under ``violations``): no resume releases or completes a
step it was not entitled to; the final resume leaves nothing in flight; after every round the
local state matches what the sandbox's data implies; no remote change happened twice for one
correction (the sandbox's call log); ``relink audit verify`` passes at the end.

    .venv/bin/python bench/crashes.py                     # 100 rounds, both backends
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
CALLS = {"delete-in-erp": 4, "unlink": 4, "delete-in-procore": 2, "reenter": 2}  # per step
WAIT_SECONDS = 60
PRELOAD = ("audit.log", "engine.app", "engine.service", "integrations.erp",
           "integrations.factory", "integrations.procore", "sqlalchemy.dialects.sqlite.pysqlite",
           "sqlalchemy.dialects.postgresql.psycopg")  # what a step needs, before it is told


class Warm:
    """A process with relink imported, waiting on stdin for the command it is to run."""

    def __init__(self, target: Target) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child"],
            env=target.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


SHORT_LEASE = {"RELINK_LEASE_SECONDS": "0.5", "RELINK_HTTP_CONNECT_TIMEOUT": "0.2",
               "RELINK_HTTP_READ_TIMEOUT": "0.5", "RELINK_HTTP_MAX_ATTEMPTS": "2"}
STOP_SHARE = 0.35  # of the rounds whose owner is stopped rather than killed


def stored(db: Any, wid: int) -> Any:
    from engine.store import WorkflowStore

    with db.read(single=True) as conn:
        return WorkflowStore().get(conn, wid)


def in_flight(db: Any, wid: int) -> str | None:
    instance = stored(db, wid)
    return instance.in_flight_step if instance else None


def lease_left(db: Any, wid: int) -> float:
    import datetime as dt

    until = stored(db, wid).in_flight_lease_until
    if until is None:
        return 0.0
    return max(0.0, (dt.datetime.fromisoformat(until) - dt.datetime.now(dt.UTC)).total_seconds())


def wait_until(ready: Any, process: subprocess.Popen[bytes]) -> bool:
    """Poll ``ready`` until true (True), the process ended or the wait is over (False)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Round:
    """One owner process signalled inside its step, and the resumes that follow."""

    def __init__(self, bench: Bench, n: int, wid: int) -> None:
        self.bench, self.n, self.wid = bench, n, wid

    def violation(self, text: str) -> None:
        self.bench.violations.append(f"round {self.n} (correction {self.wid}): {text}")

    def must_not_settle(self, service: Any, label: str, expected: tuple[type, ...]) -> None:
        """A resume that must change nothing: refused, failed, or finding nothing in flight."""
        before = stored(self.bench.poll, self.wid)
        try:
            doc = service.resume(self.wid).document()
        except expected as exc:
            self.bench.refusals[f"{label}:{type(exc).__name__}"] += 1
        except Exception as exc:  # anything else is a violation: resume must answer cleanly
            self.violation(f"{label} resume raised {type(exc).__name__}: {exc}")
        else:
            if before.in_flight_step is not None:
                self.violation(f"{label} resume settled a step: {doc.get('message')}")
            self.bench.refusals[f"{label}:nothing"] += 1
        after = stored(self.bench.poll, self.wid)
        if (after.state, after.in_flight_step) != (before.state, before.in_flight_step):
            self.violation(f"{label} resume changed {before.state}/{before.in_flight_step}"
                           f" into {after.state}/{after.in_flight_step}")

    def settle(self, *, blocked: bool = False) -> dict[str, Any] | None:
        """Wait for the lease to end, try the resumes that must change nothing, then settle.
        ``blocked``: the owner is stopped, and may hold SQLite's write lock (None: try later)."""
        from engine.errors import Conflict, Refused, Unavailable

        bench = self.bench
        time.sleep(lease_left(bench.poll, self.wid) + 0.02)
        self.must_not_settle(bench.rita, "refused", (Refused, Conflict) if blocked else (Refused,))
        down = bench.erp_down if self.n % 2 else bench.procore_down
        before = stored(bench.poll, self.wid)
        try:
            doc = down.resume(self.wid).document()
        except (Unavailable, Conflict) as exc:  # Conflict: the lease of a resume before it
            bench.refusals[f"unavailable:{type(exc).__name__}"] += 1
            after = stored(bench.poll, self.wid)
            if (after.state, after.in_flight_step) != (before.state, before.in_flight_step):
                self.violation("an unavailable resume changed the correction")
        except Exception as exc:
            self.violation(f"unavailable resume raised {type(exc).__name__}: {exc}")
        else:  # the probe of this step needs only the system that answered: a real settle
            bench.refusals["unavailable:settled" if before.in_flight_step else
                           "unavailable:nothing"] += 1
            return doc
        time.sleep(lease_left(bench.poll, self.wid) + 0.02)
        try:
            return bench.service.resume(self.wid).document()
        except Conflict as exc:
            if not blocked or "busy" not in exc.message:
                self.violation(f"resume failed: {type(exc).__name__}: {exc}")
            # SQLite: the stopped owner holds the database's write lock; resume said so (exit
            # 4) and changed nothing. Settled again once the owner is continued.
            bench.refusals["busy:Conflict"] += 1
            return None
        except Exception as exc:  # reported as a violation: resume must settle it
            self.violation(f"resume failed: {type(exc).__name__}: {exc}")
            return dict(bench.service.show(self.wid))


class Bench:
    def __init__(self, target: Target) -> None:
        from engine.db import Database

        self.target = target
        self.service = target.service()
        self.rita = target.but(RELINK_PROCORE_TOKEN="sandbox-rita").service()
        down = closed_port_url()
        self.procore_down = target.but(RELINK_PROCORE_URL=down).service()
        self.erp_down = target.but(RELINK_ERP_URL=f"{down}/erp").service()
        self.poll = Database(target.db_url)
        self.violations: list[str] = []
        self.refusals: Counter[str] = Counter()

    def close(self) -> None:
        for service in (self.service, self.rita, self.procore_down, self.erp_down):
            service.close()
        self.poll.dispose()


def run(target: Target, *, kills: int, seed: int, latency_ms: float) -> dict[str, Any]:
    """Signal ``kills`` owners at random moments; the report (see module doc)."""
    from engine.errors import Conflict

    rng = random.Random(seed)
    latency = latency_ms / 1000
    target = target.but(**SHORT_LEASE)
    bench = Bench(target)
    violations = bench.violations
    folder = Path(tempfile.mkdtemp(prefix="relink-crash-"))  # the reenter data files
    pending = iter(invoices(min(200, kills // 4 + 2)))  # a correction takes >= 4 rounds
    landed: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    changes: dict[int, Counter[str]] = defaultdict(Counter)
    rounds: dict[int, list[str]] = defaultdict(list)  # what happened to each invoice, for reports
    touched: dict[int, int] = {}  # invoice -> correction
    current: dict[str, Any] | None = None
    warm = Warm(target)
    started = time.perf_counter()
    try:
        for n in range(kills):
            if current is None or current["state"] not in NEXT_STEP:
                invoice_id = next(pending)
                current = bench.service.start(invoice_id, PROJECT, "crash test").document()
                touched[invoice_id] = current["id"]
            wid, invoice_id = current["id"], current["invoice_id"]
            one = Round(bench, n, wid)
            step = NEXT_STEP[current["state"]]
            extra = ["--data", str(data_file(folder, invoice_id))] if step == "reenter" else []
            calls_before = len(target.calls())
            process = warm.run("advance", str(wid), step, *extra)
            warm = Warm(target)  # the next one imports relink while this step runs
            stop = rng.random() < STOP_SHARE
            if rng.random() < 0.25:
                moment, window = "early", 4 * latency
                seen = wait_until(lambda n=calls_before: len(target.calls()) > n, process)
            else:
                moment, window = "in_flight", (CALLS[step] + 1) * latency
                seen = wait_until(lambda w=wid: in_flight(bench.poll, w) is not None, process)
            time.sleep(rng.uniform(0, window))
            signalled = process.poll() is None
            if signalled:
                process.send_signal(signal.SIGSTOP if stop else signal.SIGKILL)
                landed[f"{'stop' if stop else 'kill'}:{moment if seen else 'unseen'}"] += 1
            else:
                landed["after_exit"] += 1
            blocked = signalled and stop
            try:
                if lease_left(bench.poll, wid) > 0.3:  # 1. never while the lease lives
                    one.must_not_settle(bench.service, "leased", (Conflict,))
                doc = one.settle(blocked=blocked)
            finally:
                if blocked:
                    process.send_signal(signal.SIGCONT)
            out, err = process.communicate()  # closes its pipes
            if doc is None:
                doc = one.settle()
            message = str((doc or {}).get("message", ""))
            code = process.returncode
            owners[str(code)] += 1
            said = (out + err).decode(errors="replace").strip().splitlines()
            rounds[invoice_id].append(
                f"round {n}: {step} {'stop' if stop else 'kill'}:{moment} owner exit {code}"
                f" ({said[-1][:160] if said else ''}); resume: {message[:160]}")
            if code not in (0, 4, -signal.SIGKILL) or (stop and code == -signal.SIGKILL):
                violations.append(f"round {n}: advance exited {code}: {err.decode()[-300:]}")
            current = bench.service.show(wid)
            settled["released" if message.startswith("Released") else
                    "nothing" if message.startswith("Nothing in flight") else "completed"] += 1
            if current["in_flight"] is not None:
                violations.append(f"round {n}: {wid} still in flight after resume")
            changes[invoice_id].update(mutations(target.calls()[calls_before:]))
            remote = target.remote_states([invoice_id])[invoice_id]
            if remote != current["state"]:
                violations.append(f"round {n} ({step}, {moment}): {wid} is {current['state']}"
                                  f" locally, {remote} in the sandbox")
    finally:
        warm.process.kill()
        warm.process.communicate()
        bench.close()
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.perf_counter() - started
    for invoice_id, made in changes.items():
        violations += [f"invoice {invoice_id}: {kind} happened {count} times"
                       f" ({' | '.join(rounds[invoice_id])})"
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
        "corrections": len(touched), "landed": dict(landed), "owner_exits": dict(owners),
        "refused_resumes": dict(bench.refusals), "resume": dict(settled),
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
    from sandbox.server import SandboxServer, integrator_env

    figures: dict[str, Any] = {"bench": "crashes", "kills": args.kills, "seed": args.seed,
                               "latency_ms": args.latency_ms, "machine": machine(),
                               "backends": {}, "ok": {}}
    for backend in chosen_backends(args):
        with temporary_database(backend, args.postgres) as url, \
                SandboxServer(erp="qbo", latency_ms=args.latency_ms) as server:
            report = run(Target(url, server.url, {**server.env(), **integrator_env()}),
                         kills=args.kills,
                         seed=args.seed, latency_ms=args.latency_ms)
        log(f"crashes {backend}: {report['seconds']} s, landed {report['landed']},"
            f" resume {report['resume']}, {report['violation_count']} violations")
        figures["backends"][backend] = report
        figures["ok"][backend] = report["ok"]
    emit(figures)


if __name__ == "__main__":
    main()
