"""Procore's own ERP connector answering an operator's Unlink click (there is no public API for
it: ``erp_integration/erp_technical_guide.md``, "Unlink Workflow").

The click creates an ERP Request; the connector gets the ``unlink_...`` event, checks the ERP,
clears the link through External Data with its service account, and closes the ERP Request
Detail as success, or as failed with the messages Procore shows in red. The sandbox runs all of
that in one go: :func:`click_unlink` answers ``{"status": "success"}`` or ``{"status": "failed",
"messages": [...]}`` and keeps the request (``GET /_sandbox/erp-requests``).
"""

from __future__ import annotations

from typing import Any

from sandbox import seed
from sandbox.state import SandboxState
from sandbox.sync import COMMITMENT_TYPES, still_in_erp_message

CLICKABLE = COMMITMENT_TYPES | {"requisition"}


class NoSuchItem(LookupError):
    """The clicked item does not exist (the control endpoint answers 404)."""


def click_unlink(state: SandboxState, item_type: str, item_id: int) -> dict[str, Any]:
    """Run the connector's unlink for one item; the closed request detail."""
    messages = _unlink(state, item_type, item_id)
    detail = {"status": "failed" if messages else "success", "messages": messages}
    state.erp_requests.append({
        "id": len(state.erp_requests) + 1,
        "request_name": f"unlink_{item_type}",
        "item_type": item_type,
        "item_id": item_id,
        "request_detail": detail,
        "at": state.tick(),
    })
    return detail


def gone_from_erp(state: SandboxState, item_type: str, origin_id: str) -> bool:
    """Whether the ERP transaction an item is linked to is gone (the connector's check)."""
    found = (
        state.find_bill(origin_id) if item_type == "requisition"
        else state.find_purchase_document(origin_id)
    )
    return found is None or found.gone


def auto_click(state: SandboxState, item_type: str, item_id: int, origin_id: str | None) -> None:
    """With auto-unlink on, the operator clicks Unlink on a synced item whose ERP transaction is
    gone and was read there since (relink checks the ERP before it asks for the click), once
    relink has read the item still linked: the first such read shows the link, the next one
    finds it cleared (for demos and walkthroughs)."""
    if (
        state.auto_unlink and origin_id is not None and origin_id in state.erp_reads
        and gone_from_erp(state, item_type, origin_id) and state.click_due(item_type, item_id)
    ):
        click_unlink(state, item_type, item_id)


def _unlink(state: SandboxState, item_type: str, item_id: int) -> list[str]:
    if item_type == "requisition":
        record = state.live_requisition(item_id)
        if record is None:
            raise NoSuchItem(f"no requisition {item_id}")
        if record.origin_id is None:
            return ["This requisition is not synced with the ERP."]
        if not gone_from_erp(state, item_type, record.origin_id):
            return [still_in_erp_message(state.erp)]
        state.clear_requisition_link(record)
        return []
    commitment = state.live_commitment(item_id, item_type)
    if commitment is None:
        raise NoSuchItem(f"no {seed.COMMITMENT_CLASSES[item_type]} {item_id}")
    if commitment.origin_id is None:
        return ["This commitment is not synced with the ERP."]
    if not gone_from_erp(state, item_type, commitment.origin_id):
        return [still_in_erp_message(state.erp, "commitment")]
    commitment.origin_id = commitment.origin_data = commitment.origin_code = None
    commitment.updated_at = state.tick()
    return []
