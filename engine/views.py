"""Workflow instances as the plain data the CLI prints (spec/cli.md, JSON output)."""

from __future__ import annotations

from typing import Any

from engine.machine import WorkflowMachine
from engine.store import Instance


def view(instance: Instance, machine: WorkflowMachine) -> dict[str, Any]:
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
        "invoice_id": instance.invoice_id,
        "erp": instance.erp,
        "erp_bill_id": instance.erp_bill_id,
        "in_flight": in_flight,
        "next": [] if in_flight else machine.next_steps(instance.state),
        "new_invoice_id": instance.new_invoice_id,
        "reason": instance.reason,
        "created_at": instance.created_at,
        "updated_at": instance.updated_at,
    }
