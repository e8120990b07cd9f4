"""Signing in to the ERPs: each product's OAuth 2.0 endpoints, and the token exchange.

All three use OAuth 2.0 with short-lived access tokens and rotating refresh tokens:

* QuickBooks Online: authorize ``https://appcenter.intuit.com/connect/oauth2`` (scope
  ``com.intuit.quickbooks.accounting``; the redirect carries ``realmId``, the company), token
  ``https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer`` with the client in an HTTP Basic
  header; access tokens of one hour; no client-credentials grant.
* Xero: authorize ``https://login.xero.com/identity/connect/authorize`` (scope
  ``offline_access`` for a refresh token, plus ``accounting.transactions``), token
  ``https://identity.xero.com/connect/token`` with the client in an HTTP Basic header;
  30-minute access tokens; custom connections use the client-credentials grant (no refresh
  token: a new access token is asked for with the same grant).
* Sage Intacct: authorize ``https://api.intacct.com/ia/api/v1/oauth2/authorize`` (scope
  ``offline_access`` for a refresh token), token ``https://api.intacct.com/ia/api/v1/oauth2/token``
  with the client in the form; client credentials too, naming the Web Services user as
  ``username`` = ``userId@companyId`` (``|entityId`` for an entity).

The token URL and authorize URL come from settings (``erp.token_url``, ``erp.authorize_url``),
these public ones by default. The exchange never lets a secret reach a message.
"""

from __future__ import annotations

import base64
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from integrations.erp import PRODUCTS
from integrations.errors import RemoteUnavailable
from integrations.http import HttpClient, RetryPolicy
from integrations.shape import remote_words

TOKEN_URLS: Final = {
    "qbo": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    "xero": "https://identity.xero.com/connect/token",
    "intacct": "https://api.intacct.com/ia/api/v1/oauth2/token",
}
AUTHORIZE_URLS: Final = {
    "qbo": "https://appcenter.intuit.com/connect/oauth2",
    "xero": "https://login.xero.com/identity/connect/authorize",
    "intacct": "https://api.intacct.com/ia/api/v1/oauth2/authorize",
}
SCOPES: Final = {
    "qbo": "com.intuit.quickbooks.accounting",
    "xero": "offline_access accounting.transactions",
    "intacct": "offline_access",
}
CLIENT_CREDENTIALS: Final = frozenset({"xero", "intacct"})  # QuickBooks Online has none
BASIC_AUTH: Final = frozenset({"qbo", "xero"})  # the client in an Authorization: Basic header
COMPANY_IN_REDIRECT: Final = {"qbo": "realmId"}  # the redirect names the company


def authorize_query(
    product: str, *, client_id: str, redirect_uri: str, state: str
) -> dict[str, str]:
    """The query of the address where the operator signs in and allows relink."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES[product],
        "state": state,
    }


def exchange_erp_token(
    product: str,
    token_url: str,
    form: dict[str, str],
    *,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """POST ``form`` (with ``client_id`` and ``client_secret``) to the product's token endpoint,
    the client sent the way the product wants it; the token answer, or
    RemoteRejectedCredentials when the grant or the client is refused."""
    label = PRODUCTS[product]
    fields = dict(form)
    headers = {"Accept": "application/json"}
    if product in BASIC_AUTH:
        pair = f"{fields.pop('client_id', '')}:{fields.pop('client_secret', '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    secrets = tuple(
        value for key, value in form.items()
        if key in {"client_secret", "code", "refresh_token"} and value
    )
    origin, path = _split(token_url, label, product)
    with HttpClient(
        system=product, label=label, base_url=origin, headers=headers,
        secrets=secrets + tuple(v for k, v in headers.items() if k == "Authorization"),
        policy=policy, transport=transport,
    ) as http:
        reply = http.request("POST", path, data=fields)
        return http.token_answer(reply, _words)


def _split(url: str, label: str, product: str) -> tuple[str, str]:
    """``(scheme://host[:port], /path)``: the client's base is the origin, so that the path is
    sent exactly as configured."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RemoteUnavailable(f"{label} unavailable: invalid token URL", system=product) from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteUnavailable(f"{label} unavailable: invalid token URL", system=product)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def _words(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    return remote_words(body.get("error_description")) or remote_words(body.get("error"))
