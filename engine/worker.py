"""One process working on a batch: it claims items (row locks that skip what others hold, and a
lease it renews), drives each on a thread of its own, at most ``concurrency`` at once, through one
service (identity and permissions read once, one pacer per remote), and writes each item's result
as it releases it. Several processes may work on the same batch at once; each takes its share of
the remotes' rate budgets (:meth:`engine.remotes.Remotes.share_rate_budget`).

Ctrl-C stops claiming and lets the running steps end (each settles as a step does), the items
left pending for the next run; a SIGKILL leaves claims and steps that their leases release.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.batch_store import DONE, FAILED, STOPPED, Batch, BatchStore, Item
from engine.drive import DEFER_SECONDS, Driver, Result
from engine.lease import Owner, format_time

if TYPE_CHECKING:
    from engine.service import CorrectionService

CLAIM_SECONDS = 30.0  # an item's claim lasts this long; renewed every third of it
IDLE_SECONDS = 0.5  # how often a worker with nothing to claim looks again


@dataclass
class Tally:
    """What a run has done so far, for progress displays (shared by its threads)."""

    total: int
    started: float = field(default_factory=time.monotonic)
    statuses: Counter[str] = field(default_factory=Counter)  # items by status after this run
    outcomes: Counter[str] = field(default_factory=Counter)  # attempts by outcome
    steps: int = 0  # attempts that succeeded
    finished: int = 0  # items this run settled (done, stopped, failed)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.steps += outcome == "succeeded"

    def settled(self, status: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.finished += status in (DONE, STOPPED, FAILED)

    def snapshot(self, budget: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            elapsed = time.monotonic() - self.started
            rate = self.steps / elapsed if elapsed > 0 else 0.0
            per_item = elapsed / self.finished if self.finished else None
            left = max(0, self.total - self.finished)
            return {
                "total": self.total, "settled": self.finished, "steps": self.steps,
                "outcomes": dict(self.outcomes), "statuses": dict(self.statuses),
                "elapsed": round(elapsed, 3), "steps_per_second": round(rate, 2),
                "eta_seconds": round(per_item * left, 1) if per_item is not None else None,
                "rate_budget": budget,
            }


class Worker:
    """Works on one batch until nothing is left that it may claim."""

    def __init__(
        self, service: CorrectionService, store: BatchStore, batch: Batch, driver: Driver,
        *, concurrency: int, owner: Owner, tally: Tally,
        claim_seconds: float = CLAIM_SECONDS,
    ) -> None:
        self.service = service
        self.store = store
        self.batch = batch
        self.driver = driver
        self.concurrency = concurrency
        self.owner = owner
        self.tally = tally
        self.claim_seconds = claim_seconds
        self.workers = 1  # processes sharing the remotes' budgets, as last counted
        self.interrupted = False

    def run(self) -> None:
        self.service.remotes.share_rate_budget(lambda: self.workers)
        attempted: set[int] = set()
        running: dict[Future[Result], Item] = {}
        renewed = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.concurrency,
                                thread_name_prefix=f"relink-batch-{self.batch.id}") as pool:
            try:
                while not self.driver.stop.is_set():
                    claimed = self._claim(self.concurrency - len(running), attempted)
                    for item in claimed:
                        attempted.add(item.id)
                        running[pool.submit(self._work, item)] = item
                    if not running:
                        if not claimed and not self._held_elsewhere():
                            break
                        time.sleep(IDLE_SECONDS)
                        continue
                    done, _ = wait(running, timeout=self.claim_seconds / 3,
                                   return_when=FIRST_COMPLETED)
                    for future in done:
                        item = running.pop(future)
                        if future.result().deferred:
                            attempted.discard(item.id)  # tried again once its holder is done
                    if time.monotonic() - renewed >= self.claim_seconds / 3:
                        self._renew([item.id for item in running.values()])
                        renewed = time.monotonic()
            except KeyboardInterrupt:
                self.interrupted = True
                self.driver.stop.set()
            # the running steps end as steps do (each settles); nothing new is claimed
            wait(running)

    def _work(self, item: Item) -> Result:
        """Drive one item and write its result as the claim is given up."""
        try:
            result = self.driver.drive(item)
        except Exception as exc:  # never lose the item: it is tried again by the next run
            result = Result(FAILED, "failed", f"Unexpected error: {type(exc).__name__}: {exc}",
                            item.workflow_id, None)
        now = _now()
        values: dict[str, Any] = {
            "status": result.status, "outcome": result.outcome, "message": result.message,
            "attempts": item.attempts + 1, "updated_at": format_time(now),
        }
        if result.workflow_id is not None:
            values["workflow_id"] = result.workflow_id
        until = (format_time(now + dt.timedelta(seconds=DEFER_SECONDS))
                 if result.deferred else None)
        with self.service.db.write() as conn:
            self.store.release(conn, item.id, self.owner, values, until=until)
        if not result.deferred:
            self.tally.settled(result.status)
        self.driver.emit({
            "event": "item", "at": format_time(now), "position": item.position,
            "subject_id": item.subject_id, "label": item.label,
            "correction": result.workflow_id, "status": result.status,
            "outcome": result.outcome, "state": result.state, "message": result.message,
        })
        return result

    def _claim(self, room: int, attempted: set[int]) -> list[Item]:
        now = _now()
        with self.service.db.write() as conn:
            self.store.free_dead_claims(conn, self.owner.host, format_time(now))
            claimed = self.store.claim(
                conn, self.batch.id, self.owner, now=format_time(now),
                until=format_time(now + dt.timedelta(seconds=self.claim_seconds)),
                limit=room, skip=frozenset(attempted),
            ) if room > 0 else []
            self.workers = max(1, self.store.workers(conn, format_time(now)))
        return claimed

    def _renew(self, item_ids: list[int]) -> None:
        now = _now()
        with self.service.db.write() as conn:
            self.store.renew(conn, item_ids, self.owner,
                             format_time(now + dt.timedelta(seconds=self.claim_seconds)))
            self.workers = max(1, self.store.workers(conn, format_time(now)))

    def _held_elsewhere(self) -> bool:
        """Open items of this batch that another live worker holds (this one waits for them:
        should that worker die, their claims end and this one takes them)."""
        with self.service.db.read() as conn:
            return self.store.held_elsewhere(conn, self.batch.id, self.owner,
                                             format_time(_now())) > 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)

