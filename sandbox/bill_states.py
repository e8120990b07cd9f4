"""ERP bill states: where a :class:`~sandbox.state.BillRecord` is, product-neutral, and what each
product shows for it and does when asked to delete it.

A record has an approval ``stage`` (``draft``, ``submitted``, ``partially_approved``,
``declined``, ``approved``, ``selected`` for payment), what was paid (``paid`` in full, or
``part_paid``), and ``removed`` once it is gone. The seed holds one bill in each state that
changes the outcome (invoices 9001-9003 for the first three rows; ERP-only bills for the rest,
:data:`sandbox.seed.ERP_ONLY_BILLS`). Ids are QuickBooks Online ids; Xero's InvoiceID and
Intacct's key derive from them (:func:`sandbox.seed.erp_bill_id`).

| bill | seeded as | QuickBooks Online | Xero | Sage Intacct |
|---|---|---|---|---|
| 183 | approved, unpaid | open: deleted | AUTHORISED: VOIDED | posted: deleted (204) |
| 184 | paid | Balance 0: refused (6000) | PAID: refused | paid: refused (400) |
| 185 | deleted by hand | gone (Fault 610) | VOIDED: gone | gone (404) |
| 2001 | draft | open: deleted | DRAFT: DELETED | draft: deleted |
| 2002 | submitted | open: deleted | SUBMITTED: DELETED | submitted: deleted |
| 2003 | partially approved | open: deleted | SUBMITTED: DELETED | partiallyApproved: deleted |
| 2004 | declined | open: deleted | DRAFT: DELETED | declined: deleted |
| 2005 | selected for payment | open: deleted | AUTHORISED: VOIDED | selected: refused (400) |
| 2006 | 40 % paid | part-paid: refused | AUTHORISED, part-paid: refused | partiallyPaid: refused |
| 2007 | cancelled, record kept | gone (Fault 610) | DELETED: gone | reversed: gone **(model)** |

"Refused" is the product's own error: QuickBooks' ``Fault`` (code 6000, payments linked), Xero's
400 ``ValidationException`` ("... has a payment or credit note allocated to it"), Intacct's 400
``ia::error`` ``operationFailed``; "gone" is what relink reports as deleted (Xero keeps deleted
and voided bills readable).

Sources: Xero's status changes (DRAFT/SUBMITTED to DELETED, AUTHORISED to VOIDED; a bill with a
payment or credit note allocated cannot be changed) are Xero's documented rules; Intacct's states
are the ``state`` enum of its ``accounts-payable/bill`` object, and "you can only delete unpaid
bills in a posted, draft or declined state; bills in a submitted or partiallyApproved state can
only be deleted if no payment has been made against them" is its delete operation's text, so a
``selected`` (in a payment request) or part-paid bill is refused until the payment request is
cancelled. **Model**: how Xero shows stages it does not have (partially approved as SUBMITTED,
declined as DRAFT, selected as AUTHORISED); QuickBooks Online bills have no approval states and
show every stage as open; a reversed Intacct bill counts as gone, as a voided Xero bill does; the
refusal messages and codes.
"""

from __future__ import annotations

from decimal import Decimal

from sandbox.state import BillRecord

XERO_STATUS = {
    "draft": "DRAFT",
    "submitted": "SUBMITTED",
    "partially_approved": "SUBMITTED",
    "declined": "DRAFT",
    "approved": "AUTHORISED",
    "selected": "AUTHORISED",
}
INTACCT_STATE = {
    "draft": "draft",
    "submitted": "submitted",
    "partially_approved": "partiallyApproved",
    "declined": "declined",
    "approved": "posted",
    "selected": "selected",
}
INTACCT_DELETABLE = frozenset({"draft", "submitted", "partiallyApproved", "declined", "posted"})


def amount_paid(bill: BillRecord) -> Decimal:
    """What has been paid on the bill."""
    return bill.amount if bill.paid else bill.part_paid


def has_payments(bill: BillRecord) -> bool:
    return amount_paid(bill) > 0


def xero_status(bill: BillRecord) -> str:
    """``Status`` of the bill in Xero."""
    if bill.removed is not None:
        return bill.removed.upper()
    return "PAID" if bill.paid else XERO_STATUS[bill.stage]


def intacct_state(bill: BillRecord) -> str:
    """``state`` of the bill in Sage Intacct (a deleted bill is not readable: 404)."""
    if bill.removed is not None:
        return bill.removed
    if bill.paid:
        return "paid"
    return "partiallyPaid" if bill.part_paid > 0 else INTACCT_STATE[bill.stage]
