"""The floor of P2 (spec/targets.md): one engine step's transactions with the bare driver.

Each step of a correction (delete-in-erp, unlink, delete-in-procore, reenter) is written as the
engine writes it, without SQLAlchemy, an ORM or a state machine:

- tx 1: compare-and-set the workflow row into *in flight* (``... WHERE id = ? AND revision = ?``)
  and append its audit entry (read the head — ``FOR UPDATE`` on PostgreSQL —, hash the entry
  with RFC 8785 + SHA-256 chained to the head's hash, insert it, move the head; RFC 8785 bytes
  written by orjson with sorted keys, the C-backed encoder relink's appends use, checked
  against the rfc8785 package on the first correction's entries);
- tx 2: compare-and-set the row to its new state (in-flight columns cleared) and append the
  result's audit entry the same way.

SQLite is a WAL file with ``BEGIN IMMEDIATE`` transactions and the engine's pragmas; PostgreSQL
goes through psycopg 3 with its defaults (one statement per round trip). The schema is the one
relink's migrations create; the audit entries carry evidence shaped like the engine's (calls,
permissions, bill status, before/after on reenter). Corrections are seeded untimed.

    .venv/bin/python bench/floor.py                        # 500 corrections = 2,000 steps
    .venv/bin/python bench/floor.py --corrections 5        # smoke run

The figures are ONE JSON object on the last line of stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import datetime as dt
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785

from bench.backends import (
    add_backend_options,
    chosen_backends,
    emit,
    libpq,
    log,
    machine,
    temporary_database,
)

WORKFLOW = "subcontractor-invoice"
COMPANY, PROJECT, FIRST_INVOICE = 4021, 102, 9200
ACTOR = {"actor_id": 7001, "actor_login": "ana@summit.example", "actor_name": "Ana Alvarez"}
ERP_STEP = {"can_push_to_accounting": True, "commitments": ["Admin"],
            "erp_integrations": ["Standard", "Admin"]}
PERMISSIONS = {"can_push_to_accounting": True, "commitments": "Admin",
               "erp_integrations": "Admin"}
# (step, from, to, calls made, required levels)
STEPS = (
    ("delete-in-erp", "Exported", "DeletedInERP", 3, ERP_STEP),
    ("unlink", "DeletedInERP", "Unlinked", 3, ERP_STEP),
    ("delete-in-procore", "Unlinked", "DeletedInProcore", 2,
     {"can_push_to_accounting": False, "commitments": ["Admin"], "erp_integrations": []}),
    ("reenter", "DeletedInProcore", "Reentered", 2,
     {"can_push_to_accounting": False, "commitments": ["Standard", "Admin"],
      "erp_integrations": []}),
)
FIELDS = ("seq", "recorded_at", "workflow_id", "workflow", "workflow_version", "format",
          "company_id", "project_id", "subject_type", "subject_id", "invoice_id", "erp_bill_id",
          "actor_id", "actor_login", "actor_name", "action", "from_state", "to_state", "outcome",
          "message", "reason", "evidence", "prev_hash", "hash")

INSERT_WORKFLOW = (
    "INSERT INTO workflow (workflow, version, state, revision, company_id, project_id,"
    " subject_type, subject_id, open_subject_id, remote_ref, results, erp, erp_key, reason,"
    " snapshot, created_at, updated_at) VALUES (?, 1, 'Exported', 1, ?, ?, 'requisition', ?, ?,"
    " ?, '{}', 'QuickBooks Online', 'qbo', ?, ?, ?, ?)"
)
IN_FLIGHT = (
    "UPDATE workflow SET in_flight_step = ?, in_flight_to = ?, in_flight_key = ?,"
    " in_flight_since = ?, in_flight_data = ?, updated_at = ?, revision = ?"
    " WHERE id = ? AND revision = ?"
)
DONE = (
    "UPDATE workflow SET state = ?, in_flight_step = NULL, in_flight_to = NULL,"
    " in_flight_key = NULL, in_flight_since = NULL, in_flight_data = NULL, updated_at = ?,"
    " revision = ? WHERE id = ? AND revision = ?"
)
DONE_FINAL = (
    "UPDATE workflow SET state = ?, open_subject_id = NULL, results = ?,"
    " in_flight_step = NULL, in_flight_to = NULL, in_flight_key = NULL, in_flight_since = NULL,"
    " in_flight_data = NULL, updated_at = ?, revision = ? WHERE id = ? AND revision = ?"
)
HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
INSERT_ENTRY = (
    f"INSERT INTO audit_entry ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"
)
MOVE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
JCS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def snapshots(count: int) -> list[dict[str, Any]]:
    """``count`` invoice snapshots shaped like the sandbox's batch invoices."""
    from sandbox.world import SandboxWorld

    world = SandboxWorld("qbo")
    _, _, body = world.handle("GET", "/_sandbox/state/requisitions",
                              {"project_id": str(PROJECT)}, {})
    batch = [r for r in json.loads(body) if r["id"] >= FIRST_INVOICE]
    found = []
    for n in range(count):
        record = dict(batch[n % len(batch)])
        record.pop("deleted", None)
        record["id"] = FIRST_INVOICE + n
        found.append(record)
    return found


class Floor:
    """One bare connection doing the engine's transactions."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgres")
        if self.postgres:
            import psycopg

            self.conn: Any = psycopg.connect(libpq(url))
            self.sql: Callable[[str], str] = lambda s: s.replace("?", "%s")
            self.head = self.sql(HEAD) + " FOR UPDATE"
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000",
                           "foreign_keys=ON"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.sql = lambda s: s
            self.head = HEAD
        self.in_flight, self.done, self.done_final = map(self.sql, (IN_FLIGHT, DONE, DONE_FINAL))
        self.insert_entry, self.move_head = self.sql(INSERT_ENTRY), self.sql(MOVE_HEAD)

    def begin(self) -> None:
        if not self.postgres:
            self.conn.execute("BEGIN IMMEDIATE")  # psycopg opens the transaction itself

    def commit(self) -> None:
        if self.postgres:
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")

    def seed(self, records: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        now = utc_now()
        rows = []
        self.begin()
        insert = self.sql(INSERT_WORKFLOW) + " RETURNING id"
        for record in records:
            snapshot = json.dumps(record, separators=(",", ":"), sort_keys=True)
            remote_ref = json.dumps({"erp_bill_id": record["origin_id"]}, separators=(",", ":"))
            values = (WORKFLOW, COMPANY, PROJECT, str(record["id"]), str(record["id"]),
                      remote_ref, "bench", snapshot, now, now)
            rows.append((int(self.conn.execute(insert, values).fetchone()[0]), record))
        self.commit()
        return rows

    checked = 0

    def append(self, fields: dict[str, Any]) -> None:
        seq, prev = self.conn.execute(self.head).fetchone()
        entry = dict(fields, seq=seq + 1, recorded_at=utc_now(), prev_hash=prev)
        body = orjson.dumps(entry, option=JCS)
        if self.checked < 2 * len(STEPS):  # the first correction's 8 entries
            assert body == rfc8785.dumps(entry), "orjson and rfc8785 disagree"
            self.checked += 1
        digest = hashlib.sha256(body).hexdigest()
        evidence = orjson.dumps(entry["evidence"], option=JCS).decode()  # stored as JCS text
        self.conn.execute(
            self.insert_entry,
            tuple(evidence if k == "evidence" else digest if k == "hash" else entry[k]
                  for k in FIELDS),
        )
        self.conn.execute(self.move_head, (seq + 1, digest))

    def correct(self, wid: int, record: dict[str, Any]) -> int:
        """The four durable steps of one correction; returns the transactions committed."""
        revision = 1
        bill = record["origin_id"]
        subject = {"workflow_id": wid, "workflow": WORKFLOW, "workflow_version": 1, "format": 2,
                   "company_id": COMPANY, "project_id": PROJECT, "subject_type": "requisition",
                   "subject_id": str(record["id"]), "invoice_id": record["id"],
                   "erp_bill_id": bill, "reason": None, **ACTOR}
        for action, source, target, calls, required in STEPS:
            key, since = uuid.uuid4().hex, utc_now()
            data = {"invoice_number": f"{record['invoice_number']}-C"} if action == "reenter" \
                else None
            self.begin()
            moved = self.conn.execute(self.in_flight, (
                action, target, key, since,
                None if data is None else json.dumps(data, separators=(",", ":"),
                                                     sort_keys=True),
                since, revision + 1, wid, revision)).rowcount
            assert moved == 1, "compare-and-set failed"
            self.append(subject | {
                "action": action, "from_state": source, "to_state": source,
                "outcome": "in_flight", "message": f"{action} in flight.",
                "evidence": {"calls": [], "idempotency_key": key, "permissions": PERMISSIONS,
                             "required": required}})
            self.commit()
            revision += 1

            evidence: dict[str, Any] = {
                "calls": [{"system": "procore", "method": "GET",
                           "path": f"/rest/v1.1/requisitions/{record['id']}?project_id=102",
                           "status": 200, "request_id": f"sandbox-{n:08d}"}
                          for n in range(calls)],
                "idempotency_key": key, "permissions": PERMISSIONS, "required": required,
                "erp_bill": {"id": bill, "status": "gone"},
            }
            self.begin()
            if action == "reenter":
                after = dict(record, id=record["id"] + 1_000_000, origin_id=None,
                             invoice_number=data["invoice_number"] if data else None)
                evidence |= {"before": record, "after": after, "corrected": data}
                results = {"new_invoice_id": after["id"], "after": after}
                moved = self.conn.execute(self.done_final, (
                    target, json.dumps(results, separators=(",", ":"), sort_keys=True),
                    utc_now(), revision + 1, wid, revision)).rowcount
            else:
                moved = self.conn.execute(
                    self.done, (target, utc_now(), revision + 1, wid, revision)).rowcount
            assert moved == 1, "compare-and-set failed"
            self.append(subject | {
                "action": action, "from_state": source, "to_state": target,
                "outcome": "succeeded", "message": f"{action}: {source} → {target}.",
                "evidence": evidence})
            self.commit()
            revision += 1
        return 2 * len(STEPS)

    def close(self) -> None:
        self.conn.close()


def run_floor(url: str, corrections: int) -> dict[str, Any]:
    """Seed ``corrections`` workflows (untimed), then time their steps."""
    floor = Floor(url)
    try:
        rows = floor.seed(snapshots(corrections))
        started = time.perf_counter()
        transactions = sum(floor.correct(wid, record) for wid, record in rows)
        seconds = time.perf_counter() - started
    finally:
        floor.close()
    steps = corrections * len(STEPS)
    return {"steps": steps, "transactions": transactions, "seconds": round(seconds, 4),
            "steps_per_s": round(steps / seconds, 1),
            "transactions_per_s": round(transactions / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrections", type=int, default=500,
                        help="corrections to drive through their 4 durable steps")
    parser.add_argument("--rounds", type=int, default=3, help="repeat, keep the best round")
    add_backend_options(parser)
    args = parser.parse_args()
    figures: dict[str, Any] = {"bench": "floor", "corrections": args.corrections,
                               "rounds": args.rounds, "machine": machine(), "backends": {}}
    for backend in chosen_backends(args):
        best: dict[str, Any] | None = None
        for n in range(args.rounds):
            with temporary_database(backend, args.postgres) as url:
                result = run_floor(url, args.corrections)
            log(f"floor {backend} round {n + 1}: {result['steps_per_s']} steps/s")
            if best is None or result["steps_per_s"] > best["steps_per_s"]:
                best = result
        figures["backends"][backend] = best
    emit(figures)


if __name__ == "__main__":
    main()
