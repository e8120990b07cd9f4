"""Plans: correcting a subject that others stand in front of (Procore deletes only the most
recent of some subjects). The workflow's ``Subject.blocking`` names them, most recent first;
the plan unwinds each in that order (up to the step taking data: deleted everywhere, not yet
re-entered), corrects the target with the operator's data, then re-enters the unwound ones,
oldest first, exactly as they were (their snapshots, as is).

A plan is a batch of kind ``plan``: its children are corrections of their own, each started by
the plan (its start entry names the plan), run one after the other by one process holding the
plan under a lease. A refusal in any child stops the plan where it stands, audited; `relink batch
run PLAN` continues from there. The plan finishes only when every child has reached the
workflow's goal: the parent can't finish while a child is open.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine import entries, finding
from engine.batch_store import DONE, FINISHED, PAUSED, PENDING, STOPPED, Batch, Item
from engine.drive import Driver, Goal, default_goal_state, path
from engine.errors import Conflict, EngineError, Interrupted, UsageError
from engine.lease import Owner, format_time
from engine.worker import CLAIM_SECONDS, Tally

if TYPE_CHECKING:
    from engine.batch import BatchService

Emit = Callable[[dict[str, Any]], None]
UNWIND, TARGET, REENTER = "unwind", "target", "reenter"


def stages(batches: BatchService) -> tuple[str, str, str]:
    """The workflow's goal, the state a blocking subject is unwound to (where the step taking
    data leaves from), and that step's name."""
    definition = batches.service.definition
    goal = default_goal_state(definition)
    route = path(definition, definition.initial, goal) or []
    data_steps = [name for name in route if (step := definition.step(name)) and step.needs_data]
    if not data_steps:
        raise UsageError(f"{definition.name} has no step taking data: nothing to re-enter")
    data_step = definition.step(data_steps[0])
    assert data_step is not None
    return goal, data_step.sources[0], data_step.name


def preview(batches: BatchService, subject_id: str, project_id: int) -> dict[str, Any]:
    """The plan for correcting ``subject_id``, read from Procore; nothing is written."""
    service = batches.service
    definition = service.definition
    if definition.subject.blocking is None:
        raise UsageError(f"{definition.name} has no cascade: its subjects block none")
    batches.connect()
    goal, unwound, data_step = stages(batches)
    with finding.remote_reads():
        target, blocking = definition.subject.blocking(
            finding.context(service, project_id, subject_id))
    noun = definition.subject.noun
    first = path(definition, definition.initial, unwound) or []
    rest = path(definition, unwound, goal) or []
    operations = [
        {"order": n, "role": UNWIND, "subject_id": found.id, "label": found.number,
         "steps": first, "until": unwound}
        for n, found in enumerate(blocking, 1)
    ]
    operations.append({"order": len(operations) + 1, "role": TARGET, "subject_id": target.id,
                       "label": target.number, "steps": [*first, *rest], "until": goal})
    operations += [
        {"order": len(operations) + n, "role": REENTER, "subject_id": found.id,
         "label": found.number, "steps": [f"{name} (as is)" if name == data_step else name
                                          for name in rest], "until": goal}
        for n, found in enumerate(reversed(blocking), 1)
    ]
    return {
        "target": {"id": target.id, "label": target.number, "project_id": project_id},
        "unwind": [{"id": found.id, "label": found.number} for found in blocking],
        "noun": noun, "operations": operations, "unwound_state": unwound, "goal": goal,
        "data_step": data_step,
    }


def create(
    batches: BatchService, subject_id: str, project_id: int, *, reason: str,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    """Record the plan (audited, with its operations) after reading it again from Procore."""
    if not reason.strip():
        raise UsageError("--reason must not be empty")
    plan = preview(batches, subject_id, project_id)
    if data is not None:
        from engine.batch import checked_data

        data = checked_data(batches.service, 0, data)
    items = [
        {"position": n, "project_id": project_id, "subject_id": item["id"],
         "label": item["label"], "role": UNWIND, "reason": reason.strip(), "data": None,
         "status": PENDING}
        for n, item in enumerate(plan["unwind"], 1)
    ]
    items.append({"position": len(items) + 1, "project_id": project_id,
                  "subject_id": plan["target"]["id"], "label": plan["target"]["label"],
                  "role": TARGET, "reason": reason.strip(), "data": data, "status": PENDING})
    noun = plan["noun"]
    unwinding = ", ".join(item["id"] for item in plan["unwind"]) or "none"

    def told(batch_id: int) -> str:
        return (f"Plan {batch_id}: correct {noun} {subject_id}; unwind {unwinding} first"
                " (newest first), re-enter them as they were after it (oldest first).")

    return batches.insert(
        "plan", items, reason=reason, subject_id=subject_id,
        options={"unwound_state": plan["unwound_state"], "goal": plan["goal"]},
        evidence={"plan": plan["operations"]}, message=told,
    )


def run_plan(batches: BatchService, batch: Batch, *, emit: Emit,
             stop: threading.Event | None) -> dict[str, Any]:
    """Run the plan's operations in order, from where it stands; the first refusal (or remote
    failure) stops it, audited."""
    service, store = batches.service, batches.store
    batches.connect()
    owner = Owner.here(service.permissions.actor().login)
    now = dt.datetime.now(dt.UTC)
    with service.db.write() as conn:
        store.free_dead_claims(conn, owner.host, format_time(now))
        current = store.get(conn, batch.id)
        assert current is not None
        held = store.claim_batch(
            conn, current, owner, now=format_time(now),
            until=format_time(now + dt.timedelta(seconds=CLAIM_SECONDS)))
    if held is None:
        raise Conflict(f"Conflict: plan {batch.id} is being run by {current.claimed_by} on"
                       f" {current.claimed_host} (pid {current.claimed_pid}) until"
                       f" {current.claimed_until}.")
    with service.db.read() as conn:
        items = store.items(conn, batch.id)
    goal_state = str(batch.options.get("goal") or default_goal_state(service.definition))
    unwound = str(batch.options["unwound_state"])
    unwinds = [item for item in items if item.role == UNWIND]
    operations = [(item, Goal(until=unwound)) for item in unwinds]
    operations += [(item, Goal(until=goal_state)) for item in items if item.role == TARGET]
    operations += [(item, Goal(until=goal_state, as_is=True)) for item in reversed(unwinds)]
    tally = Tally(total=len(operations))

    def emitted(event: dict[str, Any]) -> None:
        if event["event"] == "step":
            tally.attempt(str(event["outcome"]))
        emit(event | {"progress": tally.snapshot(service.remotes.rate_budget())})

    stopped_by: tuple[Item, str, str] | None = None
    interrupted = False
    running: Item | None = None
    beating = threading.Event()
    heart = threading.Thread(target=_heartbeat, args=(batches, batch.id, owner, beating),
                             name=f"relink-plan-{batch.id}", daemon=True)
    heart.start()
    try:
        for running, goal in operations:
            done = _run_one(batches, batch, owner, running, goal, emitted, stop, goal_state)
            tally.settled(DONE if done is None else STOPPED)
            if done is not None:
                stopped_by = (running, *done)
                break
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
    except (Interrupted, KeyboardInterrupt) as exc:
        interrupted = True
        said = exc.message if isinstance(exc, Interrupted) else "Interrupted."
        if running is not None:
            stopped_by = (running, "failed", said)
    finally:
        beating.set()
        heart.join()
    return _close(batches, batch, owner, tally, stopped_by, interrupted, goal_state)


def _heartbeat(batches: BatchService, batch_id: int, owner: Owner, done: threading.Event) -> None:
    """Renew the plan's lease every third of it while its runner works (a child's step may
    wait long, for an Unlink click)."""
    while not done.wait(CLAIM_SECONDS / 3):
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=CLAIM_SECONDS)
        try:
            with batches.service.db.write() as conn:
                batches.store.renew_batch(conn, batch_id, owner, format_time(until))
        except EngineError:  # busy: the next beat renews it
            continue


def _run_one(batches: BatchService, batch: Batch, owner: Owner, item: Item, goal: Goal,
             emit: Emit, stop: threading.Event | None,
             goal_state: str) -> tuple[str, str] | None:
    """Drive one child for one operation (skipped when it is already there); None when it got
    there, else (outcome, message) of what stopped it."""
    service, store = batches.service, batches.store
    with service.db.read() as conn:
        item = store.item(conn, item.id)
    if item.workflow_id is not None:
        with service.db.read(single=True) as conn:
            instance = service.store.get(conn, item.workflow_id)
        if instance is not None and instance.in_flight_step is None and (
            instance.state == goal.until or instance.state == goal_state
        ):
            return None
    driver = Driver(service, goal, emit, stop or threading.Event(),
                    link=lambda it: batches.link(batch, it))
    result = driver.drive(item)
    finished = result.status == DONE and goal.until == goal_state
    values: dict[str, Any] = {
        "status": DONE if finished else (PENDING if result.status == DONE else result.status),
        "outcome": result.outcome, "message": result.message,
        "attempts": item.attempts + 1, "updated_at": format_time(dt.datetime.now(dt.UTC)),
    }
    if result.workflow_id is not None:
        values["workflow_id"] = result.workflow_id
    with service.db.write() as conn:
        store.update_item(conn, item.id, values)
    emit({"event": "item", "at": values["updated_at"], "position": item.position,
          "subject_id": item.subject_id, "label": item.label, "role": item.role,
          "correction": result.workflow_id, "status": values["status"],
          "outcome": result.outcome, "state": result.state, "message": result.message})
    if result.status == DONE:
        return None
    return (result.outcome or "failed", result.message)


def _close(batches: BatchService, batch: Batch, owner: Owner, tally: Tally,
           stopped_by: tuple[Item, str, str] | None, interrupted: bool,
           goal_state: str) -> dict[str, Any]:
    """Audit where the plan stands; it finishes only when every child reached the goal."""
    service, store = batches.service, batches.store
    shown = batches.show(batch.id)
    open_children = [item for item in shown["items"] if item["state"] != goal_state]
    if stopped_by is None and not open_children:
        status, outcome = FINISHED, "succeeded"
        message = (f"Plan {batch.id} finished: {len(shown['items'])} corrections, each at"
                   f" {goal_state}.")
    else:
        status = PAUSED
        if stopped_by is not None:
            item, outcome, said = stopped_by
            who = f"{service.definition.subject.noun} {item.subject_id}"
            where = f"correction {item.workflow_id}" if item.workflow_id else "its correction"
            message = (f"Plan {batch.id} stopped at {who} ({item.role}, {where}): {said}"
                       f" When it is fixed, `relink batch run {batch.id}` continues the plan.")
        else:  # pragma: no cover - every operation ran, yet a child is not at the goal
            outcome = "refused"
            message = (f"Plan {batch.id} cannot finish while a child is open:"
                       f" {', '.join(str(i['correction']) for i in open_children)}.")
        if interrupted:
            outcome = "failed"
    with service.db.write() as conn:
        store.release_batch(conn, batch.id, owner, {
            "status": status, "updated_at": format_time(dt.datetime.now(dt.UTC))})
        entries.append(
            service, conn, action=entries.PLAN_RUN, outcome=outcome, message=message,
            subject_type="plan", subject_id=str(batch.id), project_id=batch.project_id,
            from_state=batch.status, to_state=status,
            evidence={"plan": batch.id, "children": [
                {"order": item["position"], "subject_id": item["subject_id"],
                 "role": item["role"], "correction": item["correction"],
                 "state": item["state"]} for item in shown["items"]
            ], "interrupted": interrupted},
        )
    shown = batches.show(batch.id)
    return shown | {"run": tally.snapshot(service.remotes.rate_budget()), "message": message,
                    "interrupted": interrupted, "outcome": outcome}
