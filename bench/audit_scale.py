"""P3a/P3b/P3c/P3d of spec/targets.md: the audit log at scale.

Builds a valid log of ``--entries`` entries (default 1,000,000) by bulk-inserting precomputed,
chained rows, on SQLite (a WAL file in a temporary folder) and, when RELINK_TEST_POSTGRES_URL is
set, on PostgreSQL (a schema of its own, dropped afterwards). Then measures:

- P3a: ``audit log`` queries in-process through ``AuditService.entries`` with one filter each
  (invoice, actor, project, one-day time window), newest 50 as the table view asks, and the full
  result set of the selective ones (invoice, one-hour window): p50/p95 in ms over ``--queries``.
- P3b: the chain check of ``audit verify`` (on every core: audit.parallel) against two floors,
  each a bare driver loop (sqlite3 / psycopg server-side cursor) in one process reading the
  same rows, building the same dicts and hashing them: (a) with rfc8785 (today's loop, the
  pure-Python encoder), (b) with orjson (``OPT_SORT_KEYS``, the C-backed encoder, bare: no
  domain check). Also verify in one process (workers off), for the speed-up of the workers.
  Each in a subprocess, with its peak memory: the process's own (VmHWM) and, sampled every
  50 ms, the total of the process and its workers (the sum of their PSS).
- P3c: ``AuditService.export`` to a file, entries/s and peak memory as above, for JSONL, OCSF
  and CSV (CSV for reference), each in a subprocess.
- P3d: ``AuditService.verify(since_checkpoint=...)`` in-process with a checkpoint signed at
  seq ``entries - 1000``: the first call in a fresh process and the median of the next ones.

Progress goes to stderr; the figures are ONE JSON object on the last line of stdout.

    .venv/bin/python bench/audit_scale.py                 # 1,000,000 entries
    .venv/bin/python bench/audit_scale.py --entries 2000  # CI smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import rfc8785

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.chain import FIELDS, GENESIS, evidence_text
from audit.log import Filters
from engine.db import Database
from engine.reviews import AuditService

POSTGRES_ENV = "RELINK_TEST_POSTGRES_URL"
TARGETS = {"p3a_p95_ms": 50, "p3b_speedup_vs_rfc8785": 10.0, "p3b_ratio": 1.5,
           "p3b_peak_mb": 150, "p3c_jsonl_entries_per_s": 250_000,
           "p3c_ocsf_entries_per_s": 100_000, "p3c_peak_mb": 150, "p3d_ms": 100}
AFTER_CHECKPOINT = 1000
START = dt.datetime(2023, 1, 2, 8, 0, tzinfo=dt.UTC)
SPACING = dt.timedelta(seconds=90)  # ~960 entries a day
PROJECTS, ACTORS, GROUP = 200, 40, 50
STEPS = (
    ("start", None, "Exported", "succeeded", "Correction started"),
    ("delete-in-erp", "Exported", "Exported", "in_flight", "Deleting the bill in the ERP"),
    ("delete-in-erp", "Exported", "DeletedInErp", "succeeded", "Deleted in the ERP"),
    ("delete-in-procore", "DeletedInErp", "DeletedInErp", "refused",
     "Refused: delete-in-procore is not allowed in state DeletedInErp. Next: unlink."),
    ("unlink", "DeletedInErp", "Unlinked", "succeeded", "Successfully Unlinked"),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# building the log ----------------------------------------------------------------------------


def canonical(entry: dict[str, Any]) -> bytes:
    """JCS bytes of the generated entries: ASCII keys, small ints and plain strings only, for
    which sorted compact JSON is byte-identical to RFC 8785 (checked against rfc8785)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def generate(count: int) -> Iterator[tuple[Any, ...]]:
    """``count`` chained rows in FIELDS order (evidence as stored text). Corrections of five
    entries interleave in groups of 50, so one invoice's entries spread over ~250 seqs."""
    prev, seq, wid = GENESIS, 0, 0
    while seq < count:
        group = range(wid + 1, wid + GROUP + 1)
        wid += GROUP
        for step, (action, src, dst, outcome, message) in enumerate(STEPS):
            for w in group:
                seq += 1
                if seq > count:
                    return
                entry = _entry(seq, w, step, action, src, dst, outcome, message, prev)
                body = canonical(entry)
                if seq <= 2000 or seq % 10_000 == 0:
                    assert body == rfc8785.dumps(entry), f"canonical form differs at seq {seq}"
                prev = entry["hash"] = hashlib.sha256(body).hexdigest()
                entry["evidence"] = evidence_text(entry["evidence"])
                yield tuple(entry[name] for name in FIELDS)


def _entry(seq: int, w: int, step: int, action: str, src: str | None, dst: str, outcome: str,
           message: str, prev: str) -> dict[str, Any]:
    actor = 7000 + w % ACTORS
    at = START + SPACING * seq + dt.timedelta(microseconds=seq * 7919 % 1_000_000 // 100)
    evidence: dict[str, Any] = {"permissions": {"invoices": "admin", "erp": "admin"},
                                "idempotency_key": f"k-{w}-{step}"}
    if step == 0:
        evidence["before"] = {"invoice_number": f"INV-{w}", "total": f"{w % 90000 + 1000}.50",
                              "retainage": "912.50", "billing_date": "2023-11-30"}
    if step in (2, 4):
        evidence["calls"] = [{"method": "DELETE" if step == 2 else "PATCH", "status": 200,
                              "request_id": f"req-{seq:08d}", "elapsed_ms": 180 + seq % 90}]
    return {
        "seq": seq, "recorded_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "workflow_id": w,
        "workflow": "subcontractor-invoice", "workflow_version": 1, "company_id": 4021,
        "project_id": 1000 + w % PROJECTS, "invoice_id": 100_000 + w,
        "erp_bill_id": str(5000 + w), "actor_id": actor,
        "actor_login": f"user{actor}@harborbuild.example", "actor_name": f"User {actor}",
        "action": action, "from_state": src, "to_state": dst, "outcome": outcome,
        "message": message, "reason": "Wrong retainage on line 3" if step == 0 else None,
        "evidence": evidence, "prev_hash": prev,
    }


def build(db: Database, count: int) -> float:
    """Bulk-insert ``count`` rows and move the head; returns seconds."""
    began = time.perf_counter()
    rows = generate(count)
    last: tuple[Any, ...] | None = None
    with _raw(db) as conn:
        if db.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            marks = ", ".join("?" * len(FIELDS))
            sql = f"INSERT INTO audit_entry ({', '.join(FIELDS)}) VALUES ({marks})"
            while chunk := [row for _, row in zip(range(50_000), rows, strict=False)]:
                conn.executemany(sql, chunk)
                last = chunk[-1]
            conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
                         (last[0], last[-1]) if last else (0, GENESIS))
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        else:
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY audit_entry ({', '.join(FIELDS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        last = row
                cursor.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
                               (last[0], last[-1]) if last else (0, GENESIS))
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE audit_entry")
    return time.perf_counter() - began


@contextlib.contextmanager
def _raw(db: Database) -> Iterator[Any]:
    if db.dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    else:
        import psycopg

        conn = psycopg.connect(_libpq(db.url))
    try:
        yield conn
    finally:
        conn.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# P3a -----------------------------------------------------------------------------------------


def p3a(db: Database, count: int, queries: int) -> dict[str, Any]:
    """p50/p95 query times of one-filter `audit log` queries, in ms."""
    service = AuditService(db)
    workflows = max(1, count // len(STEPS))
    rng = random.Random(7)
    days = max(1, int(count * SPACING.total_seconds() // 86400))

    def window(length: dt.timedelta) -> Filters:
        start = START + dt.timedelta(days=rng.randrange(days))
        end = start + length
        return Filters(since=start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       until=end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    kinds = {
        "invoice": (lambda: Filters(invoice_id=100_000 + rng.randint(1, workflows)), 50),
        "actor": (lambda: Filters(actor_login=f"user{7000 + rng.randrange(ACTORS)}"
                                              "@harborbuild.example"), 50),
        "project": (lambda: Filters(project_id=1000 + rng.randrange(PROJECTS)), 50),
        "time_window_1d": (lambda: window(dt.timedelta(days=1)), 50),
        "invoice_full": (lambda: Filters(invoice_id=100_000 + rng.randint(1, workflows)), None),
        "time_window_1h_full": (lambda: window(dt.timedelta(hours=1)), None),
    }
    figures: dict[str, Any] = {}
    for name, (make, limit) in kinds.items():
        times, sizes = [], []
        for n in range(queries + 3):
            filters = make()
            began = time.perf_counter()
            found = list(service.entries(filters, limit=limit, newest_first=limit is not None))
            if n >= 3:  # warm-up
                times.append((time.perf_counter() - began) * 1000)
                sizes.append(len(found))
        times.sort()
        figures[name] = {
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
            "mean_rows": round(statistics.mean(sizes), 1),
        }
        log(f"  P3a {name}: p95 {figures[name]['p95_ms']} ms ({figures[name]['mean_rows']} rows)")
    return figures


# subprocess measurements (P3b, P3c) ----------------------------------------------------------


def child(kind: str, url: str, out: str | None) -> None:
    """Run one measurement in this (fresh) process and print its figures as JSON."""
    import audit.parallel

    sampler = RssSampler()
    sampler.start()
    db = Database(url)
    began = time.perf_counter()
    if kind in ("verify", "verify_serial"):
        if kind == "verify_serial":
            audit.parallel.MIN_ENTRIES = 10**12
        count = verify_chain(db)
    elif kind == "since":
        checkpoint = Path(out or "")
        count = AuditService(db).verify(since_checkpoint=checkpoint,
                                        public_key=checkpoint.with_suffix(".key.pub"))["entries"]
    elif kind == "floor_rfc8785":
        count = floor(db, lambda entry: rfc8785.dumps(entry))
    elif kind == "floor_fast":
        count = floor(db, lambda entry: orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))
    else:
        count = AuditService(db).export(Filters(), kind, Path(out or os.devnull))
    seconds = time.perf_counter() - began
    sampler.stop()
    db.dispose()
    print(json.dumps({"count": count, "seconds": seconds, "peak_mb": round(peak_rss_mb(), 1),
                      "total_peak_mb": round(sampler.peak_mb, 1),
                      "workers": 0 if kind.startswith(("floor", "since", "verify_serial"))
                      else audit.parallel.workers_for(count)}))


def verify_chain(db: Database) -> int:
    """The chain check of ``audit verify`` (``AuditService.verify``): in one read transaction
    (one snapshot on PostgreSQL), the head, then every entry (audit.parallel.verify_log), then
    the head matched with the last entry. Cross-checks of other tables that verify may add
    (the corrections' states) are not part of P3b: this log has no corrections table rows."""
    from audit.log import head
    from audit.parallel import verify_log

    with db.read() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        recorded = head(conn)
        checked = verify_log(conn, head_seq=recorded["seq"],
                             canonical_from=recorded["canonical_from"])
        if (checked.last_seq, checked.last_hash) != (recorded["seq"], recorded["hash"]):
            raise SystemExit("verify: the chain does not end at the head")
    return checked.count


def peak_rss_mb() -> float:
    """This process's peak resident set size. Linux's VmHWM starts afresh at exec, unlike
    ru_maxrss, which a child inherits from the (bigger) parent it was forked from."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """The largest memory total of this process and its children (the workers), sampled: the
    sum of their proportional set sizes (PSS: each shared page, such as the Python binary and
    its libraries, counted once across the processes, not once per process as RSS would)."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.every, self.peak_mb = every, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self.done.wait(self.every):
            pids = [me]
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{me}/task").iterdir():
                    pids += [int(p) for p in (task / "children").read_text().split()]
            self.peak_mb = max(self.peak_mb, sum(_pss_kb(pid) for pid in pids) / 1024)


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def floor(db: Database, encode: Any) -> int:
    """The bare loop: the same rows, the same dicts, the same hash (``encode``: the canonical
    encoder), through the raw driver, in one process."""
    sql = f"SELECT {', '.join(FIELDS)} FROM audit_entry ORDER BY seq"
    count, prev = 0, GENESIS
    loads = orjson.loads
    with _raw(db) as conn:
        if db.dialect == "sqlite":
            cursor = conn.execute(sql)
        else:
            cursor = conn.cursor(name="floor")
            cursor.itersize = 5000  # the batch relink reads with (audit.log.rows)
            cursor.execute(sql)
        for row in cursor:
            entry = dict(zip(FIELDS, row, strict=True))
            entry["evidence"] = loads(entry["evidence"])
            stored = entry.pop("hash")
            if entry["prev_hash"] != prev or hashlib.sha256(encode(entry)).hexdigest() \
                    != stored:
                raise SystemExit(f"floor: bad entry at seq {entry['seq']}")
            prev = stored
            count += 1
    return count


def measure(kind: str, url: str, out: Path | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--url", url]
    if out is not None:
        command += ["--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed: {done.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def p3b(url: str) -> dict[str, Any]:
    verify = measure("verify", url)
    serial = measure("verify_serial", url)
    fast = measure("floor_fast", url)
    slow = measure("floor_rfc8785", url)
    ratio = verify["seconds"] / fast["seconds"]
    speedup = slow["seconds"] / verify["seconds"]
    log(f"  P3b verify {verify['seconds']:.2f} s ({verify['workers']} workers; one process"
        f" {serial['seconds']:.2f} s), floor (b) orjson {fast['seconds']:.2f} s, (a) rfc8785"
        f" {slow['seconds']:.2f} s: {ratio:.2f}x (b), {speedup:.1f}x faster than (a); peak"
        f" {verify['peak_mb']} MB, with workers {verify['total_peak_mb']} MB")
    return {"verify_s": round(verify["seconds"], 3), "floor_s": round(fast["seconds"], 3),
            "ratio": round(ratio, 3), "rfc8785_floor_s": round(slow["seconds"], 3),
            "speedup_vs_rfc8785": round(speedup, 2), "workers": verify["workers"],
            "one_process_s": round(serial["seconds"], 3),
            "parallel_speedup": round(serial["seconds"] / verify["seconds"], 2),
            "verify_peak_mb": verify["peak_mb"], "verify_total_peak_mb": verify["total_peak_mb"],
            "one_process_peak_mb": serial["peak_mb"], "floor_peak_mb": fast["peak_mb"],
            "rfc8785_floor_peak_mb": slow["peak_mb"]}


def p3c(url: str, folder: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for fmt in ("jsonl", "ocsf", "csv"):
        out = folder / f"export.{fmt}"
        done = measure(fmt, url, out)
        out.unlink(missing_ok=True)
        rate = done["count"] / done["seconds"]
        figures[fmt] = {"seconds": round(done["seconds"], 3), "entries_per_s": round(rate),
                        "peak_mb": done["peak_mb"], "total_peak_mb": done["total_peak_mb"],
                        "workers": done["workers"]}
        log(f"  P3c {fmt}: {rate:,.0f} entries/s, peak {done['peak_mb']} MB, with workers"
            f" {done['total_peak_mb']} MB")
    return figures


def p3d(db: Database, count: int, folder: Path) -> dict[str, Any]:
    """verify --since-checkpoint with a checkpoint signed AFTER_CHECKPOINT entries before the
    head: the first call in a fresh process (a subprocess) and the median of 20 in this one."""
    from audit.checkpoint import generate_keypair, sign_checkpoint

    seq = max(1, count - AFTER_CHECKPOINT)
    with _raw(db) as conn:
        log_id = conn.execute("SELECT log_id FROM audit_head WHERE id = 1").fetchone()[0]
        hash_ = conn.execute("SELECT hash FROM audit_entry WHERE seq = "
                             + ("?" if db.dialect == "sqlite" else "%s"), (seq,)).fetchone()[0]
    key, public = generate_keypair(folder / f"p3d-{db.dialect}.key")
    document = sign_checkpoint(key, log_id=log_id, seq=seq, hash=hash_,
                               signed_at=dt.datetime.now(dt.UTC).isoformat())
    checkpoint = folder / f"p3d-{db.dialect}.json"
    checkpoint.write_text(json.dumps(document))
    first = measure("since", db.url, checkpoint)
    service = AuditService(Database(db.url))
    times = []
    for _ in range(21):
        began = time.perf_counter()
        result = service.verify(since_checkpoint=checkpoint, public_key=public)
        times.append((time.perf_counter() - began) * 1000)
    service.close()
    assert result["entries"] == count - seq, result
    times = sorted(times[1:])
    figures = {"after_checkpoint": count - seq, "first_call_ms": round(first["seconds"] * 1000, 2),
               "median_ms": round(statistics.median(times), 2), "max_ms": round(times[-1], 2)}
    log(f"  P3d since-checkpoint ({count - seq} entries after): first call"
        f" {figures['first_call_ms']} ms, median {figures['median_ms']} ms,"
        f" max {figures['max_ms']} ms")
    return figures


# driver --------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, folder: Path) -> Iterator[Database]:
    if backend == "sqlite":
        db = Database(f"sqlite:///{folder / 'audit.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    import psycopg

    base = _libpq(os.environ[POSTGRES_ENV])
    schema = f"relink_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in base else "?"
    db = Database(f"{base}{joiner}options=-csearch_path%3D{schema}")
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(backend: str, count: int, queries: int, folder: Path) -> dict[str, Any]:
    log(f"{backend}: building {count:,} entries")
    with database(backend, folder) as db:
        seconds = build(db, count)
        log(f"  built in {seconds:.1f} s")
        figures: dict[str, Any] = {"build_s": round(seconds, 1)}
        figures["p3a"] = p3a(db, count, queries)
        figures["p3b"] = p3b(db.url)
        figures["p3c"] = p3c(db.url, folder)
        figures["p3d"] = p3d(db, count, folder)
    b, c, d = figures["p3b"], figures["p3c"], figures["p3d"]
    figures["ok"] = {
        "p3a": all(v["p95_ms"] <= TARGETS["p3a_p95_ms"] for v in figures["p3a"].values()),
        "p3b": b["speedup_vs_rfc8785"] >= TARGETS["p3b_speedup_vs_rfc8785"]
        and b["ratio"] <= TARGETS["p3b_ratio"]
        and b["verify_total_peak_mb"] <= TARGETS["p3b_peak_mb"],
        "p3c": c["jsonl"]["entries_per_s"] >= TARGETS["p3c_jsonl_entries_per_s"]
        and c["ocsf"]["entries_per_s"] >= TARGETS["p3c_ocsf_entries_per_s"]
        and max(c[fmt]["total_peak_mb"] for fmt in c) <= TARGETS["p3c_peak_mb"],
        "p3d": max(d["first_call_ms"], d["median_ms"]) <= TARGETS["p3d_ms"],
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100, help="queries per P3a filter")
    parser.add_argument("--backend", choices=("all", "sqlite", "postgresql"), default="all")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.out)
        return
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    if not os.environ.get(POSTGRES_ENV) and "postgresql" in backends:
        if args.backend == "postgresql":
            raise SystemExit(f"{POSTGRES_ENV} is not set")
        backends.remove("postgresql")
    folder = Path(tempfile.mkdtemp(prefix="relink-bench-"))
    try:
        results = {backend: run(backend, args.entries, args.queries, folder)
                   for backend in backends}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({
        "bench": "audit_scale", "entries": args.entries, "queries": args.queries,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "targets": TARGETS, "backends": results,
    }))


if __name__ == "__main__":
    main()
