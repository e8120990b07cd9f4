"""Bearer authentication with a token that can be renewed (OAuth 2.0 access tokens).

The token comes from a :class:`TokenSource` before every request (so an expired one is refreshed
*before* use); when the server still answers 401, the source is asked once for a new token and the
request is sent again. Whatever the source raises (a :class:`~integrations.errors.RemoteError`)
ends the call. The token never reaches a message or a log line.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import httpx


class TokenSource(Protocol):
    """Where an access token comes from, and how a rejected one is replaced."""

    def token(self) -> str:
        """The access token to send now (renewed first when it is about to expire)."""

    def renew(self, rejected: str) -> str | None:
        """A new token after ``rejected`` got a 401, or None when there is none to try."""


class RenewingBearer(httpx.Auth):
    """``Authorization: Bearer <token>`` from a :class:`TokenSource`; one renewal on a 401."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def __repr__(self) -> str:
        return "RenewingBearer()"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._source.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        renewed = self._source.renew(token)
        if renewed is not None and renewed != token:
            request.headers["Authorization"] = f"Bearer {renewed}"
            yield request
