"""Procore's OAuth 2.0 token endpoint, ``POST /oauth/token`` (form-encoded, or JSON).

Client ``sandbox-client`` / secret ``sandbox-secret`` (in the form, or HTTP Basic). Grants:

* ``authorization_code``: code ``sandbox-code-<name>`` (e.g. ``sandbox-code-ana``) yields tokens
  for that seeded user; the sandbox's codes can be used again (any ``redirect_uri`` is accepted);
* ``refresh_token``: a refresh token is single-use: a second use → 400 ``invalid_grant``;
* ``client_credentials``: tokens acting as ana.

Answer: ``{access_token, token_type: "bearer", expires_in: 5400, refresh_token, created_at}``.
Each access token is a new random string the API then accepts for that user, besides the
fixed ``sandbox-<name>`` tokens; issued tokens do not expire in the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from urllib.parse import parse_qsl

from sandbox import seed
from sandbox.state import SandboxState
from sandbox.wire import BadBody, Request, Response, json_response


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        payload = request.json_object()
        return {str(key): value for key, value in payload.items() if isinstance(value, str)}
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadBody("the body is not a valid form") from exc


def _client(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def handle(state: SandboxState, request: Request) -> Response:
    if request.method != "POST":
        return _oauth_error(405, "invalid_request", "use POST")
    try:
        form = _form(request)
    except BadBody as exc:
        return _oauth_error(400, "invalid_request", str(exc))
    client_id, secret = _client(request, form)
    if client_id != seed.OAUTH_CLIENT_ID or secret != seed.OAUTH_CLIENT_SECRET:
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        code = form.get("code", "")
        user = None
        if code.startswith(seed.OAUTH_CODE_PREFIX):
            user = seed.user_by_short_name(code.removeprefix(seed.OAUTH_CODE_PREFIX))
        if user is None:
            return _oauth_error(400, "invalid_grant", "The authorization code is invalid.")
        return _issue(state, user.id)
    if grant == "refresh_token":
        user_id = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if user_id is None:
            return _oauth_error(400, "invalid_grant", "The refresh token is invalid or was used.")
        return _issue(state, user_id)
    if grant == "client_credentials":
        return _issue(state, seed.OAUTH_CLIENT_USER.id)
    return _oauth_error(400, "unsupported_grant_type", "The grant type is not supported.")


def _issue(state: SandboxState, user_id: int) -> Response:
    access_token, refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    state.access_tokens[access_token] = user_id
    state.refresh_tokens[refresh_token] = user_id
    body = {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": seed.TOKEN_EXPIRES_IN,
        "refresh_token": refresh_token,
        "created_at": int(time.time()),
    }
    return json_response(200, body, {"Cache-Control": "no-store"})
