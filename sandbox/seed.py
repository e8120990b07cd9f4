"""The sandbox's starting data, exactly as ``spec/sandbox.md`` lists it.

Everything here is immutable; :mod:`sandbox.state` copies it into fresh mutable
records on every reset.

ERP bill ids. The seed names bills by their QuickBooks Online id (183, 184, ...). The other
products use their own formats, derived deterministically from that id:

* QuickBooks Online ``Id``: ``"183"``;
* Xero ``InvoiceID``: ``"00000000-0000-4000-8000-000000000183"`` (a UUID whose last group is the
  QBO id, zero-padded to 12 digits);
* Sage Intacct ``key`` (and ``id``): ``"50183"`` (the QBO id plus 50,000).

An invoice's ``origin_id`` holds the bill id in the format of the ERP the sandbox runs as.

Commitments 6001-6004 (the commitment workflow) are synced only where Procore's connector syncs
commitments (Xero: purchase orders; Sage Intacct: Purchasing documents; never QuickBooks Online).
Their ERP documents are named by a *serial*: the commitment id for the seeded ones, then
:data:`FIRST_NEW_PURCHASE_SERIAL` onwards for documents the accounting approver creates later:

* Xero ``PurchaseOrderID``: ``"00000000-0000-4000-a000-000000006001"`` (variant ``a``, so that it
  never equals a bill's ``...-8000-...`` id), ``PurchaseOrderNumber`` ``"PO-6001"``;
* Sage Intacct ``key``: ``"66001"`` (the serial plus 60,000), ``documentType`` ``PC Subcontracts``
  (``PC Purchase Orders`` for a purchase order contract), ``documentNumber`` ``"SC-6001"``.

A commitment's ``origin_id`` holds that id and its ``origin_code`` that number **(model)**.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

ERP_KEYS: Final = ("qbo", "xero", "intacct")
PRODUCT_NAMES: Final = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}

COMPANY_ID: Final = 4021
COMPANY_NAME: Final = "Summit Builders"
PROJECTS: Final = {101: "Harbor Point Tower", 102: "Eastside Clinic"}

QBO_REALM: Final = "9130357"
XERO_TENANT: Final = "a3f6c1de-0000-4000-8000-000000004021"
INTACCT_COMPANY: Final = "summit-builders"
ERP_COMPANIES: Final = {"qbo": QBO_REALM, "xero": XERO_TENANT, "intacct": INTACCT_COMPANY}
ERP_TOKEN: Final = "sandbox-erp"

OAUTH_CLIENT_ID: Final = "sandbox-client"
OAUTH_CLIENT_SECRET: Final = "sandbox-secret"
OAUTH_CODE_PREFIX: Final = "sandbox-code-"  # + the user's short name, e.g. sandbox-code-ana
TOKEN_EXPIRES_IN: Final = 5400

# Timestamps are derived from fixed instants so that every answer is deterministic: seed records
# were created from SEED_TIME on (one minute apart); changes happen on a logical clock that starts
# at CLOCK_START and advances one second per change.
SEED_TIME: Final = datetime(2026, 2, 2, 15, 0, tzinfo=UTC)
CLOCK_START: Final = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)

FIRST_NEW_REQUISITION_ID: Final = 9_900_000_000  # ids may exceed 32 bits, as Procore's do
FIRST_NEW_ITEM_ID: Final = 9_950_000_000

INTACCT_KEY_OFFSET: Final = 50_000
_XERO_PREFIX: Final = "00000000-0000-4000-8000-"
_XERO_ID = re.compile(r"00000000-0000-4000-8000-(\d{12})")
PURCHASE_KEY_OFFSET: Final = 60_000
FIRST_NEW_PURCHASE_SERIAL: Final = 16_001
_XERO_ORDER_PREFIX: Final = "00000000-0000-4000-a000-"
_XERO_ORDER_ID = re.compile(r"00000000-0000-4000-a000-(\d{12})")


@dataclass(frozen=True, slots=True)
class Commitment:
    id: int
    project_id: int
    vendor_name: str
    vendor_ref: int  # the vendor's record number in the ERP
    description: str


def _commitment(cid: int, project_id: int, vendor: str, ref: int, what: str) -> Commitment:
    return Commitment(cid, project_id, vendor, ref, what)


# One commitment per invoice (so that each invoice is the most recent on its commitment), except
# 5600, which carries the four invoices 9601-9604.
COMMITMENTS: Final = {
    **{cid: _commitment(cid, 101, "Ironclad Steel", 56, "Structural steel")
       for cid in range(5501, 5506)},
    5506: _commitment(5506, 102, "Northside Electric", 57, "Electrical"),
    **{cid: _commitment(cid, 102, "Northside Electric", 57, "Electrical")
       for cid in range(5700, 5900)},
    5900: _commitment(5900, 102, "Northside Electric", 57, "Electrical"),
    5600: _commitment(5600, 101, "Keystone Concrete", 58, "Cast-in-place concrete"),
}

ITEM_TYPES: Final = ("contract_item", "contract_detail_item", "change_order_item")


@dataclass(frozen=True, slots=True)
class LineItem:
    """A line of a commitment's schedule of values that an invoice item bills: a contract line
    item (``contract_item``), a line of a contract's detail (``contract_detail_item``, named by
    ``detail_line_item_id`` when written) or a change order line (``change_order_item``)."""

    id: int
    commitment_id: int
    item_type: str
    description: str
    scheduled_value: Decimal


def _contract_line(commitment: Commitment) -> LineItem:
    return LineItem(
        commitment.id * 10 + 1, commitment.id, "contract_item", commitment.description,
        Decimal("250000.00"),
    )


LINE_ITEMS: Final = {
    item.id: item
    for item in (
        *(_contract_line(commitment) for commitment in COMMITMENTS.values()),
        LineItem(55015, 5501, "change_order_item", "CO-001 Added moment frame bracing",
                 Decimal("40000.00")),
        LineItem(55063, 5506, "contract_detail_item", "Conduit and wire, level 2",
                 Decimal("60000.00")),
    )
}


@dataclass(frozen=True, slots=True)
class SeedUser:
    id: int
    short_name: str  # token ``sandbox-<short_name>``, OAuth code ``sandbox-code-<short_name>``
    login: str
    name: str
    commitments: str  # access level on the Commitments tool of projects 101 and 102
    erp_integrations: str  # access level on the company's ERP Integrations tool
    erp_integrated_accountant: bool
    service_account: bool = False  # a DMSA (developer managed service account) app

    @property
    def token(self) -> str:
        return f"sandbox-{self.short_name}"


USERS: Final = (
    SeedUser(7001, "ana", "ana@summit.example", "Ana Alvarez", "Admin", "Admin", True),
    SeedUser(7002, "ben", "ben@summit.example", "Ben Brooks", "Admin", "Standard", False),
    SeedUser(7003, "cara", "cara@summit.example", "Cara Castillo", "Standard", "Read Only", False),
    SeedUser(7004, "rita", "rita@summit.example", "Rita Romero", "Read Only", "None", False),
    SeedUser(7009, "service", "erp-connector@summit.example", "ERP Connector", "None", "Admin",
             False, service_account=True),
)
OPERATORS: Final = tuple(user for user in USERS if not user.service_account)
SERVICE_ACCOUNT: Final = USERS[-1]
OAUTH_CLIENT_USER: Final = USERS[0]  # client_credentials tokens act as ana

ACCESS_LEVELS: Final = ("None", "Read Only", "Standard", "Admin")  # the id is the index


@dataclass(frozen=True, slots=True)
class SeedInvoice:
    id: int
    project_id: int
    commitment_id: int
    number: int  # position within its commitment
    invoice_number: str
    status: str
    bill_qbo_id: int | None  # None: never exported
    bill_state: str | None  # "open", "paid" or "deleted" (already deleted in the ERP)
    deletable: bool
    amount: Decimal
    # (line item id, amount) per item; empty: one contract item billing the whole amount
    lines: tuple[tuple[int, Decimal], ...] = ()

    @property
    def items(self) -> tuple[tuple[LineItem, Decimal], ...]:
        if not self.lines:
            return ((LINE_ITEMS[self.commitment_id * 10 + 1], self.amount),)
        return tuple((LINE_ITEMS[line], amount) for line, amount in self.lines)


def _invoice(
    invoice_id: int, project_id: int, commitment_id: int, number: int, invoice_number: str,
    status: str, bill: int | None, bill_state: str | None, amount: str, *,
    deletable: bool = True, lines: tuple[tuple[int, Decimal], ...] = (),
) -> SeedInvoice:
    return SeedInvoice(
        invoice_id, project_id, commitment_id, number, invoice_number, status, bill, bill_state,
        deletable, Decimal(amount), lines,
    )


def _batch_invoice(index: int) -> SeedInvoice:
    amount = Decimal("1500.00") + Decimal("12.50") * index
    return _invoice(
        9200 + index, 102, 5700 + index, 1, f"INV-{3000 + index}", "approved", 1200 + index,
        "open", f"{amount:.2f}",
    )


INVOICES: Final = (
    _invoice(9001, 101, 5501, 1, "INV-1001", "approved", 183, "open", "12500.00",
             lines=((55011, Decimal("10000.00")), (55015, Decimal("2500.00")))),
    _invoice(9002, 101, 5502, 1, "INV-1002", "approved", 184, "paid", "8400.00"),
    _invoice(9003, 101, 5503, 1, "INV-1003", "approved", 185, "deleted", "15250.00"),
    _invoice(9004, 101, 5504, 1, "INV-1004", "draft", None, None, "3100.00"),
    _invoice(9005, 101, 5505, 1, "INV-1005", "approved", 186, "open", "9875.50", deletable=False),
    _invoice(9101, 102, 5506, 1, "INV-2001", "approved", 190, "open", "22000.00",
             lines=((55061, Decimal("16000.00")), (55063, Decimal("6000.00")))),
    *(_batch_invoice(index) for index in range(200)),
    _invoice(9400, 102, 5900, 1, "INV-3005", "approved", 1400, "open", "4100.00"),
    *(
        _invoice(9600 + n, 101, 5600, n, f"INV-400{n}", "approved", 1600 + n, "open",
                 f"{Decimal('18000.00') + Decimal('750.00') * n:.2f}")
        for n in range(1, 5)
    ),
)  # fmt: skip

PERIOD_IDS: Final = {101: 301, 102: 302}  # the January 2026 billing period of each project
PERIOD_START: Final = "2026-01-01"
PERIOD_END: Final = "2026-01-31"
BILL_DUE_DATE: Final = "2026-03-02"


# --- commitments of the commitment workflow (Unlink Commitments Synced with ERP) ------------------

COMMITMENT_KINDS: Final = ("work_order_contract", "purchase_order_contract")
# Procore's class names, as its 404 messages use them
COMMITMENT_CLASSES: Final = {
    "work_order_contract": "WorkOrderContract",
    "purchase_order_contract": "PurchaseOrderContract",
}
COMMITMENT_ERPS: Final = frozenset({"xero", "intacct"})  # QBO's Procore connector does not sync
INTACCT_DOCUMENT_TYPES: Final = {
    "work_order_contract": "PC Subcontracts",
    "purchase_order_contract": "PC Purchase Orders",
}


@dataclass(frozen=True, slots=True)
class Vendor:
    id: int  # Procore's vendor id (``vendor_id`` on a commitment)
    name: str
    erp_ref: int  # the vendor's record number in the ERP


VENDORS: Final = {
    8056: Vendor(8056, "Ironclad Steel", 56),
    8057: Vendor(8057, "Northside Electric", 57),
    8058: Vendor(8058, "Keystone Concrete", 58),
}


@dataclass(frozen=True, slots=True)
class SeedCommitment:
    id: int
    project_id: int
    kind: str  # one of COMMITMENT_KINDS
    number: str
    title: str
    status: str  # Procore's capitalised status
    vendor_id: int
    amount: Decimal
    erp_state: str | None  # under Xero/Intacct: "open", "billed" (the ERP refuses to delete it),
    # "deleted" (already gone from the ERP); None: never synced


SEED_COMMITMENTS: Final = (
    SeedCommitment(6001, 101, "work_order_contract", "SC-6001", "Structural steel package",
                   "Approved", 8056, Decimal("250000.00"), "open"),
    SeedCommitment(6002, 101, "work_order_contract", "SC-6002", "Steel erection",
                   "Approved", 8056, Decimal("180000.00"), "billed"),
    SeedCommitment(6003, 101, "work_order_contract", "SC-6003", "Miscellaneous metals",
                   "Approved", 8056, Decimal("42000.00"), None),
    SeedCommitment(6004, 101, "work_order_contract", "SC-6004", "Metal decking",
                   "Approved", 8056, Decimal("96500.00"), "deleted"),
)
COMMITMENT_DATE: Final = "2025-11-03"  # contract date of the seeded commitments


def purchase_document_id(erp: str, serial: int) -> str:
    """The id of the purchase document ``serial`` in ``erp``'s format."""
    if erp == "xero":
        return f"{_XERO_ORDER_PREFIX}{serial:012d}"
    return str(serial + PURCHASE_KEY_OFFSET)


def purchase_serial_from(erp: str, document_id: str) -> int | None:
    """The inverse of :func:`purchase_document_id`; None when not in ``erp``'s format."""
    if erp == "xero":
        match = _XERO_ORDER_ID.fullmatch(document_id.lower())
        return int(match.group(1)) if match else None
    if not document_id.isascii() or not document_id.isdigit() or len(document_id) > 12:
        return None
    number = int(document_id)
    return number - PURCHASE_KEY_OFFSET if number > PURCHASE_KEY_OFFSET else None


def purchase_document_number(erp: str, kind: str, serial: int) -> str:
    """Xero numbers purchase orders ``PO-…``; Intacct numbers per transaction definition."""
    if erp == "intacct" and kind == "work_order_contract":
        return f"SC-{serial}"
    return f"PO-{serial}"


def user_by_short_name(short_name: str) -> SeedUser | None:
    return next((user for user in USERS if user.short_name == short_name), None)


def erp_bill_id(erp: str, qbo_id: int) -> str:
    """The id of the bill seeded under QuickBooks Online id ``qbo_id``, in ``erp``'s format."""
    if erp == "xero":
        return f"{_XERO_PREFIX}{qbo_id:012d}"
    if erp == "intacct":
        return str(qbo_id + INTACCT_KEY_OFFSET)
    return str(qbo_id)


def qbo_id_from(erp: str, bill_id: str) -> int | None:
    """The inverse of :func:`erp_bill_id`; None when ``bill_id`` is not in ``erp``'s format."""
    if erp == "xero":
        match = _XERO_ID.fullmatch(bill_id.lower())
        return int(match.group(1)) if match else None
    if not bill_id.isascii() or not bill_id.isdigit() or len(bill_id) > 12:
        return None
    number = int(bill_id)
    if erp == "intacct":
        return number - INTACCT_KEY_OFFSET if number > INTACCT_KEY_OFFSET else None
    return number


# --- ERP-only bills: one in each state that changes what deleting a bill does ---------------------
#
# No Procore invoice points at these: they sit in the ERP so that each product's answer to a read
# and a delete can be seen for every state that decides the outcome (see sandbox.bill_states for
# the table). Ids as for the invoices' bills: Xero InvoiceID ...-8000-000000002001, Intacct key
# 52001, and so on.

BILL_STAGES: Final = (
    "draft", "submitted", "partially_approved", "declined", "approved", "selected",
)
# How a bill cancelled in the ERP keeps its record: Xero deletes a draft (Status DELETED), Sage
# Intacct reverses a posted bill (state "reversed", model), QuickBooks Online only deletes.
CANCELLATIONS: Final = {"qbo": "deleted", "xero": "deleted", "intacct": "reversed"}
ERP_ONLY_VENDOR: Final = VENDORS[8056]


@dataclass(frozen=True, slots=True)
class SeedBill:
    """A bill in the ERP only. ``stage`` is one of BILL_STAGES; ``paid_share`` the part paid
    (0: unpaid, between 0 and 1: part-paid, 1: paid); ``cancelled``: cancelled in the ERP in the
    product's own way, its record kept (CANCELLATIONS)."""

    qbo_id: int
    stage: str
    amount: Decimal
    paid_share: Decimal = Decimal("0")
    cancelled: bool = False

    @property
    def invoice_number(self) -> str:
        return f"ERP-{self.qbo_id}"

    @property
    def paid(self) -> bool:
        return self.paid_share >= 1

    @property
    def part_paid(self) -> Decimal:
        """What was paid on it while not fully paid."""
        share = Decimal("0") if self.paid else self.paid_share
        return (self.amount * share).quantize(Decimal("0.01"))

    def updated_at(self, position: int) -> str:
        """Last changed the morning the invoices were made, one minute apart."""
        return SEED_TIME.replace(hour=9, minute=position).strftime("%Y-%m-%dT%H:%M:%SZ")


ERP_ONLY_BILLS: Final = (
    SeedBill(2001, "draft", Decimal("5100.00")),
    SeedBill(2002, "submitted", Decimal("5200.00")),
    SeedBill(2003, "partially_approved", Decimal("5300.00")),
    SeedBill(2004, "declined", Decimal("5400.00")),
    SeedBill(2005, "selected", Decimal("5500.00")),
    SeedBill(2006, "approved", Decimal("5600.00"), paid_share=Decimal("0.40")),
    SeedBill(2007, "approved", Decimal("5700.00"), cancelled=True),
)
