"""The vocabulary workflow definitions are written in, and their validation."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workflows.errors import DefinitionError

if TYPE_CHECKING:
    from integrations.base import ERPConnector, ProcoreAPI

LEVELS = ("None", "Read Only", "Standard", "Admin")


@dataclass(frozen=True, slots=True)
class Requirement:
    """The permissions a step needs. An empty level set means the tool is not checked."""

    commitments: frozenset[str] = frozenset()
    erp_integrations: frozenset[str] = frozenset()
    can_push_to_accounting: bool = False

    def missing(self, granted: Mapping[str, Any]) -> list[str]:
        """Human phrases for what ``granted`` lacks (empty when everything is there)."""
        gaps = []
        if self.commitments and granted.get("commitments") not in self.commitments:
            gaps.append(
                f"Commitments {_either(self.commitments)} (has {granted.get('commitments')})"
            )
        if self.erp_integrations and granted.get("erp_integrations") not in self.erp_integrations:
            gaps.append(
                f"ERP Integrations {_either(self.erp_integrations)}"
                f" (has {granted.get('erp_integrations')})"
            )
        if self.can_push_to_accounting and granted.get("can_push_to_accounting") is not True:
            gaps.append("Can Push to Accounting")
        return gaps

    def loosens(self, default: Requirement) -> list[str]:
        """What this requirement accepts that ``default`` does not, in Procore's words (empty
        when it is as strict as ``default`` or stricter): a level ``default`` refuses, a tool
        ``default`` checks left unchecked, or Can Push to Accounting no longer required."""
        gains = []
        for tool, label in (("commitments", "Commitments"),
                            ("erp_integrations", "ERP Integrations")):
            mine, theirs = getattr(self, tool), getattr(default, tool)
            if not theirs:
                continue  # the default does not check this tool: nothing to loosen
            if not mine:
                gains.append(f"{label} not checked")
            elif extra := mine - theirs:
                gains.append(f"{label} {_either(frozenset(extra))}")
        if default.can_push_to_accounting and not self.can_push_to_accounting:
            gains.append("no Can Push to Accounting")
        return gains

    def as_dict(self) -> dict[str, Any]:
        return {
            "commitments": sorted(self.commitments, key=LEVELS.index),
            "erp_integrations": sorted(self.erp_integrations, key=LEVELS.index),
            "can_push_to_accounting": self.can_push_to_accounting,
        }

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Requirement:
        """Build a requirement from config data; raises ValueError with a readable reason."""
        unknown = set(raw) - {"commitments", "erp_integrations", "can_push_to_accounting"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        levels: dict[str, frozenset[str]] = {}
        for tool in ("commitments", "erp_integrations"):
            value = raw.get(tool, [])
            if not isinstance(value, list) or any(v not in LEVELS for v in value):
                raise ValueError(f"{tool} must be a list of {', '.join(LEVELS)}")
            levels[tool] = frozenset(value)
        push = raw.get("can_push_to_accounting", False)
        if not isinstance(push, bool):
            raise ValueError("can_push_to_accounting must be true or false")
        return cls(levels["commitments"], levels["erp_integrations"], push)


def _either(levels: frozenset[str]) -> str:
    return " or ".join(sorted(levels, key=LEVELS.index))


@dataclass(slots=True)
class StepContext:
    """What a step's action sees: the remote systems and the correction it works on."""

    procore: ProcoreAPI
    erp: ERPConnector
    company_id: int
    project_id: int
    invoice_id: int
    erp_bill_id: str | None
    snapshot: dict[str, Any]
    data: dict[str, Any] | None = None
    idempotency_key: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's outcome: the operator's message and the values it recorded."""

    message: str
    style: str = "success"
    changes: dict[str, Any] = field(default_factory=dict)


Action = Callable[[StepContext], StepResult]
Probe = Callable[[StepContext], StepResult | None]
OrderCheck = Callable[[StepContext], str | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One guarded transition.

    ``action`` does the remote work; when ``probe`` is set the step changes a remote system, so
    the engine records it in flight first and ``probe`` (reads only) tells whether the change has
    already happened. ``out_of_order`` may replace the generic out-of-order refusal with a
    domain message (Procore's red unlink message).
    """

    name: str
    sources: tuple[str, ...]
    dest: str
    requirement: Requirement
    action: Action | None = None
    probe: Probe | None = None
    out_of_order: OrderCheck | None = None
    needs_data: bool = False
    summary: str = ""

    @property
    def durable(self) -> bool:
        return self.probe is not None


@dataclass(frozen=True, slots=True)
class Opening:
    """How an instance is created (the ``start`` step): reads the subject, keeps a snapshot."""

    requirement: Requirement
    summary: str = ""


@dataclass(frozen=True)
class WorkflowDefinition:
    """A workflow: its states, initial and final states, steps and opening, with a version."""

    name: str
    version: int
    states: type[enum.StrEnum]
    initial: str
    finals: frozenset[str]
    steps: tuple[Step, ...]
    opening: Opening
    description: str = ""

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def validate(self) -> None:
        """Check the definition is well formed; raise DefinitionError naming what is wrong."""
        names = {str(s) for s in self.states}
        if self.initial not in names:
            raise DefinitionError(f"{self.name}: initial state {self.initial!r} is not a state")
        if not self.finals or not self.finals <= names:
            raise DefinitionError(f"{self.name}: final states must be a non-empty set of states")
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen or step.name == "start":
                raise DefinitionError(
                    f"{self.name}: step name {step.name!r} is reserved or repeated"
                )
            seen.add(step.name)
            for state in (*step.sources, step.dest):
                if state not in names:
                    raise DefinitionError(f"{self.name}: step {step.name} names unknown {state!r}")
            if set(step.sources) & self.finals:
                raise DefinitionError(f"{self.name}: step {step.name} leaves a final state")
            if step.probe is not None and step.action is None:
                raise DefinitionError(f"{self.name}: durable step {step.name} has no action")
        reachable = {self.initial}
        frontier = [self.initial]
        while frontier:
            here = frontier.pop()
            for step in self.steps:
                if here in step.sources and step.dest not in reachable:
                    reachable.add(step.dest)
                    frontier.append(step.dest)
        if unreachable := names - reachable:
            raise DefinitionError(
                f"{self.name}: unreachable state(s) {', '.join(sorted(unreachable))}"
            )
        for state in names - self.finals:
            if not any(state in s.sources for s in self.steps):
                raise DefinitionError(f"{self.name}: non-final state {state} has no way out")
