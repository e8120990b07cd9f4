"""QuickBooks Online (Accounting API v3): read a bill, delete it with its SyncToken.

Every request names the API's ``minorversion`` (75: the lowest Intuit still serves, and what
python-quickbooks sends). Errors come as a ``Fault`` (``{"Fault": {"Error": [{"Message",
"Detail", "code"}]}}``), except that Intuit's platform answers 401 and 403 in lower case
(``{"fault": {"error": [{"message", "detail", "code"}]}}``): both are read. A bill with a payment
linked (paid or part-paid) cannot be deleted: QuickBooks refuses with its Fault, raised in its
words. Each answer's ``intuit_tid`` is kept with the call (:mod:`integrations.http`).

Procore's QuickBooks Online connector does not sync commitments, so there is no purchase
document to read or delete: those calls are refused without a request.
"""

from __future__ import annotations

from typing import Any

from integrations.erp.connector import Connector, short_key
from integrations.errors import RemoteRefused
from integrations.http import Reply
from integrations.models import Bill, PurchaseDocument

NOT_FOUND = "610"  # "Object Not Found": what reading a deleted bill answers
MINOR_VERSION = "75"  # Intuit serves minor versions 75 and later only (Intuit, 2025)
NO_COMMITMENTS = "QuickBooks Online's Procore connector does not sync commitments"


class QuickBooksOnline(Connector):
    """``/v3/company/{realm}/bill``; ``company`` is the realm id."""

    key = "qbo"
    product_name = "QuickBooks Online"
    company_field = "realm id"
    syncs_commitments = False

    def get_bill(self, bill_id: str) -> Bill | None:
        found = self._read(bill_id)
        return found[0] if found else None

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        found = self._read(bill_id)
        if found is None:
            return  # already gone
        bill, sync_token = found
        reply = self._http.request(
            "POST",
            f"{self._base()}/bill",
            params={"operation": "delete", "requestid": short_key(idempotency_key, 50),
                    "minorversion": MINOR_VERSION},
            json={"Id": bill.id, "SyncToken": sync_token},
            idempotent=True,  # the SyncToken was read: a replay cannot delete twice
        )
        if reply.ok:
            shape = self._shape(reply)
            deleted = shape.mapping(shape.field(shape.mapping(reply.body, "the answer"), "Bill"),
                                    "Bill")
            if shape.text(deleted, "status") != "Deleted" or shape.text(deleted, "Id") != bill.id:
                raise self._http.protocol_error(reply, "the bill was not reported deleted")
            return
        if reply.status == 400 and NOT_FOUND in fault_codes(reply.body):
            return  # a retried delete whose first attempt went through
        if reply.status == 400 and fault_codes(reply.body):
            raise RemoteRefused(
                self._http.clean(fault_words(reply.body) or "QuickBooks Online refused"),
                system=self.key, status=reply.status,
            )
        raise self._http.error_for(reply, fault_words)

    def get_purchase_document(self, document_id: str) -> PurchaseDocument | None:
        raise RemoteRefused(NO_COMMITMENTS, system=self.key)

    def delete_purchase_document(self, document_id: str, *, idempotency_key: str) -> None:
        raise RemoteRefused(NO_COMMITMENTS, system=self.key)

    def _base(self) -> str:
        return f"/v3/company/{self._segment(self.company)}"

    def _read(self, bill_id: str) -> tuple[Bill, str] | None:
        reply = self._http.request("GET", f"{self._base()}/bill/{self._segment(bill_id)}",
                                   params={"minorversion": MINOR_VERSION})
        if reply.status == 400 and NOT_FOUND in fault_codes(reply.body):
            return None
        self._http.check(reply, fault_words)
        return self._bill(reply, bill_id)

    def _bill(self, reply: Reply, bill_id: str) -> tuple[Bill, str]:
        shape = self._shape(reply)
        bill = shape.mapping(shape.field(shape.mapping(reply.body, "the answer"), "Bill"), "Bill")
        found_id = shape.req_text(bill, "Id")
        if found_id != bill_id:
            raise self._http.protocol_error(reply, "the answer is about another bill")
        sync_token = shape.req_text(bill, "SyncToken")
        total = shape.number(bill, "TotalAmt", optional=True)
        balance = shape.number(bill, "Balance", optional=True)
        shape.array(bill.get("LinkedTxn", []), "LinkedTxn")
        status = "Open"  # as QuickBooks shows a bill: Open, Partially paid or Paid
        if balance is not None and total is not None and 0 <= balance < total:
            status = "Paid" if balance == 0 else "Partially paid"
        return Bill(id=found_id, status=status, raw=bill), sync_token


def _errors(body: Any) -> list[dict[str, Any]]:
    """The errors of a ``Fault`` body (or of the lower-case ``fault`` of a 401 or 403)."""
    if not isinstance(body, dict):
        return []
    fault = body.get("Fault", body.get("fault"))
    errors = fault.get("Error", fault.get("error")) if isinstance(fault, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _either(error: dict[str, Any], name: str) -> Any:
    return error.get(name, error.get(name.lower()))


def fault_codes(body: Any) -> set[str]:
    """The ``code`` of every error of a QuickBooks ``Fault`` body."""
    return {str(e["code"]) for e in _errors(body) if isinstance(e.get("code"), str | int)}


def fault_words(body: Any) -> str | None:
    """``Message: Detail`` of each error of a ``Fault`` body."""
    said = []
    for error in _errors(body):
        message, detail = _either(error, "Message"), _either(error, "Detail")
        message = message if isinstance(message, str) and message.strip() else None
        detail = detail if isinstance(detail, str) and detail.strip() else None
        if message and detail and message not in detail:
            said.append(f"{message}: {detail}")
        elif detail or message:
            said.append(detail or message or "")
    return "; ".join(said) or None
