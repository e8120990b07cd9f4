"""QuickBooks Online (Accounting API v3): read a bill, delete it with its SyncToken.

Procore's QuickBooks Online connector does not sync commitments, so there is no purchase
document to read or delete: those calls are refused without a request.
"""

from __future__ import annotations

from typing import Any

from integrations.erp.connector import Connector, short_key
from integrations.errors import RemoteRefused
from integrations.http import Reply
from integrations.models import Bill, PurchaseDocument

NOT_FOUND = "610"  # "Object Not Found": what reading a deleted bill answers (model)
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
            params={"operation": "delete", "requestid": short_key(idempotency_key, 50)},
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
        reply = self._http.request("GET", f"{self._base()}/bill/{self._segment(bill_id)}")
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
        status = "Paid" if balance == 0 and (total or 0) > 0 else "Open"
        return Bill(id=found_id, status=status, raw=bill), sync_token


def _errors(body: Any) -> list[dict[str, Any]]:
    fault = body.get("Fault") if isinstance(body, dict) else None
    errors = fault.get("Error") if isinstance(fault, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def fault_codes(body: Any) -> set[str]:
    """The ``code`` of every error of a QuickBooks ``Fault`` body."""
    return {str(e["code"]) for e in _errors(body) if isinstance(e.get("code"), str | int)}


def fault_words(body: Any) -> str | None:
    """``Message: Detail`` of each error of a ``Fault`` body."""
    said = []
    for error in _errors(body):
        message, detail = error.get("Message"), error.get("Detail")
        message = message if isinstance(message, str) and message.strip() else None
        detail = detail if isinstance(detail, str) and detail.strip() else None
        if message and detail and message not in detail:
            said.append(f"{message}: {detail}")
        elif detail or message:
            said.append(detail or message or "")
    return "; ".join(said) or None
