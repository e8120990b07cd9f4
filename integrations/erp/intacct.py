"""Sage Intacct (REST API v1): accounts-payable bills, read and deleted by key; a commitment is a
Purchasing document (transaction definition ``PC Subcontracts`` or ``PC Purchase Orders``), read
by key and deleted at ``document::{documentType}/{key}``.

A bill's ``state`` is one Intacct documents (:data:`BILL_STATES`). Intacct deletes only
unpaid bills that are ``draft``, ``submitted``, ``partiallyApproved``, ``declined`` or ``posted``;
any other is refused by Intacct (400 ``ia::error``), raised in its words. A deleted bill is 404; a
``reversed`` one (cancelled by a reversing transaction, its record kept) counts as gone, as a
voided Xero bill does **(model)**.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from integrations.erp.connector import Connector
from integrations.http import Reply
from integrations.models import Bill, PurchaseDocument
from integrations.shape import remote_words

PATH = "/ia/api/v1/objects/accounts-payable/bill"
DOCUMENTS = "/ia/api/v1/objects/purchasing/document"
BILL_STATES = frozenset({  # IOAS objects.accounts-payable.bill ``state``
    "reversed", "reversal", "analyzing", "partiallyApproved", "submitted", "declined", "noValue",
    "posted", "paid", "partiallyPaid", "selected", "draft",
})
GONE = frozenset({"reversed"})  # model: the bill is cancelled in the GL, its record kept
DOCUMENT_STATES = frozenset({
    "submitted", "approved", "partiallyApproved", "declined", "draft", "pending", "closed",
    "inProgress", "converted", "partiallyConverted", "exception", "analyzing",
})


class SageIntacct(Connector):
    """``/ia/api/v1/objects/accounts-payable/bill/{key}``; the token is scoped to ``company``."""

    key = "intacct"
    product_name = "Sage Intacct"
    company_field = ""
    syncs_commitments = True  # Procore exports commitments to Intacct's Purchasing module

    def get_bill(self, bill_id: str) -> Bill | None:
        reply = self._http.request("GET", f"{PATH}/{self._segment(bill_id)}")
        if self._gone(reply):
            return None
        shape, result = self._result(reply, bill_id, "bill")
        state = shape.choice(result, "state", BILL_STATES) or ""
        shape.text(result, "id", optional=True)
        shape.text(result, "billNumber", optional=True)
        return None if state in GONE else Bill(id=bill_id, status=state, raw=result)

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        """DELETE; a bill Intacct will not delete (paid, part-paid, selected for payment) is
        refused in Intacct's words, unless a read shows it gone already (reversed)."""
        reply = self._http.request(
            "DELETE",
            f"{PATH}/{self._segment(bill_id)}",
            idempotent=True,  # a replayed DELETE finds the bill gone (404), which is success
        )
        if self._gone(reply):
            return
        refused = reply.status == 400 and _error(reply.body) is not None
        if refused and self.get_bill(bill_id) is None:
            return  # refused because there is nothing left to delete (reversed)
        self._http.check(reply, error_words)

    def get_purchase_document(self, document_id: str) -> PurchaseDocument | None:
        found = self._read_document(document_id)
        return None if found is None else found[0]

    def delete_purchase_document(self, document_id: str, *, idempotency_key: str) -> None:
        """Read (for the ``documentType`` the delete path names), then DELETE; a refusal (e.g.
        converted to receipts or invoices) is Intacct's ``ia::error``, raised in its words."""
        found = self._read_document(document_id)
        if found is None:
            return
        document, document_type = found
        reply = self._http.request(
            "DELETE",
            f"{DOCUMENTS}::{quote(document_type, safe='')}/"
            f"{self._segment(document.id, 'purchasing document')}",
            idempotent=True,  # a replayed DELETE finds the document gone (404), which is success
        )
        if self._gone(reply):
            return
        self._http.check(reply, error_words)

    def _read_document(self, key: str) -> tuple[PurchaseDocument, str] | None:
        """The document and its ``documentType``, or None once it is deleted (404)."""
        reply = self._http.request(
            "GET", f"{DOCUMENTS}/{self._segment(key, 'purchasing document')}"
        )
        if self._gone(reply):
            return None
        shape, result = self._result(reply, key, "document")
        state = shape.choice(result, "state", DOCUMENT_STATES)
        document_type = shape.req_text(result, "documentType")
        if not document_type.strip():
            raise shape.fail("field 'documentType' is empty")
        number = shape.text(result, "documentNumber", optional=True)
        shape.text(result, "documentId", optional=True)
        return PurchaseDocument(id=key, number=number, status=state or ""), document_type

    def _result(self, reply: Reply, key: str, what: str) -> tuple[Any, dict[str, Any]]:
        """The checked ``ia::result`` of a read of object ``key``, and the shape that read it;
        a protocol error if the answer is about another object."""
        self._http.check(reply, error_words)
        shape = self._shape(reply)
        result = shape.mapping(
            shape.field(shape.mapping(reply.body, "the answer"), "ia::result"), "ia::result"
        )
        if shape.req_text(result, "key") != key:
            raise self._http.protocol_error(reply, f"the answer is about another {what}")
        return shape, result

    def _gone(self, reply: Reply) -> bool:
        """404 in Intacct's own error shape (a 404 from elsewhere, e.g. a wrong URL, is not)."""
        return reply.status == 404 and _error(reply.body) is not None


def _error(body: Any) -> dict[str, Any] | None:
    """The ``ia::error`` of an answer: under ``ia::result`` (the documented example), or at the
    top level (as Intacct's gateway answers)."""
    if not isinstance(body, dict):
        return None
    result = body.get("ia::result")
    error = result.get("ia::error") if isinstance(result, dict) else body.get("ia::error")
    return error if isinstance(error, dict) else None


def error_words(body: Any) -> str | None:
    """The ``message`` of an ``ia::error`` body (with its details' messages)."""
    error = _error(body)
    if error is None:
        return remote_words(body)
    said = [error["message"]] if isinstance(error.get("message"), str) else []
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        message = detail.get("message") if isinstance(detail, dict) else None
        if isinstance(message, str) and message.strip() and message not in said:
            said.append(message)
    return "; ".join(s for s in said if s.strip()) or None
