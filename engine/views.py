"""Workflow instances as the plain data the CLI prints (spec/cli.md, JSON output)."""

from __future__ import annotations

from typing import Any

from engine.machine import machine_for
from engine.store import Instance
from workflows.definition import WorkflowDefinition


def view(instance: Instance, definition: WorkflowDefinition) -> dict[str, Any]:
    """The instance as spec/cli.md shows it: the generic fields, its subject, and the fields
    its definition names for that subject."""
    in_flight = None
    if instance.in_flight_step is not None:
        in_flight = {
            "step": instance.in_flight_step,
            "to_state": instance.in_flight_to,
            "since": instance.in_flight_since,
            "owner": instance.in_flight_owner,
            "host": instance.in_flight_host,
            "pid": instance.in_flight_pid,
            "lease_until": instance.in_flight_lease_until,
        }
    return {
        "id": instance.id,
        "workflow": instance.workflow,
        "version": instance.version,
        "state": instance.state,
        "company_id": instance.company_id,
        "project_id": instance.project_id,
        "subject_type": instance.subject_type,
        "subject_id": instance.subject_id,
        **definition.subject.fields(instance.subject_id, instance.remote_ref, instance.results),
        "erp": instance.erp,
        "in_flight": in_flight,
        "next": [] if in_flight else machine_for(definition).next_steps(instance.state),
        "reason": instance.reason,
        "created_at": instance.created_at,
        "updated_at": instance.updated_at,
    }
