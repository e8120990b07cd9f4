"""The interfaces the engine programs against. Real clients and in-process fakes implement them."""

from __future__ import annotations

from typing import Any, Protocol

from integrations.models import Bill, Call, Commitment, PurchaseDocument, Requisition, User


class CallRecorder(Protocol):
    def drain_calls(self) -> list[Call]:
        """Return the calls made since the last drain, oldest first, and forget them."""


class ProcoreAPI(CallRecorder, Protocol):
    """The Procore calls relink makes (spec/remote-apis.md); ``company_id`` is fixed per client."""

    company_id: int

    def me(self) -> User: ...

    def can_push_to_accounting(self) -> bool:
        """``erp_integrated_accountant`` of the company user (``GET .../companies/{id}/me``)."""

    def tool_levels(self, *, project_id: int | None = None) -> dict[str, str]:
        """Tool name -> access level name (``None``, ``Read Only``, ``Standard``, ``Admin``).

        With ``project_id`` the project's tools (``commitments``), without it the company's
        (``erp_integrations``).
        """

    def get_requisition(self, project_id: int, requisition_id: int) -> Requisition:
        """Raises RemoteNotFound when missing or not visible."""

    def find_requisitions(
        self,
        project_id: int,
        *,
        commitment_id: int | None = None,
        invoice_number: str | None = None,
        status: str | None = None,
    ) -> list[Requisition]:
        """All requisitions of the project matching the filters (every page)."""

    def sync_external_data(self, updates: list[dict[str, Any]]) -> None:
        """ERP External Data Sync (a service account's token only). Raises RemoteRefused with
        Procore's per-item errors."""

    def delete_requisition(self, project_id: int, requisition_id: int) -> None:
        """Raises RemoteRefused (422) when Procore will not delete it."""

    def create_requisition(
        self, project_id: int, commitment_id: int, requisition: dict[str, Any]
    ) -> Requisition: ...

    def get_commitment(self, project_id: int, commitment_id: int) -> Commitment:
        """The subcontract (``work_order_contracts``), else the purchase order
        (``purchase_order_contracts``) with this id. Raises RemoteNotFound when neither."""


    def update_commitment(self, commitment: Commitment, fields: dict[str, Any]) -> Commitment:
        """PATCH the fields; the commitment as Procore answers. RemoteRefused (422) with its
        reason when Procore will not change it."""

    def delete_commitment(self, commitment: Commitment) -> None:
        """Raises RemoteRefused (422) when Procore will not delete it (synced, not Draft)."""


class ERPConnector(CallRecorder, Protocol):
    """One ERP product: read a bill, delete (or void) it; the same for a commitment's purchase
    document where Procore's connector for the product syncs commitments."""

    key: str  # "qbo", "xero", "intacct"
    product_name: str  # "QuickBooks Online", "Xero", "Sage Intacct"
    syncs_commitments: bool  # False for QuickBooks Online: its Procore connector does not
    company: str  # QBO realm, Xero tenant, Intacct company

    def get_bill(self, bill_id: str) -> Bill | None:
        """The bill, or None when it is gone (deleted, voided, not found)."""

    def delete_bill(self, bill_id: str, *, idempotency_key: str) -> None:
        """Delete or void the bill. Raises RemoteRefused with the ERP's own reason."""

    def get_purchase_document(self, document_id: str) -> PurchaseDocument | None:
        """The commitment's transaction, or None when it is gone (deleted, not found).
        Raises RemoteRefused when the product does not sync commitments."""

    def delete_purchase_document(self, document_id: str, *, idempotency_key: str) -> None:
        """Delete the commitment's transaction (nothing to do when it is gone). Raises
        RemoteRefused with the ERP's own reason (e.g. billed, converted)."""
