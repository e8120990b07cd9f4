"""Errors raised by the engine. The CLI layer maps each class to an exit code of spec/cli.md
(commands/app.py, shown here in brackets); the engine knows none.

::

    EngineError                      base
    ├── UsageError [2]               bad option, unknown id, invalid input or config file
    ├── Refused [1]                  order, permission or business rule said no (audited)
    │   └── CredentialsRejected [1]  the remote system rejected the token
    ├── Unavailable [3]              a remote system could not be reached; nothing changed
    ├── Conflict [4]                 someone else changed the workflow, or a step is in flight
    ├── Interrupted [130]            Ctrl-C stopped a step (audited; the message says what next)
    │   (engine.lease.LeaseLost [4]  this process's lease on its step ran out)
    ├── IntegrityError [5]           audit log failed verification, or schema version mismatch
    │   └── SchemaMismatch [5]
    └── StorageError [5]             the database cannot be used: read-only, not a database,
                                     missing, or the server refused relink's login

Errors raised while a workflow is known carry ``workflow`` (its view as plain data), so the CLI
can still print the workflow document with ``outcome`` and ``message``; ``workflow_id``,
``state`` and ``step`` give that context as attributes.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of the engine's errors. ``alert``: the message is the remote system's own error
    (Procore shows it as an error, not as a refusal)."""

    outcome = "failed"

    def __init__(
        self,
        message: str,
        *,
        workflow: dict[str, Any] | None = None,
        alert: bool = False,
        step: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.workflow = workflow
        self.alert = alert
        self.step = step  # the step (or use case: start, resume) the error ended

    @property
    def workflow_id(self) -> int | None:
        return self.workflow.get("id") if self.workflow else None

    @property
    def state(self) -> str | None:
        """The instance's state when the error was raised (None before it existed)."""
        return self.workflow.get("state") if self.workflow else None


class UsageError(EngineError):
    pass


class Refused(EngineError):
    outcome = "refused"


class CredentialsRejected(Refused):
    """The remote system rejected the operator's credentials."""


class Unavailable(EngineError):
    pass


class Conflict(EngineError):
    outcome = "refused"


class Interrupted(EngineError):
    """Ctrl-C stopped a step; the message says what state the correction is in and what to
    run (audited)."""

    outcome = "failed"


class IntegrityError(EngineError):
    pass


class SchemaMismatch(IntegrityError):
    """The database schema is not at the revision this relink expects."""


class StorageError(EngineError):
    """The database cannot be used as it stands; retrying will not help until someone acts."""
