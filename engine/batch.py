"""Batch corrections: the use cases of many corrections at once (and plans, :mod:`engine.plan`).

A batch is a persisted, audited record: its subjects (given by id or by number, from a file, or
found by a query) as items in order, each driven by a correction of its own through the
service's use cases. ``run`` drives every item toward a state (or ``advance`` runs one step on
each), ``concurrency`` at a time, and may be run again — after Ctrl-C, a crash, or by several
workers at once — to continue where the batch stands.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine import entries, finding
from engine.batch_store import (
    DONE,
    FAILED,
    FINISHED,
    OPEN,
    OPEN_STATUSES,
    PENDING,
    STOPPED,
    Batch,
    BatchStore,
    Item,
)
from engine.batch_view import batch_view, correction_states, item_view
from engine.drive import Driver, Goal, default_goal_state
from engine.errors import UsageError
from engine.lease import Owner, format_time
from engine.worker import Tally, Worker
from workflows.unlinking import Waiter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from engine.service import CorrectionService, Linked

PERMISSIONS_MAX_AGE = 600.0  # a batch reads identity and permissions again after this long
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 32
Emit = Callable[[dict[str, Any]], None]


class Row(BaseModel):
    """One row of a batch file: a subject by ``id`` or by ``number``, its project, why, and the
    data of its step taking data (e.g. the corrected fields to re-enter)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: int | None = Field(default=None, ge=1, lt=2**53)
    number: str | None = Field(default=None, min_length=1, max_length=255)
    project: int = Field(ge=1, lt=2**53)
    reason: str | None = Field(default=None, max_length=10_000)
    data: dict[str, Any] | None = None


def parse_rows(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> list[tuple[int, Row]]:
    """Rows as the file gave them (with their line numbers), checked: exit 2 naming the first
    bad row and field."""
    parsed = []
    for line, raw in rows:
        try:
            row = Row.model_validate(dict(raw))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "row"
            raise UsageError(f"row {line}: {where}: {error['msg']}") from None
        if (row.id is None) == (row.number is None):
            raise UsageError(f"row {line}: give the subject's id or its number (one of them)")
        parsed.append((line, row))
    if not parsed:
        raise UsageError("the batch file has no rows")
    return parsed


class BatchService:
    """Batches of one workflow, through one :class:`CorrectionService` (one identity and one
    set of remote clients for all its corrections)."""

    def __init__(self, service: CorrectionService) -> None:
        self.service = service
        self.store = BatchStore()

    def close(self) -> None:
        self.service.close()

    # creating --------------------------------------------------------------------------------

    def create(
        self, rows: Sequence[tuple[int, Mapping[str, Any]]], *, reason: str | None,
        as_is: bool = False, source: str = "file",
    ) -> dict[str, Any]:
        """A batch of the rows' subjects; numbers are resolved in Procore (a number matching no
        subject or several is refused, audited, and its item stopped; the others go on)."""
        parsed = parse_rows(rows)
        definition = self.service.definition
        for line, row in parsed:
            if not (row.reason or reason or "").strip():
                raise UsageError(f"row {line}: no reason (a reason column, or --reason)")
            if row.data is not None:
                row.data = checked_data(self.service, line, row.data)
        self.connect()
        numbers = self._numbers([row for _, row in parsed if row.number is not None])
        items: list[dict[str, Any]] = []
        refused: list[tuple[Row, list[Any], str]] = []
        seen: dict[str, int] = {}
        for position, (line, row) in enumerate(parsed, 1):
            item: dict[str, Any] = {"position": position, "project_id": row.project,
                                    "label": row.number,
                    "reason": (row.reason or reason or "").strip(), "data": row.data,
                    "status": PENDING, "subject_id": None if row.id is None else str(row.id)}
            if row.number is not None:
                matches = numbers[(row.project, row.number)]
                if len(matches) == 1:
                    item["subject_id"] = matches[0].id
                else:
                    message = finding.number_refusal(self.service, row.number, row.project,
                                                     matches)
                    refused.append((row, matches, message))
                    item |= {"status": STOPPED, "outcome": "refused", "message": message}
            subject = item["subject_id"]
            if subject is not None and subject in seen:
                item |= {"status": STOPPED, "outcome": "refused",
                         "message": f"Refused: {definition.subject.noun} {subject} is already"
                         f" row {seen[subject]} of this batch."}
            elif subject is not None:
                seen[subject] = line
            items.append(item)
        return self.insert("batch", items, reason=reason, options={"as_is": as_is,
                            "source": source}, refused=refused)

    def create_from_query(
        self, project_id: int, filters: Mapping[str, Any], *, reason: str,
        as_is: bool = False,
    ) -> dict[str, Any]:
        """A batch of the subjects of ``project_id`` matching ``filters`` (the workflow's
        search), in Procore's order."""
        if not reason.strip():
            raise UsageError("--reason must not be empty")
        self.connect()
        found = finding.search(self.service, project_id, filters)
        if not found:
            noun = self.service.definition.subject.noun
            raise UsageError(f"no {noun} of project {project_id} matches; no batch created")
        items = [
            {"position": position, "project_id": item.project_id, "label": item.number,
             "reason": reason.strip(), "data": None, "status": PENDING, "subject_id": item.id}
            for position, item in enumerate(found, 1)
        ]
        query = {"project": project_id, **{k: v for k, v in filters.items() if v is not None}}
        return self.insert("batch", items, reason=reason,
                            options={"as_is": as_is, "source": "query", "query": query})

    def insert(
        self, kind: str, items: list[dict[str, Any]], *, reason: str | None,
        options: dict[str, Any], refused: Sequence[tuple[Row, list[Any], str]] = (),
        subject_id: str | None = None, evidence: dict[str, Any] | None = None,
        message: Callable[[int], str] | None = None,
    ) -> dict[str, Any]:
        service = self.service
        now = format_time(dt.datetime.now(dt.UTC))
        projects = {item["project_id"] for item in items}
        actor = service.permissions.actor()
        batch: dict[str, Any] = {
            "kind": kind, "workflow": service.definition.name,
            "company_id": service.remotes.procore.company_id,
            "project_id": projects.pop() if len(projects) == 1 else None,
            "subject_id": subject_id, "status": OPEN, "reason": reason, "options": options,
            "created_by": actor.login, "created_at": now, "updated_at": now,
        }
        noun = service.definition.subject.noun
        with service.db.write() as conn:
            batch_id = self.store.insert(conn, batch, items)
            for row, matches, said in refused:
                finding.number_entry(service, conn, str(row.number), row.project, matches,
                                     row.reason or reason, said, batch=batch_id)
            stopped = sum(item["status"] == STOPPED for item in items)
            told = (message(batch_id) if message is not None else
                    f"Batch {batch_id}: {len(items)} {noun}s, {len(items) - stopped} to correct"
                    + (f", {stopped} refused" if stopped else "") + ".")
            entries.append(
                service, conn, action=entries.PLAN_START if kind == "plan"
                else entries.BATCH_START, outcome="succeeded", message=told,
                subject_type=kind, subject_id=str(batch_id), project_id=batch["project_id"],
                reason=reason, to_state=OPEN,
                evidence={"batch": batch_id, "options": options, "items": [
                    {"position": item["position"], "subject_id": item["subject_id"],
                     "label": item["label"], "status": item["status"],
                     **({"role": item["role"]} if item.get("role") else {})}
                    for item in items
                ], **(evidence or {})},
            )
        return self.show(batch_id)

    def _numbers(self, rows: list[Row]) -> dict[tuple[int, str], list[Any]]:
        """(project, number) -> the subjects numbered so: one listing of each project (every
        page) when several numbers are wanted there, else one search per number."""
        wanted: dict[int, set[str]] = {}
        for row in rows:
            wanted.setdefault(row.project, set()).add(str(row.number))
        found: dict[tuple[int, str], list[Any]] = {}
        for project, numbers in wanted.items():
            if len(numbers) > 2:
                listed = finding.search(self.service, project, {})
                for number in numbers:
                    found[(project, number)] = [f for f in listed if f.number == number]
            else:
                for number in numbers:
                    found[(project, number)] = finding.search(self.service, project,
                                                              {"number": number})
        return found

    def connect(self) -> None:
        """The remotes, and the ERP checked configured, before anything is read or written; the
        operator read once (again after PERMISSIONS_MAX_AGE)."""
        remotes = self.service.remotes
        remotes.erp  # noqa: B018  (no ERP configured: a usage error now, not per correction)
        self.service.permissions.max_age = PERMISSIONS_MAX_AGE
        self.service.permissions.actor()

    # reading ---------------------------------------------------------------------------------

    def load(self, batch_id: int) -> Batch:
        with self.service.db.read(single=True) as conn:
            batch = self.store.get(conn, batch_id)
        if batch is None:
            raise UsageError(f"no batch with id {batch_id}")
        return batch

    def show(self, batch_id: int) -> dict[str, Any]:
        """The batch, each item with its correction's state now, and counts by status."""
        batch = self.load(batch_id)
        with self.service.db.read() as conn:
            items = self.store.items(conn, batch_id)
            states = correction_states(conn, [i.workflow_id for i in items if i.workflow_id])
        shown = [item_view(item, states.get(item.workflow_id or 0)) for item in items]
        return {
            "batch": batch_view(batch),
            "items": shown,
            "counts": dict(Counter(item["status"] for item in shown)),
            "states": dict(Counter(item["state"] for item in shown if item["state"])),
        }

    # running ---------------------------------------------------------------------------------

    def run(
        self, batch_id: int, *, until: str | None = None, step: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY, emit: Emit | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, Any]:
        """Drive the batch's items toward ``until`` (default: the workflow's goal, e.g.
        Reentered), or run ``step`` on each that allows it; a plan runs in its own order."""
        batch = self.load(batch_id)
        self._same_workflow(batch)
        stop = stop or threading.Event()
        self.service.waiter = _stoppable(stop, emit or _ignore)
        if batch.kind == "plan":
            if step is not None:
                raise UsageError(f"batch {batch_id} is a plan: it runs in its order (`relink"
                                 f" batch run {batch_id}`), not a step at a time")
            from engine.plan import run_plan

            return run_plan(self, batch, emit=emit or _ignore, stop=stop)
        definition = self.service.definition
        if until is not None and until not in {str(s) for s in definition.states}:
            raise UsageError(f"unknown state {until!r} for {definition.name}")
        if step is not None and step != "start" and definition.step(step) is None:
            raise UsageError(f"unknown step {step!r} for {definition.name}")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
        goal = Goal(until=None if step else (until or default_goal_state(definition)),
                    step=step, as_is=bool(batch.options.get("as_is")))
        self.connect()
        total = self._reopen(batch, goal)
        tally = Tally(total=total)

        def emitted(event: dict[str, Any]) -> None:
            if event["event"] == "step":
                tally.attempt(str(event["outcome"]))
            (emit or _ignore)(event | {"progress": tally.snapshot(
                self.service.remotes.rate_budget())})

        driver = Driver(self.service, goal, emitted, stop, link=lambda item: self.link(batch,
                                                                                      item))
        owner = Owner.here(self.service.permissions.actor().login)
        worker = Worker(self.service, self.store, batch, driver, concurrency=concurrency,
                        owner=owner, tally=tally)
        worker.run()
        return self._ran(batch, goal, tally, interrupted=worker.interrupted)

    def _ran(self, batch: Batch, goal: Goal, tally: Tally, *, interrupted: bool) -> dict[str, Any]:
        """Audit the run (and the batch finished when every item is settled); its summary."""
        shown = self.show(batch.id)
        counts = shown["counts"]
        settled = all(item["status"] in (DONE, STOPPED) or item["final"]
                      for item in shown["items"])
        status = FINISHED if settled and goal.step is None else OPEN
        left = counts.get(PENDING, 0) + counts.get(FAILED, 0)
        message = (f"Batch {batch.id} ({goal.describe()}): {counts.get(DONE, 0)} done,"
                   f" {counts.get(STOPPED, 0)} stopped, {counts.get(FAILED, 0)} failed,"
                   f" {counts.get(PENDING, 0)} pending; {tally.steps} steps this run.")
        if interrupted:
            message = (f"Interrupted: {message} Run `relink batch run {batch.id}` to continue"
                       f" ({left} left).")
        with self.service.db.write() as conn:
            self.store.update_batch(conn, batch.id, {
                "status": status, "updated_at": format_time(dt.datetime.now(dt.UTC))})
            entries.append(
                self.service, conn, action=entries.BATCH_RUN,
                outcome="failed" if interrupted else "succeeded", message=message,
                subject_type="batch", subject_id=str(batch.id), project_id=batch.project_id,
                from_state=batch.status, to_state=status,
                evidence={"batch": batch.id, "goal": goal.describe(), "counts": counts,
                          "run": tally.snapshot({}), "interrupted": interrupted},
            )
        shown["batch"]["status"] = status
        return shown | {"run": tally.snapshot(self.service.remotes.rate_budget()),
                        "message": message, "interrupted": interrupted}

    def _reopen(self, batch: Batch, goal: Goal) -> int:
        """Items marked done for another goal, whose correction is not final, are open again;
        the open items counted."""
        shown = self.show(batch.id)["items"]
        again = [item["id"] for item in shown if item["status"] == DONE and not item["final"]
                 and item["state"] != goal.until]
        if again:
            with self.service.db.write() as conn:
                for item_id in again:
                    self.store.update_item(conn, item_id, {"status": PENDING})
        return sum(item["status"] in OPEN_STATUSES and item["subject_id"] is not None
                   for item in shown) + len(again)

    def link(self, batch: Batch, item: Item) -> Linked:
        """What opens an item's correction: the item names it, in the same transaction, and the
        start entry names the batch."""

        def linked(conn: Connection, workflow_id: int) -> dict[str, Any]:
            self.store.update_item(conn, item.id, {"workflow_id": workflow_id})
            return {"batch": {"id": batch.id, "kind": batch.kind, "position": item.position,
                              **({"role": item.role} if item.role else {})}}

        return linked

    def _same_workflow(self, batch: Batch) -> None:
        if batch.workflow != self.service.workflow:
            self.service.workflow = batch.workflow


def checked_data(service: CorrectionService, line: int, data: dict[str, Any]) -> dict[str, Any]:
    definition = service.definition
    if definition.data is None:
        raise UsageError(f"row {line}: {definition.name} takes no data")
    try:
        return definition.data(data)
    except ValueError as exc:
        raise UsageError(f"row {line}: invalid data: {exc}") from None


def _ignore(event: dict[str, Any]) -> None:
    pass


def _stoppable(stop: threading.Event, emit: Emit) -> Waiter:
    """How a batch waits for something outside relink (an Unlink click): it says what it waits
    for (an event: the operator is told where to click), then polls, giving up when the run is
    stopped (Ctrl-C)."""

    def wait(what: str, done: Callable[[], bool], *, every: float, limit: float) -> bool:
        deadline = time.monotonic() + limit
        emit({"event": "waiting", "at": format_time(dt.datetime.now(dt.UTC)), "message": what,
              "every": every, "limit": limit})
        if done():
            return True
        while time.monotonic() + every <= deadline:
            if stop.wait(every):
                return False
            if done():
                return True
        return False

    return wait
