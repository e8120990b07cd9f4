"""Plain request and response values the sandbox's handlers exchange, free of any HTTP library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


class BadBody(Exception):
    """The request body is not the JSON (or form) the endpoint expects."""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request; ``headers`` keys are lower-case, ``query`` holds one value per name."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    raw_query: str = ""

    @property
    def target(self) -> str:
        """The path with its query string, as the client sent it."""
        return f"{self.path}?{self.raw_query}" if self.raw_query else self.path

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def json(self) -> Any:
        """The body parsed as JSON; raises BadBody when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BadBody("the body is not valid JSON") from exc

    def json_object(self) -> dict[str, Any]:
        """The body parsed as a JSON object; raises BadBody otherwise."""
        payload = self.json()
        if not isinstance(payload, dict):
            raise BadBody("the body must be a JSON object")
        return payload


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def with_headers(self, extra: Mapping[str, str]) -> Response:
        return Response(self.status, {**self.headers, **extra}, self.body)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload).encode("utf-8")
    return Response(status, {"Content-Type": JSON_TYPE, **(headers or {})}, body)


def empty_response(status: int) -> Response:
    return Response(status)


def strict_int(value: Any) -> int | None:
    """``value`` if it is a JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """A positive integer query parameter, or None when absent or malformed."""
    value = query.get(name, "")
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    number = int(value)
    return number if number > 0 else None
