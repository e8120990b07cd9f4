"""The corrected-requisition data file: validation, and merging with the original's snapshot."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

WRITABLE = (
    "period_id",
    "requisition_start",
    "requisition_end",
    "billing_date",
    "invoice_number",
    "status",
    "comment",
    "final",
    "items",
)
STATUSES = (
    "draft",
    "under_review",
    "revise_and_resubmit",
    "approved",
    "approved_as_noted",
    "pending_owner_approval",
)
# Line-item fields a requisition is created with (model: Procore's subcontractor invoice items
# carry many read-only fields; these are the ones relink writes).
ITEM_FIELDS = ("description", "work_completed_this_period", "materials_presently_stored")
AMOUNTS = ("work_completed_this_period", "materials_presently_stored")
# Money as Procore takes it: no exponent, NaN or Infinity (which Decimal and float accept)
MONEY = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,2})?")
FROM_ORIGINAL = ("project_id", "commitment_id")
DATES = ("requisition_start", "requisition_end", "billing_date")
SCALAR = (str, int, bool, type(None))


class InvalidData(ValueError):
    """The data file holds something Procore would not accept; the message names the field."""


def validate_correction(data: Any) -> dict[str, Any]:
    """Check a parsed data file; return it unchanged or raise InvalidData naming the problem."""
    if not isinstance(data, dict):
        raise InvalidData("the data file must hold a table/object of requisition fields")
    if not data:
        raise InvalidData("the data file corrects no field")
    for key, value in data.items():
        if key in FROM_ORIGINAL:
            raise InvalidData(f"{key} cannot be changed: it always comes from the original invoice")
        if key not in WRITABLE:
            raise InvalidData(f"unknown field {key!r} (writable: {', '.join(WRITABLE)})")
        _check_field(key, value)
    return data


def _check_field(key: str, value: Any) -> None:
    if key == "period_id":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**53:
            raise InvalidData("period_id must be a positive integer below 2^53")
    elif key in DATES:
        if value is not None and not _is_date(value):
            raise InvalidData(f"{key} must be a date YYYY-MM-DD")
    elif key == "invoice_number":
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise InvalidData("invoice_number must be a non-empty string (at most 255 characters)")
    elif key == "status":
        if value not in STATUSES:
            raise InvalidData(f"status must be one of {', '.join(STATUSES)}")
    elif key == "comment":
        if value is not None and not isinstance(value, str):
            raise InvalidData("comment must be a string")
    elif key == "final":
        if not isinstance(value, bool):
            raise InvalidData("final must be true or false")
    elif key == "items":
        _check_items(value)


def _check_items(items: Any) -> None:
    if not isinstance(items, list):
        raise InvalidData("items must be a list of line items")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidData(f"items[{index}] must be a table/object")
        for name, value in item.items():
            if name not in ITEM_FIELDS:
                raise InvalidData(
                    f"items[{index}]: unknown field {name!r} (fields: {', '.join(ITEM_FIELDS)})"
                )
            if isinstance(value, float):
                raise InvalidData(
                    f'items[{index}].{name}: write amounts as strings, e.g. "1250.00"'
                )
            if name in AMOUNTS and not (isinstance(value, str) and MONEY.fullmatch(value)):
                raise InvalidData(
                    f"items[{index}].{name}: an amount is a finite decimal string with at most"
                    ' two places and 12 digits before the point, e.g. "1250.00"'
                )
            if not isinstance(value, SCALAR):
                raise InvalidData(f"items[{index}].{name} must be a string, number or boolean")


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return True
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """TOML gives dates as date objects; Procore wants YYYY-MM-DD strings."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data.items()}


def corrected_requisition(snapshot: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The requisition body to create: every writable field from the snapshot, then the data."""
    body = {key: snapshot[key] for key in WRITABLE if key in snapshot}
    if isinstance(body.get("items"), list):
        body["items"] = [
            {k: v for k, v in item.items() if k in ITEM_FIELDS}
            for item in body["items"]
            if isinstance(item, dict)
        ]
    body.update(normalise(data))
    return body


def matches(fields: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether an existing requisition carries exactly the values we would create."""
    return all(fields.get(key) == value for key, value in body.items() if key != "items")
