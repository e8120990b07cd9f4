"""The correction use cases: start, advance, resume, show, list.

Each loads, acts and saves in units of work of its own and returns plain data. A step that changes
a remote system is durable: it is committed *in flight* (with its audit entry) before the remote
call and completed or released in a second transaction after it. Every attempt is audited, refused
and failed ones included.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Connection

from audit.log import AuditLog, utc_now
from engine.attempt import Attempt
from engine.db import Database
from engine.errors import Conflict, Refused, Unavailable, UsageError
from engine.machine import NotPermitted, OutOfOrder, machine_for
from engine.permissions import PermissionReader
from engine.remotes import Remotes
from engine.store import NOT_IN_FLIGHT, DuplicateOpen, Instance, Overtaken, WorkflowStore
from engine.views import view
from integrations.errors import RemoteNotFound
from workflows.definition import Requirement, Step, StepResult, WorkflowDefinition
from workflows.requisition import InvalidData, validate_correction
from workflows.subcontractor_invoice import DEFINITION, opening_refusal, snapshot_of

Connect = Callable[[], Remotes]


class CorrectionService:
    """Runs corrections of one workflow definition against one database and one set of remotes.

    ``connect`` is called once, on the first use case that needs a remote system, so read-only
    commands work without credentials. Identity and permissions are read at most once per service.
    """

    def __init__(
        self,
        db: Database,
        connect: Connect,
        *,
        definition: WorkflowDefinition = DEFINITION,
        policy: Mapping[str, Requirement] | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.db = db
        self.definition = definition
        self.machine = machine_for(definition)
        self.store = WorkflowStore()
        self.audit = AuditLog(dialect=db.dialect, clock=clock)
        self._connect = connect
        self._remotes: Remotes | None = None
        self._permissions: PermissionReader | None = None
        self._policy = dict(policy or {})
        self._clock = clock

    # wiring --------------------------------------------------------------------------------

    @property
    def remotes(self) -> Remotes:
        if self._remotes is None:
            self._remotes = self._connect()
            self._permissions = PermissionReader(self._remotes.procore)
        return self._remotes

    @property
    def permissions(self) -> PermissionReader:
        self.remotes  # noqa: B018  (connects on first use)
        assert self._permissions is not None
        return self._permissions

    def requirement(self, step: str) -> Requirement:
        if step in self._policy:
            return self._policy[step]
        if step == "start":
            return self.definition.opening.requirement
        found = self.definition.step(step)
        return found.requirement if found else Requirement()

    def close(self) -> None:
        """Close the remote clients and the database connections."""
        if self._remotes is not None:
            self._remotes.close()
        self.db.dispose()

    # read-only use cases -------------------------------------------------------------------

    def show(self, workflow_id: int) -> dict[str, Any]:
        from audit.log import Filters, query

        with self.db.read() as conn:
            instance = self._load(conn, workflow_id)
            history = list(query(conn, Filters(workflow_id=workflow_id)))
        return view(instance, self.machine) | {"history": history}

    def list(
        self,
        *,
        state: str | None = None,
        project_id: int | None = None,
        stale: dt.timedelta | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        if state is not None and state not in {str(s) for s in self.definition.states}:
            names = ", ".join(str(s) for s in self.definition.states)
            raise UsageError(f"unknown state {state!r} (states: {names})")
        before = None
        if stale is not None:
            moment = dt.datetime.now(dt.UTC) - stale
            before = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.db.read() as conn:
            found = self.store.list(
                conn,
                state=state,
                project_id=project_id,
                updated_before=before,
                finals=self.definition.finals,
                limit=limit,
            )
        return [view(instance, self.machine) for instance in found]

    # start ---------------------------------------------------------------------------------

    def start(self, invoice_id: int, project_id: int, reason: str) -> dict[str, Any]:
        remotes = self.remotes
        remotes.erp  # noqa: B018  (no ERP configured: a usage error before anything is read)
        company_id = remotes.procore.company_id
        subject = {"company_id": company_id, "project_id": project_id, "invoice_id": invoice_id}
        attempt = Attempt(self, subject, "start", None, reason)
        attempt.identify()
        with self.db.read(single=True) as conn:
            existing, seen = self.store.of_invoice(conn, company_id, invoice_id)
        if existing is not None:
            attempt.refuse(
                f"Refused: invoice {invoice_id} already has an open correction #{existing}."
            )
        attempt.check_permissions(self.requirement("start"), project_id)
        with attempt.remote_failures():
            try:
                requisition = remotes.procore.get_requisition(project_id, invoice_id)
            except RemoteNotFound:
                attempt.refuse(
                    f"Refused: invoice {invoice_id} was not found in project {project_id}"
                    " (or you may not see it)."
                )
        if (why := opening_refusal(requisition)) is not None:
            attempt.refuse(f"Refused: {why}")
        snapshot = snapshot_of(requisition)
        now = self._clock()
        values = {
            "workflow": self.definition.name,
            "version": self.definition.version,
            "state": str(self.definition.initial),
            "erp": remotes.erp_product,
            "erp_key": remotes.erp_key,
            "erp_bill_id": requisition.origin_id,
            "reason": reason,
            "snapshot": snapshot,
            "created_at": now,
            "updated_at": now,
            **subject,
        }
        number = snapshot.get("invoice_number")
        message = f"Started correction of invoice {invoice_id} ({number})."
        try:
            with self.db.write() as conn:
                workflow_id = self.store.insert(conn, values)
                if self.store.of_invoice(conn, company_id, invoice_id)[1] != seen + 1:
                    # Another correction of this invoice was started (and finished: else the
                    # insert had failed) since we looked: our snapshot may predate its changes.
                    # None was open then and finished ones never change, so counting tells.
                    raise Overtaken
                instance = self.store.get(conn, workflow_id)
                assert instance is not None
                attempt.bind(instance)
                attempt.record(
                    conn, "succeeded", message, to_state=instance.state, before=snapshot
                )
        except DuplicateOpen:
            attempt.refuse(f"Refused: invoice {invoice_id} already has an open correction.")
        except Overtaken:
            attempt.refuse(
                f"Conflict: another operator corrected invoice {invoice_id} meanwhile; run"
                " `relink list` and try again if it still needs a correction.",
                error=Conflict,
            )
        return attempt.result("succeeded", message, written=instance)

    # advance -------------------------------------------------------------------------------

    def advance(
        self,
        workflow_id: int,
        step_name: str,
        *,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        step = self._step(step_name)
        if step.needs_data and data is None:
            raise UsageError(f"{step.name} needs --data FILE with the corrected fields")
        if data is not None:
            if not step.needs_data:
                raise UsageError(f"{step.name} takes no --data")
            try:
                data = validate_correction(data)
            except InvalidData as exc:
                raise UsageError(f"invalid data file: {exc}") from exc
        with self.db.read(single=True) as conn:
            instance = self._load(conn, workflow_id)
        attempt = Attempt(self, _subject(instance), step.name, instance, reason)
        attempt.identify()
        if instance.in_flight_step is not None:
            attempt.refuse(
                f"Conflict: {instance.in_flight_step} is in flight on correction {instance.id}"
                f" since {instance.in_flight_since}; run `relink resume {instance.id}`.",
                error=Conflict,
            )
        to_state = self._decide(attempt, instance, step)
        if step.durable:
            return self._run_durable(attempt, instance, step, to_state, data)
        result = StepResult(f"{step.name}: {instance.state} → {to_state}.")
        if step.action is not None:
            with attempt.remote_failures():
                result = step.action(attempt.context(instance, data))
        return self._complete(attempt, instance, to_state, result, revision=instance.revision)

    def _step(self, name: str) -> Step:
        step = self.definition.step(name)
        if step is None:
            names = ", ".join(s.name for s in self.definition.steps)
            raise UsageError(f"unknown step {name!r} (steps: {names})")
        return step

    def _decide(self, attempt: Attempt, instance: Instance, step: Step) -> str:
        """Order first, then permissions; refusals are audited and raised."""
        allowed = self.machine.next_steps(instance.state)
        if step.name not in allowed:
            if step.out_of_order is not None:
                with attempt.remote_failures():
                    message = step.out_of_order(attempt.context(instance, None))
                if message is not None:
                    attempt.refuse(message, style="error")
            attempt.refuse(
                f"Refused: {step.name} is not allowed in state {instance.state}."
                f" Next: {_listing(allowed)}."
            )
        requirement = self.requirement(step.name)
        granted = attempt.check_permissions(requirement, instance.project_id)
        try:
            return self.machine.decide(instance.state, step.name, requirement, granted)
        except (OutOfOrder, NotPermitted) as exc:  # pragma: no cover - checked just above
            attempt.refuse(f"Refused: {exc}")

    def _run_durable(
        self,
        attempt: Attempt,
        instance: Instance,
        step: Step,
        to_state: str,
        data: dict[str, Any] | None,
    ) -> dict[str, Any]:
        key = uuid.uuid4().hex
        since = self._clock()
        with self.db.write() as conn:
            in_flight = self.store.update(
                conn,
                instance.id,
                instance.revision,
                {
                    "in_flight_step": step.name,
                    "in_flight_to": to_state,
                    "in_flight_key": key,
                    "in_flight_since": since,
                    "in_flight_data": data,
                    "updated_at": since,
                },
            )
            if in_flight is not None:
                attempt.record(
                    conn, "in_flight", f"{step.name} in flight.", idempotency_key=key
                )
        if in_flight is None:
            attempt.refuse(
                f"Conflict: correction {instance.id} was changed by another operator; reload"
                " and try again.",
                error=Conflict,
            )
        attempt.bind(in_flight, holds_in_flight=True)
        ctx = attempt.context(in_flight, data)
        try:
            with attempt.remote_failures(in_flight=True):
                result = step.action(ctx)  # type: ignore[misc]
        except Unavailable:
            # The call may or may not have landed: ask the remote system before releasing.
            return self._settle(attempt, in_flight, step, after_failure=True)
        except Refused:
            raise
        return self._complete(attempt, in_flight, to_state, result, revision=in_flight.revision)

    # resume --------------------------------------------------------------------------------

    def resume(self, workflow_id: int) -> dict[str, Any]:
        with self.db.read(single=True) as conn:
            instance = self._load(conn, workflow_id)
        if instance.in_flight_step is None:
            return view(instance, self.machine) | {
                "outcome": "succeeded",
                "message": f"Nothing in flight on correction {instance.id}.",
            }
        step = self._step(instance.in_flight_step)
        attempt = Attempt(self, _subject(instance), "resume", instance, None)
        attempt.bind(instance, holds_in_flight=True)
        attempt.identify()
        attempt.check_permissions(self.requirement(step.name), instance.project_id)
        return self._settle(attempt, instance, step, after_failure=False)

    def _settle(
        self, attempt: Attempt, instance: Instance, step: Step, *, after_failure: bool
    ) -> dict[str, Any]:
        """Read the remote systems to learn whether the in-flight step happened; complete or
        release it accordingly. Raises Unavailable (step stays in flight) if they can't say."""
        assert step.probe is not None and instance.in_flight_to is not None
        ctx = attempt.context(instance, instance.in_flight_data)
        with attempt.remote_failures(in_flight=True, settling=True):
            done = step.probe(ctx)
        if done is not None:
            return self._complete(
                attempt, instance, instance.in_flight_to, done, revision=instance.revision
            )
        if after_failure:
            attempt.fail_and_release(attempt.last_failure or "the remote system did not answer")
        message = f"Released {step.name}: it had not happened; run it again when ready."
        with self.db.write() as conn:
            released = self._write(conn, instance, {}, release=True)
            attempt.record(conn, "succeeded", message, settled=step.name, happened=False)
        return attempt.result("succeeded", message, written=released)

    # writing results -----------------------------------------------------------------------

    def _complete(
        self,
        attempt: Attempt,
        instance: Instance,
        to_state: str,
        result: StepResult,
        *,
        revision: int,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {"state": to_state}
        if to_state in self.definition.finals:
            values["open_invoice_id"] = None
        if "new_invoice_id" in result.changes:
            values["new_invoice_id"] = result.changes["new_invoice_id"]
            values["after"] = result.changes.get("after")
        extra: dict[str, Any] = {}
        if "after" in result.changes:
            extra = {
                "before": instance.snapshot,
                "after": result.changes["after"],
                "corrected": instance.in_flight_data,
            }
        with self.db.write() as conn:
            done = self._write(conn, instance, values, release=True, revision=revision)
            attempt.record(conn, "succeeded", result.message, to_state=to_state, **extra)
        attempt.style = result.style
        return attempt.result("succeeded", result.message, written=done)

    def _write(
        self,
        conn: Connection,
        instance: Instance,
        values: dict[str, Any],
        *,
        release: bool,
        revision: int | None = None,
    ) -> Instance:
        """Compare-and-set ``values`` (releasing the step in flight); the instance as written."""
        if release:
            values = values | NOT_IN_FLIGHT
        values["updated_at"] = self._clock()
        at = instance.revision if revision is None else revision
        written = self.store.update(conn, instance.id, at, values)
        if written is None:
            raise Conflict(
                f"correction {instance.id} was changed by another operator meanwhile",
                workflow=view(instance, self.machine),
            )
        return written

    # helpers -------------------------------------------------------------------------------

    def _load(self, conn: Connection, workflow_id: int) -> Instance:
        instance = self.store.get(conn, workflow_id)
        if instance is None:
            raise UsageError(f"no correction with id {workflow_id}")
        return instance

    def _reload(self, workflow_id: int) -> Instance:
        with self.db.read(single=True) as conn:
            return self._load(conn, workflow_id)


def _subject(instance: Instance) -> dict[str, Any]:
    return {
        "company_id": instance.company_id,
        "project_id": instance.project_id,
        "invoice_id": instance.invoice_id,
    }


def _listing(steps: list[str]) -> str:
    return ", ".join(steps) if steps else "none (the correction is finished)"

