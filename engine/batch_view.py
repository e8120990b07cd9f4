"""Batches and their items as the plain data the CLI prints: each item with the state its
correction is in now."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.batch_store import Batch, Item
from engine.tables import WORKFLOW


def correction_states(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str | None, str]]:
    """Correction id -> (state, step in flight, workflow name)."""
    if not ids:
        return {}
    statement = sa.select(WORKFLOW.c.id, WORKFLOW.c.state, WORKFLOW.c.in_flight_step,
                          WORKFLOW.c.workflow).where(WORKFLOW.c.id.in_(ids))
    return {int(row[0]): (row[1], row[2], row[3]) for row in conn.execute(statement)}


def item_view(item: Item, state: tuple[str, str | None, str] | None) -> dict[str, Any]:
    from workflows import registry

    final = False
    if state is not None:
        try:
            final = state[0] in registry.get(state[2]).finals
        except KeyError:
            final = False
    return {
        "id": item.id, "position": item.position, "subject_id": item.subject_id,
        "label": item.label, "project_id": item.project_id, "role": item.role,
        "correction": item.workflow_id, "state": state[0] if state else None,
        "in_flight": state[1] if state else None, "final": final, "status": item.status,
        "outcome": item.outcome, "message": item.message, "attempts": item.attempts,
        "claimed_by": item.claimed_by, "claimed_until": item.claimed_until,
    }


def batch_view(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id, "kind": batch.kind, "workflow": batch.workflow,
        "company_id": batch.company_id, "project_id": batch.project_id,
        "subject_id": batch.subject_id, "status": batch.status, "reason": batch.reason,
        "options": batch.options, "created_by": batch.created_by,
        "created_at": batch.created_at, "updated_at": batch.updated_at,
    }
