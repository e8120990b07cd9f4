"""What every ERP connector shares: its HTTP client, closing, the call log, safe URL segments."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from integrations.auth import RenewingBearer, TokenSource
from integrations.errors import RemoteNotFound
from integrations.http import HttpBacked, HttpClient, Reply, RetryPolicy
from integrations.shape import Shape


class Connector(HttpBacked):
    """Base of the ERP connectors; subclasses set ``key``, ``product_name`` and
    ``syncs_commitments``."""

    key: str
    product_name: str
    syncs_commitments: bool
    company_field = "company"  # what ``company`` is for this product; "" when it is not needed

    def __init__(
        self,
        *,
        base_url: str,
        token: str | TokenSource,
        company: str,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.company_field and not company:
            raise ValueError(
                f"{self.product_name} needs the {self.company_field} "
                "(RELINK_ERP_COMPANY or erp.company in relink.toml)"
            )
        self.company = company
        self._http = HttpClient(
            system=self.key,
            label=self.product_name,
            base_url=base_url,
            headers={
                **({"Authorization": f"Bearer {token}"} if isinstance(token, str) else {}),
                "Accept": "application/json",
                **(headers or {}),
            },
            secrets=(token,) if isinstance(token, str) else (),
            policy=policy,
            transport=transport,
            # a stored session: renewed before it expires, and once after a 401
            auth=None if isinstance(token, str) else RenewingBearer(token),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(company={self.company!r})"

    def _shape(self, reply: Reply) -> Shape:
        return Shape(lambda detail: self._http.protocol_error(reply, detail))

    def _segment(self, bill_id: str, what: str = "bill") -> str:
        """``bill_id`` as one URL path segment; an id that cannot be one names no ``what``."""
        if not isinstance(bill_id, str) or bill_id.strip() in {"", ".", ".."}:
            raise RemoteNotFound(
                f"{self.product_name}: {bill_id!r} is not a {what} id", system=self.key
            )
        return quote(bill_id, safe="")


def short_key(key: str, limit: int) -> str:
    """An idempotency key of at most ``limit`` characters (hashed when longer)."""
    return key if len(key) <= limit else hashlib.sha256(key.encode()).hexdigest()[:limit]
