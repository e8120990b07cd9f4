"""P4 of spec/targets.md: `relink batch` over the sandbox's 200 batch invoices (9200-9399), each
started and taken through delete-in-erp, unlink and delete-in-procore, with sandbox latency
(50 ms) and Procore's rate limit, by real ``relink`` processes.

Figures (targets.md): wall time ÷ the lower bound ``max(calls x latency / concurrency, calls /
allowed rate)`` for the calls made, the bound taking the tighter of Procore's limit and the ERP's
(each system's calls over its own rate; QuickBooks Online: 500 a minute, documented, counted by
the client); API calls against the documented minimum per step (bench/README.md); 429 answers
received. Unlink runs in ``integrator`` mode, and for comparison in ``procore`` mode with the
sandbox's auto-unlink (its reads until the link is gone are extra calls). Also the peak memory
of the ``relink`` process, and the time to resume a batch SIGKILLed half-way: the second run's
start-up (to its first step) and its whole wall time.

    .venv/bin/python bench/batch.py                       # 200 invoices, SQLite and PostgreSQL
    .venv/bin/python bench/batch.py --invoices 20 --backends sqlite   # smoke run

The sandbox runs in this process, ``relink`` in its own (no shared interpreter). The scenarios
(`run_batch`, `kill_and_resume`, `workers`) are what tests/test_batch_workers.py runs at CI size.
ONE JSON object on the last line of stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import csv
import json
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.backends import (
    add_backend_options,
    chosen_backends,
    emit,
    log,
    machine,
    temporary_database,
)
from bench.scenario import FIRST_INVOICE, RELINK, Target, mutation, mutations

# The documented minimum of API calls per step (README "Batches"): each step reads before it
# writes, so a step run again after a crash changes nothing twice.
MINIMUM = {
    "start": 2,  # read the invoice; list its commitment's invoices (is it the latest?)
    # read the bill (gone already?), read it for its SyncToken, delete it, read it back
    # (QuickBooks Online; Xero and Sage Intacct need no token: 3)
    "delete-in-erp": 4,
    # read the bill (gone?), read the invoice, External Data Sync (the service account's
    # budget), read the invoice again; procore mode: the bill, the invoice (still linked: the
    # operator is asked to click), then one read a poll until the link is gone (the sandbox's
    # auto-unlink clicks before the next: 3)
    "unlink": 4,
    "delete-in-procore": 2,  # read the invoice, delete it
}
MINIMUM_UNLINK_PROCORE = 3
PER_BATCH = 4  # once per process: the user, Can Push to Accounting, project and company tools
# the transition each step makes (a step completed by `resume` after a crash is audited as
# resume, with the same transition)
TRANSITIONS = {
    (None, "Exported"): "start", ("Exported", "DeletedInERP"): "delete-in-erp",
    ("DeletedInERP", "Unlinked"): "unlink", ("Unlinked", "DeletedInProcore"): "delete-in-procore",
    ("DeletedInProcore", "Reentered"): "reenter",
}
STEPS = ("start", "delete-in-erp", "unlink", "delete-in-procore")
UNTIL = "DeletedInProcore"
QBO_RATE = 500 / 60  # QuickBooks Online: 500 requests a minute per company (documented)
# 36,000 an hour (10 a second, 100 per 10-second spike window): 10x Procore's documented 3,600
# an hour per token, so that 200 invoices take two minutes, not twenty
PROCORE_LIMIT = (3600 * 10, 3600.0)
LATENCY_MS = 50
SHORT_LEASE = {"RELINK_LEASE_SECONDS": "2", "RELINK_HTTP_CONNECT_TIMEOUT": "0.5",
               "RELINK_HTTP_READ_TIMEOUT": "2"}


@contextmanager
def sandbox(*, latency_ms: float, rate_limit: tuple[int, float] | None,
            mode: str = "integrator") -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh QuickBooks Online sandbox; its URL and the environment pointing relink at it."""
    from sandbox.server import SandboxServer, integrator_env

    with SandboxServer(erp="qbo", latency_ms=latency_ms, rate_limit=rate_limit,
                       auto_unlink=mode == "procore") as server:
        env = dict(server.env())
        if mode == "integrator":
            env |= integrator_env()
        else:
            env |= {"RELINK_UNLINK_POLL_SECONDS": "0.05"}
        yield server.url, env


def batch_file(folder: Path, invoices: list[int]) -> Path:
    path = folder / "batch.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["invoice", "project", "reason"])
        writer.writerows([invoice, 102, "P4"] for invoice in invoices)
    return path


def create(target: Target, folder: Path, invoices: list[int], *, as_is: bool = True) -> int:
    """A batch of ``invoices`` by id (``relink batch start --from``); its id."""
    args = ["--json", "batch", "start", "--from", str(batch_file(folder, invoices))]
    done = target.relink(*args, *(["--as-is"] if as_is else []))
    if done.returncode != 0:
        raise SystemExit(f"batch start failed: {done.stderr.strip()[-400:]}")
    return int(json.loads(done.stdout)["batch"]["id"])


def run_args(batch: int, *, until: str | None, concurrency: int) -> list[str]:
    return ["--json", "batch", "run", str(batch), "--concurrency", str(concurrency),
            *(["--until", until] if until else [])]


def run_batch(target: Target, batch: int, *, until: str | None, concurrency: int,
              timeout: float = 1800) -> dict[str, Any]:
    """One ``relink batch run`` process to its end: wall time, exit code, peak memory."""
    started = time.perf_counter()
    process = subprocess.Popen([RELINK, *run_args(batch, until=until, concurrency=concurrency)],
                               env=target.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=timeout)
    wall = time.perf_counter() - started
    return {"wall": wall, "code": process.returncode, "peak_rss_mb": peak_rss_mb(process.pid),
            "summary": json.loads(out) if out.strip() else None, "stderr": err.decode()[-400:]}


def peak_rss_mb(pid: int) -> float | None:
    """The largest peak RSS of the children waited for so far (ours are run one at a time)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def steps_done(target: Target) -> int:
    """Entries of succeeded steps so far, ``start`` and settling resumes included (one cheap
    count: it is polled while a batch runs)."""
    import sqlalchemy as sa

    from audit.tables import ENTRY
    from engine.db import Database

    db = Database(target.db_url)
    try:
        with db.read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(ENTRY).where(
                    ENTRY.c.outcome == "succeeded",
                    ENTRY.c.action.in_([*STEPS, "reenter", "resume"]))
            ).scalar_one())
    finally:
        db.dispose()


def transitions(db_url: str) -> Counter[tuple[int, str]]:
    """How many times each (invoice, step) happened: its own succeeded entry, or a resume that
    completed it after a crash (the same transition)."""
    from audit.log import Filters, query
    from engine.db import Database

    db = Database(db_url)
    try:
        with db.read() as conn:
            return Counter(
                (entry["invoice_id"], TRANSITIONS[(entry["from_state"], entry["to_state"])])
                for entry in query(conn, Filters(outcome="succeeded"))
                if entry["invoice_id"] is not None and entry["action"] != "batch-run"
                and (entry["from_state"], entry["to_state"]) in TRANSITIONS
            )
    finally:
        db.dispose()


def kill_and_resume(target: Target, batch: int, *, until: str | None, concurrency: int,
                    at_steps: int, timeout: float = 600) -> dict[str, Any]:
    """SIGKILL a ``relink batch run`` once ``at_steps`` steps succeeded, then run it again to
    the end; how long the second run took, to its first step and to its end."""
    process = subprocess.Popen([RELINK, *run_args(batch, until=until, concurrency=concurrency)],
                               env=target.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while steps_done(target) < at_steps and process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the batch never reached the step to kill it at")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = steps_done(target)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        second = subprocess.Popen([RELINK, *run_args(batch, until=until,
                                                     concurrency=concurrency)],
                                  env=target.env(), stdout=out, stderr=err)
        first_step = None
        while second.poll() is None:
            if first_step is None and steps_done(target) > killed_at:
                first_step = time.perf_counter() - started
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        printed, said = out.read(), err.read()
    return {"killed_at_steps": killed_at, "resume_to_first_step": first_step,
            "resume_wall": wall, "code": second.returncode,
            "summary": json.loads(printed) if printed.strip() else None,
            "stderr": said.decode()[-400:]}


def workers(target: Target, batch: int, *, count: int, until: str | None, concurrency: int,
            kill_one_at: int | None = None, timeout: float = 900) -> dict[str, Any]:
    """``count`` ``relink batch run`` processes on the same batch at once; with
    ``kill_one_at``, the first is SIGKILLed once it holds claims and that many steps
    succeeded. Exit codes, and whether the killed one held claims when it died."""
    processes = [subprocess.Popen([RELINK, *run_args(batch, until=until,
                                                     concurrency=concurrency)],
                                  env=target.env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for _ in range(count)]
    held = None
    if kill_one_at is not None:
        victim = processes[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and victim.poll() is None:
            if steps_done(target) >= kill_one_at and claims_of(target, victim.pid):
                held = claims_of(target, victim.pid)
                victim.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    errors = [process.communicate(timeout=timeout)[1].decode()[-300:] for process in processes]
    codes = [process.returncode for process in processes]
    return {"codes": codes, "killed_holding": held, "stderr": errors}


def claims_of(target: Target, pid: int) -> int:
    """Items the process ``pid`` holds a live claim on."""
    import datetime as dt

    import sqlalchemy as sa

    from engine.db import Database
    from engine.tables import BATCH_ITEM

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db = Database(target.db_url)
    try:
        with db.read() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(BATCH_ITEM)
                .where(BATCH_ITEM.c.claimed_pid == pid, BATCH_ITEM.c.claimed_until > now)
            ).scalar_one())
    finally:
        db.dispose()


def check(target: Target, invoices: list[int], *, until: str,
          changes: tuple[str, ...]) -> list[str]:
    """What must hold after a batch: every step succeeded exactly once per invoice, each remote
    change once per invoice (the sandbox's call log), no 429, every correction at ``until``,
    `audit verify` passes. The violations (empty: all held)."""
    from bench.scenario import local_states

    violations = []
    done = transitions(target.db_url)
    for invoice in invoices:
        for step in _steps_to(until):
            if done[(invoice, step)] != 1:
                violations.append(f"{invoice}: {step} succeeded {done[(invoice, step)]} times")
    calls = target.calls()
    made = mutations([call for call in calls if 200 <= call["status"] < 300])
    for kind in changes:
        if made[kind] != len(invoices):
            violations.append(f"{kind}: {made[kind]} calls for {len(invoices)} invoices")
    per_invoice = Counter(_invoice_of(call) for call in calls
                          if mutation(call) and 200 <= call["status"] < 300)
    violations += [f"invoice {key}: {count} changes" for key, count in per_invoice.items()
                   if key is not None and count > len(changes)]
    if throttled := [call for call in calls if call["status"] == 429]:
        violations.append(f"{len(throttled)} answers were 429")
    states = local_states(target.db_url)
    for invoice in invoices:
        found = states.get(invoice)
        if found is None or found["state"] != until or found["in_flight"]:
            violations.append(f"{invoice}: {found}")
    if (code := target.relink("audit", "verify").returncode) != 0:
        violations.append(f"audit verify exited {code}")
    return violations


def _steps_to(until: str) -> tuple[str, ...]:
    return STEPS if until == UNTIL else (*STEPS, "reenter")


def _invoice_of(call: dict[str, Any]) -> str | None:
    path = call["path"].split("?")[0]
    if "/requisitions/" in path:
        return path.rsplit("/", 1)[1]
    return None


def bound(calls: Counter[str], *, latency: float, concurrency: int,
          procore_rate: float) -> dict[str, float]:
    """targets.md's lower bound for these calls: every call waits ``latency`` with at most
    ``concurrency`` at once, and each budget's calls go no faster than its allowed rate (the
    operator's token and the integration's service account are counted apart, as Procore
    does; the ERP at its documented rate)."""
    total = sum(calls.values())
    by_latency = total * latency / concurrency
    by_rate = max(calls["procore"] / procore_rate, calls["service"] / procore_rate,
                  calls["erp"] / QBO_RATE)
    return {"latency_bound": round(by_latency, 2), "rate_bound": round(by_rate, 2),
            "bound": round(max(by_latency, by_rate), 2)}


def systems(calls: list[dict[str, Any]]) -> Counter[str]:
    """Calls by rate budget: the ERP's, the operator's Procore token, the service account's."""
    return Counter(
        "erp" if call["path"].startswith("/erp")
        else "service" if str(call.get("actor") or "").startswith("erp-connector")
        else "procore" for call in calls
    )


def p4(backend: str, postgres: str | None, *, invoices: int, concurrency: int, mode: str,
       latency_ms: float, resume: bool) -> dict[str, Any]:
    wanted = [FIRST_INVOICE + n for n in range(invoices)]
    limit, window = PROCORE_LIMIT
    with temporary_database(backend, postgres) as url, \
            sandbox(latency_ms=latency_ms, rate_limit=PROCORE_LIMIT, mode=mode) as (base, env), \
            tempfile.TemporaryDirectory() as folder:
        target = Target(url, base, env)
        batch = create(target, Path(folder), wanted)
        before = target.calls()
        ran = run_batch(target, batch, until=UNTIL, concurrency=concurrency)
        calls = target.calls()[len(before):]
        made = systems(calls)
        floor = bound(made, latency=latency_ms / 1000, concurrency=concurrency,
                      procore_rate=limit / window)
        minimum = invoices * sum(MINIMUM.values()) + PER_BATCH
        if mode == "procore":
            minimum -= invoices * (MINIMUM["unlink"] - MINIMUM_UNLINK_PROCORE)
        violations = check(target, wanted, until=UNTIL, changes=(
            "erp-delete", "procore-delete", *(["unlink"] if mode == "integrator" else [])))
        figures = {
            "backend": backend, "mode": mode, "invoices": invoices, "concurrency": concurrency,
            "wall": round(ran["wall"], 2), **floor,
            "ratio": round(ran["wall"] / floor["bound"], 3) if floor["bound"] else None,
            "calls": sum(made.values()), "stderr": ran["stderr"] if ran["code"] else "",
            "calls_by_system": dict(made), "documented_minimum": minimum,
            "calls_429": sum(call["status"] == 429 for call in calls),
            "peak_rss_mb": ran["peak_rss_mb"], "exit": ran["code"], "violations": violations,
        }
        log(f"{backend} {mode}: {figures['wall']} s for {invoices} invoices, bound"
            f" {floor['bound']} s ({figures['ratio']}x), {figures['calls']} calls (minimum"
            f" {minimum}), {figures['calls_429']} x 429")
    if resume:
        with temporary_database(backend, postgres) as url, \
                sandbox(latency_ms=latency_ms, rate_limit=PROCORE_LIMIT, mode=mode) as (base,
                                                                                      env), \
                tempfile.TemporaryDirectory() as folder:
            target = Target(url, base, {**env, **SHORT_LEASE})
            batch = create(target, Path(folder), wanted)
            half = invoices * len(STEPS) // 2
            resumed = kill_and_resume(target, batch, until=UNTIL, concurrency=concurrency,
                                      at_steps=half)
            figures["resume"] = {
                "killed_at_steps": resumed["killed_at_steps"],
                "to_first_step": round(resumed["resume_to_first_step"] or -1, 2),
                "wall": round(resumed["resume_wall"], 2), "exit": resumed["code"],
                "violations": check(target, wanted, until=UNTIL, changes=(
                    "erp-delete", "procore-delete",
                    *(["unlink"] if mode == "integrator" else []))),
            }
            log(f"{backend} {mode} resume: {figures['resume']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--modes", default="integrator,procore")
    parser.add_argument("--no-resume", action="store_true")
    add_backend_options(parser)
    args = parser.parse_args()
    results = []
    for backend in chosen_backends(args):
        for mode in args.modes.split(","):
            results.append(p4(backend, args.postgres, invoices=args.invoices,
                              concurrency=args.concurrency, mode=mode,
                              latency_ms=args.latency_ms,
                              resume=not args.no_resume and mode == "integrator"))
    emit({"bench": "batch", "target": "P4", "procore_limit": f"{PROCORE_LIMIT[0]}/h",
          "erp_limit": "QuickBooks Online 500/min (documented)", "latency_ms": args.latency_ms,
          "runs": results, "machine": machine(), "pid": os.getpid()})


if __name__ == "__main__":
    main()
