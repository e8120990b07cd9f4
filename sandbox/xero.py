"""Xero (Accounting API 2.0) bills, as the sandbox answers them under ``/erp``.

Bills are invoices of ``Type`` ``ACCPAY``; every call needs the ``xero-tenant-id`` header.

* ``GET /api.xro/2.0/Invoices/{InvoiceID}`` → ``{"Id", "Status": "OK", "ProviderName",
  "DateTimeUTC", "Invoices": [{...}]}``; a deleted or voided bill stays readable with ``Status``
  ``DELETED`` / ``VOIDED``.
* ``POST /api.xro/2.0/Invoices/{InvoiceID}`` with ``{"Invoices": [{"InvoiceID", "Status"}]}``:
  ``DELETED`` for a ``DRAFT`` or ``SUBMITTED`` bill, ``VOIDED`` for an ``AUTHORISED`` one; a
  ``PAID`` bill, or an ``AUTHORISED`` one with a payment (``AmountPaid`` > 0), cannot be changed
  (ValidationException); any other change is "not of valid status for modification". An
  ``Idempotency-Key`` header replays the first answer given for that key. The states and what each
  seeded bill does: :mod:`sandbox.bill_states`.

Dates are as Xero's JSON sends them (its OpenAPI examples): ``"Date": "/Date(1563753600000+0000)/"``
with ``"DateString": "2019-07-22T00:00:00"`` beside it (``DueDate``/``DueDateString``), and
``UpdatedDateUTC`` ``/Date(ms+0000)/`` with ``UpdatedDateUTCString``; the envelope's
``DateTimeUTC`` is ``/Date(ms)/``. Every answer carries ``Xero-Correlation-Id``.

Commitments (where Procore syncs them) are purchase orders:

* ``GET /api.xro/2.0/PurchaseOrders/{PurchaseOrderID}`` (or ``{PurchaseOrderNumber}``) →
  ``{"PurchaseOrders": [{...}]}``; a deleted order stays readable with ``Status`` ``DELETED``.
* ``POST /api.xro/2.0/PurchaseOrders/{PurchaseOrderID}`` (or ``/PurchaseOrders`` with the id in
  the body) with ``{"PurchaseOrders": [{"PurchaseOrderID", "Status": "DELETED"}]}``: a ``DRAFT``,
  ``SUBMITTED`` or ``AUTHORISED`` order is deleted; a ``BILLED`` one is refused **(model: the
  rule and the message)**; no other change is modelled. ``Idempotency-Key`` as for bills.

Errors: 400 ``{"ErrorNumber", "Type": "ValidationException", "Message", "Elements": [...]}``,
each element the object as Xero holds it with its ``ValidationErrors``; 401/403/404 as problem
objects ``{"Type", "Title", "Status", "Detail", "Instance", "Extensions"}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sandbox import erp_oauth, seed
from sandbox.bill_states import amount_paid, has_payments, xero_status
from sandbox.seed import XERO_TENANT
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
    return xero_status(bill)


def _xero_date(iso: str, *, offset: bool = True) -> str:
    """Xero's ``/Date(milliseconds+0000)/`` form of an ISO 8601 UTC time (``/Date(ms)/`` without
    ``offset``, as the envelope's ``DateTimeUTC``)."""
    milliseconds = int(datetime.fromisoformat(iso).timestamp() * 1000)
    return f"/Date({milliseconds}+0000)/" if offset else f"/Date({milliseconds})/"


def _day(iso_day: str) -> dict[str, str]:
    """A calendar date as Xero sends it: ``/Date(...)/`` at midnight UTC, and its DateString."""
    moment = datetime.combine(date.fromisoformat(iso_day), datetime.min.time(), UTC)
    return {"String": f"{iso_day}T00:00:00", "": _xero_date(moment.isoformat())}


def _dated(name: str, iso_day: str) -> dict[str, str]:
    """``{name}String`` and ``{name}``, in Xero's order."""
    return {f"{name}{suffix}": value for suffix, value in _day(iso_day).items()}


def _uuid(kind: str, number: int) -> str:
    """A deterministic UUID for an object of ``kind`` (one hex digit) numbered ``number``."""
    return f"00000000-0000-4000-{kind}000-{number:012d}"


def correlation_id(state: SandboxState) -> str:
    """``Xero-Correlation-Id`` of the answer being made: it carries the number of the sandbox's
    ``X-Request-Id`` that the world stamps on the same answer (``sandbox-{n:08d}``)."""
    return _uuid("e", state.requests + 1)


def _contact(vendor_ref: int, name: str) -> dict[str, Any]:
    return {
        "ContactID": _uuid("9", vendor_ref),
        "ContactStatus": "ACTIVE",
        "Name": name,
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def render(state: SandboxState, bill: BillRecord) -> dict[str, Any]:
    """The bill as Xero sends it (XOAS schema ``Invoice``, with the date strings beside)."""
    amount, paid = float(bill.amount), float(amount_paid(bill))
    paid_on = bill.updated_at[:10]
    payments = [] if not paid else [{
        "PaymentID": _uuid("c", bill.qbo_id),
        "Date": _day(paid_on)[""],
        "Amount": paid,
        "Reference": "",
        "CurrencyRate": 1.0,
        "HasAccount": False,
        "HasValidationErrors": False,
    }]
    body: dict[str, Any] = {
        "Type": "ACCPAY",
        "InvoiceID": state.bill_id(bill),
        "InvoiceNumber": bill.invoice_number,
        "Reference": "",
        "Payments": payments,
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": 0.0 if bill.removed is not None else amount - paid,
        "AmountPaid": paid,
        "AmountCredited": 0.0,
        "CurrencyRate": 1.0,
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": _contact(bill.vendor_ref, bill.vendor_name),
        **_dated("Date", bill.txn_date),
        **_dated("DueDate", bill.due_date),
        "Status": xero_status(bill),
        "LineAmountTypes": "Exclusive",
        "LineItems": [{
            "Description": f"{bill.invoice_number}, January 2026 progress",
            "UnitAmount": amount,
            "TaxType": "NONE",
            "TaxAmount": 0.0,
            "LineAmount": amount,
            "AccountCode": "310",
            "Tracking": [],
            "Quantity": 1.0,
            "LineItemID": _uuid("d", bill.qbo_id),
            "ValidationErrors": [],
        }],
        "SubTotal": amount,
        "TotalTax": 0.0,
        "Total": amount,
        "UpdatedDateUTC": _xero_date(bill.updated_at),
        "UpdatedDateUTCString": bill.updated_at,
        "CurrencyCode": "USD",
    }
    if bill.paid:
        body["FullyPaidOnDate"] = _day(paid_on)[""]
    return body


def _problem(status: int, title: str, detail: str) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": None,  # Xero names the request here; the sandbox names it in the header
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
        "Id": correlation_id(state),
        "Status": "OK",
        "ProviderName": "relink sandbox",
        "DateTimeUTC": _xero_date(state.now(), offset=False),
        collection: [item],
    }
    return json_response(200, body)


def handle(state: SandboxState, request: Request) -> Response:
    """Answer one Xero call; every answer names its request in ``Xero-Correlation-Id``."""
    return _respond(state, request).with_headers({"Xero-Correlation-Id": correlation_id(state)})


def _respond(state: SandboxState, request: Request) -> Response:
    if not erp_oauth.authorized(state, request):
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
    current, target = xero_status(bill), change.get("Status")
    element = render(state, bill)  # Xero echoes the invoice with its ValidationErrors
    if current == "PAID" or (current == "AUTHORISED" and has_payments(bill)):
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
    return {
        "Type": "PURCHASEORDER",
        "PurchaseOrderID": state.purchase_document_id(order),
        "PurchaseOrderNumber": order.number,
        "Reference": order.reference or "",
        "Status": _ORDER_STATUS[order.state],
        "Contact": _contact(vendor.erp_ref, vendor.name),
        **_dated("Date", order.txn_date),
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
