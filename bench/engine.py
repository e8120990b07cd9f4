"""P2 of spec/targets.md: steps per second through relink's service layer, against the floor.

For each backend, rounds alternate between the floor (``bench/floor.py``: the same transactions
with the bare driver) and the engine: ``CorrectionService.advance`` driving each correction
through its four durable steps (delete-in-erp, unlink, delete-in-procore, reenter), every one
being tx 1 (in flight + audit entry), the remote calls, tx 2 (result + audit entry). Remote calls
are answered in-process with no latency:

- ``--remotes fake`` (default): in-process fakes of ``ProcoreAPI``/``ERPConnector``
  (``bench/fakes.py``), so what is timed is the engine;
- ``--remotes http``: relink's real HTTP clients over ``in_process_transport(SandboxWorld)``
  (httpx and the sandbox's handlers included; at most 200 corrections, the seed's batch).

Corrections are started untimed; the audit chain is verified (untimed) after each engine round.
The ratio is the best engine round over the best floor round; targets: ≥ 0.5 on PostgreSQL,
≥ 0.25 on SQLite.

    .venv/bin/python bench/engine.py                       # 500 corrections, 3 rounds
    .venv/bin/python bench/engine.py --corrections 5 --rounds 1   # smoke run

The figures are ONE JSON object on the last line of stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import statistics
import time
from typing import Any

from bench.backends import (
    add_backend_options,
    chosen_backends,
    emit,
    log,
    machine,
    temporary_database,
)
from bench.fakes import PROJECT, FakeERP, FakeProcore, FakeWorld
from bench.floor import run_floor

TARGETS = {"sqlite": 0.25, "postgresql": 0.5}
STEPS = ("delete-in-erp", "unlink", "delete-in-procore", "reenter")
SANDBOX_BATCH = 200


def remotes_factory(mode: str, corrections: int) -> Any:
    from engine.remotes import Remotes
    from workflows.unlinking import Unlinking

    if mode == "fake":
        world = FakeWorld.seeded(corrections)
        def faked() -> Remotes:
            procore = FakeProcore(world)
            return Remotes(procore, FakeERP(world),
                           unlinking=Unlinking(mode="integrator", integrator=procore))

        return faked
    from integrations.factory import connect
    from integrations.procore import ProcoreClient
    from sandbox.seed import ERP_TOKEN, SERVICE_ACCOUNT
    from sandbox.transport import in_process_transport
    from sandbox.world import SandboxWorld

    sandbox = SandboxWorld("qbo")

    def connected() -> Remotes:
        transport = in_process_transport(sandbox)
        procore, erp = connect(
            procore_url="http://sandbox.invalid", token="sandbox-ana", company_id=4021,
            erp_product="qbo", erp_url="http://sandbox.invalid/erp", erp_token=ERP_TOKEN,
            erp_company=sandbox.erp_company, transport=transport,
        )
        service = ProcoreClient("http://sandbox.invalid", SERVICE_ACCOUNT.token, 4021,
                                transport=transport)
        return Remotes(procore, erp,
                       unlinking=Unlinking(mode="integrator", integrator=service))

    return connected


def run_engine(url: str, corrections: int, mode: str) -> dict[str, Any]:
    """Start ``corrections`` (untimed), then time their durable steps through the service."""
    from engine.db import Database
    from engine.reviews import AuditService
    from engine.service import CorrectionService

    service = CorrectionService(
        Database(url), remotes_factory(mode, corrections), workflow="subcontractor-invoice"
    )
    try:
        ids = [service.start(str(9200 + n), PROJECT, "bench").id for n in range(corrections)]
        started = time.perf_counter()
        for wid in ids:
            for step in STEPS:
                data = {"invoice_number": f"C-{wid}"} if step == "reenter" else None
                result = service.advance(wid, step, data=data)
                assert result.kind == "succeeded", result
        seconds = time.perf_counter() - started
        assert result.state == "Reentered", result
    finally:
        service.close()
    audit = AuditService(Database(url))
    try:
        verified = audit.verify()
    finally:
        audit.close()
    steps = corrections * len(STEPS)
    return {"steps": steps, "seconds": round(seconds, 4),
            "steps_per_s": round(steps / seconds, 1),
            "audit_entries": verified["entries"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrections", type=int, default=500,
                        help="corrections to drive through their 4 durable steps per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="floor/engine round pairs per backend; the best of each counts")
    parser.add_argument("--remotes", choices=("fake", "http"), default="fake")
    add_backend_options(parser)
    args = parser.parse_args()
    corrections = args.corrections
    if args.remotes == "http":
        corrections = min(corrections, SANDBOX_BATCH)
    figures: dict[str, Any] = {"bench": "engine", "corrections": corrections,
                               "rounds": args.rounds, "remotes": args.remotes,
                               "machine": machine(), "backends": {}, "ok": {}}
    for backend in chosen_backends(args):
        floors, engines = [], []
        for n in range(args.rounds):
            with temporary_database(backend, args.postgres) as url:
                floors.append(run_floor(url, corrections))
            with temporary_database(backend, args.postgres) as url:
                engines.append(run_engine(url, corrections, args.remotes))
            log(f"{backend} round {n + 1}: floor {floors[-1]['steps_per_s']} steps/s,"
                f" engine {engines[-1]['steps_per_s']} steps/s")
        floor = max(floors, key=lambda r: r["steps_per_s"])
        engine = max(engines, key=lambda r: r["steps_per_s"])
        ratio = engine["steps_per_s"] / floor["steps_per_s"]
        paired = [e["steps_per_s"] / f["steps_per_s"] for f, e in zip(floors, engines,
                                                                          strict=True)]
        figures["backends"][backend] = {
            "floor": floor, "engine": engine, "ratio": round(ratio, 3),
            "median_paired_ratio": round(statistics.median(paired), 3),
            "target": TARGETS[backend],
        }
        figures["ok"][backend] = ratio >= TARGETS[backend]
    emit(figures)


if __name__ == "__main__":
    main()
