"""Validation of the writable commitment fields sent to ``PATCH /rest/v1.0/{kind}s/{id}``.

Writable (PSDK ``WorkOrderContract`` / ``PurchaseOrderContract``): ``title``, ``number``
(non-empty strings), ``description``, ``inclusions``, ``exclusions`` (string or null), ``status``
(the enum of the kind, capitalised), ``executed``, ``private`` (booleans), ``vendor_id`` (a vendor
of the company), ``retainage_percent`` (0-100, a decimal string or a number),
``accounting_method`` (``amount`` | ``unit``), the contract dates (``YYYY-MM-DD`` or null), and
the ERP link ``origin_id``, ``origin_data``, ``origin_code`` (string or null). Anything else is
reported per field, Procore-style: ``{"field": ["problem", ...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox import seed
from sandbox.requisition_input import boolean as _boolean
from sandbox.requisition_input import optional_text as _optional_text
from sandbox.requisition_input import text as _text

STATUSES = {
    "work_order_contract": (
        "Draft", "Out For Bid", "Out For Signature", "Approved", "Complete", "Terminated", "Void",
    ),
    "purchase_order_contract": (
        "Draft", "Processing", "Submitted", "Partially Received", "Received", "Approved", "Closed",
    ),
}
DATE_FIELDS = (
    "contract_date", "contract_start_date", "contract_estimated_completion_date",
    "execution_date", "issued_on_date", "signed_contract_received_date",
)
# After "Send to ERP" Procore locks these (support page "Send a Commitment to ERP Integrations for
# Accounting Acceptance"): a synced commitment must be unlinked before they change (model)
LOCKED_WHILE_SYNCED = ("vendor_id", "title", "status", "retainage_percent")

Errors = dict[str, list[str]]
Check = Callable[[Any], tuple[Any, str | None]]


def _optional_date(value: Any) -> tuple[Any, str | None]:
    if value is None:
        return None, None
    try:
        ok = isinstance(value, str) and len(value) == 10 and bool(date.fromisoformat(value))
    except ValueError:
        ok = False
    return (value, None) if ok else (None, "must be a date in the YYYY-MM-DD format or null")


def _vendor(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int) or value not in seed.VENDORS:
        return None, "is not a vendor of this company"
    return value, None


def _percent(value: Any) -> tuple[Any, str | None]:
    problem = "must be a percentage from 0 to 100"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, problem
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None, problem
    if not number.is_finite() or not 0 <= number <= 100:
        return None, problem
    return f"{number:.2f}", None


def _accounting_method(value: Any) -> tuple[Any, str | None]:
    if value not in ("amount", "unit"):
        return None, "is not included in the list (amount, unit)"
    return value, None


def _status_check(kind: str) -> Check:
    allowed = STATUSES[kind]

    def check(value: Any) -> tuple[Any, str | None]:
        if value not in allowed:
            return None, f"is not included in the list ({', '.join(allowed)})"
        return value, None

    return check


_CHECKS: dict[str, Check] = {
    "title": _text,
    "number": _text,
    "description": _optional_text,
    "inclusions": _optional_text,
    "exclusions": _optional_text,
    "executed": _boolean,
    "private": _boolean,
    "vendor_id": _vendor,
    "retainage_percent": _percent,
    "accounting_method": _accounting_method,
    "origin_id": _optional_text,
    "origin_data": _optional_text,
    "origin_code": _optional_text,
    **dict.fromkeys(DATE_FIELDS, _optional_date),
}


def validate(kind: str, fields: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The cleaned fields, and the problems found (empty when valid)."""
    checks = {**_CHECKS, "status": _status_check(kind)}
    clean: dict[str, Any] = {}
    errors: Errors = {}
    for name, value in fields.items():
        check = checks.get(name)
        if check is None:
            errors.setdefault(str(name)[:80], []).append("is not a writable field")
            continue
        cleaned, problem = check(value)
        if problem is None:
            clean[name] = cleaned
        else:
            errors.setdefault(name, []).append(problem)
    return clean, errors
