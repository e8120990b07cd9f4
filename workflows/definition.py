"""The vocabulary workflow definitions are written in, and their validation."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from workflows.errors import DefinitionError
from workflows.unlinking import Unlinking

# The remote operations a workflow's steps call: each workflow declares the narrow protocols it
# needs of Procore (P) and of the ERP (E); the engine hands it the configured clients.
P = TypeVar("P")
E = TypeVar("E")

LEVELS = ("None", "Read Only", "Standard", "Admin")

PROJECT, COMPANY = "project", "company"
TOOLS: dict[str, tuple[str, str]] = {
    # Procore tool name (as `GET /rest/v1.0/settings/permissions` names it) -> where its level is
    # read, and Procore's label for it
    "commitments": (PROJECT, "Commitments"),
    "prime_contracts": (PROJECT, "Prime Contracts"),
    "change_orders": (PROJECT, "Change Orders"),
    "erp_integrations": (COMPANY, "ERP Integrations"),
}
PRIVILEGES: dict[str, str] = {
    # named privileges of the company user, and Procore's label for each
    "can_push_to_accounting": "Can Push to Accounting",
}


@dataclass(frozen=True, slots=True)
class Requirement:
    """The permissions a step needs, as data: Procore tools with the access levels accepted
    (a tool not named is not checked) and named privileges that must be granted."""

    tools: tuple[tuple[str, frozenset[str]], ...] = ()
    privileges: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, privileges: Iterable[str] = (), **tools: Iterable[str]) -> Requirement:
        """``Requirement.of(commitments={"Admin"}, privileges={"can_push_to_accounting"})``;
        raises ValueError naming an unknown tool, level or privilege."""
        for tool, levels in tools.items():
            if tool not in TOOLS:
                raise ValueError(f"unknown Procore tool {tool!r} (tools: {', '.join(TOOLS)})")
            if any(level not in LEVELS for level in levels):
                raise ValueError(f"{tool} must be a list of {', '.join(LEVELS)}")
        if unknown := set(privileges) - set(PRIVILEGES):
            raise ValueError(f"unknown privilege(s) {', '.join(sorted(unknown))}")
        checked = tuple(
            (tool, frozenset(tools[tool])) for tool in TOOLS if tools.get(tool)
        )
        return cls(checked, frozenset(privileges))

    def levels(self, tool: str) -> frozenset[str]:
        """The levels accepted on ``tool`` (empty: not checked)."""
        return next((levels for name, levels in self.tools if name == tool), frozenset())

    @property
    def checks(self) -> tuple[str, ...]:
        """The tools and privileges this requirement checks, tools first."""
        return (*(tool for tool, _ in self.tools), *sorted(self.privileges))

    def missing(self, granted: Mapping[str, Any]) -> list[str]:
        """Human phrases for what ``granted`` lacks (empty when everything is there)."""
        gaps = [
            f"{TOOLS[tool][1]} {_either(levels)} (has {granted.get(tool)})"
            for tool, levels in self.tools
            if granted.get(tool) not in levels
        ]
        gaps += [
            PRIVILEGES[name] for name in sorted(self.privileges) if granted.get(name) is not True
        ]
        return gaps

    def loosens(self, default: Requirement) -> list[str]:
        """What this requirement accepts that ``default`` does not, in Procore's words (empty
        when it is as strict as ``default`` or stricter): a level ``default`` refuses, a tool
        ``default`` checks left unchecked, or a privilege no longer required."""
        gains = []
        for tool, theirs in default.tools:
            mine = self.levels(tool)
            if not mine:
                gains.append(f"{TOOLS[tool][1]} not checked")
            elif extra := mine - theirs:
                gains.append(f"{TOOLS[tool][1]} {_either(frozenset(extra))}")
        gains += [f"no {PRIVILEGES[name]}" for name in sorted(default.privileges - self.privileges)]
        return gains

    def as_dict(self, checks: Iterable[str] = ()) -> dict[str, Any]:
        """Tool -> accepted levels (lowest first), privilege -> required; ``checks`` names tools
        and privileges to list even when this requirement leaves them out (a definition lists
        everything it checks anywhere, so its requirements read alike)."""
        names = [*self.checks, *(name for name in checks if name not in self.checks)]
        shown: dict[str, Any] = {}
        for name in names:
            if name in PRIVILEGES:
                shown[name] = name in self.privileges
            else:
                shown[name] = sorted(self.levels(name), key=LEVELS.index)
        return shown

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Requirement:
        """Build a requirement from config data (the four-eyes keys of a policy table set
        aside: :data:`APPROVAL_KEYS`); raises ValueError with a readable reason."""
        raw = {key: value for key, value in raw.items() if key not in APPROVAL_KEYS}
        unknown = set(raw) - set(TOOLS) - set(PRIVILEGES)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        tools: dict[str, frozenset[str]] = {}
        privileges = set()
        for key, value in raw.items():
            if key in PRIVILEGES:
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                if value:
                    privileges.add(key)
            elif not isinstance(value, list) or any(v not in LEVELS for v in value):
                raise ValueError(f"{key} must be a list of {', '.join(LEVELS)}")
            else:
                tools[key] = frozenset(value)
        return cls.of(privileges=privileges, **tools)


# Four-eyes keys of a ``[policy.<workflow>.<step>]`` table: the step then runs only with a
# second person's approval (``approver``: the permissions the approver needs, by default the
# step's own; ``approval_minutes``: how long an approval stays valid). A table holding only
# these keys leaves the step's own requirement as it is.
APPROVAL_KEYS = ("require_approval", "approver", "approval_minutes")


def sets_requirement(raw: Mapping[str, Any]) -> bool:
    """Whether a policy table replaces the step's requirement (not only its approval)."""
    return any(key not in APPROVAL_KEYS for key in raw)


def _either(levels: frozenset[str]) -> str:
    return " or ".join(sorted(levels, key=LEVELS.index))


@dataclass(slots=True)
class StepContext(Generic[P, E]):
    """What a step's action sees: the remote systems and the instance it works on.

    ``subject_id`` names the subject (a requisition, a commitment...) as text; ``remote_ref``
    holds what opening learnt about it (e.g. the ERP's id of its transaction); ``results``
    what earlier steps recorded."""

    procore: P
    erp: E
    company_id: int
    project_id: int
    subject_id: str
    remote_ref: dict[str, Any]
    snapshot: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    idempotency_key: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    unlinking: Unlinking = field(default_factory=Unlinking)
    workflow_id: int | None = None


@dataclass(slots=True)
class OpeningContext(Generic[P, E]):
    """What opening sees: the remote systems and the subject named by the operator."""

    procore: P
    erp: E
    company_id: int
    project_id: int
    subject_id: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Opened:
    """What opening read: the snapshot kept for the instance's life, the remote reference
    (e.g. ``{"erp_bill_id": "183"}``) and how the operator is told (``label``)."""

    snapshot: dict[str, Any]
    remote_ref: dict[str, Any]
    label: str


@dataclass(frozen=True, slots=True)
class Found:
    """A subject as a search in Procore finds it: its id, project, the number operators know it
    by, whether it is linked to the ERP (``linked``), what a listing shows of it (``fields``, by
    Procore's names) and a few words telling it apart from others (``summary``)."""

    id: str
    project_id: int
    number: str | None
    linked: bool
    fields: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


# searches the subjects of a project with the workflow's filters (``Subject.filters``, by name)
Finder = Callable[[OpeningContext[Any, Any], Mapping[str, Any]], list[Found]]
# the subject named by the context as found, and the subjects that must be unwound before it may
# be corrected, and re-entered as they were after it: most recent first
Blocking = Callable[[OpeningContext[Any, Any]], tuple[Found, list[Found]]]


def _no_fields(subject_id: str, remote_ref: Mapping[str, Any],
               results: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Subject:
    """What a workflow corrects and how an instance of it opens.

    ``open`` reads the subject and returns what to keep, or raises Rejected with the reason it
    cannot be corrected; ``fields`` maps an instance's subject to the named fields its views
    and audit entries carry (e.g. ``invoice_id``); ``audit_fields`` those an audit entry
    carries among ``invoice_id`` and ``erp_bill_id`` (audit.md).

    Optional, for operators working at scale: ``find`` searches Procore for subjects of a
    project with the filters named in ``filters`` (``number`` resolves what operators call a
    subject to its id); ``blocking`` names the subjects Procore keeps in the way of correcting
    this one (e.g. the later invoices of a commitment), which a plan unwinds first and
    re-enters as they were after it."""

    type: str
    noun: str
    open: Callable[[OpeningContext[Any, Any]], Opened]
    fields: Callable[[str, Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] = _no_fields
    audit_fields: Callable[[str, Mapping[str, Any]], dict[str, Any]] = (
        lambda subject_id, remote_ref: {}
    )
    find: Finder | None = None
    filters: tuple[str, ...] = ()
    blocking: Blocking | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's outcome: the operator's message and the values it recorded."""

    message: str
    changes: dict[str, Any] = field(default_factory=dict)


Action = Callable[[StepContext[Any, Any]], StepResult]
Probe = Callable[[StepContext[Any, Any]], StepResult | None]
OrderCheck = Callable[[StepContext[Any, Any]], str | None]
Preview = Callable[[dict[str, Any], dict[str, Any]], "Previewed"]


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
    # for a step taking --data: (what would be written without the data, what will be written
    # with it), both from the snapshot; the engine shows their difference before the step runs
    preview: Preview | None = None
    # a way out of the procedure (abandon): allowed where its sources say, never listed as next
    way_out: bool = False

    @property
    def durable(self) -> bool:
        return self.probe is not None


@dataclass(frozen=True, slots=True)
class Previewed:
    """What a step taking --data will write: ``before`` (as it would be written without the
    data), ``after`` (with it) and warnings for the operator (e.g. a total changing sign)."""

    before: dict[str, Any]
    after: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def changes(self) -> list[dict[str, Any]]:
        """Field-by-field difference: ``[{"field", "before", "after"}]``, nested fields
        flattened (``items[1].work_completed_this_period``)."""
        from integrations.shape import flatten  # not on the start-up path

        old, new = flatten(self.before), flatten(self.after)
        return [
            {"field": key, "before": old.get(key), "after": new.get(key)}
            for key in dict.fromkeys([*old, *new])
            if old.get(key) != new.get(key)
        ]


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
    subject: Subject
    description: str = ""
    # earlier versions whose instances run under this one (it keeps their states and steps and
    # only adds to them, e.g. a way out): an instance then records this version from its next
    # step on
    supersedes: frozenset[int] = frozenset()
    # validates a step's --data document and returns it as the step sees it; raises ValueError
    # (its message names the field) when the remote system would not accept it
    data: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def requirement(self, step: str) -> Requirement | None:
        """The default requirement of ``step`` (``start`` included), None for no such step."""
        if step == "start":
            return self.opening.requirement
        found = self.step(step)
        return found.requirement if found else None

    def reachable_from(self, state: str) -> set[str]:
        """Every state a sequence of steps can lead to from ``state`` (itself included)."""
        reachable = {state}
        frontier = [state]
        while frontier:
            here = frontier.pop()
            for step in self.steps:
                if here in step.sources and step.dest not in reachable:
                    reachable.add(step.dest)
                    frontier.append(step.dest)
        return reachable

    def ahead(self, state: str, step: str) -> bool:
        """Whether ``step`` can still come later from ``state`` (it is early, not stale)."""
        found = self.step(step)
        return found is not None and bool(set(found.sources) & self.reachable_from(state))

    @property
    def requirements(self) -> dict[str, Requirement]:
        """Step name -> default requirement, ``start`` first."""
        return {"start": self.opening.requirement} | {s.name: s.requirement for s in self.steps}

    @property
    def checks(self) -> tuple[str, ...]:
        """Every tool and privilege this workflow checks somewhere, in vocabulary order."""
        used = {name for r in self.requirements.values() for name in r.checks}
        return tuple(name for name in (*TOOLS, *PRIVILEGES) if name in used)

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
        reachable = self.reachable_from(self.initial)
        if any(s.needs_data for s in self.steps) and self.data is None:
            raise DefinitionError(f"{self.name}: a step takes --data but no data model is set")
        if not self.subject.type or not self.subject.type.isidentifier():
            raise DefinitionError(f"{self.name}: subject type must be an identifier")
        if unreachable := names - reachable:
            raise DefinitionError(
                f"{self.name}: unreachable state(s) {', '.join(sorted(unreachable))}"
            )
        for state in names - self.finals:
            if not any(state in s.sources for s in self.steps):
                raise DefinitionError(f"{self.name}: non-final state {state} has no way out")
