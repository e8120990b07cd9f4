"""The one place the `transitions` library is used.

One shared machine per workflow definition (``auto_transitions=False``, callables not strings);
each decision attaches a throw-away model at the instance's current state, fires the step with its
guards as conditions, reads the destination and detaches the model again.
"""

from __future__ import annotations

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
        self._order = [step.name for step in definition.steps]
        # (state, step) -> destination, learnt from the machine's first successful decision;
        # later ones only re-check the guard (the same one the machine runs)
        self._destinations: dict[tuple[str, str], str] = {}

    def next_steps(self, state: str) -> list[str]:
        """The steps allowed from ``state``, in definition order."""
        return _next_steps(self, state)

    def decide(
        self, state: str, step: str, requirement: Requirement, granted: Mapping[str, Any]
    ) -> str:
        """The state ``step`` leads to from ``state``; raises OutOfOrder or NotPermitted."""
        known = self._destinations.get((state, step))
        if known is not None:
            if gaps := requirement.missing(granted):
                raise NotPermitted(gaps)
            return known
        token = _Token()
        self._machine.add_model(token, initial=state)
        try:
            token.trigger(step, requirement=requirement, granted=granted)  # type: ignore[attr-defined]
        except (MachineError, AttributeError) as exc:
            raise OutOfOrder(step) from exc
        finally:
            self._machine.remove_model(token)
        self._destinations[(state, step)] = token.state
        return token.state

    def diagram(self, fmt: str = "mermaid") -> str:
        """The definition drawn by transitions' diagram support: mermaid or graphviz dot source."""
        from transitions.extensions.diagrams import GraphMachine

        token = _Token()
        GraphMachine(
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
        graph = token.get_graph()  # type: ignore[attr-defined]
        if fmt != "mermaid":
            return str(graph.source)
        finals = "".join(
            f"  {state} --> [*]\n"
            for state in self.definition.states
            if state in self.definition.finals
        )
        return str(graph.draw(None)).rstrip("\n") + "\n" + finals.rstrip("\n")


@cache
def _next_steps(machine: WorkflowMachine, state: str) -> list[str]:
    triggers = set(machine._machine.get_triggers(state))
    return [name for name in machine._order if name in triggers]


_MACHINES: dict[str, WorkflowMachine] = {}


def machine_for(definition: WorkflowDefinition) -> WorkflowMachine:
    """The shared machine of a definition."""
    machine = _MACHINES.get(definition.name)
    if machine is None or machine.definition is not definition:
        machine = _MACHINES[definition.name] = WorkflowMachine(definition)
    return machine
