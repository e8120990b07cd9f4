"""Sage Intacct (REST API v1) bills, as the sandbox answers them under ``/erp``.

* ``GET /ia/api/v1/objects/accounts-payable/bill/{key}`` →
  ``{"ia::result": {"key", "id", "billNumber", "state", ...}, "ia::meta": {...}}``; 404 once
  deleted.
* ``DELETE /ia/api/v1/objects/accounts-payable/bill/{key}`` → 204; 404 once deleted; a paid bill
  → 422.

Errors: ``{"ia::result": {"ia::error": {"code", "message", "errorId", ...}}, "ia::meta": {...}}``.
The company is bound to the access token in Intacct's REST API, so no call names it.
"""

from __future__ import annotations

import re
from typing import Any

from integrations.sandbox.seed import ERP_TOKEN
from integrations.sandbox.state import BillRecord, SandboxState
from integrations.sandbox.wire import Request, Response, empty_response, json_response

_PREFIX = "/ia/api/v1/objects/accounts-payable/bill"
_BILL = re.compile(re.escape(_PREFIX) + r"/(?P<key>[^/]+)")


def error(status: int, code: str, message: str, error_id: str) -> Response:
    body = {
        "ia::result": {
            "ia::error": {
                "code": code,
                "message": message,
                "errorId": error_id,
                "additionalInfo": {"messageId": error_id, "placeholders": {}, "propertySet": {}},
                "supportId": "sandbox",
            }
        },
        "ia::meta": {"totalCount": 1, "totalSuccess": 0, "totalError": 1},
    }
    return json_response(status, body)


def state_of(bill: BillRecord) -> str:
    return "paid" if bill.paid else "posted"


def render(state: SandboxState, bill: BillRecord) -> dict[str, Any]:
    key = state.bill_id(bill)
    paid = bill.amount if bill.paid else 0
    return {
        "key": key,
        "id": key,
        "billNumber": bill.invoice_number,
        "state": state_of(bill),
        "vendor": {
            "key": str(bill.vendor_ref),
            "id": f"V{bill.vendor_ref:04d}",
            "name": bill.vendor_name,
        },
        "createdDate": bill.txn_date,
        "dueDate": bill.due_date,
        "currency": {"baseCurrency": "USD", "txnCurrency": "USD"},
        "totalTxnAmount": f"{bill.amount:.2f}",
        "totalTxnAmountPaid": f"{paid:.2f}",
        "totalTxnAmountDue": f"{bill.amount - paid:.2f}",
        "audit": {"modifiedDateTime": bill.updated_at},
        "href": f"/objects/accounts-payable/bill/{key}",
    }


def _not_found() -> Response:
    return error(404, "notFound", "Requested resource not found", "REST-1028")


def handle(state: SandboxState, request: Request) -> Response:
    if request.bearer_token() != ERP_TOKEN:
        return error(401, "invalidToken", "Invalid or expired access token", "REST-1001")
    match = _BILL.fullmatch(request.path)
    if match is None:
        return _not_found()
    if request.method not in ("GET", "DELETE"):
        return error(405, "methodNotAllowed", f"{request.method[:20]} is not allowed", "REST-1005")
    bill = state.find_bill(match["key"])
    if bill is None or bill.gone:
        return _not_found()
    if request.method == "GET":
        meta = {"totalCount": 1, "totalSuccess": 1, "totalError": 0}
        return json_response(200, {"ia::result": render(state, bill), "ia::meta": meta})
    if bill.paid:
        return error(
            422,
            "operationFailed",
            f"Bill {state.bill_id(bill)} cannot be deleted because payments have been applied to "
            "it. Reverse the payments first.",
            "AP-0451",
        )
    bill.removed = "deleted"
    bill.updated_at = state.tick()
    return empty_response(204)
