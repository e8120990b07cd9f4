"""The use cases of any workflow: start, advance, resume, show, list.

Each loads, acts and saves in units of work of its own and returns plain data. A step that changes
a remote system is durable: it is committed *in flight* (with its audit entry) before the remote
call and completed or released in a second transaction after it. Every attempt is audited, refused
and failed ones included.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from sqlalchemy.engine import Connection

from audit.log import AuditLog, utc_now
from engine.approvals import APPROVE, ApprovalRule, expired, expires_at, standing
from engine.attempt import Attempt, Subject
from engine.db import Database
from engine.errors import Conflict, Interrupted, Unavailable, UsageError
from engine.lease import LeaseLost, Owner, StepLease, format_time, lease_live, parse_time
from engine.machine import NotPermitted, OutOfOrder, machine_for
from engine.outcome import Outcome
from engine.permissions import PermissionReader
from engine.remotes import Remotes
from engine.store import NOT_IN_FLIGHT, DuplicateOpen, Instance, Overtaken, WorkflowStore
from engine.views import view
from integrations.guard import guarded
from workflows import registry
from workflows.definition import (
    OpeningContext,
    Previewed,
    Requirement,
    Step,
    StepResult,
    WorkflowDefinition,
)
from workflows.errors import Waiting
from workflows.unlinking import Waiter

Connect = Callable[[], Remotes]
Definitions = Callable[[str, int | None], WorkflowDefinition]
DEFAULT_LEASE_SECONDS = 60.0
Entries = list[dict[str, Any]]
# what opens an instance for a batch: records the link in the same transaction (its evidence)
Linked = Callable[[Connection, int], dict[str, Any]]


class CorrectionService:
    """Runs instances of any registered workflow against one database and one set of remotes.

    The definition an instance runs under is looked up from the instance itself (its workflow
    and version) on every call; ``workflow`` names the one ``start`` and ``list`` use.
    ``connect`` is called once, on the first use case that needs a remote system, so read-only
    commands work without credentials. Identity and permissions are read at most once per service.
    ``policy`` maps a workflow to its step overrides; ``policy_fingerprints`` a workflow whose
    policy in force is looser than its definition's to the fingerprint every entry then carries.
    """

    def __init__(
        self,
        db: Database,
        connect: Connect,
        *,
        workflow: str,
        definitions: Definitions | None = None,
        policy: Mapping[str, Mapping[str, Requirement]] | None = None,
        clock: Callable[[], str] = utc_now,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        policy_fingerprints: Mapping[str, str] | None = None,
        approvals: Mapping[str, Mapping[str, ApprovalRule]] | None = None,
    ) -> None:
        self.db = db
        self._definitions = definitions or _registered
        self.workflow = workflow
        self.store = WorkflowStore()
        self.audit = AuditLog(dialect=db.dialect, clock=clock)
        self._connect = connect
        self._remotes: Remotes | None = None
        self._permissions: PermissionReader | None = None
        self._policy = {name: dict(steps) for name, steps in (policy or {}).items()}
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.policy_fingerprints = dict(policy_fingerprints or {})
        self._approvals = {name: dict(steps) for name, steps in (approvals or {}).items()}
        # how a step waits for something outside relink (the CLI shows a spinner); None: poll
        self.waiter: Waiter | None = None

    # definitions ---------------------------------------------------------------------------

    @property
    def definition(self) -> WorkflowDefinition:
        """The latest definition of ``workflow`` (what ``start`` opens)."""
        return self._definition_of(self.workflow, None)

    def definition_of(self, instance: Instance) -> WorkflowDefinition:
        """The definition ``instance`` started under."""
        return self._definition_of(instance.workflow, instance.version)

    def _definition_of(self, name: str, version: int | None) -> WorkflowDefinition:
        try:
            return self._definitions(name, version)
        except KeyError:
            at = f" version {version}" if version is not None else ""
            raise UsageError(
                f"unknown workflow {name!r}{at} (installed: {', '.join(registry.names())})"
            ) from None

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

    def requirement(self, definition: WorkflowDefinition, step: str) -> Requirement:
        """The requirement in force for ``step`` of ``definition``: the policy's, else the
        definition's own."""
        override = self._policy.get(definition.name, {}).get(step)
        if override is not None:
            return override
        return definition.requirement(step) or Requirement()

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
        return view(instance, self.definition_of(instance)) | {"history": history}

    def list(
        self,
        *,
        state: str | None = None,
        project_id: int | None = None,
        stale: dt.timedelta | None = None,
        limit: int = 50,
        workflow: str | None = None,
    ) -> list[dict[str, Any]]:
        """Instances, newest first: of ``workflow`` when given, else of every workflow (a
        state is then checked against the states of all installed definitions, and "open"
        means not in a final state of any)."""
        definitions = (
            [self._definition_of(workflow, None)] if workflow is not None
            else [self._definition_of(name, None) for name in registry.names()]
        )
        states = {str(s) for d in definitions for s in d.states}
        if state is not None and state not in states:
            names = ", ".join(sorted(states))
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
                finals=frozenset(str(s) for d in definitions for s in d.finals),
                limit=limit,
                workflow=workflow,
            )
        return [view(instance, self.definition_of(instance)) for instance in found]

    # start ---------------------------------------------------------------------------------

    def start(
        self, subject_id: str | int, project_id: int, reason: str, *,
        linked: Linked | None = None,
    ) -> Outcome:
        """Open an instance of ``workflow`` on the subject ``subject_id``: read it (the
        definition's opening decides whether it may be corrected), keep its snapshot.
        ``linked`` (a batch or plan opening it) is called with the new instance's id in the
        transaction that writes it, and returns evidence for its audit entry."""
        subject_id = str(subject_id)
        definition = self.definition
        noun = definition.subject.noun
        remotes = self.remotes
        remotes.erp  # noqa: B018  (no ERP configured: a usage error before anything is read)
        company_id = remotes.procore.company_id
        subject_type = definition.subject.type
        attempt = Attempt(
            self, definition,
            Subject(company_id, project_id, subject_type, subject_id), "start", None, reason,
        )
        attempt.identify()
        with self.db.read(single=True) as conn:
            existing, seen = self.store.of_subject(conn, company_id, subject_type, subject_id)
        if existing is not None:
            attempt.refuse(
                f"Refused: {noun} {subject_id} already has an open correction #{existing}."
            )
        attempt.check_permissions(self.requirement(definition, "start"), project_id)
        opening = OpeningContext(
            procore=remotes.procore, erp=remotes.erp, company_id=company_id,
            project_id=project_id, subject_id=subject_id, evidence=attempt.evidence,
        )
        with attempt.remote_failures():
            opened = definition.subject.open(opening)
        now = self._clock()
        values = {
            "workflow": definition.name,
            "version": definition.version,
            "state": str(definition.initial),
            "erp": remotes.erp_product,
            "erp_key": remotes.erp_key,
            "company_id": company_id,
            "project_id": project_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            # the ERP company is pinned with the product (erp_key): later steps refuse another
            "remote_ref": {**opened.remote_ref, "erp_company": remotes.erp.company},
            "reason": reason,
            "snapshot": opened.snapshot,
            "created_at": now,
            "updated_at": now,
        }
        message = f"Started correction of {opened.label}."
        try:
            with self.db.write() as conn:
                workflow_id = self.store.insert(conn, values)
                counted = self.store.of_subject(conn, company_id, subject_type, subject_id)[1]
                if counted != seen + 1:
                    # Another correction of this subject was started (and finished: else the
                    # insert had failed) since we looked: our snapshot may predate its changes.
                    # None was open then and finished ones never change, so counting tells.
                    raise Overtaken
                instance = self.store.get(conn, workflow_id)
                assert instance is not None
                attempt.bind(instance)
                link = linked(conn, workflow_id) if linked is not None else {}
                attempt.record(
                    conn, "succeeded", message, to_state=instance.state, before=opened.snapshot,
                    **link,
                )
        except DuplicateOpen:
            attempt.refuse(f"Refused: {noun} {subject_id} already has an open correction.")
        except Overtaken:
            attempt.refuse(
                f"Conflict: another operator corrected {noun} {subject_id} meanwhile; run"
                " `relink list` and try again if it still needs a correction.",
                error=Conflict,
            )
        return attempt.result(message, written=instance)

    # advance -------------------------------------------------------------------------------

    def advance(
        self,
        workflow_id: int,
        step_name: str,
        *,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        as_is: bool = False,
    ) -> Outcome:
        """Run one step. A step taking --data refuses data that changes nothing, unless
        ``as_is`` says that is meant (then the data may be left out)."""
        instance, definition, step, data = self._prepare(workflow_id, step_name, data, as_is)
        self._check_connection(instance)
        attempt = Attempt(self, definition, _subject(instance), step.name, instance, reason)
        attempt.identify()
        if instance.in_flight_step is not None:
            if lease_live(instance, self._now()):
                attempt.refuse(self._held_message(instance), error=Conflict)
            attempt.refuse(
                f"Conflict: {instance.in_flight_step} is in flight on correction {instance.id}"
                f" since {instance.in_flight_since}; run `relink resume {instance.id}`.",
                error=Conflict,
            )
        to_state = self._decide(attempt, instance, step)
        self._check_approval(attempt, instance, step)
        if step.durable:
            return self._run_durable(attempt, instance, step, to_state, data)
        result = StepResult(f"{step.name}: {instance.state} → {to_state}.")
        if step.action is not None:
            with attempt.remote_failures():
                result = step.action(attempt.context(instance, data))
        return self._complete(attempt, to_state, result)

    # four-eyes approval --------------------------------------------------------------------

    def approval_rule(self, definition: WorkflowDefinition, step: str) -> ApprovalRule | None:
        return self._approvals.get(definition.name, {}).get(step)

    def _entries(self, workflow_id: int) -> Entries:
        from audit.log import Filters, query

        with self.db.read() as conn:
            return list(query(conn, Filters(workflow_id=workflow_id)))

    def _check_approval(self, attempt: Attempt, instance: Instance, step: Step) -> None:
        """A step the policy puts under four eyes runs only with a valid approval of the
        operator's request by someone else; every refusal is audited (the first one is the
        request), and the approval is consumed by this attempt."""
        rule = self.approval_rule(attempt.definition, step.name)
        if rule is None:
            return
        actor = attempt.actor.login if attempt.actor else None
        state = standing(self._entries(instance.id), step.name)
        granted, evidence = state.granted, state.granted_evidence
        ask = (
            f" Ask a second person with the approver's permissions to run"
            f" `relink approve {instance.id} {step.name} --reason ...`."
        )
        if granted is None or evidence is None:
            attempt.evidence["approval"] = {"status": "requested"}
            attempt.refuse(f"Refused: {step.name} needs a second person's approval"
                           f" (requested now).{ask}")
        if expired(evidence, self._now()):
            attempt.evidence["approval"] = {"status": "expired", "seq": granted["seq"]}
            attempt.refuse(f"Refused: the approval of {step.name} (entry {granted['seq']}) expired"
                           f" at {evidence['expires_at']}.{ask}")
        if evidence.get("requested_by") != actor:
            attempt.evidence["approval"] = {"status": "requested"}
            attempt.refuse(f"Refused: the approval of {step.name} (entry {granted['seq']}) was"
                           f" given for {evidence.get('requested_by')}'s request, not {actor}'s."
                           f"{ask}")
        attempt.evidence["approval"] = {
            "status": "consumed", "seq": granted["seq"], "approver": granted["actor_login"],
        }

    def approve(self, workflow_id: int, step_name: str, reason: str) -> Outcome:
        """A second person approves the request to run ``step_name``: identity and permissions
        read from Procore; the requester's own approval is refused; audited either way."""
        with self.db.read(single=True) as conn:
            instance = self._load(conn, workflow_id)
        definition = self.definition_of(instance)
        step = self._step(definition, step_name)
        rule = self.approval_rule(definition, step.name)
        if rule is None:
            raise UsageError(f"{step.name} needs no approval under the policy in force")
        attempt = Attempt(self, definition, _subject(instance), APPROVE, instance, reason)
        actor = attempt.identify()
        if not machine_for(definition).allows(instance.state, step.name):
            attempt.refuse(f"Refused: {step.name} is not allowed in state {instance.state};"
                           " there is nothing to approve.")
        requirement = rule.approver or self.requirement(definition, step.name)
        attempt.check_permissions(requirement, instance.project_id)
        state = standing(self._entries(instance.id), step.name)
        if state.request is None:
            attempt.refuse(f"Refused: nobody has asked to run {step.name} on correction"
                           f" {instance.id}; the operator's attempt is the request.")
        requester = state.request["actor_login"]
        if requester == actor.login:
            attempt.evidence["approval"] = {"status": "refused", "step": step.name,
                                            "why": "self-approval"}
            attempt.refuse(f"Refused: {actor.login} asked to run {step.name} and may not"
                           " approve it too: a second person must.")
        until = expires_at(self._now(), rule)
        message = (f"Approved {step.name} on correction {instance.id} for {requester}, valid"
                   f" until {until} for one attempt.")
        with self.db.write() as conn:
            attempt.record(conn, "succeeded", message, approval={
                "status": "granted", "step": step.name, "request_seq": state.request["seq"],
                "requested_by": requester, "expires_at": until,
            })
        return attempt.result(message)

    def approvals(self) -> Entries:
        """Requests waiting for an approval, and approvals not yet used, of open corrections."""
        pending: list[dict[str, Any]] = []
        with self.db.read() as conn:
            instances = self.store.open_instances(conn)
        for instance in instances:
            definition = self.definition_of(instance)
            rules = self._approvals.get(definition.name, {})
            if not rules:
                continue
            entries = self._entries(instance.id)
            for step in rules:
                state = standing(entries, step)
                if state.granted is not None and state.granted_evidence is not None:
                    evidence = state.granted_evidence
                    pending.append({
                        "id": instance.id, "step": step, "status": "approved",
                        "requested_by": evidence.get("requested_by"),
                        "approver": state.granted["actor_login"],
                        "expires_at": evidence.get("expires_at"),
                        "expired": expired(evidence, self._now()),
                        "seq": state.granted["seq"],
                    })
                elif state.request is not None:
                    pending.append({
                        "id": instance.id, "step": step, "status": "requested",
                        "requested_by": state.request["actor_login"],
                        "requested_at": state.request["recorded_at"],
                        "seq": state.request["seq"],
                    })
        return pending

    def preview(
        self, workflow_id: int, step_name: str, data: dict[str, Any] | None, *,
        as_is: bool = False,
    ) -> Previewed | None:
        """What a step taking --data will write, before anything is read or sent (None for
        other steps, or when the snapshot cannot tell: the step then refuses, audited)."""
        instance, definition, step, data = self._prepare(workflow_id, step_name, data, as_is)
        if not machine_for(definition).allows(instance.state, step.name):
            return None  # the step itself is refused, audited, before anything is shown
        return self._previewed(instance, step, data)

    def _prepare(
        self, workflow_id: int, step_name: str, data: dict[str, Any] | None, as_is: bool
    ) -> tuple[Instance, WorkflowDefinition, Step, dict[str, Any] | None]:
        """The instance, its definition and step, and the data validated: usage errors
        before anything is recorded or read."""
        with self.db.read(single=True) as conn:
            found = self.store.get(conn, workflow_id)
        if found is None:  # the step is checked against the workflow start opens, then the id
            self._step(self.definition, step_name)
            raise UsageError(f"no correction with id {workflow_id}")
        definition = self.definition_of(found)
        step = self._step(definition, step_name)
        if as_is and not step.needs_data:
            raise UsageError(f"{step.name} takes no --as-is (it takes no data)")
        if step.needs_data and data is None and not as_is:
            raise UsageError(f"{step.name} needs --data FILE with the corrected fields"
                             " (or --as-is to write it unchanged)")
        if data is not None:
            if not step.needs_data or definition.data is None:
                raise UsageError(f"{step.name} takes no --data")
            try:
                data = definition.data(data)
            except ValueError as exc:
                raise UsageError(f"invalid data file: {exc}") from exc
        elif as_is:
            data = {}
        previewed = self._previewed(found, step, data)
        if previewed is not None and not previewed.changes() and not as_is:
            raise UsageError(
                f"the data file changes nothing in {step.name}: correct a field, or pass"
                " --as-is if writing it unchanged is meant"
            )
        return found, definition, step, data

    @staticmethod
    def _previewed(
        instance: Instance, step: Step, data: dict[str, Any] | None
    ) -> Previewed | None:
        if step.preview is None or data is None:
            return None
        try:
            return step.preview(instance.snapshot, data)
        except ValueError:  # the step itself refuses it, audited
            return None

    def _check_connection(self, instance: Instance) -> None:
        """The ERP this relink is configured for is the one the correction started against
        (product and company, pinned at start): a usage error before anything is recorded or
        read, naming both."""
        erp = self.remotes.erp  # not configured: a usage error naming the settings
        pinned_company = instance.remote_ref.get("erp_company")  # absent before it was pinned
        if erp.key != instance.erp_key or (
            pinned_company is not None and erp.company != pinned_company
        ):
            started = _connection(instance.erp, pinned_company)
            now = _connection(erp.product_name, erp.company)
            raise UsageError(
                f"correction {instance.id} was started against {started}, but relink is"
                f" configured for {now}: set RELINK_ERP and RELINK_ERP_COMPANY to the first"
            )

    def _step(self, definition: WorkflowDefinition, name: str) -> Step:
        step = definition.step(name)
        if step is None:
            names = ", ".join(s.name for s in definition.steps)
            raise UsageError(f"unknown step {name!r} (steps of {definition.name}: {names})")
        return step

    def _decide(self, attempt: Attempt, instance: Instance, step: Step) -> str:
        """Order first, then permissions; refusals are audited and raised."""
        machine = machine_for(attempt.definition)
        allowed = machine.next_steps(instance.state)
        if not machine.allows(instance.state, step.name):
            # a step asked for early may have its own words (Procore's red message); one that
            # can no longer come (a final state, a later state) is simply out of order
            early = attempt.definition.ahead(instance.state, step.name)
            if step.out_of_order is not None and early:
                with attempt.remote_failures():
                    message = step.out_of_order(attempt.context(instance, None))
                if message is not None:
                    attempt.refuse(message, alert=True)
            attempt.refuse(
                f"Refused: {step.name} is not allowed in state {instance.state}."
                f" Next: {_listing(allowed)}."
            )
        requirement = self.requirement(attempt.definition, step.name)
        granted = attempt.check_permissions(requirement, instance.project_id)
        try:
            return machine.decide(instance.state, step.name, requirement, granted)
        except (OutOfOrder, NotPermitted) as exc:  # pragma: no cover - checked just above
            attempt.refuse(f"Refused: {exc}")

    def _run_durable(
        self,
        attempt: Attempt,
        instance: Instance,
        step: Step,
        to_state: str,
        data: dict[str, Any] | None,
    ) -> Outcome:
        """Put the step in flight under this process's lease, act, then complete it.

        If the action fails, the step is released only when provably nothing was sent that
        could have changed a remote system; otherwise the remote systems are asked, and if they
        cannot say, the step stays in flight for ``relink resume``."""
        key = uuid.uuid4().hex
        now = self._now()
        since = format_time(now)
        owner = Owner.here(attempt.actor.login if attempt.actor else None)
        until = format_time(now + dt.timedelta(seconds=self.lease_seconds))
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
                    "in_flight_lease_until": until,
                    **owner.columns(),
                    "updated_at": since,
                },
            )
            if in_flight is not None:
                attempt.record(
                    conn, "in_flight", f"{step.name} in flight.", idempotency_key=key,
                    owner=owner.describe(), lease_until=until,
                )
        if in_flight is None:
            attempt.refuse(
                f"Conflict: correction {instance.id} was changed by another operator; reload"
                " and try again.",
                error=Conflict,
            )
        lease = self._lease(in_flight, sent_by_owner=True)
        attempt.bind(in_flight, lease=lease)
        ctx = attempt.context(in_flight, data)
        try:
            with guarded(lease), attempt.remote_failures(in_flight=True):
                result = step.action(ctx)  # type: ignore[misc]
        except LeaseLost as exc:
            attempt.bind(lease.instance, lease=None)
            attempt.refuse(f"Overtaken: {exc.message}.", error=Conflict)
        except Waiting as exc:  # nothing happened yet outside relink (an awaited click)
            attempt.bind(lease.instance, lease=lease)
            attempt.not_yet(exc.message)
        except Unavailable:
            attempt.bind(lease.instance, lease=lease)
            if attempt.may_release:  # provably nothing left the machine
                attempt.fail_and_release(attempt.last_failure or "the remote system did not answer")
            # A write may have landed: ask the remote systems before deciding anything.
            return self._settle(attempt, step, after_failure=True)
        except KeyboardInterrupt:
            attempt.bind(lease.instance, lease=lease)
            self._interrupted(attempt, step)
        attempt.bind(lease.instance, lease=lease)
        return self._complete(attempt, to_state, result)

    def _interrupted(self, attempt: Attempt, step: Step) -> NoReturn:
        """Ctrl-C inside a step: release it if provably nothing was sent, else leave it in
        flight (lease given up) for resume; audited either way."""
        instance = attempt.instance
        wid = instance.id if instance else ""
        if attempt.may_release:
            state = instance.state if instance else ""
            message = (
                f"Interrupted: {step.name} was not sent; nothing changed. Correction {wid} is"
                f" still in {state}: run `relink advance {wid} {step.name}` again to retry."
            )
            attempt._finish("failed", message, release=True)
            raise Interrupted(message, workflow=attempt._outcome_view("failed", message),
                              step=step.name)
        after = f" after {instance.in_flight_lease_until}" if instance else ""
        message = (
            f"Interrupted: the outcome of {step.name} is unknown; it stays in flight:"
            f" run `relink resume {wid}`{after}."
        )
        if attempt.lease is not None:
            attempt.lease.active = False  # keep the lease: a write may still be on its way
        attempt._finish("failed", message, release=False)
        raise Interrupted(message, workflow=attempt._outcome_view("failed", message),
                          step=step.name)

    def _lease(self, instance: Instance, *, sent_by_owner: bool) -> StepLease:
        return StepLease(
            self.db, self.store, instance, seconds=self.lease_seconds, now=self._now,
            sent_by_owner=sent_by_owner,
        )

    def _now(self) -> dt.datetime:
        return parse_time(self._clock())

    # resume --------------------------------------------------------------------------------

    def resume(self, workflow_id: int) -> Outcome:
        """Settle a step in flight from what the remote systems say.

        Identity and permissions are read first; a live lease is refused (exit 4, naming its
        owner and end); then this process claims the step under a lease of its own and probes.
        Only a probe that answers completes or releases the step: a refused, failed or
        unavailable resume leaves it in flight, audited."""
        with self.db.read(single=True) as conn:
            instance = self._load(conn, workflow_id)
        definition = self.definition_of(instance)
        if instance.in_flight_step is None:
            shown = view(instance, definition)
            return Outcome(
                kind="succeeded", message=f"Nothing in flight on correction {instance.id}.",
                state_before=instance.state, state_after=instance.state,
                next=tuple(shown["next"]), instance=shown,
            )
        step = self._step(definition, instance.in_flight_step)
        self._check_connection(instance)
        attempt = Attempt(self, definition, _subject(instance), "resume", instance, None)
        attempt.identify()
        if lease_live(instance, self._now()):
            attempt.refuse(self._held_message(instance), error=Conflict)
        attempt.check_permissions(self.requirement(definition, step.name), instance.project_id)
        owner = Owner.here(attempt.actor.login if attempt.actor else None)
        now = self._now()
        until = format_time(now + dt.timedelta(seconds=self.lease_seconds))
        with self.db.write() as conn:
            claimed = self.store.update(
                conn, instance.id, instance.revision,
                {"in_flight_lease_until": until, **owner.columns()},
            )
        if claimed is None:
            current = self._reload(instance.id)
            attempt.bind(current)
            if current.in_flight_step is None:
                why = "another operator settled the step meanwhile"
            else:
                why = self._held_message(current).removeprefix("Conflict: ")
            attempt.refuse(f"Conflict: {why}", error=Conflict)
        attempt.bind(claimed, lease=self._lease(claimed, sent_by_owner=False))
        return self._settle(attempt, step, after_failure=False)

    def _held_message(self, instance: Instance) -> str:
        owner = Owner.of(instance)
        who = owner.describe() if owner else "another process"
        return (
            f"Conflict: {instance.in_flight_step} is in flight on correction {instance.id},"
            f" held by {who} until {instance.in_flight_lease_until};"
            f" run `relink resume {instance.id}` after then if it is still in flight."
        )

    def _settle(self, attempt: Attempt, step: Step, *, after_failure: bool) -> Outcome:
        """Read the remote systems to learn whether the in-flight step happened; complete or
        release it accordingly. If they can't say, the step stays in flight (Unavailable)."""
        lease = attempt.lease
        instance = attempt.instance
        assert step.probe is not None and lease is not None and instance is not None
        assert instance.in_flight_to is not None
        ctx = attempt.context(instance, instance.in_flight_data)
        try:
            with guarded(lease), attempt.remote_failures(in_flight=True, settling=True):
                done = step.probe(ctx)
        except LeaseLost as exc:
            attempt.bind(lease.instance, lease=None)
            attempt.refuse(f"Overtaken: {exc.message}.", error=Conflict)
        attempt.bind(lease.instance, lease=lease)
        if done is not None:
            return self._complete(attempt, instance.in_flight_to, done)
        if after_failure:
            why = attempt.last_failure or "the remote system did not answer"
            if lease.unanswered:
                # "Not yet" does not mean "never": a write that was never answered may still be
                # on its way. Only a resume after this lease may release the step.
                attempt.fail_unknown(why)
            # Every write was answered and the remote systems say nothing changed.
            lease.maybe_landed = False
            attempt.fail_and_release(why)
        message = f"Released {step.name}: it had not happened; run it again when ready."
        with self.db.write() as conn:
            released = self._write(conn, attempt, {}, release=True)
            if released is not None:
                attempt.record(conn, "succeeded", message, settled=step.name, happened=False)
        if released is None:
            self._overtaken(attempt, step.name)
        lease.active = False
        return attempt.result(message, written=released)

    # writing results -----------------------------------------------------------------------

    def _complete(self, attempt: Attempt, to_state: str, result: StepResult) -> Outcome:
        """Write the step's result (releasing it from flight) and its audit entry, in one
        transaction; a row that moved on meanwhile is refused as overtaken, audited."""
        instance = attempt.instance
        assert instance is not None
        values: dict[str, Any] = {"state": to_state}
        if to_state in attempt.definition.finals:
            values["open_subject_id"] = None
        if result.changes:
            values["results"] = instance.results | result.changes
        extra: dict[str, Any] = {}
        if "after" in result.changes:
            extra = {
                "before": instance.snapshot,
                "after": result.changes["after"],
                "corrected": instance.in_flight_data,
            }
        with self.db.write() as conn:
            done = self._write(conn, attempt, values, release=True)
            if done is not None:
                attempt.record(conn, "succeeded", result.message, to_state=to_state, **extra)
        if done is None:
            self._overtaken(attempt, attempt.action, result.message)
        if attempt.lease is not None:
            attempt.lease.active = False
        return attempt.result(result.message, written=done)

    def _write(
        self, conn: Connection, attempt: Attempt, values: dict[str, Any], *, release: bool
    ) -> Instance | None:
        """Compare-and-set ``values`` (releasing the step in flight) at the revision the attempt
        last wrote; the instance as written, or None when another operator moved it on."""
        instance = attempt.instance
        assert instance is not None
        if release:
            values = values | NOT_IN_FLIGHT
        values["updated_at"] = self._clock()
        values["version"] = attempt.definition.version  # a superseding version runs it now
        return self.store.update(conn, instance.id, instance.revision, values)

    def _overtaken(self, attempt: Attempt, step: str, happened: str | None = None) -> NoReturn:
        """This attempt's second transaction found the row moved on: audit and refuse (exit 4)."""
        assert attempt.instance is not None
        wid = attempt.instance.id
        if attempt.lease is not None:
            attempt.lease.active = False
        current = self._reload(wid)
        attempt.bind(current)
        said = f" What this attempt saw: {happened}" if happened else ""
        attempt.refuse(
            f"Conflict: correction {wid} was changed by another operator while {step} ran"
            f" (now {current.state}); nothing more was written.{said}",
            error=Conflict,
        )

    # helpers -------------------------------------------------------------------------------

    def _load(self, conn: Connection, workflow_id: int) -> Instance:
        instance = self.store.get(conn, workflow_id)
        if instance is None:
            raise UsageError(f"no correction with id {workflow_id}")
        return instance

    def _reload(self, workflow_id: int) -> Instance:
        with self.db.read(single=True) as conn:
            return self._load(conn, workflow_id)


def _subject(instance: Instance) -> Subject:
    return Subject(
        instance.company_id, instance.project_id, instance.subject_type, instance.subject_id
    )


def _listing(steps: list[str]) -> str:
    return ", ".join(steps) if steps else "none (the correction is finished)"



def _registered(name: str, version: int | None) -> WorkflowDefinition:
    """The latest definition of ``name``; for an instance's ``version``, the one it runs now."""
    return registry.get(name) if version is None else registry.running(name, version)


def _connection(product: str, company: Any) -> str:
    return f"{product} company {company}" if company else product
