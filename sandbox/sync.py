"""Procore's ERP Integrations sync call: link or unlink requisitions and commitments.

``PATCH /rest/v1.0/companies/{id}/external_data/sync`` with
``{"updates": [{"item_type": "requisition", "item_id": ID, "origin_id": null}]}`` always answers
200 with ``{"entities": [...], "errors": [...]}``. Unlinking an invoice whose bill still exists in
the ERP puts ``The requisition is still in <ERP>. Please delete it before retrying.`` in
``errors``. Needs ERP Integrations Standard or Admin and ``erp_integrated_accountant`` (403).

Commitments: ``item_type`` ``work_order_contract`` or ``purchase_order_contract`` (PDOC
``erp_external_data_details.md``), with ``origin_id``, ``origin_data`` and ``origin_code``; while
the commitment's document still exists in the ERP, unlinking it puts ``The commitment is still in
<ERP>. Please delete it before retrying.`` in ``errors``. "Linked" is the commitment's
``origin_id`` alone **(model)**.
"""

from __future__ import annotations

from typing import Any

from sandbox import seed
from sandbox.procore_wire import (
    Context,
    level_at_least,
    procore_error,
    wrong_company,
)
from sandbox.state import SandboxState
from sandbox.wire import Response, json_response, strict_int

COMMITMENT_TYPES = frozenset(seed.COMMITMENT_KINDS)
SYNCABLE_TYPES = COMMITMENT_TYPES | {"requisition"}


def still_in_erp_message(erp: str, item: str = "requisition") -> str:
    product = seed.PRODUCT_NAMES[erp]
    return f"The {item} is still in {product}. Please delete it before retrying."


def external_data_sync(ctx: Context) -> Response:
    refusal = wrong_company(ctx.params["company_id"])
    if refusal is not None:
        return refusal
    user = ctx.user
    if not level_at_least(user.erp_integrations, "Standard"):
        return procore_error(403, "Standard or Admin access to ERP Integrations is required.")
    if not user.erp_integrated_accountant:
        return procore_error(403, "The Can Push to Accounting privilege is required.")
    updates = ctx.request.json_object().get("updates")
    if not isinstance(updates, list):
        return procore_error(400, "updates is missing or is not a list")
    entities: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for update in updates:
        entity, message = _apply(ctx.state, update)
        if message is None:
            entities.append(entity)
        else:
            errors.append({**entity, "message": message})
    return json_response(200, {"entities": entities, "errors": errors})


def _apply(state: SandboxState, update: Any) -> tuple[dict[str, Any], str | None]:
    """Apply one update; the entity and None, or what identifies it and the refusal."""
    if not isinstance(update, dict):
        return {}, "Each update must be an object."
    item_id = strict_int(update.get("item_id"))
    entity = {"item_type": update.get("item_type"), "item_id": update.get("item_id")}
    item_type = update.get("item_type")
    if not isinstance(item_type, str) or item_type not in SYNCABLE_TYPES:
        return entity, (
            "Unsupported item_type: only requisition, work_order_contract and"
            " purchase_order_contract can be synced."
        )
    if "origin_id" not in update:
        return entity, "origin_id is missing."
    origin_id, origin_data = update["origin_id"], update.get("origin_data")
    if not isinstance(origin_id, str | None) or not isinstance(origin_data, str | None):
        return entity, "origin_id and origin_data must be strings or null."
    if item_type in COMMITMENT_TYPES:
        return _apply_commitment(state, update, entity, item_id)
    record = state.live_requisition(item_id) if item_id is not None else None
    if record is None:
        return entity, f"Couldn't find Requisition with 'id'={update.get('item_id')}"
    if origin_id is None and record.origin_id is not None:
        bill = state.find_bill(record.origin_id)
        if bill is not None and not bill.gone:
            return entity, still_in_erp_message(state.erp)
    if (record.origin_id, record.origin_data) != (origin_id, origin_data):
        record.origin_id, record.origin_data = origin_id, origin_data
        record.updated_at = state.tick()
    return {**entity, "origin_id": record.origin_id, "origin_data": record.origin_data}, None


def _apply_commitment(
    state: SandboxState, update: dict[str, Any], entity: dict[str, Any], item_id: int | None
) -> tuple[dict[str, Any], str | None]:
    kind = update["item_type"]
    link = (update["origin_id"], update.get("origin_data"), update.get("origin_code"))
    if not isinstance(link[2], str | None):
        return entity, "origin_code must be a string or null."
    record = state.live_commitment(item_id, kind) if item_id is not None else None
    if record is None:
        name = seed.COMMITMENT_CLASSES[kind]
        return entity, f"Couldn't find {name} with 'id'={update.get('item_id')}"
    if link[0] is None and record.origin_id is not None:
        document = state.find_purchase_document(record.origin_id)
        if document is not None and not document.gone:
            return entity, still_in_erp_message(state.erp, "commitment")
    if (record.origin_id, record.origin_data, record.origin_code) != link:
        record.origin_id, record.origin_data, record.origin_code = link
        record.updated_at = state.tick()
    linked = {"origin_id": record.origin_id, "origin_data": record.origin_data,
              "origin_code": record.origin_code}
    return {**entity, **linked}, None
