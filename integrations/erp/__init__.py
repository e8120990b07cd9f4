"""The ERP connectors: one per product, all implementing :class:`integrations.base.ERPConnector`.

This module imports no HTTP code, so the CLI can list products cheaply; ``make_erp`` loads the
connector it builds.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from integrations.auth import TokenSource
    from integrations.base import ERPConnector
    from integrations.http import RetryPolicy

PRODUCTS = {"qbo": "QuickBooks Online", "xero": "Xero", "intacct": "Sage Intacct"}
DEFAULT_API_URLS = {
    "qbo": "https://quickbooks.api.intuit.com",
    "xero": "https://api.xero.com",
    "intacct": "https://api.intacct.com",
}
_CLASSES = {
    "qbo": ("integrations.erp.qbo", "QuickBooksOnline"),
    "xero": ("integrations.erp.xero", "Xero"),
    "intacct": ("integrations.erp.intacct", "SageIntacct"),
}


def make_erp(
    product: str,
    *,
    base_url: str,
    token: str | TokenSource,
    company: str,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ERPConnector:
    """The connector for ``product`` (``qbo``, ``xero``, ``intacct``); close it when done."""
    if product not in _CLASSES:
        known = ", ".join(PRODUCTS)
        raise ValueError(f"unknown ERP product {product!r}; expected one of: {known}")
    module, name = _CLASSES[product]
    connector: ERPConnector = getattr(import_module(module), name)(
        base_url=base_url, token=token, company=company, policy=policy, transport=transport
    )
    return connector
