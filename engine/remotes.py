"""The remote systems one service talks to, as the engine sees them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UsageError
from integrations.base import ERPConnector, ProcoreAPI
from workflows.unlinking import Unlinking


@dataclass
class Remotes:
    """Procore and (when configured) the ERP connector."""

    procore: ProcoreAPI
    erp_connector: ERPConnector | None = None
    unlinking: Unlinking = field(default_factory=Unlinking)

    @property
    def erp(self) -> ERPConnector:
        if self.erp_connector is None:
            raise UsageError(
                "no ERP connection: set RELINK_ERP (qbo, xero or intacct), RELINK_ERP_COMPANY"
                " and RELINK_ERP_TOKEN (or run `relink login --erp`)"
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
        for other in (self.unlinking.integrator, self.erp_connector):
            drain = getattr(other, "drain_calls", None)
            if drain is not None:
                calls += drain()
        return [call.as_evidence() for call in calls]

    def share_rate_budget(self, workers: Callable[[], int]) -> None:
        """Every client paces as one of ``workers()`` processes sharing the remotes' budgets."""
        for client in (self.procore, self.unlinking.integrator, self.erp_connector):
            share = getattr(client, "share_rate_budget", None)
            if share is not None:
                share(workers)

    def rate_budget(self) -> dict[str, str]:
        """What Procore's latest answer said is left of its rate budget (its headers)."""
        budget = getattr(self.procore, "rate_budget", None)
        return dict(budget()) if budget is not None else {}

    def close(self) -> None:
        for client in (self.procore, self.unlinking.integrator, self.erp_connector):
            close = getattr(client, "close", None)
            if close is not None:
                close()
