"""The registry of workflow definitions; a definition is validated when registered.

Definitions are found through the ``relink.workflows`` entry-point group: relink's own
(``subcontractor-invoice``, ``commitment``) are declared in its pyproject.toml, and any installed
package may add its own the same way (an entry point naming a :class:`WorkflowDefinition`). Each
is loaded only when a command asks for it by name; ``register`` adds one directly (tests, or a
plugin registering several versions).

Every version registered is kept: an instance always runs under the definition it started with.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from workflows.definition import WorkflowDefinition
from workflows.errors import DefinitionError

GROUP = "relink.workflows"

_REGISTRY: dict[tuple[str, int], WorkflowDefinition] = {}
_LOADED: set[str] = set()
_LOADING = threading.RLock()  # threads of one process (a batch) look definitions up at once


def register(definition: WorkflowDefinition) -> WorkflowDefinition:
    """Validate and add ``definition``; the same name and version twice is an error unless it
    is the very same object (a module imported twice)."""
    definition.validate()
    key = (definition.name, definition.version)
    if key in _REGISTRY and _REGISTRY[key] is not definition:
        raise DefinitionError(
            f"workflow {definition.name!r} version {definition.version} is already registered"
        )
    _REGISTRY[key] = definition
    return definition


def get(name: str, version: int | None = None) -> WorkflowDefinition:
    """The definition ``name`` at ``version`` (the latest when None); KeyError when unknown."""
    _load(name)
    versions = sorted(v for (n, v) in _REGISTRY if n == name)
    if not versions or (version is not None and version not in versions):
        raise KeyError(name)
    return _REGISTRY[(name, version if version is not None else versions[-1])]


def running(name: str, version: int) -> WorkflowDefinition:
    """The definition an instance started under ``version`` runs now: the newest registered
    version that supersedes it (keeping its states and steps), else that version itself."""
    get(name, version)  # KeyError when unknown
    newer = [
        definition for (n, v), definition in _REGISTRY.items()
        if n == name and v > version and version in definition.supersedes
    ]
    return max(newer, key=lambda d: d.version) if newer else _REGISTRY[(name, version)]


def names() -> list[str]:
    """Every workflow name known: registered, or declared by an entry point (not loaded)."""
    declared = {point.name for point in entry_points(group=GROUP)}
    return sorted(declared | {name for name, _ in _REGISTRY})


def all_definitions() -> list[WorkflowDefinition]:
    """The latest version of every workflow, by name (loads them all)."""
    return [get(name) for name in names()]


def _load(name: str) -> None:
    """Import the entry point(s) declaring ``name``, once; loading registers the definition."""
    if name in _LOADED:
        return
    with _LOADING:
        if name in _LOADED:
            return
        for point in entry_points(group=GROUP, name=name):
            loaded = point.load()
            versions = loaded if isinstance(loaded, tuple | list) else (loaded,)
            for definition in versions:
                if not isinstance(definition, WorkflowDefinition):
                    raise DefinitionError(
                        f"entry point {point.value} is not a workflow definition"
                        " (or a tuple of its versions)"
                    )
                register(definition)
        _LOADED.add(name)
