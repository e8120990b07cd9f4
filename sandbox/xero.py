"""Xero (Accounting API 2.0) bills, as the sandbox answers them under ``/erp``.

Bills are invoices of ``Type`` ``ACCPAY``; every call needs the ``xero-tenant-id`` header.

* ``GET /api.xro/2.0/Invoices/{InvoiceID}`` → ``{"Invoices": [{...}]}``; a deleted or voided bill
  stays readable with ``Status`` ``DELETED`` / ``VOIDED``.
* ``POST /api.xro/2.0/Invoices/{InvoiceID}`` with ``{"Invoices": [{"InvoiceID", "Status"}]}``:
  ``DELETED`` for a ``DRAFT`` or ``SUBMITTED`` bill, ``VOIDED`` for an ``AUTHORISED`` one; a
  ``PAID`` bill cannot be changed. An ``Idempotency-Key`` header replays the first answer given
  for that key.

Commitments (where Procore syncs them) are purchase orders:

* ``GET /api.xro/2.0/PurchaseOrders/{PurchaseOrderID}`` (or ``{PurchaseOrderNumber}``) →
  ``{"PurchaseOrders": [{...}]}``; a deleted order stays readable with ``Status`` ``DELETED``.
* ``POST /api.xro/2.0/PurchaseOrders/{PurchaseOrderID}`` (or ``/PurchaseOrders`` with the id in
  the body) with ``{"PurchaseOrders": [{"PurchaseOrderID", "Status": "DELETED"}]}``: a ``DRAFT``,
  ``SUBMITTED`` or ``AUTHORISED`` order is deleted; a ``BILLED`` one is refused **(model: the
  rule and the message)**; no other change is modelled. ``Idempotency-Key`` as for bills.

Errors: 400 ``{"ErrorNumber", "Type": "ValidationException", "Message", "Elements": [...]}``;
401/403/404 as problem objects ``{"Title", "Status", "Detail"}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox import seed
from sandbox.seed import ERP_TOKEN, XERO_TENANT
from sandbox.state import BillRecord, PurchaseDocumentRecord, SandboxState
from sandbox.wire import BadBody, Request, Response, json_response

_INVOICE = re.compile(r"/api\.xro/2\.0/Invoices/(?P<invoice_id>[^/]+)")
_ORDERS = "/api.xro/2.0/PurchaseOrders"
_ORDER = re.compile(r"/api\.xro/2\.0/PurchaseOrders/(?P<order_id>[^/]+)")
_ORDER_STATUS = {"open": "AUTHORISED", "billed": "BILLED", "deleted": "DELETED"}
_ORDER_NOT_MODIFIABLE = "Purchase order not of valid status for modification"
_BILLED = (
    "This purchase order has been billed and cannot be deleted. Unmark it as billed first."
)
_CHANGES = {("DRAFT", "DELETED"), ("SUBMITTED", "DELETED"), ("AUTHORISED", "VOIDED")}
_NOT_MODIFIABLE = "Invoice not of valid status for modification"
_PAID = (
    "Invoice not of valid status for modification. This document cannot be edited as it has a "
    "payment or credit note allocated to it."
)


def status_of(bill: BillRecord) -> str:
    if bill.removed is not None:
        return bill.removed.upper()
    return "PAID" if bill.paid else "AUTHORISED"


def _xero_date(iso: str) -> str:
    """Xero's ``/Date(milliseconds+0000)/`` form of an ISO 8601 UTC time."""
    moment = datetime.fromisoformat(iso)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def render(state: SandboxState, bill: BillRecord) -> dict[str, Any]:
    amount = float(bill.amount)
    owing = bill.removed is None and not bill.paid
    return {
        "Type": "ACCPAY",
        "InvoiceID": state.bill_id(bill),
        "InvoiceNumber": bill.invoice_number,
        "Reference": "",
        "Contact": {
            "ContactID": f"00000000-0000-4000-9000-{bill.vendor_ref:012d}",
            "Name": bill.vendor_name,
        },
        "Date": f"{bill.txn_date}T00:00:00",
        "DueDate": f"{bill.due_date}T00:00:00",
        "Status": status_of(bill),
        "LineAmountTypes": "Exclusive",
        "SubTotal": amount,
        "TotalTax": 0.0,
        "Total": amount,
        "AmountDue": amount if owing else 0.0,
        "AmountPaid": amount if bill.paid else 0.0,
        "AmountCredited": 0.0,
        "CurrencyCode": "USD",
        "UpdatedDateUTC": _xero_date(bill.updated_at),
        "HasAttachments": False,
    }


def _problem(status: int, title: str, detail: str) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Extensions": {},
    }
    return json_response(status, body)


def validation_error(message: str, element: dict[str, Any] | None = None) -> Response:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{**(element or {}), "ValidationErrors": [{"Message": message}]}],
    }
    return json_response(400, body)


def _envelope(state: SandboxState, bill: BillRecord) -> Response:
    return _answer(state, "Invoices", render(state, bill))


def _answer(state: SandboxState, collection: str, item: dict[str, Any]) -> Response:
    """Xero's 200 answer: the envelope around one item of ``collection``."""
    body = {
        "Status": "OK",
        "ProviderName": "relink sandbox",
        "DateTimeUTC": _xero_date(state.now()),
        collection: [item],
    }
    return json_response(200, body)


def handle(state: SandboxState, request: Request) -> Response:
    if request.bearer_token() != ERP_TOKEN:
        return _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
    if request.headers.get("xero-tenant-id", "").strip().lower() != XERO_TENANT:
        return _problem(403, "Forbidden", "AuthenticationUnsuccessful")
    order = _ORDER.fullmatch(request.path)
    if order is not None or request.path == _ORDERS:
        return _purchase_orders(state, request, order["order_id"] if order else None)
    match = _INVOICE.fullmatch(request.path)
    if match is None:
        return _not_found()
    if request.method == "GET":
        bill = state.find_bill(match["invoice_id"])
        if bill is None:
            return _not_found()
        return _envelope(state, bill)
    if request.method == "POST":
        invoice_id = match["invoice_id"]
        return _once(state, request, lambda: _update(state, request, invoice_id))
    return _problem(405, "MethodNotAllowed", f"{request.method[:20]} is not supported")


def _not_found() -> Response:
    return _problem(404, "NotFound", "The resource you're looking for cannot be found")


def _once(state: SandboxState, request: Request, update: Callable[[], Response]) -> Response:
    """Honour ``Idempotency-Key``: the same key replays the first answer, changing nothing."""
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > 128:
        return validation_error("Idempotency-Key must be at most 128 characters")
    if key is not None and key in state.idempotent_answers:
        return state.idempotent_answers[key]
    answer = update()
    if key is not None:
        state.idempotent_answers[key] = answer
    return answer


def _update(state: SandboxState, request: Request, invoice_id: str) -> Response:
    try:
        payload = request.json_object()
    except BadBody as exc:
        return validation_error(str(exc))
    invoices = payload.get("Invoices", [payload])
    if not isinstance(invoices, list) or len(invoices) != 1 or not isinstance(invoices[0], dict):
        return validation_error("Send exactly one invoice")
    change = invoices[0]
    bill = state.find_bill(invoice_id)
    if bill is None:
        return _problem(404, "NotFound", "The resource you're looking for cannot be found")
    if str(change.get("InvoiceID", invoice_id)).lower() != invoice_id.lower():
        return validation_error("The InvoiceID in the body does not match the URL")
    current, target = status_of(bill), change.get("Status")
    element = {"InvoiceID": state.bill_id(bill), "Status": current}
    if current == "PAID":
        return validation_error(_PAID, element)
    if (current, target) not in _CHANGES:
        return validation_error(_NOT_MODIFIABLE, element)
    bill.removed = str(target).lower()
    bill.updated_at = state.tick()
    return _envelope(state, bill)


# --- purchase orders (commitments) --------------------------------------------------------------


def render_order(state: SandboxState, order: PurchaseDocumentRecord) -> dict[str, Any]:
    """The purchase order as Xero sends it (XOAS schema ``PurchaseOrder``)."""
    amount = float(order.amount)
    vendor = seed.VENDORS[order.vendor_id]
    billed = float(order.converted)
    return {
        "Type": "PURCHASEORDER",
        "PurchaseOrderID": state.purchase_document_id(order),
        "PurchaseOrderNumber": order.number,
        "Reference": order.reference or "",
        "Status": _ORDER_STATUS[order.state],
        "Contact": {
            "ContactID": f"00000000-0000-4000-9000-{vendor.erp_ref:012d}",
            "Name": vendor.name,
        },
        "Date": _xero_date(f"{order.txn_date}T00:00:00+00:00"),
        "DateString": f"{order.txn_date}T00:00:00",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "LineItemID": f"00000000-0000-4000-b000-{order.serial:012d}",
                "Description": order.description or "",
                "Quantity": 1.0,
                "UnitAmount": amount,
                "LineAmount": amount,
                "AccountCode": "310",
                "TaxType": "NONE",
                "Tracking": [],
            }
        ],
        "SubTotal": amount,
        "TotalTax": 0.0,
        "Total": amount,
        "TotalBilled": billed,
        "CurrencyCode": "USD",
        "UpdatedDateUTC": _xero_date(order.updated_at),
        "HasAttachments": False,
        "SentToContact": False,
    }


def _order_envelope(state: SandboxState, order: PurchaseDocumentRecord) -> Response:
    return _answer(state, "PurchaseOrders", render_order(state, order))


def _find_order(state: SandboxState, order_id: str) -> PurchaseDocumentRecord | None:
    """By ``PurchaseOrderID``, else by ``PurchaseOrderNumber``."""
    found = state.find_purchase_document(order_id)
    if found is None and state.syncs_commitments:
        found = next((order for order in state.purchase_documents.values()
                      if order.number == order_id), None)
    return found


def _purchase_orders(state: SandboxState, request: Request, order_id: str | None) -> Response:
    if request.method == "GET" and order_id is not None:
        order = _find_order(state, order_id)
        return _order_envelope(state, order) if order is not None else _not_found()
    if request.method == "POST":
        return _once(state, request, lambda: _update_order(state, request, order_id))
    return _problem(405, "MethodNotAllowed", f"{request.method[:20]} is not supported")


def _update_order(state: SandboxState, request: Request, url_id: str | None) -> Response:
    try:
        payload = request.json_object()
    except BadBody as exc:
        return validation_error(str(exc))
    orders = payload.get("PurchaseOrders", [payload])
    if not isinstance(orders, list) or len(orders) != 1 or not isinstance(orders[0], dict):
        return validation_error("Send exactly one purchase order")
    change = orders[0]
    body_id = change.get("PurchaseOrderID")
    order_id = url_id if url_id is not None else body_id
    if not isinstance(order_id, str):
        return validation_error("PurchaseOrderID is required: the sandbox creates no orders")
    if body_id is not None and str(body_id).lower() != order_id.lower():
        return validation_error("The PurchaseOrderID in the body does not match the URL")
    order = state.find_purchase_document(order_id)
    if order is None:
        return _not_found()
    current = _ORDER_STATUS[order.state]
    element = {"PurchaseOrderID": state.purchase_document_id(order), "Status": current}
    if current == "BILLED":
        return validation_error(_BILLED, element)
    if current == "DELETED" or change.get("Status") != "DELETED":
        return validation_error(_ORDER_NOT_MODIFIABLE, element)
    order.state = "deleted"
    order.updated_at = state.tick()
    return _order_envelope(state, order)
