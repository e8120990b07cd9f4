"""`relink login`: get a Procore OAuth 2.0 session and store it for later commands;
`relink login --erp`: the same for the configured ERP product.

Procore: two grants: the authorization code with the out-of-band redirect (the operator opens
the authorize URL, signs in, and pastes the code shown), and client credentials (a service
account, no browser). The client id comes from settings (``procore.client_id`` /
``RELINK_PROCORE_CLIENT_ID``); the client secret from ``RELINK_PROCORE_CLIENT_SECRET`` or a hidden
prompt, never from a flag.

ERP (QuickBooks Online, Xero, Sage Intacct; :mod:`integrations.erp.oauth`): the authorization
code, whose redirect goes to the app's registered ``erp.redirect_uri`` (none of them has an
out-of-band redirect): the operator opens the authorize URL, signs in, and pastes the address
the browser was sent to (its ``state`` is checked; QuickBooks' ``realmId`` names the company),
or just its code. Client credentials where the product has them (Xero custom connections; Sage
Intacct, naming the Web Services user ``erp.username``). Client id ``erp.client_id`` /
``RELINK_ERP_CLIENT_ID``, secret ``RELINK_ERP_CLIENT_SECRET`` or a hidden prompt.

Each session goes to its credentials file (see :mod:`engine.credentials`); nothing of it is
printed.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from engine.credentials import (
    CLIENT_SECRET_ENV,
    ERP_CLIENT_SECRET_ENV,
    CredentialStore,
    session_document,
)
from engine.errors import CredentialsRejected, Refused, Unavailable, UsageError
from engine.settings import Settings
from integrations.errors import RemoteError, RemoteRejectedCredentials, RemoteUnavailable

OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
CLIENT_ID_ENV = "RELINK_PROCORE_CLIENT_ID"
ERP_CLIENT_ID_ENV = "RELINK_ERP_CLIENT_ID"
ERP_REDIRECT_ENV = "RELINK_ERP_REDIRECT_URI"
ERP_USERNAME_ENV = "RELINK_ERP_USERNAME"


def authorize_url(settings: Settings) -> str:
    """Where the operator signs in and gets an authorization code (out-of-band redirect)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": _client_id(settings),
            "redirect_uri": OOB_REDIRECT,
        },
        safe=":",
    )
    return f"{settings.procore_login_url}/oauth/authorize?{query}"


def login(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    client_credentials: bool = False,
    code: str | None = None,
    ask_code: Callable[[str], str],
    ask_secret: Callable[[], str],
    store: CredentialStore | None = None,
    transport: Any = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Run the grant, store the session (mode 0600), and say who it belongs to.

    ``ask_code(url)`` is called with the authorize URL when no ``code`` was given;
    ``ask_secret()`` when the environment holds no client secret.
    """
    from engine.app import retry_policy
    from integrations.procore import exchange_token

    env = os.environ if env is None else env
    if client_credentials and code is not None:
        raise UsageError("--code and --client-credentials do not go together")
    client_id = _client_id(settings)
    secret = env.get(CLIENT_SECRET_ENV) or ask_secret()
    if not secret:
        raise UsageError(f"no client secret: set {CLIENT_SECRET_ENV} or type it when asked")
    form = {"client_id": client_id, "client_secret": secret}
    if client_credentials:
        grant = "client_credentials"
        form["grant_type"] = grant
    else:
        grant = "authorization_code"
        code = (code if code is not None else ask_code(authorize_url(settings))).strip()
        if not code:
            raise UsageError("no authorization code given")
        form |= {"grant_type": grant, "code": code, "redirect_uri": OOB_REDIRECT}
    policy = retry_policy(settings)
    try:
        answer = exchange_token(
            settings.procore_login_url, form, policy=policy, transport=transport
        )
    except RemoteError as exc:
        raise _engine_error(exc, "Procore", "relink login") from exc
    store = store or CredentialStore()
    doc = session_document(
        answer,
        login_url=settings.procore_login_url,
        api_url=settings.procore_url,
        client_id=client_id,
        client_secret=secret,
        grant=grant,
        now=clock(),
    )
    _store(store, doc)
    result: dict[str, Any] = {
        "grant": grant,
        "credentials_file": str(store.path),
        "expires_at": _iso(doc["expires_at"]),
        "refreshable": bool(doc["refresh_token"]) or grant == "client_credentials",
    }
    return result | _identity(settings, str(doc["access_token"]), policy, transport)


def _client_id(settings: Settings) -> str:
    if not settings.procore_client_id:
        raise UsageError(
            f"no Procore client id: set {CLIENT_ID_ENV} or procore.client_id in relink.toml"
        )
    return settings.procore_client_id


def _identity(settings: Settings, token: str, policy: Any, transport: Any) -> dict[str, Any]:
    """Who the new token belongs to; the login stands even if Procore cannot say right now."""
    from integrations.procore import ProcoreClient

    try:
        with ProcoreClient(
            settings.procore_url, token, settings.company_id or 0, policy=policy,
            transport=transport,
        ) as client:
            user = client.me()
    except RemoteError as exc:
        return {"id": None, "login": None, "name": None, "warning": exc.message}
    return {"id": user.id, "login": user.login, "name": user.name}


def _store(store: CredentialStore, doc: Mapping[str, Any]) -> None:
    try:
        with store.locked():
            store.write(doc)
    except OSError as exc:
        raise UsageError(
            f"cannot write {store.path} ({exc.strerror}); the new session was not stored"
        ) from exc


def _engine_error(exc: RemoteError, label: str, command: str) -> Exception:
    if isinstance(exc, RemoteRejectedCredentials):
        return CredentialsRejected(exc.message)
    if isinstance(exc, RemoteUnavailable):
        return Unavailable(f"{exc.message}; nothing was stored, run `{command}` again later")
    return Refused(f"{label} refused the login: {exc.message}")


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# the ERP ------------------------------------------------------------------------------------


def erp_authorize_url(settings: Settings, state: str) -> str:
    """Where the operator signs in to the ERP and allows relink (redirected back with a code)."""
    from integrations.erp.oauth import AUTHORIZE_URLS, authorize_query

    product = _erp_product(settings)
    base = settings.erp_authorize_url or AUTHORIZE_URLS[product]
    query = authorize_query(
        product, client_id=_erp_client_id(settings), redirect_uri=_redirect_uri(settings),
        state=state,
    )
    return f"{base}?{urlencode(query, safe=':/')}"


def login_erp(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    client_credentials: bool = False,
    code: str | None = None,
    ask_code: Callable[[str], str],
    ask_secret: Callable[[], str],
    store: CredentialStore | None = None,
    transport: Any = None,
    clock: Callable[[], float] = time.time,
    new_state: Callable[[], str] = lambda: secrets.token_urlsafe(16),
) -> dict[str, Any]:
    """Sign in to the configured ERP and store the session (mode 0600).

    ``code`` (or what ``ask_code(url)`` returns) is the address the browser was redirected to,
    or just the code in it; ``ask_secret()`` is called when the environment holds no client
    secret.
    """
    from engine.app import retry_policy
    from integrations.erp import DEFAULT_API_URLS, PRODUCTS
    from integrations.erp.oauth import CLIENT_CREDENTIALS, TOKEN_URLS, exchange_erp_token

    env = os.environ if env is None else env
    product = _erp_product(settings)
    label = PRODUCTS[product]
    if client_credentials and code is not None:
        raise UsageError("--code and --client-credentials do not go together")
    if client_credentials and product not in CLIENT_CREDENTIALS:
        raise UsageError(
            f"{label} has no client-credentials grant: sign in with `relink login --erp`"
        )
    username = settings.erp_username if client_credentials else None
    if client_credentials and product == "intacct" and not username:
        raise UsageError(
            f"{label}'s client credentials act as a Web Services user: set {ERP_USERNAME_ENV}"
            " (userId@companyId, or userId@companyId|entityId)"
        )
    client_id = _erp_client_id(settings)
    secret = env.get(ERP_CLIENT_SECRET_ENV) or ask_secret()
    if not secret:
        raise UsageError(f"no client secret: set {ERP_CLIENT_SECRET_ENV} or type it when asked")
    form = {"client_id": client_id, "client_secret": secret}
    company = None
    if client_credentials:
        grant = "client_credentials"
        form |= {"grant_type": grant} | ({"username": username} if username else {})
    else:
        grant = "authorization_code"
        state = new_state()
        given = code if code is not None else ask_code(erp_authorize_url(settings, state))
        found, company = _redirected(given, state, product, label)
        form |= {"grant_type": grant, "code": found, "redirect_uri": _redirect_uri(settings)}
    token_url = settings.erp_token_url or TOKEN_URLS[product]
    try:
        answer = exchange_erp_token(
            product, token_url, form, policy=retry_policy(settings), transport=transport
        )
    except RemoteError as exc:
        raise _engine_error(exc, label, "relink login --erp") from exc
    store = store or CredentialStore(system=product)
    doc = session_document(
        answer,
        now=clock(),
        system=product,
        token_url=token_url,
        api_url=settings.erp_url or DEFAULT_API_URLS[product],
        client_id=client_id,
        client_secret=secret,
        grant=grant,
        company=company,
        username=username,
    )
    _store(store, doc)
    result: dict[str, Any] = {
        "erp": product,
        "product": label,
        "grant": grant,
        "company": company or settings.erp_company,
        "credentials_file": str(store.path),
        "expires_at": _iso(doc["expires_at"]),
        "refreshable": bool(doc["refresh_token"]) or grant == "client_credentials",
    }
    if company and settings.erp_company and company != settings.erp_company:
        result["warning"] = (
            f"the sign-in named company {company}, but RELINK_ERP_COMPANY is"
            f" {settings.erp_company}: relink uses RELINK_ERP_COMPANY"
        )
    return result


def _redirected(given: str, state: str, product: str, label: str) -> tuple[str, str | None]:
    """The code (and, for QuickBooks Online, the company) from what the operator pasted: the
    address the browser was redirected to, whose ``state`` must be this sign-in's, or the bare
    code."""
    from integrations.erp.oauth import COMPANY_IN_REDIRECT

    given = given.strip()
    if not given:
        raise UsageError("no authorization code given")
    if "://" not in given and not given.startswith("?") and "code=" not in given:
        return given, None
    query = dict(parse_qsl(urlsplit(given).query if "://" in given else given.lstrip("?")))
    if "error" in query:
        said = query.get("error_description") or query["error"]
        raise Refused(f"{label} did not allow relink: {said[:200]}")
    if query.get("state") != state:
        raise UsageError(
            "the address pasted is not from this sign-in (its state does not match): run"
            " `relink login --erp` again and paste the address that sign-in leads to"
        )
    if not query.get("code"):
        raise UsageError("the address pasted holds no authorization code")
    key = COMPANY_IN_REDIRECT.get(product)
    return query["code"], (query.get(key) or None) if key else None


def erp_label(settings: Settings) -> str:
    """The configured ERP product's name, for prompts ("the ERP" when none is configured)."""
    from integrations.erp import PRODUCTS

    return PRODUCTS[settings.erp] if settings.erp is not None else "the ERP"


def _erp_product(settings: Settings) -> str:
    if settings.erp is None:
        raise UsageError("no ERP product: set RELINK_ERP (qbo, xero or intacct)")
    return settings.erp


def _erp_client_id(settings: Settings) -> str:
    if not settings.erp_client_id:
        raise UsageError(
            f"no ERP client id: set {ERP_CLIENT_ID_ENV} or erp.client_id in relink.toml"
        )
    return settings.erp_client_id


def _redirect_uri(settings: Settings) -> str:
    if not settings.erp_redirect_uri:
        raise UsageError(
            f"no ERP redirect URI: set {ERP_REDIRECT_ENV} or erp.redirect_uri in relink.toml to"
            " the redirect URI registered for your app"
        )
    return settings.erp_redirect_uri
