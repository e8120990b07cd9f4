"""Build the Procore client and the ERP connector from settings, and close them again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from integrations.erp import DEFAULT_API_URLS, make_erp
from integrations.procore import ProcoreClient

if TYPE_CHECKING:
    import httpx

    from integrations.auth import TokenSource
    from integrations.base import ERPConnector, ProcoreAPI
    from integrations.http import RetryPolicy


def connect(
    *,
    procore_url: str,
    token: str | TokenSource,
    company_id: int,
    erp_product: str | None,
    erp_url: str | None,
    erp_token: str | TokenSource | None,
    erp_company: str | None,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[ProcoreAPI, ERPConnector | None]:
    """The Procore client, and the ERP connector (None unless product and token are set).

    ``erp_url`` defaults to the product's public API host; ``transport`` (an in-process one) is
    shared by both clients. Close both with :func:`close`, or use :func:`connected`.
    Raises ValueError for an unknown product or a missing ERP company.
    """
    procore = ProcoreClient(procore_url, token, company_id, policy=policy, transport=transport)
    if not (erp_product and erp_token):
        return procore, None
    try:
        erp = make_erp(
            erp_product,
            base_url=erp_url or DEFAULT_API_URLS.get(erp_product, ""),
            token=erp_token,
            company=erp_company or "",
            policy=policy, transport=transport,
        )
    except BaseException:
        procore.close()
        raise
    return procore, erp


def close(*clients: object) -> None:
    """Close every client that can be closed (None and others are skipped)."""
    for client in clients:
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()


@contextmanager
def connected(**settings: Any) -> Iterator[tuple[ProcoreAPI, ERPConnector | None]]:
    """:func:`connect` (same keyword arguments) as a context manager closing both clients."""
    procore, erp = connect(**settings)
    try:
        yield procore, erp
    finally:
        close(procore, erp)
