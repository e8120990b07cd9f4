"""The ERP's OAuth 2.0 endpoints, and the bearer-token check every ERP handler makes.

The sandbox plays one ERP at a time, under ``/erp``; each product's endpoints sit at the paths of
the real ones (the real host becomes the sandbox's ``/erp``):

* QuickBooks Online: authorize ``https://appcenter.intuit.com/connect/oauth2`` →
  ``GET /erp/connect/oauth2``; token ``https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer``
  → ``POST /erp/oauth2/v1/tokens/bearer``;
* Xero: authorize ``https://login.xero.com/identity/connect/authorize`` →
  ``GET /erp/identity/connect/authorize``; token ``https://identity.xero.com/connect/token`` →
  ``POST /erp/connect/token``;
* Sage Intacct: authorize ``https://api.intacct.com/ia/api/v1/oauth2/authorize`` →
  ``GET /erp/ia/api/v1/oauth2/authorize``; token ``https://api.intacct.com/ia/api/v1/oauth2/token``
  → ``POST /erp/ia/api/v1/oauth2/token``.

Client ``sandbox-erp-client`` / secret ``sandbox-erp-secret``: in an ``Authorization: Basic``
header for QuickBooks Online and Xero (as Intuit and Xero require), in the form for Sage Intacct
(as its guide shows). The authorize endpoint stands for the operator's consent: it redirects
(302) to ``redirect_uri`` with ``code=sandbox-erp-code``, the ``state`` it was given and, for
QuickBooks Online, the ``realmId``. Grants at the token endpoint:

* ``authorization_code``: code ``sandbox-erp-code`` (reusable here) and a ``redirect_uri``;
  tokens for the seeded company, with a refresh token;
* ``refresh_token``: rotating and single-use: a second use → 400 ``invalid_grant``;
* ``client_credentials``: Xero (custom connections: tokens for the seeded tenant, no refresh
  token) and Sage Intacct (``username`` = ``<user>@summit-builders``, optionally ``|<entity>``;
  no refresh token); QuickBooks Online has no such grant → 400 ``unsupported_grant_type``.

Answers: ``{access_token, token_type, expires_in, refresh_token}`` (QuickBooks Online adds
``x_refresh_token_expires_in``; Xero ``scope``); errors in RFC 6749's shape ``{error,
error_description}`` (**model** for Sage Intacct). Access lifetimes: QuickBooks Online 3600 s,
Xero 1800 s, Sage Intacct 3600 s **(model)**, all compressed by ``--token-lifetime``. The ERP's
API accepts the fixed ``sandbox-erp`` token and any live token issued here (:func:`authorized`).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from sandbox import seed
from sandbox.oauth import basic_client, form, oauth_error
from sandbox.state import SandboxState
from sandbox.wire import BadBody, Request, Response, json_response

CLIENT_ID: Final = "sandbox-erp-client"
CLIENT_SECRET: Final = "sandbox-erp-secret"  # the sandbox's published test secret
CODE: Final = "sandbox-erp-code"

TOKEN_PATHS: Final = {
    "qbo": "/oauth2/v1/tokens/bearer",
    "xero": "/connect/token",
    "intacct": "/ia/api/v1/oauth2/token",
}
AUTHORIZE_PATHS: Final = {
    "qbo": "/connect/oauth2",
    "xero": "/identity/connect/authorize",
    "intacct": "/ia/api/v1/oauth2/authorize",
}
LIFETIMES: Final = {"qbo": 3600, "xero": 1800, "intacct": 3600}
QBO_REFRESH_LIFETIME: Final = 8_726_400  # Intuit's x_refresh_token_expires_in (101 days)
XERO_SCOPE: Final = "offline_access accounting.transactions"
BASIC_AUTH: Final = frozenset({"qbo", "xero"})
CLIENT_CREDENTIALS: Final = frozenset({"xero", "intacct"})


def owns(erp: str, path: str) -> bool:
    """Whether ``path`` (under ``/erp``) is one of ``erp``'s OAuth endpoints."""
    return path in (TOKEN_PATHS[erp], AUTHORIZE_PATHS[erp])


def authorized(state: SandboxState, request: Request) -> bool:
    """Whether the request carries the fixed ERP token or a live one issued to this ERP."""
    token = request.bearer_token()
    if token is None:
        return False
    return token == seed.ERP_TOKEN or state.tokens.subject(state.erp, token) is not None


def handle(state: SandboxState, request: Request) -> Response:
    """Answer a request to one of :func:`owns`' paths."""
    if request.path == AUTHORIZE_PATHS[state.erp]:
        if request.method != "GET":
            return oauth_error(405, "invalid_request", "use GET")
        return _authorize(state, request)
    if request.method != "POST":
        return oauth_error(405, "invalid_request", "use POST")
    try:
        fields = form(request)
    except BadBody as exc:
        return oauth_error(400, "invalid_request", str(exc))
    if state.erp in BASIC_AUTH:
        client_id, secret = basic_client(request) or (None, None)
    else:
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
    if client_id != CLIENT_ID or secret != CLIENT_SECRET:
        return oauth_error(401, "invalid_client", "Client authentication failed.")
    grant = fields.get("grant_type")
    if grant == "authorization_code":
        if fields.get("code") != CODE or not fields.get("redirect_uri"):
            return oauth_error(400, "invalid_grant", "The authorization code is invalid.")
        return _issue(state, seed.ERP_COMPANIES[state.erp], grant)
    if grant == "refresh_token":
        subject = state.tokens.redeem(state.erp, fields.get("refresh_token"))
        if subject is None:
            return oauth_error(400, "invalid_grant", "The refresh token is invalid or was used.")
        return _issue(state, subject, grant)
    if grant == "client_credentials" and state.erp in CLIENT_CREDENTIALS:
        subject = seed.ERP_COMPANIES[state.erp]
        if state.erp == "intacct":
            username = fields.get("username", "")
            user, _, company = username.partition("@")
            if not user or company.partition("|")[0] != seed.INTACCT_COMPANY:
                return oauth_error(
                    400, "invalid_request",
                    f"username must be <user>@{seed.INTACCT_COMPANY} (optionally |<entity>)",
                )
            subject = username
        return _issue(state, subject, grant, refresh=False)
    return oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")


def _authorize(state: SandboxState, request: Request) -> Response:
    """The operator signs in and consents: back to ``redirect_uri`` with the code."""
    query = request.query
    if query.get("client_id") != CLIENT_ID:
        return oauth_error(400, "invalid_client", "Unknown client_id.")
    if query.get("response_type") != "code" or not query.get("redirect_uri"):
        return oauth_error(400, "invalid_request", "response_type=code and redirect_uri needed.")
    answer = {"code": CODE, "state": query.get("state", "")}
    if state.erp == "qbo":
        answer["realmId"] = seed.QBO_REALM
    joiner = "&" if "?" in query["redirect_uri"] else "?"
    location = f"{query['redirect_uri']}{joiner}{urlencode(answer)}"
    return Response(302, {"Location": location, "Cache-Control": "no-store"})


def _issue(state: SandboxState, subject: str, grant: str, *, refresh: bool = True) -> Response:
    access, refresh_token, expires_in = state.tokens.issue(
        state.erp, subject, grant_type=grant, lifetime=LIFETIMES[state.erp], refresh=refresh
    )
    body: dict[str, object] = {
        "access_token": access,
        "token_type": "bearer" if state.erp == "qbo" else "Bearer",
        "expires_in": expires_in,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    if state.erp == "qbo":
        body["x_refresh_token_expires_in"] = QBO_REFRESH_LIFETIME
    if state.erp == "xero":
        body["scope"] = XERO_SCOPE
    return json_response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})
