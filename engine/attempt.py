"""One attempt at an action: who tried it, what was read, and its audit entries.

Every way an attempt can end — succeeded, refused, failed — goes through here, so none of them
escapes the audit log. Remote errors are translated into engine errors at this boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.engine import Connection

from engine.errors import (
    CredentialsRejected,
    EngineError,
    Refused,
    Unavailable,
)
from engine.lease import StepLease
from engine.machine import machine_for
from engine.outcome import Outcome
from engine.store import NOT_IN_FLIGHT, Instance
from engine.views import view
from integrations.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)
from integrations.models import User
from workflows.definition import Requirement, StepContext, WorkflowDefinition
from workflows.errors import Rejected

if TYPE_CHECKING:
    from engine.service import CorrectionService

AUDIT_FORMAT = 2  # audit.md: entries carry subject_type and subject_id


@dataclass(frozen=True, slots=True)
class Subject:
    """What an attempt acts on, before and after an instance exists."""

    company_id: int
    project_id: int
    type: str
    id: str


class Attempt:
    """An operator's attempt at ``action`` on a subject (and, once it exists, an instance) of
    a workflow ``definition``."""

    def __init__(
        self,
        service: CorrectionService,
        definition: WorkflowDefinition,
        subject: Subject,
        action: str,
        instance: Instance | None,
        reason: str | None,
    ) -> None:
        self.service = service
        self.definition = definition
        self.subject = subject
        self.action = action
        self.instance = instance
        self.reason = reason
        self.from_state = instance.state if instance is not None else None
        self.actor: User | None = None
        self.evidence: dict[str, Any] = {}
        self.last_failure: str | None = None
        self.lease: StepLease | None = None  # held while this attempt has a step in flight

    # the steps of an attempt ---------------------------------------------------------------

    def identify(self) -> User:
        """The Procore user behind the token."""
        with self.remote_failures():
            self.actor = self.service.permissions.actor()
        return self.actor

    def check_permissions(self, requirement: Requirement, project_id: int) -> dict[str, Any]:
        """Read the levels the requirement needs; refuse (audited) if any is missing."""
        with self.remote_failures():
            granted = self.service.permissions.granted(requirement, project_id)
        self.evidence["permissions"] = granted
        self.evidence["required"] = requirement.as_dict(self.definition.checks)
        if gaps := requirement.missing(granted):
            who = self.actor.login if self.actor else "this user"
            self.refuse(
                f"Refused: {who} may not {self.action} (needs {'; '.join(gaps)})."
                f" Next: {self._next_listing()}."
            )
        return granted

    def bind(self, instance: Instance, *, lease: StepLease | None = None) -> None:
        self.instance = instance
        self.lease = lease
        if lease is not None:
            lease.on_renew = self._renewed

    def _renewed(self, instance: Instance) -> None:
        self.instance = instance

    def context(
        self, instance: Instance, data: dict[str, Any] | None
    ) -> StepContext[Any, Any]:
        remotes = self.service.remotes
        unlinking = remotes.unlinking
        if self.service.waiter is not None:
            unlinking = replace(unlinking, wait=self.service.waiter)
        return StepContext(
            procore=remotes.procore,
            erp=remotes.erp,
            company_id=instance.company_id,
            project_id=instance.project_id,
            subject_id=instance.subject_id,
            remote_ref=instance.remote_ref,
            snapshot=instance.snapshot,
            results=instance.results,
            data=data,
            idempotency_key=instance.in_flight_key or "",
            evidence=self.evidence,
            unlinking=unlinking,
            workflow_id=instance.id,
        )

    # audit ---------------------------------------------------------------------------------

    def record(
        self,
        conn: Connection,
        outcome: str,
        message: str,
        *,
        to_state: str | None = None,
        actor: User | None = None,
        **evidence: Any,
    ) -> dict[str, Any]:
        """Append this attempt's entry in the caller's transaction."""
        actor = actor or self.actor
        instance = self.instance
        from_state = self.from_state
        self.evidence.update(evidence)
        self.evidence["calls"] = self.evidence.get("calls", []) + self._drain_calls()
        fingerprint = self.service.policy_fingerprints.get(self.definition.name)
        if fingerprint is not None:
            self.evidence["policy_fingerprint"] = fingerprint
        subject = self.subject
        remote_ref = instance.remote_ref if instance else {}
        fields = {
            "format": AUDIT_FORMAT,
            "workflow_id": instance.id if instance else None,
            "workflow": self.definition.name,
            "workflow_version": self.definition.version,
            "company_id": subject.company_id,
            "project_id": subject.project_id,
            "subject_type": subject.type,
            "subject_id": subject.id,
            **self.definition.subject.audit_fields(subject.id, remote_ref),
            "actor_id": actor.id if actor else None,
            "actor_login": actor.login if actor else None,
            "actor_name": actor.name if actor else None,
            "action": self.action,
            "from_state": from_state,
            "to_state": to_state if to_state is not None else from_state,
            "outcome": outcome,
            "message": message,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }
        entry = self.service.audit.append(conn, fields)
        self.evidence["calls"] = []
        return entry

    def refuse(
        self, message: str, *, alert: bool = False, error: type[EngineError] = Refused
    ) -> NoReturn:
        """Audit a refusal and raise it. A step this attempt put in flight is released when
        provably nothing was sent; any other lease it holds is given up, the step staying in
        flight."""
        self._finish("refused", message, release=self.may_release)
        raise error(message, workflow=self._outcome_view("refused", message), alert=alert,
                    step=self.action)

    def fail_and_release(self, why: str) -> NoReturn:
        """The remote system could not be reached before anything was sent: audit, and release
        the step this attempt put in flight. A step in flight that is not this attempt's to
        release stays in flight, and the message says what settles it."""
        instance = self.instance
        if instance is not None and instance.in_flight_step is not None and not self.may_release:
            message = (
                f"Failed: {why}. {instance.in_flight_step} stays in flight:"
                f" run `relink resume {instance.id}` when the remote systems answer."
            )
        else:
            message = f"Failed: {why}. Nothing changed; safe to run again."
        self._finish("failed", message, release=self.may_release)
        raise Unavailable(message, workflow=self._outcome_view("failed", message),
                          step=self.action)

    def not_yet(self, message: str) -> NoReturn:
        """The step waits for something outside relink that has not happened (the operator's
        Unlink click): audited as failed, the step released when nothing was sent (else left in
        flight for resume); exit 3, and the same command once it has happened."""
        if not self.may_release and self.lease is not None:
            self.lease.active = False
        self._finish("failed", message, release=self.may_release)
        raise Unavailable(message, workflow=self._outcome_view("failed", message),
                          step=self.action)

    def fail_unknown(self, why: str) -> NoReturn:
        """A write left the machine unanswered and nothing can tell yet whether it landed: the
        step stays in flight, and this process's lease runs to its end, so that the write has
        arrived (or never will) before ``relink resume`` reads the remote systems."""
        instance = self.instance
        wid = instance.id if instance else ""
        after = f" after {instance.in_flight_lease_until}" if instance else ""
        message = (
            f"Failed: {why}. The outcome is unknown: the step stays in flight;"
            f" run `relink resume {wid}`{after} to settle it from what the remote systems say."
        )
        if self.lease is not None:
            self.lease.active = False  # keep the lease: it covers the write still travelling
        self._finish("failed", message, release=False)
        raise Unavailable(message, workflow=self._outcome_view("failed", message),
                          step=self.action)

    @property
    def may_release(self) -> bool:
        """This attempt put the step in flight and provably sent nothing that could change a
        remote system (no write left the machine, or each one was answered with a refusal)."""
        lease = self.lease
        return (
            lease is not None
            and lease.active
            and lease.sent_by_owner
            and lease.sent_nothing
            and self.instance is not None
            and self.instance.in_flight_step is not None
        )

    def _finish(self, outcome: str, message: str, *, release: bool) -> None:
        """Audit the end of this attempt; release the step, or give up the lease it holds.

        If the row moved on meanwhile (another operator settled the step after the lease ran
        out), the entry is still written and says so."""
        lease = self.lease
        with self.service.db.write() as conn:
            instance = self.instance
            if instance is not None and lease is not None and lease.active:
                lease.active = False
                ended = lease.ending()
                values = NOT_IN_FLIGHT | {"updated_at": ended["in_flight_lease_until"]}
                written = self.service.store.update(
                    conn, instance.id, instance.revision, values if release else ended
                )
                if written is None:
                    self.evidence["overtaken"] = True
                    message += (
                        " Another operator settled the step meanwhile (this lease had run out)."
                    )
            self.record(conn, outcome, message)
        if self.instance is not None:
            self.instance = self.service._reload(self.instance.id)

    # remote failures -----------------------------------------------------------------------

    @contextlib.contextmanager
    def remote_failures(self, *, in_flight: bool = False, settling: bool = False) -> Iterator[None]:
        """Translate what the remote systems and the workflow's rules say into audited outcomes.

        Outside a step in flight an unavailable remote is audited as failed (nothing changed).
        Inside one, the caller first asks the remote systems whether the change landed
        (``settling``); if even that cannot be answered the step stays in flight.
        """
        try:
            yield
        except Rejected as exc:
            self._unless_landed(exc.message, in_flight and not settling)
            self.refuse(exc.message, alert=exc.alert)
        except RemoteRejectedCredentials as exc:
            self._unless_landed(exc.message, in_flight and not settling)
            self.refuse(
                f"Refused: {exc.message}.",
                error=CredentialsRejected,
            )
        except (RemoteRefused, RemoteNotFound) as exc:
            self._unless_landed(exc.message, in_flight and not settling)
            self.refuse(refused_by(self._system(exc), exc.message) + self._way_out())
        except RemoteUnavailable as exc:
            self.last_failure = exc.message
            if in_flight and not settling:
                raise Unavailable(exc.message) from exc
            if settling:
                message = (
                    f"Failed: {exc.message}. The step stays in flight: run"
                    f" `relink resume {self.instance.id if self.instance else ''}` later."
                )
                self._finish("failed", message, release=False)
                raise Unavailable(
                    message, workflow=self._outcome_view("failed", message), step=self.action
                ) from exc
            self.fail_and_release(exc.message)
        except RemoteError as exc:  # pragma: no cover - every subclass is handled above
            self.fail_and_release(exc.message)

    def _unless_landed(self, why: str, acting: bool) -> None:
        """A refusal heard after a write may have landed does not say the step did not happen:
        the caller settles it by probe instead (Unavailable)."""
        if acting and self.lease is not None and self.lease.maybe_landed:
            self.last_failure = why
            raise Unavailable(why)

    # results -------------------------------------------------------------------------------

    def result(self, message: str, *, written: Instance | None = None) -> Outcome:
        """The attempt succeeded: its outcome, with the instance as stored (``written`` by the
        caller's last transaction, else read again)."""
        if written is not None:
            self.instance = written
        elif self.instance is not None:
            self.instance = self.service._reload(self.instance.id)
        shown = view(self.instance, self.definition) if self.instance else {}
        return Outcome(
            kind="succeeded",
            message=message,
            state_before=self.from_state,
            state_after=self.instance.state if self.instance else None,
            next=tuple(shown.get("next", ())),
            instance=shown,
            evidence=dict(self.evidence),
        )

    def _outcome_view(self, outcome: str, message: str) -> dict[str, Any]:
        base = view(self.instance, self.definition) if self.instance else {}
        return base | {"outcome": outcome, "message": message}

    def _way_out(self) -> str:
        """What to do about a remote refusal: run the step again once it is fixed there, or
        (where the workflow has it) abandon the correction."""
        instance = self.instance
        step = self.definition.step(self.action)
        if instance is None or step is None or step.way_out:
            return ""
        ways_out = [
            step.name for step in self.definition.steps
            if step.way_out and machine_for(self.definition).allows(instance.state, step.name)
        ]
        out = "".join(
            f" or give up with `relink {name} {instance.id} --reason ...`" for name in ways_out
        )
        return f" Next: fix it there and run {self.action} again{out}."

    def _next_listing(self) -> str:
        if self.instance is None:
            return "start"
        steps = machine_for(self.definition).next_steps(self.instance.state)
        return ", ".join(steps) if steps else "none"

    def _drain_calls(self) -> list[dict[str, Any]]:
        remotes = self.service._remotes
        return remotes.drain_calls() if remotes is not None else []

    def _system(self, exc: RemoteError) -> str:
        if exc.system == "procore":
            return "Procore"
        remotes = self.service._remotes
        if remotes is not None and remotes.erp_connector is not None:
            return remotes.erp_connector.product_name
        return exc.system


def refused_by(system: str, said: str) -> str:
    """``Refused by <system>: <what it said>``, naming the system once: the words of a client
    that already name it (``Xero: ...``, ``Procore found no ...``) are not prefixed with it
    again. It ends as a sentence, before what to do next."""
    said = said.strip()
    if not said.endswith((".", "!", "?")):
        said += "."
    if said.startswith(f"{system}: "):
        said = said[len(system) + 2:]
    elif said.startswith((f"{system} ", f"{system}'s ")):
        return f"Refused: {said}"
    return f"Refused by {system}: {said}"
