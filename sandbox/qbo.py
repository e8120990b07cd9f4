"""QuickBooks Online (Accounting API v3) bills, as the sandbox answers them under ``/erp``.

* ``GET /v3/company/{realm}/bill/{id}`` → ``{"Bill": {...}, "time"}``; a deleted or unknown bill
  → 400 Fault 610 "Object Not Found" (what QuickBooks answers for a deleted object).
* ``POST /v3/company/{realm}/bill?operation=delete`` with ``{"Id", "SyncToken"}`` →
  ``{"Bill": {"status": "Deleted", "Id"}, "time"}``; a stale ``SyncToken`` → Fault 5010 "Stale
  Object Error"; a bill with a payment linked (paid or part-paid: ``LinkedTxn`` BillPayment,
  ``Balance`` below ``TotalAmt``) → Fault 6000 business validation error **(model: code and
  words)**. Bills have no approval states in QuickBooks Online (:mod:`sandbox.bill_states`).

Every request may carry ``minorversion`` (python-quickbooks sends 75, the lowest Intuit still
serves): accepted whatever it is, and kept in the call log with the rest of the query string.
Every answer carries an ``intuit_tid`` header (format **model**).

Errors: ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type"}, "time"}``,
except 401 and 403, which come in the platform's lower-case shape: ``{"warnings", "intuitObject",
"fault": {"error": [{"message", "detail", "code", "element"}], "type"}, ..., "time": ms}``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox import erp_oauth
from sandbox.bill_states import amount_paid, has_payments
from sandbox.seed import QBO_REALM
from sandbox.state import BillRecord, SandboxState
from sandbox.wire import BadBody, Request, Response, json_response

_BILL = re.compile(r"/v3/company/(?P<realm>[^/]+)/bill/(?P<bill_id>[^/]+)")
_BILLS = re.compile(r"/v3/company/(?P<realm>[^/]+)/bill")
_NOT_FOUND_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)
_PACIFIC = timezone(timedelta(hours=-8))  # Intuit's answers carry its own (Pacific) time (model)


def intuit_time(iso: str, *, milliseconds: bool = True) -> str:
    """A UTC ISO 8601 time as Intuit writes it: ``2026-02-03T01:00:00.000-08:00``."""
    moment = datetime.fromisoformat(iso).astimezone(_PACIFIC)
    return moment.isoformat(timespec="milliseconds" if milliseconds else "seconds")


def intuit_tid(state: SandboxState) -> str:
    """``intuit_tid`` of the answer being made: it ends in the number of the sandbox's
    ``X-Request-Id`` that the world stamps on the same answer (``sandbox-{n:08d}``)."""
    return f"1-{_now_seconds(state):08x}-{state.requests + 1:024d}"


def _now_seconds(state: SandboxState) -> int:
    return int(datetime.fromisoformat(state.now()).timestamp())


def fault(
    state: SandboxState,
    status: int,
    code: str,
    message: str,
    detail: str | None,
    fault_type: str = "ValidationFault",
) -> Response:
    """A ``Fault``; a 401 or 403 comes from Intuit's platform in lower case (python-quickbooks and
    Intuit's own samples show ``{"fault": {"error": [...]}}`` with ``time`` in milliseconds)."""
    if status in (401, 403):
        error = {"message": message, "detail": detail, "code": code, "element": None}
        body: dict[str, Any] = {
            "warnings": None, "intuitObject": None,
            "fault": {"error": [error], "type": fault_type},
            "report": None, "queryResponse": None, "batchItemResponse": [],
            "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
            "time": _now_seconds(state) * 1000, "status": None, "cdcresponse": [],
        }
        return json_response(status, body)
    upper = {"Message": message, "Detail": detail, "code": code, "element": ""}
    return json_response(
        status, {"Fault": {"Error": [upper], "type": fault_type}, "time": intuit_time(state.now())}
    )


def render(bill: BillRecord) -> dict[str, Any]:
    """The bill as QuickBooks Online sends it (python-quickbooks' ``Bill``)."""
    amount, paid = float(bill.amount), float(amount_paid(bill))
    payments = [{"TxnId": str(4000 + bill.qbo_id), "TxnType": "BillPayment"}] if paid else []
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
        "Balance": amount - paid,
        "LinkedTxn": payments,
        "Line": [{
            "Id": "1",
            "LineNum": 1,
            "Description": f"{bill.invoice_number}, January 2026 progress",
            "Amount": amount,
            "LinkedTxn": [],
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {
                "AccountRef": {"value": "7", "name": "Job Expenses:Job Materials"},
                "BillableStatus": "NotBillable",
                "TaxCodeRef": {"value": "NON"},
            },
        }],
        "MetaData": {
            "CreateTime": intuit_time(f"{bill.txn_date}T20:00:00+00:00", milliseconds=False),
            "LastUpdatedTime": intuit_time(bill.updated_at, milliseconds=False),
        },
    }


def handle(state: SandboxState, request: Request) -> Response:
    """Answer one QuickBooks Online call; every answer names its request in ``intuit_tid``."""
    return _respond(state, request).with_headers({"intuit_tid": intuit_tid(state)})


def _respond(state: SandboxState, request: Request) -> Response:
    if not erp_oauth.authorized(state, request):
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
            "message=AuthorizationFailed; errorCode=003100; statusCode=403",
            None,
            "SERVICE",
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
    return json_response(200, {"Bill": render(bill), "time": intuit_time(state.now())})


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
    if has_payments(bill):
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
    return json_response(200, {"Bill": deleted, "time": intuit_time(state.now())})
