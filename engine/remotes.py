"""The remote systems one service talks to, as the engine sees them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import UsageError
from integrations.base import ERPConnector, ProcoreAPI


@dataclass
class Remotes:
    """Procore and (when configured) the ERP connector."""

    procore: ProcoreAPI
    erp_connector: ERPConnector | None = None

    @property
    def erp(self) -> ERPConnector:
        if self.erp_connector is None:
            raise UsageError(
                "no ERP connection: set RELINK_ERP (qbo, xero or intacct), RELINK_ERP_COMPANY"
                " and RELINK_ERP_TOKEN"
            )
        return self.erp_connector

    @property
    def erp_product(self) -> str:
        return self.erp.product_name

    @property
    def erp_key(self) -> str:
        return self.erp.key

    def drain_calls(self) -> list[dict[str, Any]]:
        """The HTTP exchanges since the last drain, as audit evidence."""
        calls = self.procore.drain_calls()
        if self.erp_connector is not None:
            calls += self.erp_connector.drain_calls()
        return [call.as_evidence() for call in calls]

    def close(self) -> None:
        for client in (self.procore, self.erp_connector):
            close = getattr(client, "close", None)
            if close is not None:
                close()
