"""The second pass of `audit verify`: every correction's stored state is the state its audited
history leads to.

The chain check proves the log was not changed; this proves the ``workflow`` table agrees with
it, so a state edited by hand (or by a bug) is found. A correction's state is the ``to_state``
of its last succeeded entry that changed state (its ``start`` included): refusals, failures,
approvals and releases leave the state where it was, and their ``from_state`` may be stale when
another operator moved the correction meanwhile, so they do not count.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit.tables import ENTRY
from engine.errors import IntegrityError
from engine.tables import WORKFLOW


def check_states(conn: Connection) -> int:
    """The number of corrections checked; IntegrityError naming the first that disagrees."""
    c = ENTRY.c
    changes = (
        sa.select(c.workflow_id, c.to_state)
        .where(
            c.workflow_id.is_not(None),
            c.outcome == "succeeded",
            sa.or_(c.action == "start", c.from_state.is_distinct_from(c.to_state)),
        )
        .order_by(c.seq)
    )
    led_to: dict[int, Any] = {}
    for workflow_id, to_state in conn.execute(changes).all():
        led_to[workflow_id] = to_state
    stored = conn.execute(sa.select(WORKFLOW.c.id, WORKFLOW.c.state).order_by(WORKFLOW.c.id)).all()
    count = 0
    for workflow_id, state in stored:
        count += 1
        audited = led_to.pop(workflow_id, None)
        if audited != state:
            said = f"leads to {audited}" if audited else "has no start"
            raise IntegrityError(
                f"audit log verification failed: correction {workflow_id} is stored in state"
                f" {state}, but its audited history {said}"
            )
    return count
