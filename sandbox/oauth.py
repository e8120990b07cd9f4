"""Procore's OAuth 2.0 token endpoint, ``POST /oauth/token`` (form-encoded, or JSON).

Client ``sandbox-client`` / secret ``sandbox-secret`` (in the form, or HTTP Basic). Grants:

* ``authorization_code``: code ``sandbox-code-<name>`` (e.g. ``sandbox-code-ana``) yields tokens
  for that seeded user; the sandbox's codes can be used again (any ``redirect_uri`` is accepted);
* ``refresh_token``: a refresh token is single-use: a second use → 400 ``invalid_grant``;
* ``client_credentials``: tokens acting as ana.

Answer: ``{access_token, token_type: "bearer", expires_in: 5400, refresh_token, created_at}``.
Each access token is a new random string the API then accepts for that user, besides the
fixed ``sandbox-<name>`` tokens, until it expires (``expires_in`` seconds later, compressed by
``relink sandbox serve --token-lifetime``); every grant is logged (:mod:`sandbox.tokens`).
"""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import parse_qsl

from sandbox import seed
from sandbox.state import SandboxState
from sandbox.wire import BadBody, Request, Response, json_response

SYSTEM = "procore"


def oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def form(request: Request) -> dict[str, str]:
    """The token request's fields (form-encoded, or a JSON object); BadBody otherwise."""
    if request.headers.get("content-type", "").startswith("application/json"):
        payload = request.json_object()
        return {str(key): value for key, value in payload.items() if isinstance(value, str)}
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody("the body is not a valid form") from exc


def client(request: Request, fields: dict[str, str]) -> tuple[str | None, str | None]:
    """The client id and secret: from HTTP Basic authentication, else from the fields."""
    basic = basic_client(request)
    if basic is not None:
        return basic
    return fields.get("client_id"), fields.get("client_secret")


def basic_client(request: Request) -> tuple[str | None, str | None] | None:
    """The client id and secret of an ``Authorization: Basic`` header; None without one."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return client_id, secret


def handle(state: SandboxState, request: Request) -> Response:
    if request.method != "POST":
        return oauth_error(405, "invalid_request", "use POST")
    try:
        fields = form(request)
    except BadBody as exc:
        return oauth_error(400, "invalid_request", str(exc))
    client_id, secret = client(request, fields)
    if client_id != seed.OAUTH_CLIENT_ID or secret != seed.OAUTH_CLIENT_SECRET:
        return oauth_error(401, "invalid_client", "Client authentication failed.")
    grant = fields.get("grant_type")
    if grant == "authorization_code":
        code = fields.get("code", "")
        user = None
        if code.startswith(seed.OAUTH_CODE_PREFIX):
            user = seed.user_by_short_name(code.removeprefix(seed.OAUTH_CODE_PREFIX))
        if user is None:
            return oauth_error(400, "invalid_grant", "The authorization code is invalid.")
        return _issue(state, user.id, grant)
    if grant == "refresh_token":
        user_id = state.tokens.redeem(SYSTEM, fields.get("refresh_token"))
        if user_id is None:
            return oauth_error(400, "invalid_grant", "The refresh token is invalid or was used.")
        return _issue(state, user_id, grant)
    if grant == "client_credentials":
        return _issue(state, seed.OAUTH_CLIENT_USER.id, grant)
    return oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")


def _issue(state: SandboxState, user_id: int, grant: str) -> Response:
    user = next((user for user in seed.USERS if user.id == user_id), None)
    access_token, refresh_token, expires_in = state.tokens.issue(
        SYSTEM, user_id, grant_type=grant, lifetime=seed.TOKEN_EXPIRES_IN,
        shown_as=user.login if user is not None else str(user_id),
    )
    body = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "created_at": int(time.time()),
    }
    return json_response(200, body, {"Cache-Control": "no-store"})
