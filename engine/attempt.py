"""One attempt at an action: who tried it, what was read, and its audit entries.

Every way an attempt can end — succeeded, refused, failed — goes through here, so none of them
escapes the audit log. Remote errors are translated into engine errors at this boundary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy.engine import Connection

from engine.errors import (
    Conflict,
    CredentialsRejected,
    EngineError,
    Refused,
    Unavailable,
)
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
from workflows.definition import Requirement, StepContext
from workflows.errors import Rejected

if TYPE_CHECKING:
    from engine.service import CorrectionService


class Attempt:
    """An operator's attempt at ``action`` on a subject (and, once it exists, an instance)."""

    def __init__(
        self,
        service: CorrectionService,
        subject: dict[str, Any],
        action: str,
        instance: Instance | None,
        reason: str | None,
    ) -> None:
        self.service = service
        self.subject = subject
        self.action = action
        self.instance = instance
        self.reason = reason
        self.from_state = instance.state if instance is not None else None
        self.actor: User | None = None
        self.evidence: dict[str, Any] = {}
        self.style = "refusal"
        self.last_failure: str | None = None
        self.holds_in_flight = False  # True once this attempt put the step in flight (or resumes)

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
        self.evidence["required"] = requirement.as_dict()
        if gaps := requirement.missing(granted):
            who = self.actor.login if self.actor else "this user"
            self.refuse(
                f"Refused: {who} may not {self.action} (needs {'; '.join(gaps)})."
                f" Next: {self._next_listing()}."
            )
        return granted

    def bind(self, instance: Instance, *, holds_in_flight: bool = False) -> None:
        self.instance = instance
        self.holds_in_flight = holds_in_flight

    def context(self, instance: Instance, data: dict[str, Any] | None) -> StepContext:
        remotes = self.service.remotes
        return StepContext(
            procore=remotes.procore,
            erp=remotes.erp,
            company_id=instance.company_id,
            project_id=instance.project_id,
            invoice_id=instance.invoice_id,
            erp_bill_id=instance.erp_bill_id,
            snapshot=instance.snapshot,
            data=data,
            idempotency_key=instance.in_flight_key or "",
            evidence=self.evidence,
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
        fields = {
            "workflow_id": instance.id if instance else None,
            "workflow": self.service.definition.name,
            "workflow_version": instance.version if instance else self.service.definition.version,
            **self.subject,
            "erp_bill_id": instance.erp_bill_id if instance else None,
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
        self, message: str, *, style: str = "refusal", error: type[EngineError] = Refused
    ) -> NoReturn:
        """Audit a refusal (releasing a step this attempt holds in flight) and raise it."""
        self._finish("refused", message, release=self._holding())
        raise error(message, workflow=self._outcome_view("refused", message), style=style)

    def fail_and_release(self, why: str) -> NoReturn:
        message = f"Failed: {why}. Nothing changed; safe to run again."
        self._finish("failed", message, release=self._holding())
        raise Unavailable(message, workflow=self._outcome_view("failed", message))

    def _finish(self, outcome: str, message: str, *, release: bool) -> None:
        with self.service.db.write() as conn:
            instance = self.instance
            if (
                release
                and instance is not None
                and not self.service.store.update(
                    conn, instance.id, instance.revision, NOT_IN_FLIGHT
                )
            ):
                raise Conflict(f"correction {instance.id} changed meanwhile")
            self.record(conn, outcome, message)
        if self.instance is not None:
            self.instance = self.service._reload(self.instance.id)

    def _holding(self) -> bool:
        return (
            self.holds_in_flight
            and self.instance is not None
            and self.instance.in_flight_step is not None
        )

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
            self.refuse(exc.message, style=exc.style)
        except RemoteRejectedCredentials as exc:
            self.refuse(
                f"Refused: {exc.message}.",
                error=CredentialsRejected,
            )
        except (RemoteRefused, RemoteNotFound) as exc:
            self.refuse(f"Refused by {self._system(exc)}: {exc.message}")
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
                    message, workflow=self._outcome_view("failed", message)
                ) from exc
            self.fail_and_release(exc.message)
        except RemoteError as exc:  # pragma: no cover - every subclass is handled above
            self.fail_and_release(exc.message)

    # results -------------------------------------------------------------------------------

    def result(
        self, outcome: str, message: str, *, written: Instance | None = None
    ) -> dict[str, Any]:
        """The outcome with the instance as stored: ``written`` by the caller's last
        transaction, else read again."""
        if written is not None:
            self.instance = written
        elif self.instance is not None:
            self.instance = self.service._reload(self.instance.id)
        return self._outcome_view(outcome, message) | {"style": self.style}

    def _outcome_view(self, outcome: str, message: str) -> dict[str, Any]:
        base = view(self.instance, self.service.machine) if self.instance else {}
        return base | {"outcome": outcome, "message": message}

    def _next_listing(self) -> str:
        if self.instance is None:
            return "start"
        steps = self.service.machine.next_steps(self.instance.state)
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
