"""The one place the `transitions` library is used.

One shared machine per workflow definition (``auto_transitions=False``, callables not strings)
decides every step: a decision fires the step on a model standing at the instance's current state,
with the guards as conditions, reads the destination and puts the model back. The models are
transitions' own, one per state, attached once and kept (attaching a model is the costly part).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cache
from typing import Any

from transitions import EventData, Machine, MachineError

from workflows.definition import Requirement, WorkflowDefinition


class OutOfOrder(Exception):
    """The step cannot be taken from the current state."""


class NotPermitted(Exception):
    """A permission guard refused the step; ``gaps`` names what is missing."""

    def __init__(self, gaps: list[str]) -> None:
        super().__init__("; ".join(gaps))
        self.gaps = gaps


class _Token:
    """A model that exists for one decision only."""

    state: str


def _has_permissions(event: EventData) -> bool:
    """Guard of every step: the requirement in force holds for the levels read from Procore."""
    requirement: Requirement = event.kwargs["requirement"]
    granted: Mapping[str, Any] = event.kwargs["granted"]
    if gaps := requirement.missing(granted):
        raise NotPermitted(gaps)
    return True


class WorkflowMachine:
    """Decides steps for every instance of one workflow definition."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=[str(state) for state in definition.states],
            initial=str(definition.initial),
            transitions=[
                {
                    "trigger": step.name,
                    "source": [str(s) for s in step.sources],
                    "dest": str(step.dest),
                    "conditions": [_has_permissions],
                }
                for step in definition.steps
            ],
            auto_transitions=False,
            send_event=True,
            name=definition.name,
        )
        # what "next" lists: the procedure's own steps, not its way out (abandon)
        self._order = [step.name for step in definition.steps if not step.way_out]
        self._models: dict[str, _Token] = {}  # state -> a model standing there
        self._lock = threading.Lock()  # a model serves one decision at a time

    def next_steps(self, state: str) -> list[str]:
        """The steps of the procedure allowed from ``state``, in definition order (a way out
        such as `abandon` is allowed but not listed)."""
        return _next_steps(self, state)

    def allows(self, state: str, step: str) -> bool:
        """Whether ``step`` may be taken from ``state`` (order only, not permissions)."""
        return step in self._machine.get_triggers(state)

    def decide(
        self, state: str, step: str, requirement: Requirement, granted: Mapping[str, Any]
    ) -> str:
        """The state ``step`` leads to from ``state``; raises OutOfOrder or NotPermitted."""
        with self._lock:
            token = self._models.get(state)
            if token is None:
                if state not in self._machine.states:
                    raise OutOfOrder(step)
                token = self._models[state] = _Token()
                self._machine.add_model(token, initial=state)
            try:
                token.trigger(step, requirement=requirement, granted=granted)  # type: ignore[attr-defined]
            except (MachineError, AttributeError) as exc:
                raise OutOfOrder(step) from exc
            destination = token.state
            if destination != state:
                self._machine.set_state(state, model=token)
            return destination

    def diagram(self, fmt: str = "mermaid") -> str:
        """The definition drawn by transitions' diagram support: mermaid or graphviz dot source."""
        from transitions.extensions.diagrams import GraphMachine

        token = _Token()
        drawing = GraphMachine(
            model=token,
            states=[str(state) for state in self.definition.states],
            initial=str(self.definition.initial),
            transitions=[
                {"trigger": s.name, "source": [str(x) for x in s.sources], "dest": str(s.dest)}
                for s in self.definition.steps
            ],
            auto_transitions=False,
            graph_engine="mermaid" if fmt == "mermaid" else "graphviz",
            title=self.definition.name,
            show_state_attributes=False,
        )
        # A definition has no current state: drop the styling GraphMachine gives the model's
        # (it would mark the initial state active, red, as if an instance stood there).
        drawing.model_graphs[id(token)].reset_styling()
        graph = token.get_graph()  # type: ignore[attr-defined]
        if fmt != "mermaid":  # indented with spaces: a tab is shown as \x09 on a terminal
            return str(graph.source).replace("\t", "  ")
        finals = "".join(
            f"  {state} --> [*]\n"
            for state in self.definition.states
            if state in self.definition.finals
        )
        drawn = str(graph.draw(None)).rstrip("\n").splitlines()
        plain = [line for line in drawn if not line.lstrip().startswith(("classDef ", "Class "))]
        return "\n".join(plain) + "\n" + finals.rstrip("\n")


@cache
def _next_steps(machine: WorkflowMachine, state: str) -> list[str]:
    triggers = set(machine._machine.get_triggers(state))
    return [name for name in machine._order if name in triggers]


_MACHINES: dict[tuple[str, int], WorkflowMachine] = {}


def machine_for(definition: WorkflowDefinition) -> WorkflowMachine:
    """The shared machine of a definition."""
    key = (definition.name, definition.version)
    machine = _MACHINES.get(key)
    if machine is None or machine.definition is not definition:
        machine = _MACHINES[key] = WorkflowMachine(definition)
    return machine
