"""Xero (Accounting API 2.0): bills are ACCPAY invoices, deleted or voided by a status update;
a commitment is a purchase order, deleted by setting its ``Status`` to ``DELETED``.

A ``DRAFT`` or ``SUBMITTED`` bill is deleted, an ``AUTHORISED`` one voided. A ``PAID`` bill, or an
``AUTHORISED`` one with a payment or credit note allocated, is refused by Xero itself (400
``ValidationException``): the refusal is raised in Xero's words, as Xero may know of a payment
the read did not show. Each answer's ``Xero-Correlation-Id`` is kept with the call
(:mod:`integrations.http`). The bodies sent are what xero-python sends for the same change, less
its models' false defaults (tests/test_vendor_sdks.py).
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.erp.connector import Connector, short_key
from integrations.errors import RemoteRefused
from integrations.http import Reply, RetryPolicy
from integrations.models import Bill, PurchaseDocument
from integrations.shape import remote_words

STATUSES = frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "DELETED", "VOIDED"})
GONE = frozenset({"DELETED", "VOIDED"})
# the change that removes a bill; Xero refuses it for a bill with payments (PAID, or part-paid)
NEXT_STATUS = {"DRAFT": "DELETED", "SUBMITTED": "DELETED", "AUTHORISED": "VOIDED", "PAID": "VOIDED"}
ORDER_STATUSES = frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"})
ORDERS = "/api.xro/2.0/PurchaseOrders"


class Xero(Connector):
    """``/api.xro/2.0/Invoices/{InvoiceID}``; ``company`` is the tenant id (``xero-tenant-id``)."""

    key = "xero"
    product_name = "Xero"
    company_field = "tenant id"
    syncs_commitments = True  # Procore exports subcontracts and purchase orders as Xero POs

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        company: str,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url, token=token, company=company, policy=policy, transport=transport,
            headers={"xero-tenant-id": company},
        )

    def get_bill(self, bill_id: str) -> Bill | None:
        bill = self._read(bill_id)
        return None if bill.status in GONE else bill

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        bill = self._read(bill_id)
        if bill.status in GONE:
            return
        target = NEXT_STATUS[bill.status]
        reply = self._http.request(
            "POST",
            f"/api.xro/2.0/Invoices/{self._segment(bill.id)}",
            json={"Invoices": [{"InvoiceID": bill.id, "Status": target}]},
            headers={"Idempotency-Key": short_key(idempotency_key, 128)},
            idempotent=True,  # Xero answers a replayed Idempotency-Key with the first answer
        )
        self._http.check(reply, validation_words)
        if self._invoice(reply, bill.id).status != target:
            raise self._http.protocol_error(reply, f"the bill was not {target}")

    def get_purchase_document(self, document_id: str) -> PurchaseDocument | None:
        order = self._read_order(document_id)
        return None if order is None or order.status == "DELETED" else order

    def delete_purchase_document(self, document_id: str, *, idempotency_key: str) -> None:
        """``Status: DELETED`` (Xero has no HTTP DELETE for purchase orders); a refusal (e.g. a
        BILLED order) is Xero's ValidationException, raised as RemoteRefused in its words."""
        order = self._read_order(document_id)
        if order is None or order.status == "DELETED":
            return
        reply = self._http.request(
            "POST",
            f"{ORDERS}/{self._segment(order.id, 'purchase order')}",
            json={"PurchaseOrders": [{"PurchaseOrderID": order.id, "Status": "DELETED"}]},
            headers={"Idempotency-Key": short_key(idempotency_key, 128)},
            idempotent=True,  # Xero answers a replayed Idempotency-Key with the first answer
        )
        self._http.check(reply, validation_words)
        deleted, problems = self._order(reply, order.id)
        if problems:  # a validation error inside a 200 (StatusAttributeString "ERROR")
            raise RemoteRefused(self._http.clean("; ".join(problems)), system=self.key,
                                status=reply.status)
        if deleted.status != "DELETED":
            raise self._http.protocol_error(reply, "the purchase order was not DELETED")

    def _read_order(self, order_id: str) -> PurchaseDocument | None:
        """The order, or None on Xero's own 404 (a 404 from elsewhere, e.g. a wrong URL, raises)."""
        reply = self._http.request("GET", f"{ORDERS}/{self._segment(order_id, 'purchase order')}")
        if reply.status == 404 and _is_problem(reply.body):
            return None
        self._http.check(reply, validation_words)
        return self._order(reply, order_id)[0]

    def _order(self, reply: Reply, order_id: str) -> tuple[PurchaseDocument, list[str]]:
        """The one purchase order of the answer, and the validation errors it carries."""
        shape = self._shape(reply)
        orders = shape.array(
            shape.field(shape.mapping(reply.body, "the answer"), "PurchaseOrders"),
            "PurchaseOrders",
        )
        if len(orders) != 1:
            raise self._http.protocol_error(reply, "expected exactly one purchase order")
        order = shape.mapping(orders[0], "the purchase order")
        found_id = shape.req_text(order, "PurchaseOrderID")
        if found_id.lower() != order_id.lower():
            raise self._http.protocol_error(reply, "the answer is about another purchase order")
        if shape.text(order, "Type", optional=True) not in (None, "PURCHASEORDER"):
            raise self._http.protocol_error(reply, "the answer is not a purchase order")
        status = shape.choice(order, "Status", ORDER_STATUSES)
        number = shape.text(order, "PurchaseOrderNumber", optional=True)
        for key in ("SubTotal", "TotalTax", "Total"):
            shape.number(order, key, optional=True)
        problems: list[str] = []
        if shape.text(order, "StatusAttributeString", optional=True) == "ERROR":
            for error in shape.array(order.get("ValidationErrors", []), "ValidationErrors"):
                message = shape.text(shape.mapping(error, "a validation error"), "Message",
                                     optional=True)
                if message and message.strip():
                    problems.append(message)
            problems = problems or ["Xero reported a validation error on the purchase order"]
        return PurchaseDocument(id=found_id, number=number, status=status or ""), problems

    def _read(self, bill_id: str) -> Bill:
        reply = self._http.request("GET", f"/api.xro/2.0/Invoices/{self._segment(bill_id)}")
        self._http.check(reply, validation_words)
        return self._invoice(reply, bill_id)

    def _invoice(self, reply: Reply, bill_id: str) -> Bill:
        shape = self._shape(reply)
        invoices = shape.array(shape.field(shape.mapping(reply.body, "the answer"), "Invoices"),
                               "Invoices")
        if len(invoices) != 1:
            raise self._http.protocol_error(reply, "expected exactly one invoice")
        invoice = shape.mapping(invoices[0], "the invoice")
        found_id = shape.req_text(invoice, "InvoiceID")
        if found_id.lower() != bill_id.lower():
            raise self._http.protocol_error(reply, "the answer is about another invoice")
        if shape.text(invoice, "Type", optional=True) not in (None, "ACCPAY"):
            raise self._http.protocol_error(reply, "the invoice is not a bill (ACCPAY)")
        status = shape.choice(invoice, "Status", STATUSES)
        for key in ("AmountDue", "AmountPaid"):
            shape.number(invoice, key, optional=True)
        return Bill(id=found_id, status=status or "", raw=invoice)


def validation_words(body: Any) -> str | None:
    """The ``ValidationErrors`` messages of a ValidationException, else its ``Message``."""
    if not isinstance(body, dict):
        return None
    said: list[str] = []
    elements = body.get("Elements")
    for element in elements if isinstance(elements, list) else []:
        errors = element.get("ValidationErrors") if isinstance(element, dict) else None
        for error in errors if isinstance(errors, list) else []:
            message = error.get("Message") if isinstance(error, dict) else None
            if isinstance(message, str) and message.strip() and message not in said:
                said.append(message)
    return "; ".join(said) or remote_words(body)


def _is_problem(body: Any) -> bool:
    """Xero's problem object (``{"Title", "Status", "Detail"}``), as it answers a 404."""
    return isinstance(body, dict) and "Title" in body and body.get("Status") == 404
