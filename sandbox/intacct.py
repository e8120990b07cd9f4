"""Sage Intacct (REST API v1) bills, as the sandbox answers them under ``/erp``.

* ``GET /ia/api/v1/objects/accounts-payable/bill/{key}`` →
  ``{"ia::result": {"key", "id", "billNumber", "state", ...}, "ia::meta": {...}}`` (the fields of
  IOAS ``objects.accounts-payable.bill``: what was paid is under ``paymentInformation``); 404 once
  deleted; a reversed bill stays readable with ``state`` ``reversed``.
* ``DELETE /ia/api/v1/objects/accounts-payable/bill/{key}`` → 204; 404 once deleted. Only unpaid
  bills in state ``draft``, ``submitted``, ``partiallyApproved``, ``declined`` or ``posted`` can
  be deleted (the delete operation's documented rule); ``selected``, ``partiallyPaid``, ``paid``
  and ``reversed`` bills are refused with 400 ``operationFailed`` (the only error status the
  operation documents; **model**: the messages). The states and what each seeded bill does:
  :mod:`sandbox.bill_states`.

Commitments (Purchasing documents of the ``PC Subcontracts`` / ``PC Purchase Orders``
transaction definitions):

* ``GET /ia/api/v1/objects/purchasing/document/{key}`` (or ``document::{documentType}/{key}``) →
  ``{"ia::result": {"key", "documentNumber", "documentType", "state", ...}}``; 404 once deleted.
* ``DELETE /ia/api/v1/objects/purchasing/document::{documentType}/{key}`` → 204; the document
  name is required (405 without it); a ``partiallyConverted`` document (receipts or vendor
  invoices made from it) → 400 ``operationFailed`` **(model: the rule's edges and the message)**.

Errors: ``{"ia::result": {"ia::error": {"code", "message", "errorId", ...}}, "ia::meta": {...}}``.
The company is bound to the access token in Intacct's REST API, so no call names it.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox import erp_oauth, seed
from sandbox.bill_states import INTACCT_DELETABLE, amount_paid, has_payments, intacct_state
from sandbox.state import BillRecord, PurchaseDocumentRecord, SandboxState
from sandbox.wire import Request, Response, empty_response, json_response

_PREFIX = "/ia/api/v1/objects/accounts-payable/bill"
_BILL = re.compile(re.escape(_PREFIX) + r"/(?P<key>[^/]+)")
_DOCUMENTS = "/ia/api/v1/objects/purchasing/document"
_DOCUMENT = re.compile(re.escape(_DOCUMENTS) + r"(?:::(?P<name>[^/]+))?/(?P<key>[^/]+)")
_DOCUMENT_STATES = {"open": "pending", "billed": "partiallyConverted"}
_TXN_DEFINITION_KEYS = {"PC Subcontracts": "31", "PC Purchase Orders": "32"}


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


_REFUSALS = {  # why a bill in this state cannot be deleted (model: the words)
    "selected": "is selected for payment. Cancel the payment request first.",
    "partiallyPaid": "is partially paid. Cancel the payment request first.",
    "paid": "is paid. A paid bill cannot be deleted; reverse it instead.",
    "reversed": "is reversed and cannot be deleted.",
}


def state_of(bill: BillRecord) -> str:
    return intacct_state(bill)


def render(state: SandboxState, bill: BillRecord) -> dict[str, Any]:
    """The bill as Intacct sends it (IOAS schema ``objects.accounts-payable.bill``)."""
    key = state.bill_id(bill)
    paid = amount_paid(bill)
    due = bill.amount - paid if bill.removed is None else 0
    return {
        "key": key,
        "id": key,
        "href": f"/objects/accounts-payable/bill/{key}",
        "billNumber": bill.invoice_number,
        "moduleName": "accountsPayable",
        "state": intacct_state(bill),
        "recordType": "pi",
        "vendor": {
            "key": str(bill.vendor_ref),
            "id": f"V{bill.vendor_ref:04d}",
            "name": bill.vendor_name,
            "href": f"/objects/accounts-payable/vendor/{bill.vendor_ref}",
        },
        "referenceNumber": None,
        "description": f"{bill.invoice_number}, January 2026 progress",
        "postingDate": bill.txn_date,
        "dueDate": bill.due_date,
        "createdDate": bill.txn_date,
        "isOnHold": False,
        "isTaxInclusive": False,
        "paymentPriority": "normal",
        "totalBaseAmount": f"{bill.amount:.2f}",
        "totalBaseAmountDue": f"{due:.2f}",
        "totalTxnAmount": f"{bill.amount:.2f}",
        "totalTxnAmountDue": f"{due:.2f}",
        "currency": {"baseCurrency": "USD", "txnCurrency": "USD"},
        "paymentInformation": {
            "fullyPaidDate": bill.updated_at[:10] if bill.paid else None,
            "totalBaseAmountPaid": f"{paid:.2f}",
            "totalBaseAmountSelectedForPayment": f"{_selected(bill):.2f}",
            "totalTxnAmountSelectedForPayment": f"{_selected(bill):.2f}",
            "totalTxnAmountPaid": f"{paid:.2f}",
        },
        "audit": {
            "createdDateTime": f"{bill.txn_date}T20:00:00Z",
            "modifiedDateTime": bill.updated_at,
            "createdBy": "1",
            "modifiedBy": "1",
        },
    }


def _selected(bill: BillRecord) -> Any:
    """What a payment request not yet complete holds of the bill."""
    return bill.amount - amount_paid(bill) if intacct_state(bill) == "selected" else 0


def _not_found() -> Response:
    return error(404, "notFound", "Requested resource not found", "REST-1028")


def handle(state: SandboxState, request: Request) -> Response:
    if not erp_oauth.authorized(state, request):
        return error(401, "invalidToken", "Invalid or expired access token", "REST-1001")
    document = _DOCUMENT.fullmatch(request.path)
    if document is not None:
        return _purchasing_document(state, request, document["key"], document["name"])
    match = _BILL.fullmatch(request.path)
    if match is None:
        return _not_found()
    if request.method not in ("GET", "DELETE"):
        return error(405, "methodNotAllowed", f"{request.method[:20]} is not allowed", "REST-1005")
    bill = state.find_bill(match["key"])
    if bill is None or bill.removed in ("deleted", "voided"):
        return _not_found()
    if request.method == "GET":
        meta = {"totalCount": 1, "totalSuccess": 1, "totalError": 0}
        return json_response(200, {"ia::result": render(state, bill), "ia::meta": meta})
    current = intacct_state(bill)
    if current not in INTACCT_DELETABLE or has_payments(bill):
        reason = _REFUSALS.get(current, "has payments applied. Cancel the payment request first.")
        return error(400, "operationFailed", f"Bill {bill.invoice_number} {reason}", "AP-0451")
    bill.removed = "deleted"
    bill.updated_at = state.tick()
    return empty_response(204)


# --- purchasing documents (commitments) ---------------------------------------------------------


def document_type(document: PurchaseDocumentRecord) -> str:
    return seed.INTACCT_DOCUMENT_TYPES[document.kind]


def render_document(state: SandboxState, document: PurchaseDocumentRecord) -> dict[str, Any]:
    """The purchasing document as Intacct sends it (IOAS example "Get a document")."""
    key = state.purchase_document_id(document)
    name = document_type(document)
    vendor = seed.VENDORS[document.vendor_id]
    total = f"{document.amount:.2f}"
    converted = document.converted
    definition = _TXN_DEFINITION_KEYS[name]
    return {
        "key": key,
        "id": key,
        "documentNumber": document.number,
        "documentId": f"{name}-{document.number}",
        "documentType": name,
        "txnDefinition": {"key": definition, "id": name,
                          "href": f"/objects/purchasing/txn-definition/{definition}"},
        "state": _DOCUMENT_STATES[document.state],
        "referenceNumber": document.reference,
        "vendor": {
            "key": str(vendor.erp_ref),
            "id": f"V{vendor.erp_ref:04d}",
            "name": vendor.name,
            "href": f"/objects/accounts-payable/vendor/{vendor.erp_ref}",
        },
        "project": {"key": str(document.project_id), "id": str(document.project_id),
                    "name": seed.PROJECTS[document.project_id]},
        "txnDate": document.txn_date,
        "dueDate": document.txn_date,
        "txnCurrency": "USD",
        "baseCurrency": "USD",
        "subtotal": total,
        "total": total,
        "totalInTxnCurrency": total,
        "retainagePercent": "10",
        "primaryDocumentDetails": {
            "totalAmountConverted": f"{converted:.2f}",
            "totalAmountRemaining": f"{document.amount - converted:.2f}",
        },
        "lines": [
            {
                "key": f"{key}1",
                "lineNumber": 1,
                "memo": document.description,
                "quantity": "1",
                "quantityConverted": "0.4" if converted else "0",
                "price": total,
                "priceConverted": f"{converted:.2f}",
                "extendedCost": total,
            }
        ],
        "audit": {"createdDateTime": document.created_at,
                  "modifiedDateTime": document.updated_at},
        "href": f"/objects/purchasing/document::{name}/{key}",
    }


def _purchasing_document(
    state: SandboxState, request: Request, key: str, name: str | None
) -> Response:
    if request.method not in ("GET", "DELETE") or (request.method == "DELETE" and name is None):
        message = "Delete a purchasing document at document::{documentName}/{key}"
        if request.method != "DELETE":
            message = f"{request.method[:20]} is not allowed"
        return error(405, "methodNotAllowed", message, "REST-1005")
    document = state.find_purchase_document(key)
    if document is None or document.gone or name not in (None, document_type(document)):
        return _not_found()
    if request.method == "GET":
        meta = {"totalCount": 1, "totalSuccess": 1, "totalError": 0}
        return json_response(200, {"ia::result": render_document(state, document),
                                   "ia::meta": meta})
    if document.state == "billed":
        document_id = f"{document_type(document)}-{document.number}"
        return error(
            400,
            "operationFailed",
            f"{document_id} cannot be deleted because it has been converted. Delete the"
            " converted transactions first.",
            "PO-0307",
        )
    document.state = "deleted"
    document.updated_at = state.tick()
    return empty_response(204)
