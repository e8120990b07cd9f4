"""Procore's ERP External Data Sync: link or unlink requisitions, their items and commitments.

``PATCH /rest/v1.0/companies/{id}/external_data/sync`` with
``{"updates": [{"item_type": "requisition", "item_id": ID, "origin_id": null, "origin_data":
null}]}`` always answers 200 with ``{"entities": [...], "errors": [...]}``: each entity is the
item's external data after the update; each error is the update as sent plus ``errors``, the
reasons keyed by field (``{"item_id": ["Entity with this ID not found"]}``), as Procore's sync
actions answer (``tutorials/using_sync_actions.md``). Item types (``erp_external_data_details.md``):
``requisition``, ``requisition_contract_item``, ``requisition_contract_detail_item``,
``requisition_change_order_item``, ``work_order_contract``, ``purchase_order_contract``.

Only a service account (a DMSA app) with ERP Integrations Admin may call it (403 otherwise):
it is the ERP connector's API, not the operator's. The External Data API stores links; it does
not look at the ERP: checking that the bill is gone before unlinking is the connector's job
(:mod:`sandbox.connector` for Procore's own connectors; relink's ``integrator`` mode).
"Linked" is the ``origin_id`` alone **(model)**.
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

ITEM_TYPES = {
    "requisition_contract_item": "contract_item",
    "requisition_contract_detail_item": "contract_detail_item",
    "requisition_change_order_item": "change_order_item",
}
COMMITMENT_TYPES = frozenset(seed.COMMITMENT_KINDS)
SYNCABLE_TYPES = COMMITMENT_TYPES | {"requisition"} | ITEM_TYPES.keys()
NOT_FOUND = "Entity with this ID not found"


def still_in_erp_message(erp: str, item: str = "requisition") -> str:
    product = seed.PRODUCT_NAMES[erp]
    return f"The {item} is still in {product}. Please delete it before retrying."


def external_data_sync(ctx: Context) -> Response:
    refusal = wrong_company(ctx.params["company_id"])
    if refusal is not None:
        return refusal
    user = ctx.user
    if not user.service_account or not level_at_least(user.erp_integrations, "Admin"):
        return procore_error(
            403,
            "External Data Sync is for the ERP integration's service account, with Admin"
            " access to ERP Integrations.",
        )
    updates = ctx.request.json_object().get("updates")
    if not isinstance(updates, list):
        return procore_error(400, "updates is missing or is not a list")
    if len(updates) > 1000:
        return procore_error(400, "at most 1000 updates may be sent at once")
    entities: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for update in updates:
        entity, problems = _apply(ctx.state, update)
        if problems:
            errors.append({**(update if isinstance(update, dict) else {}), "errors": problems})
        else:
            entities.append(entity)
    return json_response(200, {"entities": entities, "errors": errors})


Problems = dict[str, list[str]]


def _apply(state: SandboxState, update: Any) -> tuple[dict[str, Any], Problems]:
    """Apply one update; the entity, or the reasons keyed by field."""
    if not isinstance(update, dict):
        return {}, {"base": ["Each update must be an object."]}
    item_type = update.get("item_type")
    item_id = strict_int(update.get("item_id"))
    if not isinstance(item_type, str) or item_type not in SYNCABLE_TYPES:
        return {}, {"item_type": [f"must be one of {', '.join(sorted(SYNCABLE_TYPES))}"]}
    if item_id is None:
        return {}, {"item_id": ["must be an integer"]}
    if "origin_id" not in update:
        return {}, {"origin_id": ["is missing"]}
    origin_id, origin_data = update["origin_id"], update.get("origin_data")
    for name, value in (("origin_id", origin_id), ("origin_data", origin_data),
                        ("origin_code", update.get("origin_code"))):
        if not isinstance(value, str | None):
            return {}, {name: ["must be a string or null"]}
    entity = {"item_type": item_type, "item_id": item_id}
    if item_type in COMMITMENT_TYPES:
        return _apply_commitment(state, update, entity, item_id)
    if item_type in ITEM_TYPES:
        return _apply_item(state, ITEM_TYPES[item_type], entity, item_id, origin_id)
    record = state.live_requisition(item_id)
    if record is None:
        return {}, {"item_id": [NOT_FOUND]}
    if (record.origin_id, record.origin_data) != (origin_id, origin_data):
        record.origin_id, record.origin_data = origin_id, origin_data
        record.updated_at = state.tick()
    return {**entity, "origin_id": record.origin_id, "origin_data": record.origin_data}, {}


def _apply_item(
    state: SandboxState, kind: str, entity: dict[str, Any], item_id: int, origin_id: str | None
) -> tuple[dict[str, Any], Problems]:
    for record in state.requisitions.values():
        if record.deleted or item_id not in record.item_links:
            continue
        item = next(item for item in record.items if item["id"] == item_id)
        if item["item_type"] != kind:
            break
        record.item_links[item_id] = origin_id
        return {**entity, "origin_id": origin_id}, {}
    return {}, {"item_id": [NOT_FOUND]}


def _apply_commitment(
    state: SandboxState, update: dict[str, Any], entity: dict[str, Any], item_id: int
) -> tuple[dict[str, Any], Problems]:
    kind = update["item_type"]
    link = (update["origin_id"], update.get("origin_data"), update.get("origin_code"))
    record = state.live_commitment(item_id, kind)
    if record is None:
        return {}, {"item_id": [NOT_FOUND]}
    if (record.origin_id, record.origin_data, record.origin_code) != link:
        record.origin_id, record.origin_data, record.origin_code = link
        record.updated_at = state.tick()
    linked = {"origin_id": record.origin_id, "origin_data": record.origin_data,
              "origin_code": record.origin_code}
    return {**entity, **linked}, {}
