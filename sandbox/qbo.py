"""QuickBooks Online (Accounting API v3) bills, as the sandbox answers them under ``/erp``.

* ``GET /v3/company/{realm}/bill/{id}`` → ``{"Bill": {...}, "time"}``; a deleted or unknown bill
  → 400 Fault 610 "Object Not Found" **(model)**.
* ``POST /v3/company/{realm}/bill?operation=delete`` with ``{"Id", "SyncToken"}`` →
  ``{"Bill": {"status": "Deleted", "Id"}, "time"}``; a stale ``SyncToken`` → Fault 5010 "Stale
  Object Error"; a paid bill (linked to a BillPayment) → Fault 6000 business validation error.

Errors: ``{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}, "time"}``.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.seed import ERP_TOKEN, QBO_REALM
from sandbox.state import BillRecord, SandboxState
from sandbox.wire import BadBody, Request, Response, json_response

_BILL = re.compile(r"/v3/company/(?P<realm>[^/]+)/bill/(?P<bill_id>[^/]+)")
_BILLS = re.compile(r"/v3/company/(?P<realm>[^/]+)/bill")
_NOT_FOUND_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)


def fault(
    state: SandboxState,
    status: int,
    code: str,
    message: str,
    detail: str,
    fault_type: str = "ValidationFault",
) -> Response:
    error = {"Message": message, "Detail": detail, "code": code}
    return json_response(
        status, {"Fault": {"Error": [error], "type": fault_type}, "time": state.now()}
    )


def render(bill: BillRecord) -> dict[str, Any]:
    amount = float(bill.amount)
    payments = [{"TxnId": str(4000 + bill.qbo_id), "TxnType": "BillPayment"}] if bill.paid else []
    return {
        "Id": str(bill.qbo_id),
        "SyncToken": str(bill.sync_token),
        "domain": "QBO",
        "sparse": False,
        "DocNumber": bill.invoice_number,
        "TxnDate": bill.txn_date,
        "DueDate": bill.due_date,
        "VendorRef": {"value": str(bill.vendor_ref), "name": bill.vendor_name},
        "APAccountRef": {"value": "33", "name": "Accounts Payable (A/P)"},
        "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
        "TotalAmt": amount,
        "Balance": 0.0 if bill.paid else amount,
        "LinkedTxn": payments,
        "MetaData": {
            "CreateTime": f"{bill.txn_date}T12:00:00Z",
            "LastUpdatedTime": bill.updated_at,
        },
    }


def handle(state: SandboxState, request: Request) -> Response:
    if request.bearer_token() != ERP_TOKEN:
        return fault(
            state,
            401,
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "Token invalid or expired",
            "AUTHENTICATION",
        )
    one, many = _BILL.fullmatch(request.path), _BILLS.fullmatch(request.path)
    match = one or many
    if match is None:
        return fault(state, 404, "404", "Resource not found", request.path[:200], "SystemFault")
    if match["realm"] != QBO_REALM:
        return fault(
            state,
            403,
            "3100",
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
            "The token is not authorized for this company",
            "AUTHORIZATION",
        )
    if one is not None and request.method == "GET":
        return _read(state, one["bill_id"])
    if many is not None and request.method == "POST":
        if request.query.get("operation") != "delete":
            return fault(state, 400, "4000", "Unsupported Operation", "Only delete is simulated")
        try:
            return _delete(state, request.json_object())
        except BadBody as exc:
            return fault(state, 400, "2500", "Invalid Request", str(exc))
    return fault(state, 405, "405", "Method Not Allowed", request.method[:20], "SystemFault")


def _object_not_found(state: SandboxState) -> Response:
    return fault(state, 400, "610", "Object Not Found", _NOT_FOUND_DETAIL)


def _lookup(state: SandboxState, bill_id: Any) -> BillRecord | None:
    bill = state.find_bill(str(bill_id)) if isinstance(bill_id, str | int) else None
    return None if bill is None or bill.gone else bill


def _read(state: SandboxState, bill_id: str) -> Response:
    bill = _lookup(state, bill_id)
    if bill is None:
        return _object_not_found(state)
    return json_response(200, {"Bill": render(bill), "time": state.now()})


def _delete(state: SandboxState, payload: dict[str, Any]) -> Response:
    for name in ("Id", "SyncToken"):
        if not isinstance(payload.get(name), str | int) or isinstance(payload.get(name), bool):
            return fault(
                state,
                400,
                "2020",
                "Required param missing, need to supply the required value for the API",
                f"Required parameter {name} is missing in the request",
            )
    bill = _lookup(state, payload["Id"])
    if bill is None:
        return _object_not_found(state)
    if str(payload["SyncToken"]) != str(bill.sync_token):
        return fault(
            state,
            400,
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and another user were working on this at the same time. "
            "The other user finished before you did, so your work was not saved.",
        )
    if bill.paid:
        return fault(
            state,
            400,
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: This bill has payments linked to it. "
            "Delete or unlink the bill payments before deleting the bill.",
        )
    bill.removed = "deleted"
    bill.sync_token += 1
    bill.updated_at = state.tick()
    deleted = {"domain": "QBO", "status": "Deleted", "Id": str(bill.qbo_id)}
    return json_response(200, {"Bill": deleted, "time": state.now()})
