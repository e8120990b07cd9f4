"""The registry of workflow definitions; a definition is validated when registered."""

from __future__ import annotations

from workflows.definition import WorkflowDefinition
from workflows.errors import DefinitionError

_REGISTRY: dict[str, WorkflowDefinition] = {}


def register(definition: WorkflowDefinition) -> WorkflowDefinition:
    definition.validate()
    if definition.name in _REGISTRY and _REGISTRY[definition.name] is not definition:
        raise DefinitionError(f"workflow {definition.name!r} is already registered")
    _REGISTRY[definition.name] = definition
    return definition


def get(name: str) -> WorkflowDefinition:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(name) from None


def all_definitions() -> list[WorkflowDefinition]:
    _load_builtins()
    return sorted(_REGISTRY.values(), key=lambda d: d.name)


def _load_builtins() -> None:
    import workflows.subcontractor_invoice  # noqa: F401  (registers itself)
