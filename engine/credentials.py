"""Where tokens come from, and how the stored Procore and ERP sessions stay alive.

Procore: ``RELINK_PROCORE_TOKEN`` (used as given, never refreshed), else the session that
``relink login`` stored (``<user config dir>/credentials.json``). ERP: ``RELINK_ERP_TOKEN`` (used
as given), else the session that ``relink login --erp`` stored for the configured product
(``<user config dir>/erp-<product>.json``); the files: :mod:`engine.credential_files`. Tokens
never go into settings, the database, the audit log or any message. Refresh semantics, the same
for every system:

* An access token within :data:`REFRESH_MARGIN` seconds of ``expires_at`` (a quarter of its
  lifetime, when that is shorter) is refreshed *before* it is used; a 401 on a stored token gets
  one refresh and one more try.
* Refresh tokens are single-use (Procore's; the ERPs' rotate). A refresh holds the file's
  exclusive lock and re-reads the file first, so concurrent relink processes refresh once and the
  others adopt the new pair.
* The file is replaced only once the new pair is in hand, so a refresh that fails (network
  error) leaves the previous session intact: run the command again. If the issuer consumed the
  refresh token but its answer was lost, it refuses that token on the next try, and relink says
  to run ``relink login`` (``--erp``) again.
* Sessions from the client-credentials grant are renewed with that grant (no refresh token
  involved).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.credential_files import ERP_LOGIN_AGAIN, LOGIN_AGAIN, PROCORE, TOKEN_FIELDS
from engine.credential_files import CredentialStore as CredentialStore  # re-exported
from engine.credential_files import session_document as session_document  # re-exported
from engine.errors import UsageError
from engine.settings import Settings
from integrations.errors import RemoteRejectedCredentials, RemoteUnavailable

PROCORE_TOKEN_ENV = "RELINK_PROCORE_TOKEN"
ERP_TOKEN_ENV = "RELINK_ERP_TOKEN"
CLIENT_SECRET_ENV = "RELINK_PROCORE_CLIENT_SECRET"
ERP_CLIENT_SECRET_ENV = "RELINK_ERP_CLIENT_SECRET"
REFRESH_MARGIN = 60.0  # seconds: a token this close to expires_at counts as expired


@dataclass(frozen=True)
class Issuer:
    """Who issues one system's tokens, and how relink asks it for new ones."""

    system: str  # "procore" or the ERP product key
    label: str  # for messages
    url_key: str  # the session field holding the token endpoint's URL
    secret_env: str  # where the client secret may come from instead of the file
    login_again: str  # what the operator runs when the session cannot be renewed

    def exchange(self, url: str, form: dict[str, str], policy: Any, transport: Any) -> Any:
        """The token answer (a dict) to ``form``; RemoteError subclasses otherwise."""
        if self.system == PROCORE:
            from integrations.procore import exchange_token

            return exchange_token(url, form, policy=policy, transport=transport)
        from integrations.erp.oauth import exchange_erp_token

        return exchange_erp_token(self.system, url, form, policy=policy, transport=transport)


def issuer(system: str) -> Issuer:
    """The :class:`Issuer` of ``system`` (``procore`` or an ERP product key)."""
    if system == PROCORE:
        return Issuer(PROCORE, "Procore", "login_url", CLIENT_SECRET_ENV, LOGIN_AGAIN)
    from integrations.erp import PRODUCTS

    return Issuer(system, PRODUCTS[system], "token_url", ERP_CLIENT_SECRET_ENV, ERP_LOGIN_AGAIN)


def refresh_margin(doc: Mapping[str, Any]) -> float:
    """How long before ``expires_at`` a token counts as expired: :data:`REFRESH_MARGIN`, or a
    quarter of the token's lifetime when that is shorter (tokens of a few seconds, as a sandbox
    compressing lifetimes issues them, would otherwise be refreshed before every call)."""
    expires_at, obtained_at = doc.get("expires_at"), doc.get("obtained_at")
    if expires_at is None or obtained_at is None or expires_at <= obtained_at:
        return REFRESH_MARGIN
    return min(REFRESH_MARGIN, float(expires_at - obtained_at) / 4)


# the token source ------------------------------------------------------------------------------


class StoredSession:
    """A stored session as an :class:`integrations.auth.TokenSource`; thread-safe."""

    def __init__(
        self,
        store: CredentialStore,
        doc: dict[str, Any],
        *,
        client_secret: str | None = None,
        policy: Any = None,
        transport: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._issuer = issuer(store.system)
        self._doc = doc
        self._client_secret = client_secret
        self._policy = policy
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoredSession({str(self._store.path)!r})"

    @property
    def company(self) -> str | None:
        """The company the sign-in named (an ERP session's QuickBooks realm), if any."""
        company = self._doc.get("company")
        return company if isinstance(company, str) else None

    def token(self) -> str:
        with self._lock:
            if self._expired(self._doc):
                self._refresh(self._doc["access_token"])
            return str(self._doc["access_token"])

    def renew(self, rejected: str) -> str | None:
        with self._lock:
            self._refresh(rejected)
            return str(self._doc["access_token"])

    def _expired(self, doc: Mapping[str, Any]) -> bool:
        expires_at = doc.get("expires_at")
        return expires_at is not None and self._clock() >= expires_at - refresh_margin(doc)

    def _refresh(self, stale: str) -> None:
        """Replace the session whose access token is ``stale``; raises RemoteError subclasses."""
        who = self._issuer
        with self._store.locked():
            current = self._store.read()
            if current is None or current["api_url"] != self._doc["api_url"]:
                raise RemoteRejectedCredentials(
                    f"the stored {who.label} session was removed or replaced; {who.login_again}",
                    system=who.system,
                )
            if current["access_token"] != stale and not self._expired(current):
                self._doc = current  # another relink process refreshed it meanwhile
                return
            form = self._form(current)
            if form["grant_type"] == "refresh_token":  # only sharpens a later message
                with contextlib.suppress(OSError):
                    self._store.write({**current, "refresh_started_at": self._clock()})
            answer = self._exchange(current, form)
            identity = {k: v for k, v in current.items() if k not in TOKEN_FIELDS}
            renewed = session_document(answer, now=self._clock(), **identity)
            if renewed["refresh_token"] is None and form["grant_type"] == "refresh_token":
                renewed["refresh_token"] = current["refresh_token"]  # not rotated this time
            try:
                self._store.write(renewed)
            except OSError as exc:
                raise RemoteRejectedCredentials(
                    f"could not save the refreshed {who.label} session to {self._store.path}"
                    f" ({exc.strerror}); the previous refresh token is used up: {who.login_again}",
                    system=who.system,
                ) from exc
            self._doc = renewed

    def _form(self, current: Mapping[str, Any]) -> dict[str, str]:
        who = self._issuer
        secret = self._client_secret or current.get("client_secret")
        if not secret:
            raise RemoteRejectedCredentials(
                f"no client secret to renew the {who.label} session: set {who.secret_env}, or"
                f" {who.login_again}",
                system=who.system,
            )
        base = {"client_id": str(current["client_id"]), "client_secret": str(secret)}
        if current["grant"] == "client_credentials":
            extra = {"username": current["username"]} if current.get("username") else {}
            return {"grant_type": "client_credentials", **base, **extra}
        if not current.get("refresh_token"):
            raise RemoteRejectedCredentials(
                f"the {who.label} session has expired and holds no refresh token;"
                f" {who.login_again}",
                system=who.system,
            )
        return {"grant_type": "refresh_token", "refresh_token": current["refresh_token"], **base}

    def _exchange(self, current: Mapping[str, Any], form: dict[str, str]) -> dict[str, Any]:
        who = self._issuer
        try:
            answer: dict[str, Any] = who.exchange(
                current[who.url_key], form, self._policy, self._transport
            )
        except RemoteRejectedCredentials as exc:
            if form["grant_type"] == "client_credentials":
                why = f"{who.label} rejected the stored client credentials"
            elif current.get("refresh_started_at") is not None:
                why = (
                    f"{who.label} no longer accepts the stored refresh token: an earlier refresh"
                    " got no answer, and refresh tokens can be used only once"
                )
            else:
                why = f"{who.label} no longer accepts the stored refresh token (used or revoked)"
            raise RemoteRejectedCredentials(
                f"{why}; {who.login_again}", system=who.system, status=exc.status
            ) from exc
        except RemoteUnavailable as exc:
            raise type(exc)(
                f"could not renew the {who.label} session ({exc.message}); the stored session is"
                " kept, run the command again (if the refresh token is then refused,"
                f" {who.login_again})",
                system=who.system,
                status=exc.status,
            ) from exc
        return answer


# where the tokens come from --------------------------------------------------------------------


def procore_credentials(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    policy: Any = None,
    transport: Any = None,
    store: CredentialStore | None = None,
) -> str | StoredSession:
    """``RELINK_PROCORE_TOKEN`` as given, else the stored session (checked against the API URL,
    so a token is only ever sent to the Procore it was issued for)."""
    env = os.environ if env is None else env
    if token := env.get(PROCORE_TOKEN_ENV):
        return checked_token(token, PROCORE_TOKEN_ENV)
    store = store or CredentialStore()
    doc = store.read()
    if doc is None:
        raise UsageError(f"no Procore credentials: set {PROCORE_TOKEN_ENV} or run `relink login`")
    if doc["api_url"] != settings.procore_url:
        raise UsageError(
            f"the stored Procore session is for {doc['api_url']}, not {settings.procore_url}:"
            f" {LOGIN_AGAIN} (or set {PROCORE_TOKEN_ENV})"
        )
    return StoredSession(
        store, doc, client_secret=env.get(CLIENT_SECRET_ENV) or None, policy=policy,
        transport=transport,
    )


def procore_token(env: Mapping[str, str] | None = None) -> str:
    """The Procore access token as it stands (no refresh): the environment's, else the stored."""
    env = os.environ if env is None else env
    if token := env.get(PROCORE_TOKEN_ENV):
        return checked_token(token, PROCORE_TOKEN_ENV)
    doc = CredentialStore().read()
    if doc is None:
        raise UsageError(f"no Procore credentials: set {PROCORE_TOKEN_ENV} or run `relink login`")
    return str(doc["access_token"])


def erp_token(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    token = env.get(ERP_TOKEN_ENV) or None
    return checked_token(token, ERP_TOKEN_ENV) if token else None


def erp_credentials(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    api_url: str | None,
    policy: Any = None,
    transport: Any = None,
    store: CredentialStore | None = None,
) -> str | StoredSession | None:
    """``RELINK_ERP_TOKEN`` as given, else the session ``relink login --erp`` stored for the
    configured product (checked against ``api_url``, the ERP API it was issued for), else None
    (no ERP connection)."""
    env = os.environ if env is None else env
    if token := erp_token(env):
        return token
    if settings.erp is None:
        return None
    store = store or CredentialStore(system=settings.erp)
    doc = store.read()
    if doc is None:
        return None
    if doc["api_url"] != api_url:
        raise UsageError(
            f"the stored {issuer(settings.erp).label} session is for {doc['api_url']}, not"
            f" {api_url}: {ERP_LOGIN_AGAIN} (or set {ERP_TOKEN_ENV})"
        )
    return StoredSession(
        store, doc, client_secret=env.get(ERP_CLIENT_SECRET_ENV) or None, policy=policy,
        transport=transport,
    )


INTEGRATOR_TOKEN_ENV = "RELINK_INTEGRATOR_TOKEN"


def integrator_token(env: Mapping[str, str] | None = None) -> str | None:
    """The ERP integration's service-account token (integrator unlink mode), kept apart from
    the operator's: it is used for External Data Sync only."""
    env = os.environ if env is None else env
    token = env.get(INTEGRATOR_TOKEN_ENV) or None
    return checked_token(token, INTEGRATOR_TOKEN_ENV) if token else None


def checked_token(token: str, variable: str) -> str:
    """``token`` if an HTTP header can carry it as is: printable ASCII, no spaces around it.
    Else a UsageError naming ``variable``, never the token (a pasted newline or a look-alike
    letter would otherwise fail later, deep in the HTTP stack, or reach the server mangled)."""
    if token.isascii() and token.isprintable() and token == token.strip():
        return token
    raise UsageError(
        f"{variable} holds a character a token cannot have (only printable ASCII, no spaces"
        " around it): set it again, copied without line breaks"
    )
