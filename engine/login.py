"""`relink login`: get a Procore OAuth 2.0 session and store it for later commands.

Two grants: the authorization code with the out-of-band redirect (the operator opens the
authorize URL, signs in, and pastes the code shown), and client credentials (a service account,
no browser). The client id comes from settings (``procore.client_id`` /
``RELINK_PROCORE_CLIENT_ID``); the client secret from ``RELINK_PROCORE_CLIENT_SECRET`` or a hidden
prompt, never from a flag. The session goes to the credentials file (see
:mod:`engine.credentials`); nothing of it is printed.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from engine.credentials import CLIENT_SECRET_ENV, CredentialStore, session_document
from engine.errors import CredentialsRejected, Refused, Unavailable, UsageError
from engine.settings import Settings
from integrations.errors import RemoteError, RemoteRejectedCredentials, RemoteUnavailable

OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
CLIENT_ID_ENV = "RELINK_PROCORE_CLIENT_ID"


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
        raise _engine_error(exc) from exc
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
    try:
        with store.locked():
            store.write(doc)
    except OSError as exc:
        raise UsageError(
            f"cannot write {store.path} ({exc.strerror}); the new session was not stored"
        ) from exc
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


def _engine_error(exc: RemoteError) -> Exception:
    if isinstance(exc, RemoteRejectedCredentials):
        return CredentialsRejected(exc.message)
    if isinstance(exc, RemoteUnavailable):
        return Unavailable(f"{exc.message}; nothing was stored, run `relink login` again later")
    return Refused(f"Procore refused the login: {exc.message}")


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
