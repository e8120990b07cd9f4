"""Workflow definitions as plain data, and their diagrams."""

from __future__ import annotations

from typing import Any

from engine.errors import UsageError
from engine.machine import machine_for
from workflows.definition import WorkflowDefinition
from workflows.registry import all_definitions, get, names


def _definition(name: str) -> WorkflowDefinition:
    try:
        return get(name)
    except KeyError:
        raise UsageError(
            f"unknown workflow {name!r} (workflows: {', '.join(names())})"
        ) from None


def describe(name: str) -> dict[str, Any]:
    definition = _definition(name)
    return {
        "name": definition.name,
        "version": definition.version,
        "description": definition.description,
        "subject_type": definition.subject.type,
        "states": [str(s) for s in definition.states],
        "initial": str(definition.initial),
        "finals": sorted(str(s) for s in definition.finals),
        "steps": [
            {
                "name": "start",
                "from": [],
                "to": str(definition.initial),
                "requires": definition.opening.requirement.as_dict(definition.checks),
                "summary": definition.opening.summary,
                "durable": False,
            }
        ]
        + [
            {
                "name": step.name,
                "from": [str(s) for s in step.sources],
                "to": str(step.dest),
                "requires": step.requirement.as_dict(definition.checks),
                "summary": step.summary,
                "durable": step.durable,
            }
            for step in definition.steps
        ],
    }


def describe_all() -> list[dict[str, Any]]:
    return [
        {"name": d.name, "version": d.version, "subject_type": d.subject.type,
         "description": d.description}
        for d in all_definitions()
    ]


def diagram(name: str, fmt: str) -> str:
    if fmt not in ("mermaid", "dot"):
        raise UsageError(f"--format must be mermaid or dot, not {fmt!r}")
    return machine_for(_definition(name)).diagram(fmt)
