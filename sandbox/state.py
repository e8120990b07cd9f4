"""The sandbox's mutable data: invoices, ERP bills, commitments and their ERP purchase documents,
issued tokens, the call log.

A :class:`SandboxState` is built fresh from :mod:`sandbox.seed` on every reset; the
request handlers read and change it while :class:`~sandbox.world.SandboxWorld` holds
its lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox import seed
from sandbox.tokens import TokenLedger
from sandbox.wire import Response

GONE_STATES = frozenset({"deleted", "voided", "reversed"})  # reversed: Sage Intacct (model)


@dataclass(slots=True)
class RequisitionRecord:
    """One subcontractor invoice, with Procore's field names."""

    id: int
    project_id: int
    commitment_id: int
    number: int
    invoice_number: str | None
    status: str
    period_id: int | None
    billing_date: str | None
    requisition_start: str | None
    requisition_end: str | None
    origin_id: str | None
    origin_data: str | None
    deletable: bool
    comment: str | None
    final: bool
    items: list[dict[str, Any]]
    created_at: str
    updated_at: str
    deleted: bool = False
    # the ERP link of each item, by item id (External Data of ``requisition_contract_item`` &c.;
    # never shown by Procore's requisition views, only by the control endpoints)
    item_links: dict[int, str | None] = field(default_factory=dict)

    @property
    def linked(self) -> bool:
        return self.origin_id is not None


@dataclass(slots=True)
class BillRecord:
    """One AP bill in the ERP, product-neutral; each ERP module renders it in its own shape."""

    qbo_id: int
    invoice_number: str
    vendor_ref: int
    vendor_name: str
    amount: Decimal
    txn_date: str
    due_date: str
    paid: bool = False
    removed: str | None = None  # None while it exists, else "deleted", "voided" or "reversed"
    sync_token: int = 0  # QuickBooks Online's optimistic-locking version
    updated_at: str = ""
    stage: str = "approved"  # one of seed.BILL_STAGES (sandbox.bill_states tells what it does)
    part_paid: Decimal = Decimal("0.00")  # paid so far on a bill that is not fully paid

    @property
    def gone(self) -> bool:
        return self.removed in GONE_STATES


@dataclass(slots=True)
class CommitmentRecord:
    """One Procore commitment (work order or purchase order contract); ``extra`` holds the other
    writable fields (description, dates, inclusions, ...) by Procore's names."""

    id: int
    project_id: int
    kind: str
    number: str | None
    title: str | None
    status: str
    vendor_id: int
    amount: Decimal
    origin_id: str | None
    origin_data: str | None
    origin_code: str | None
    extra: dict[str, Any]
    created_at: str
    updated_at: str
    deleted_at: str | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(slots=True)
class PurchaseDocumentRecord:
    """A commitment's transaction in the ERP, product-neutral (a Xero purchase order, an Intacct
    purchasing document); ``state`` is "open", "billed" (bills or receipts made from it) or
    "deleted"."""

    serial: int
    commitment_id: int
    kind: str
    number: str
    reference: str | None  # the commitment's number in Procore
    description: str | None
    vendor_id: int
    project_id: int
    amount: Decimal
    txn_date: str
    state: str
    created_at: str
    updated_at: str

    @property
    def gone(self) -> bool:
        return self.state == "deleted"

    @property
    def converted(self) -> Decimal:
        """What was billed or received against it: 40 % once billed **(model)**."""
        if self.state != "billed":
            return Decimal("0.00")
        return (self.amount * Decimal("0.40")).quantize(Decimal("0.01"))


@dataclass(slots=True)
class SandboxState:
    """Everything a reset puts back to the seed."""

    erp: str
    requisitions: dict[int, RequisitionRecord] = field(default_factory=dict)
    bills: dict[int, BillRecord] = field(default_factory=dict)  # by QuickBooks Online id
    commitments: dict[int, CommitmentRecord] = field(default_factory=dict)
    purchase_documents: dict[int, PurchaseDocumentRecord] = field(default_factory=dict)  # serial
    tokens: TokenLedger = field(default_factory=TokenLedger)  # issued by the token endpoints
    idempotent_answers: dict[str, Response] = field(default_factory=dict)  # Xero Idempotency-Key
    calls: list[dict[str, Any]] = field(default_factory=list)
    # ERP Requests made by Unlink clicks, each with its request detail (status and messages)
    erp_requests: list[dict[str, Any]] = field(default_factory=list)
    auto_unlink: bool = False
    erp_reads: set[str] = field(default_factory=set)  # last path segments of ERP reads (ids)
    # (item type, id) answered still linked once under auto-unlink: the next read unlinks it
    shown_linked: set[tuple[str, int]] = field(default_factory=set)

    def click_due(self, item_type: str, item_id: int) -> bool:
        """Auto-unlink: the operator clicks once relink has read the item still linked (the
        first read answers linked, so the evidence shows the link before and after)."""
        key = (item_type, item_id)
        if key in self.shown_linked:
            return True
        self.shown_linked.add(key)
        return False
    next_requisition_id: int = seed.FIRST_NEW_REQUISITION_ID
    next_item_id: int = seed.FIRST_NEW_ITEM_ID
    next_purchase_serial: int = seed.FIRST_NEW_PURCHASE_SERIAL
    ticks: int = 0
    requests: int = 0

    @classmethod
    def from_seed(cls, erp: str) -> SandboxState:
        state = cls(erp=erp)
        for position, invoice in enumerate(seed.INVOICES):
            state._add_seed_invoice(invoice, position)
        for position, commitment in enumerate(seed.SEED_COMMITMENTS):
            state._add_seed_commitment(commitment, position)
        for position, bill in enumerate(seed.ERP_ONLY_BILLS):
            state._add_erp_only_bill(bill, position)
        return state

    def _add_erp_only_bill(self, bill: seed.SeedBill, position: int) -> None:
        vendor = seed.ERP_ONLY_VENDOR
        self.bills[bill.qbo_id] = BillRecord(
            qbo_id=bill.qbo_id, invoice_number=bill.invoice_number, vendor_ref=vendor.erp_ref,
            vendor_name=vendor.name, amount=bill.amount, txn_date=seed.PERIOD_END,
            due_date=seed.BILL_DUE_DATE, paid=bill.paid, updated_at=bill.updated_at(position),
            removed=seed.CANCELLATIONS[self.erp] if bill.cancelled else None,
            stage=bill.stage, part_paid=bill.part_paid,
        )

    # --- clocks and counters -------------------------------------------------------------

    def tick(self) -> str:
        """Advance the logical clock by one second; the new time, ISO 8601 in UTC."""
        self.ticks += 1
        return _iso(seed.CLOCK_START + timedelta(seconds=self.ticks))

    def now(self) -> str:
        return _iso(seed.CLOCK_START + timedelta(seconds=self.ticks))

    def next_request_id(self) -> str:
        self.requests += 1
        return f"sandbox-{self.requests:08d}"

    # --- look-ups ------------------------------------------------------------------------

    def user_for_token(self, token: str) -> seed.SeedUser | None:
        user_id = self.tokens.subject("procore", token)
        for user in seed.USERS:
            if token == user.token or user.id == user_id:
                return user
        return None

    def bill_id(self, bill: BillRecord) -> str:
        return seed.erp_bill_id(self.erp, bill.qbo_id)

    def find_bill(self, bill_id: str, *, accept_qbo_id: bool = False) -> BillRecord | None:
        """The bill with this id in the current ERP's format (or its QBO id, if accepted)."""
        qbo_id = seed.qbo_id_from(self.erp, bill_id)
        bill = self.bills.get(qbo_id) if qbo_id is not None else None
        if bill is None and accept_qbo_id:
            fallback = seed.qbo_id_from("qbo", bill_id)
            bill = self.bills.get(fallback) if fallback is not None else None
        return bill

    def clear_requisition_link(self, record: RequisitionRecord) -> None:
        """The invoice and its items are no longer synced (what an unlink does)."""
        record.origin_id = record.origin_data = None
        record.item_links = dict.fromkeys(record.item_links)
        record.updated_at = self.tick()

    def live_requisition(self, requisition_id: int) -> RequisitionRecord | None:
        record = self.requisitions.get(requisition_id)
        return None if record is None or record.deleted else record

    @property
    def syncs_commitments(self) -> bool:
        """Whether Procore's connector for this ERP syncs commitments (not QuickBooks Online)."""
        return self.erp in seed.COMMITMENT_ERPS

    def live_commitment(
        self, commitment_id: int, kind: str | None = None
    ) -> CommitmentRecord | None:
        """The commitment unless deleted (and, with ``kind``, only if it is of that kind)."""
        record = self.commitments.get(commitment_id)
        if record is None or record.deleted or (kind is not None and record.kind != kind):
            return None
        return record

    def purchase_document_id(self, document: PurchaseDocumentRecord) -> str:
        return seed.purchase_document_id(self.erp, document.serial)

    def find_purchase_document(self, document_id: str) -> PurchaseDocumentRecord | None:
        """The purchase document with this id in the current ERP's format (deleted ones too)."""
        if not self.syncs_commitments:
            return None
        serial = seed.purchase_serial_from(self.erp, document_id)
        return self.purchase_documents.get(serial) if serial is not None else None

    def export_commitment(
        self, record: CommitmentRecord, *, serial: int | None = None, state: str = "open",
        at: str | None = None,
    ) -> PurchaseDocumentRecord:
        """Create the commitment's document in the ERP and link the commitment to it, as
        Procore's connector does once the accounting approver accepts it."""
        if serial is None:
            serial = self.next_purchase_serial
            self.next_purchase_serial += 1
        at = at or self.tick()
        document = PurchaseDocumentRecord(
            serial=serial,
            commitment_id=record.id,
            kind=record.kind,
            number=seed.purchase_document_number(self.erp, record.kind, serial),
            reference=record.number,
            description=record.title,
            vendor_id=record.vendor_id,
            project_id=record.project_id,
            amount=record.amount,
            txn_date=str(record.extra.get("contract_date") or seed.COMMITMENT_DATE),
            state=state,
            created_at=at,
            updated_at=at,
        )
        self.purchase_documents[serial] = document
        record.origin_id = self.purchase_document_id(document)
        record.origin_code = document.number
        label = _document_label(self.erp, record.kind)
        record.origin_data = f"{seed.PRODUCT_NAMES[self.erp]} {label} {document.number}"
        record.updated_at = at
        return document

    # --- seeding -------------------------------------------------------------------------

    def _add_seed_invoice(self, invoice: seed.SeedInvoice, position: int) -> None:
        commitment = seed.COMMITMENTS[invoice.commitment_id]
        created = _iso(seed.SEED_TIME + timedelta(minutes=position))
        origin_id = None
        if invoice.bill_qbo_id is not None:
            origin_id = seed.erp_bill_id(self.erp, invoice.bill_qbo_id)
            self.bills[invoice.bill_qbo_id] = BillRecord(
                qbo_id=invoice.bill_qbo_id,
                invoice_number=invoice.invoice_number,
                vendor_ref=commitment.vendor_ref,
                vendor_name=commitment.vendor_name,
                amount=invoice.amount,
                txn_date=seed.PERIOD_END,
                due_date=seed.BILL_DUE_DATE,
                paid=invoice.bill_state == "paid",
                removed=_seed_removal(self.erp, invoice.bill_state),
                updated_at=created,
            )
        items = [
            seed_item(invoice.id * 100 + position, line, amount, position)
            for position, (line, amount) in enumerate(invoice.items, start=1)
        ]
        self.requisitions[invoice.id] = RequisitionRecord(
            id=invoice.id,
            project_id=invoice.project_id,
            commitment_id=invoice.commitment_id,
            number=invoice.number,
            invoice_number=invoice.invoice_number,
            status=invoice.status,
            period_id=seed.PERIOD_IDS[invoice.project_id],
            billing_date=seed.PERIOD_END,
            requisition_start=seed.PERIOD_START,
            requisition_end=seed.PERIOD_END,
            origin_id=origin_id,
            origin_data=_origin_data(self.erp, origin_id),
            deletable=invoice.deletable,
            comment=None,
            final=False,
            items=items,
            created_at=created,
            updated_at=created,
            item_links={
                item["id"]: None if origin_id is None else f"{origin_id}-{item['position']}"
                for item in items
            },
        )

    def _add_seed_commitment(self, commitment: seed.SeedCommitment, position: int) -> None:
        created = _iso(seed.SEED_TIME - timedelta(days=30) + timedelta(minutes=position))
        record = CommitmentRecord(
            id=commitment.id,
            project_id=commitment.project_id,
            kind=commitment.kind,
            number=commitment.number,
            title=commitment.title,
            status=commitment.status,
            vendor_id=commitment.vendor_id,
            amount=commitment.amount,
            origin_id=None,
            origin_data=None,
            origin_code=None,
            extra={
                "description": f"{commitment.title} for {seed.PROJECTS[commitment.project_id]}",
                "executed": True,
                "private": False,
                "retainage_percent": "10.00",
                "accounting_method": "amount",
                "contract_date": seed.COMMITMENT_DATE,
                "inclusions": None,
                "exclusions": None,
            },
            created_at=created,
            updated_at=created,
        )
        self.commitments[commitment.id] = record
        if commitment.erp_state is not None and self.syncs_commitments:
            self.export_commitment(
                record, serial=commitment.id, state=commitment.erp_state, at=created
            )


def seed_item(item_id: int, line: seed.LineItem, amount: Decimal, position: int) -> dict[str, Any]:
    """A requisition item as the sandbox keeps it: Procore's extended-view fields."""
    key = "detail_line_item_id" if line.item_type == "contract_detail_item" else "line_item_id"
    return {
        "id": item_id,
        "item_type": line.item_type,
        key: line.id,
        "description_of_work": line.description,
        "scheduled_value": f"{line.scheduled_value:.2f}",
        "work_completed_this_period": f"{amount:.2f}",
        "materials_presently_stored": "0.00",
        "position": position,
    }


def _document_label(erp: str, kind: str) -> str:
    return seed.INTACCT_DOCUMENT_TYPES[kind] if erp == "intacct" else "purchase order"


def removal_for(erp: str) -> str:
    """How a bill deleted by hand disappears: Xero can only void an authorised bill."""
    return "voided" if erp == "xero" else "deleted"


def _seed_removal(erp: str, bill_state: str | None) -> str | None:
    return removal_for(erp) if bill_state == "deleted" else None


def _origin_data(erp: str, origin_id: str | None) -> str | None:
    return None if origin_id is None else f"{seed.PRODUCT_NAMES[erp]} bill {origin_id}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
