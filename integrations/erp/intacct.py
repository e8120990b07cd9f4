"""Sage Intacct (REST API v1): accounts-payable bills, read and deleted by key."""

from __future__ import annotations

from typing import Any

from integrations.erp.connector import Connector
from integrations.http import Reply
from integrations.models import Bill
from integrations.shape import remote_words

PATH = "/ia/api/v1/objects/accounts-payable/bill"


class SageIntacct(Connector):
    """``/ia/api/v1/objects/accounts-payable/bill/{key}``; the token is scoped to ``company``."""

    key = "intacct"
    product_name = "Sage Intacct"
    company_field = ""

    def get_bill(self, bill_id: str) -> Bill | None:
        reply = self._http.request("GET", f"{PATH}/{self._segment(bill_id)}")
        if self._gone(reply):
            return None
        self._http.check(reply, error_words)
        shape = self._shape(reply)
        result = shape.mapping(
            shape.field(shape.mapping(reply.body, "the answer"), "ia::result"), "ia::result"
        )
        key = shape.req_text(result, "key")
        if key != bill_id:
            raise self._http.protocol_error(reply, "the answer is about another bill")
        state = shape.req_text(result, "state")
        shape.text(result, "id", optional=True)
        shape.text(result, "billNumber", optional=True)
        return Bill(id=key, status=state, raw=result)

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        reply = self._http.request(
            "DELETE",
            f"{PATH}/{self._segment(bill_id)}",
            idempotent=True,  # a replayed DELETE finds the bill gone (404), which is success
        )
        if self._gone(reply):
            return
        self._http.check(reply, error_words)

    def _gone(self, reply: Reply) -> bool:
        """404 in Intacct's own error shape (a 404 from elsewhere, e.g. a wrong URL, is not)."""
        return reply.status == 404 and _error(reply.body) is not None


def _error(body: Any) -> dict[str, Any] | None:
    result = body.get("ia::result") if isinstance(body, dict) else None
    error = result.get("ia::error") if isinstance(result, dict) else None
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
