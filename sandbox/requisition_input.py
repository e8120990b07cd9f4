"""Validation of the writable requisition fields sent to ``POST /rest/v1.1/requisitions``.

Writable: ``period_id`` (integer), ``requisition_start``, ``requisition_end``, ``billing_date``
(``YYYY-MM-DD``), ``invoice_number`` (non-empty string), ``status`` (Procore's list), ``comment``
(string or null), ``final`` (boolean), ``items`` (line items). A line item names its ``item_type``
(``contract_item``, ``contract_detail_item`` or ``change_order_item``) and the line of the
commitment it bills (``line_item_id``; ``detail_line_item_id`` for a contract detail item), with
``work_completed_this_period`` and ``materials_presently_stored`` (optional, ``"0.00"``) as money,
a decimal string such as ``"1250.00"``, and an optional ``comment``; items have no
``description`` (Procore's ``RequisitionSubcontractorInvoiceItemsInner``). Anything else is
reported per field, Procore-style: ``{"field": ["problem", ...]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sandbox import seed

STATUSES = (
    "draft",
    "under_review",
    "revise_and_resubmit",
    "approved",
    "approved_as_noted",
    "pending_owner_approval",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONEY = re.compile(r"-?\d{1,12}(\.\d{1,2})?")
_ITEM_FIELDS = (
    "item_type", "line_item_id", "detail_line_item_id", "work_completed_this_period",
    "materials_presently_stored", "comment",
)

Errors = dict[str, list[str]]


def _date(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None, "must be a date in the YYYY-MM-DD format"
    try:
        date.fromisoformat(value)
    except ValueError:
        return None, "is not a valid date"
    return value, None


def _integer(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None, "must be a positive integer"
    return value, None


def text(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        return None, "must be a non-empty string of at most 255 characters"
    return value, None


def optional_text(value: Any) -> tuple[Any, str | None]:
    if value is not None and (not isinstance(value, str) or len(value) > 10_000):
        return None, "must be a string or null"
    return value, None


def _status(value: Any) -> tuple[Any, str | None]:
    if value not in STATUSES:
        return None, f"must be one of {', '.join(STATUSES)}"
    return value, None


def boolean(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, bool):
        return None, "must be true or false"
    return value, None


def money(value: Any) -> str | None:
    """``value`` normalised to two decimals, or None when it is not a money string."""
    if not isinstance(value, str) or not _MONEY.fullmatch(value):
        return None
    return f"{Decimal(value):.2f}"


_FIELD_CHECKS: dict[str, Callable[[Any], tuple[Any, str | None]]] = {
    "period_id": _integer,
    "requisition_start": _date,
    "requisition_end": _date,
    "billing_date": _date,
    "invoice_number": text,
    "status": _status,
    "comment": optional_text,
    "final": boolean,
}


def validate(fields: dict[str, Any], commitment_id: int) -> tuple[dict[str, Any], Errors]:
    """The cleaned fields, and the problems found (empty when valid); items must bill lines of
    ``commitment_id``."""
    clean: dict[str, Any] = {}
    errors: Errors = {}
    for name, value in fields.items():
        if name == "items":
            clean["items"] = _items(value, commitment_id, errors)
            continue
        check = _FIELD_CHECKS.get(name)
        if check is None:
            errors.setdefault(str(name)[:80], []).append("is not a writable field")
            continue
        cleaned, problem = check(value)
        if problem is None:
            clean[name] = cleaned
        else:
            errors.setdefault(name, []).append(problem)
    start, end = clean.get("requisition_start"), clean.get("requisition_end")
    if start is not None and end is not None and start > end:
        errors.setdefault("requisition_end", []).append("must not be before requisition_start")
    return clean, errors


def _items(value: Any, commitment_id: int, errors: Errors) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        errors.setdefault("items", []).append("must be a list")
        return []
    items = []
    for index, item in enumerate(value):
        prefix = f"items[{index}]"
        if not isinstance(item, dict):
            errors.setdefault(prefix, []).append("must be an object")
            continue
        for name in [name for name in item if name not in _ITEM_FIELDS]:
            errors.setdefault(f"{prefix}.{str(name)[:80]}", []).append("is not a writable field")
        line = _line(item, commitment_id, prefix, errors)
        amounts = {}
        for name, default in (("work_completed_this_period", None),
                              ("materials_presently_stored", "0.00")):
            amount = money(item.get(name, default))
            if amount is None:
                errors.setdefault(f"{prefix}.{name}", []).append(
                    'must be an amount such as "1250.00"'
                )
            amounts[name] = amount
        comment, problem = optional_text(item.get("comment"))
        if problem is not None:
            errors.setdefault(f"{prefix}.comment", []).append(problem)
        if line is not None and None not in amounts.values() and problem is None:
            key = "detail_line_item_id" if line[0] == "contract_detail_item" else "line_item_id"
            cleaned = {"item_type": line[0], key: line[1], **amounts}
            if comment is not None:
                cleaned["comment"] = comment
            items.append(cleaned)
    return items


def _line(
    item: dict[str, Any], commitment_id: int, prefix: str, errors: Errors
) -> tuple[str, int] | None:
    """The item's type and the id of the commitment line it bills, or None (errors noted)."""
    item_type = item.get("item_type")
    if item_type not in seed.ITEM_TYPES:
        errors.setdefault(f"{prefix}.item_type", []).append(
            f"must be one of {', '.join(seed.ITEM_TYPES)}"
        )
        return None
    key = "detail_line_item_id" if item_type == "contract_detail_item" else "line_item_id"
    line_id = item.get(key)
    if isinstance(line_id, bool) or not isinstance(line_id, int):
        errors.setdefault(f"{prefix}.{key}", []).append(f"is required for a {item_type}")
        return None
    line = seed.LINE_ITEMS.get(line_id)
    if line is None or line.commitment_id != commitment_id or line.item_type != item_type:
        errors.setdefault(f"{prefix}.{key}", []).append(
            f"is not a {item_type.replace('_', ' ')} of commitment {commitment_id}"
        )
        return None
    return item_type, line_id
