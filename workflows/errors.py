"""Errors raised by workflow definitions.

::

    WorkflowError          base of this package's errors
    ├── DefinitionError    a definition is malformed (raised at registration time)
    ├── Waiting            a step waits for something outside relink (an Unlink click)
    └── Rejected           a step's own business rule said no at run time (e.g. the bill is
                           still in the ERP); ``alert`` when the message is the remote
                           system's own error (Procore shows it in red)
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Base class of the workflow package's errors."""


class DefinitionError(WorkflowError):
    """A workflow definition is invalid: unknown states, unreachable states, no final state..."""


class Rejected(WorkflowError):
    """A business rule refused the step; ``message`` is what the operator is shown."""

    def __init__(self, message: str, *, alert: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.alert = alert


class Waiting(WorkflowError):
    """The step waits for something outside relink (an operator's click in Procore) that did not
    happen in time, or cannot happen as configured; nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
