"""What a use case that acts (start, advance, resume) ended with, as data.

The engine says what happened; the CLI layer decides how it looks (colours, tables) and what
the process exits with (commands/app.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["succeeded", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """``kind`` and ``message`` of one attempt, the instance's state before and after it, the
    steps allowed next, the evidence it recorded, and the instance as ``show`` returns it
    (empty when there is none)."""

    kind: Kind
    message: str
    state_before: str | None
    state_after: str | None
    next: tuple[str, ...]
    instance: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> int | None:
        """The instance's id (None when the attempt made none)."""
        found = self.instance.get("id")
        return None if found is None else int(found)

    @property
    def state(self) -> str | None:
        return self.state_after

    def document(self) -> dict[str, Any]:
        """spec/cli.md's JSON of a step command: the instance, ``outcome`` and ``message``."""
        return dict(self.instance) | {"outcome": self.kind, "message": self.message}
