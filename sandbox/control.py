"""The control endpoints under ``/_sandbox/`` (for tests and demos; never counted as API calls).

================================================ ================================================
``GET /_sandbox/health``                         200 when ready
``POST /_sandbox/reset``                         back to the seed (fault settings are kept)
``POST /_sandbox/faults``                        ``{"rate", "kinds", "seed", "timeout_seconds"}``
``POST /_sandbox/erp/bills/{id}/delete``         someone deletes the bill by hand (Xero: voids it)
``POST /_sandbox/erp/bills/{id}/restore``        the bill is back in the ERP
``POST /_sandbox/erp/commitments/{id}/accept``   the accounting approver accepts the commitment
                                                 sent to the ERP: a new ERP document, and the
                                                 commitment's ``origin_id``/``origin_code`` set
``POST /_sandbox/ui/unlink``                      ``{"item_type", "item_id"}``: an operator clicks
                                                 Unlink in the ERP Integrations tool; Procore's
                                                 connector answers (:mod:`sandbox.connector`)
``POST /_sandbox/ui/auto-unlink``                ``{"enabled": bool}``: from now on, a synced
                                                 invoice whose bill is gone (and was read there
                                                 since) is unlinked at its second read, as if
                                                 the operator had clicked once relink asked
``GET /_sandbox/erp-requests``                   the ERP Requests those clicks made
``GET /_sandbox/token-grants``                   every token issued (:mod:`sandbox.tokens`):
                                                 ``[{"system", "grant_type", "subject",
                                                 "expires_in"}]``, oldest first
``GET /_sandbox/calls``                          every API call so far, oldest first, each with
                                                 the ``actor`` behind its token
``GET /_sandbox/state/requisitions``             every invoice (``?project_id=P``), deleted ones
``GET /_sandbox/state/bills``                    every ERP bill, with its product-neutral state
``GET /_sandbox/state/commitments``              every commitment (``?project_id=P``) and its
                                                 ERP document, deleted ones too
``GET /_sandbox/state/purchase-documents``       every commitment document in the ERP
================================================ ================================================

Bill ids are in the current ERP's format; the QuickBooks Online id is accepted too. There is no
public API for "Send to ERP" and the approver's "Accept": ``accept`` plays both **(model)**; it
answers 404 (no such commitment), 409 (already synced) or 422 (not Approved, or an ERP whose
Procore connector does not sync commitments) with ``{"message"}``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sandbox import commitments, connector, seed
from sandbox.faults import FaultSettings
from sandbox.requisitions import render
from sandbox.state import BillRecord, SandboxState, removal_for
from sandbox.wire import BadBody, Request, Response, json_response, query_int, strict_int

if TYPE_CHECKING:
    from sandbox.world import SandboxWorld

PREFIX = "/_sandbox"
_BILL_ACTION = re.compile(r"/erp/bills/(?P<bill_id>[^/]+)/(?P<action>delete|restore)")
_ACCEPT = re.compile(r"/erp/commitments/(?P<commitment_id>\d{1,18})/accept")


def is_control(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"message": message})


def handle(world: SandboxWorld, state: SandboxState, request: Request) -> Response:
    path, method = request.path.removeprefix(PREFIX), request.method
    bill_action = _BILL_ACTION.fullmatch(path)
    accept = _ACCEPT.fullmatch(path)
    if (method, path) == ("GET", "/health"):
        body = {"status": "ok", "erp": state.erp, "product_name": seed.PRODUCT_NAMES[state.erp]}
        return json_response(200, body)
    if (method, path) == ("POST", "/reset"):
        world.reset()
        return json_response(200, {"status": "reset"})
    if (method, path) == ("POST", "/faults"):
        try:
            settings = FaultSettings.from_payload(request.json_object(), world.fault_settings)
        except (BadBody, ValueError) as exc:
            return _error(400, str(exc))
        world.configure_faults(settings)
        return json_response(200, settings.as_payload())
    if method == "POST" and bill_action is not None:
        return _bill_action(state, bill_action["bill_id"], bill_action["action"])
    if method == "POST" and accept is not None:
        try:
            return json_response(200, world.accept_commitment(int(accept["commitment_id"])))
        except commitments.ExportRefused as exc:
            return _error(exc.status, exc.message)
    if (method, path) == ("POST", "/ui/unlink"):
        return _click_unlink(state, request)
    if (method, path) == ("POST", "/ui/auto-unlink"):
        enabled = request.json_object().get("enabled")
        if not isinstance(enabled, bool):
            return _error(400, "enabled must be true or false")
        state.auto_unlink = enabled
        return json_response(200, {"auto_unlink": enabled})
    if (method, path) == ("GET", "/erp-requests"):
        return json_response(200, list(state.erp_requests))
    if (method, path) == ("GET", "/token-grants"):
        return json_response(200, world.token_grants())
    if (method, path) == ("GET", "/calls"):
        return json_response(200, list(state.calls))
    if (method, path) == ("GET", "/state/requisitions"):
        return _requisitions(state, request)
    if (method, path) == ("GET", "/state/bills"):
        bills = sorted(state.bills.values(), key=lambda bill: bill.qbo_id)
        return json_response(200, [_bill(state, bill) for bill in bills])
    if (method, path) == ("GET", "/state/commitments"):
        project_id = query_int(request.query, "project_id")
        if "project_id" in request.query and project_id is None:
            return _error(400, "project_id must be a positive integer")
        return json_response(200, world.commitments(project_id))
    if (method, path) == ("GET", "/state/purchase-documents"):
        documents = sorted(state.purchase_documents.values(), key=lambda doc: doc.serial)
        return json_response(200, [commitments.document_state(state, doc) for doc in documents])
    return _error(404, f"no control endpoint {method} {request.path[:200]}")


def _click_unlink(state: SandboxState, request: Request) -> Response:
    body = request.json_object()
    item_type, item_id = body.get("item_type"), strict_int(body.get("item_id"))
    if item_type not in connector.CLICKABLE or item_id is None:
        kinds = ", ".join(sorted(connector.CLICKABLE))
        return _error(400, f"item_type must be one of {kinds}, and item_id an integer")
    try:
        return json_response(200, connector.click_unlink(state, item_type, item_id))
    except connector.NoSuchItem as exc:
        return _error(404, str(exc))


def _bill_action(state: SandboxState, bill_id: str, action: str) -> Response:
    bill = state.find_bill(bill_id, accept_qbo_id=True)
    if bill is None:
        return _error(404, f"no bill {bill_id[:60]} in {seed.PRODUCT_NAMES[state.erp]}")
    deleting = action == "delete"
    if bill.gone != deleting:  # otherwise there is nothing to do
        bill.removed = removal_for(state.erp) if deleting else None
        bill.sync_token += 1
        bill.updated_at = state.tick()
    return json_response(200, _bill(state, bill))


def _bill(state: SandboxState, bill: BillRecord) -> dict[str, Any]:
    return {
        "id": state.bill_id(bill),
        "qbo_id": bill.qbo_id,
        "invoice_number": bill.invoice_number,
        "vendor_name": bill.vendor_name,
        "amount": f"{bill.amount:.2f}",
        "paid": bill.paid,
        "state": bill.removed or ("paid" if bill.paid else "open"),
        "exists": not bill.gone,
        "sync_token": bill.sync_token,
        "updated_at": bill.updated_at,
    }


def _requisitions(state: SandboxState, request: Request) -> Response:
    project_id = query_int(request.query, "project_id")
    if "project_id" in request.query and project_id is None:
        return _error(400, "project_id must be a positive integer")
    records = sorted(state.requisitions.values(), key=lambda record: record.id)
    return json_response(
        200,
        [
            {**render(record), "deleted": record.deleted,
             "item_links": {str(item): link for item, link in record.item_links.items()}}
            for record in records
            if project_id is None or record.project_id == project_id
        ],
    )
