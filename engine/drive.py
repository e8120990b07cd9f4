"""Driving one correction of a batch or plan toward its goal, through the service's own use cases
(``start``, ``advance``, ``resume``): every step audited as if an operator had typed it, each
correction stopped at its first refusal.

A goal is a state to reach (``until``) or one step to run. What a correction's step needs as data
comes from the item, else (``as_is``) the snapshot is written unchanged; without either the
correction stops before that step and says so.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.batch_store import DONE, FAILED, PENDING, STOPPED, Item
from engine.errors import Conflict, EngineError, Interrupted, Refused, Unavailable, UsageError
from engine.lease import Owner, lease_live
from engine.machine import machine_for
from engine.outcome import Outcome
from engine.store import Instance
from workflows.definition import WorkflowDefinition

if TYPE_CHECKING:
    from engine.service import CorrectionService, Linked

DEFER_SECONDS = 2.0  # a correction another process holds is tried again after this long


@dataclass(frozen=True, slots=True)
class Goal:
    """Drive each correction to ``until``, or run just ``step``; ``as_is``: a step taking data
    writes the snapshot unchanged for an item that carries none."""

    until: str | None = None
    step: str | None = None
    as_is: bool = False

    def describe(self) -> str:
        return f"until {self.until}" if self.until is not None else f"step {self.step}"


@dataclass(frozen=True, slots=True)
class Result:
    """Where one item ended this time: its status (batch_store), the last attempt's outcome and
    message, its correction and that correction's state."""

    status: str
    outcome: str | None
    message: str
    workflow_id: int | None
    state: str | None
    deferred: bool = False


Emit = Callable[[dict[str, Any]], None]


def path(definition: WorkflowDefinition, state: str, until: str) -> list[str] | None:
    """The steps from ``state`` to ``until``, fewest first (ties: the definition's order), never
    through a way out (abandon) or into a final state that is not ``until``; None when
    ``until`` cannot be reached."""
    if state == until:
        return []
    seen: set[str] = {state}
    queue: deque[tuple[str, list[str]]] = deque([(state, [])])
    while queue:
        here, steps = queue.popleft()
        for step in definition.steps:
            if step.way_out or here not in step.sources or step.dest in seen:
                continue
            if step.dest in definition.finals and step.dest != until:
                continue
            route = [*steps, step.name]
            if step.dest == until:
                return route
            seen.add(step.dest)
            queue.append((step.dest, route))
    return None


def default_goal_state(definition: WorkflowDefinition) -> str:
    """The final state the procedure is for: of the finals reachable without a way out, the
    one furthest from the start (Reentered, not Cancelled)."""
    reachable = [(len(route), str(final)) for final in sorted(definition.finals)
                 if (route := path(definition, definition.initial, str(final))) is not None]
    return max(reachable)[1]


@dataclass
class Driver:
    """Drives items for one batch run; shared by the run's threads (it holds no item state)."""

    service: CorrectionService
    goal: Goal
    emit: Emit
    stop: threading.Event = field(default_factory=threading.Event)
    link: Callable[[Item], Linked] | None = None

    def drive(self, item: Item) -> Result:
        """Start the item's correction if it has none, then run steps toward the goal; every
        engine error becomes the item's result (nothing escapes to stop the others)."""
        wid, state = item.workflow_id, None
        try:
            if wid is None:
                if self.goal.step not in (None, "start"):
                    return Result(PENDING, None, "Skipped: not started yet.", None, None)
                outcome = self.service.start(
                    str(item.subject_id), item.project_id, item.reason or "",
                    linked=self.link(item) if self.link is not None else None,
                )
                wid, state = outcome.id, outcome.state
                self._emitted(item, "start", outcome)
                if self.goal.step == "start":
                    return Result(PENDING, outcome.kind, outcome.message, wid, state)
            assert wid is not None
            return self._steps(item, wid)
        except Interrupted:
            raise
        except Conflict as exc:  # another process holds it: later
            self._emitted_error(item, exc, wid)
            return Result(PENDING, "refused", exc.message, wid, exc.state or state,
                          deferred=True)
        except Refused as exc:
            self._emitted_error(item, exc, wid)
            return Result(STOPPED, "refused", exc.message, wid or exc.workflow_id,
                          exc.state or state)
        except Unavailable as exc:
            self._emitted_error(item, exc, wid)
            return Result(FAILED, "failed", exc.message, wid or exc.workflow_id,
                          exc.state or state)
        except UsageError as exc:
            self._emitted_error(item, exc, wid)
            return Result(STOPPED, "refused", exc.message, wid, state)
        except EngineError as exc:  # integrity or storage: this item cannot go on
            self._emitted_error(item, exc, wid)
            return Result(FAILED, "failed", exc.message, wid, state)

    def _steps(self, item: Item, wid: int) -> Result:
        service = self.service
        last: Outcome | None = None
        while True:
            instance = self._load(wid)
            definition = service.definition_of(instance)
            if instance.in_flight_step is not None:
                if lease_live(instance, dt.datetime.now(dt.UTC)):
                    owner = Owner.of(instance)
                    held = (f"{instance.in_flight_step} is in flight, held by"
                            f" {owner.describe() if owner else 'another process'} until"
                            f" {instance.in_flight_lease_until}; tried again later.")
                    return Result(PENDING, "refused", held, wid, instance.state, deferred=True)
                last = service.resume(wid)
                self._emitted(item, "resume", last)
                continue
            step = self._next(definition, instance.state)
            if isinstance(step, Result):
                if step.status == DONE and last is not None:
                    return Result(DONE, last.kind, last.message, wid, instance.state)
                return Result(step.status, step.outcome, step.message, wid, instance.state)
            if self.stop.is_set():
                return Result(PENDING, last.kind if last else None,
                              "Interrupted before its next step.", wid, instance.state)
            takes_data = bool(getattr(definition.step(step), "needs_data", False))
            as_is = takes_data and item.data is None
            if as_is and not self.goal.as_is:
                return Result(STOPPED, "refused",
                              f"Stopped before {step}: it needs data (a data column for this"
                              " row, or --as-is to write the snapshot unchanged).",
                              wid, instance.state)
            last = service.advance(wid, step, data=item.data if takes_data else None,
                                   as_is=as_is, reason=item.reason)
            self._emitted(item, step, last)
            if self.goal.step is not None:
                return Result(PENDING, last.kind, last.message, wid, last.state)

    def _load(self, wid: int) -> Instance:
        with self.service.db.read(single=True) as conn:
            found = self.service.store.get(conn, wid)
        if found is None:
            raise UsageError(f"no correction with id {wid}")
        return found

    def _next(self, definition: WorkflowDefinition, state: str) -> str | Result:
        """The next step toward the goal, or the item's result when there is none to run."""
        if self.goal.step is not None:
            if machine_for(definition).allows(state, self.goal.step):
                return self.goal.step
            return Result(PENDING, None, f"Skipped: {self.goal.step} is not allowed in state"
                          f" {state}.", None, state)
        until = self.goal.until or default_goal_state(definition)
        if state == until:
            return Result(DONE, "succeeded", f"{until}.", None, state)
        route = path(definition, state, until)
        if not route:
            return Result(STOPPED, "refused", f"Stopped: in {state}, from which {until} cannot"
                          " be reached.", None, state)
        return route[0]

    def _emitted(self, item: Item, action: str, outcome: Outcome) -> None:
        self.emit(_event(item, action, outcome.kind, outcome.message, outcome.id, outcome.state))

    def _emitted_error(self, item: Item, exc: EngineError, wid: int | None) -> None:
        self.emit(_event(item, exc.step or "", "refused" if isinstance(exc, Refused | Conflict |
                         UsageError) else "failed", exc.message, wid or exc.workflow_id,
                         exc.state))


def _event(item: Item, action: str, outcome: str, message: str, wid: int | None,
           state: str | None) -> dict[str, Any]:
    return {
        "event": "step", "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "position": item.position, "subject_id": item.subject_id, "label": item.label,
        "correction": wid, "action": action, "outcome": outcome, "state": state,
        "message": message,
    }
