"""Procore's conventions shared by the sandbox's Procore handlers: the handler context, the v1.x
error shapes and access-level comparison."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox import seed
from sandbox.state import SandboxState
from sandbox.wire import Request, Response, json_response

_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 422: "unprocessable"}


@dataclass(frozen=True, slots=True)
class Context:
    """What a Procore handler works with: the state, the request, its user and path parameters."""

    state: SandboxState
    request: Request
    user: seed.SeedUser
    params: dict[str, str]


Handler = Callable[[Context], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    needs_company: bool = True


def procore_error(
    status: int, message: str, *, fields: dict[str, list[str]] | None = None
) -> Response:
    """An error in Procore's v1.x shape: ``{"code", "message", "fields", "reason", "error"}``."""
    body = {
        "code": _ERROR_CODES.get(status, "error"),
        "message": message,
        "fields": fields or {},
        "reason": message,
        "error": message,
    }
    return json_response(status, body)


def not_found(message: str, exception: str = "ActiveRecord::RecordNotFound") -> Response:
    """Procore's 404 shape: ``{"message", "exception"}``."""
    return json_response(404, {"message": message, "exception": exception})


def level_at_least(level: str, minimum: str) -> bool:
    return seed.ACCESS_LEVELS.index(level) >= seed.ACCESS_LEVELS.index(minimum)


def wrong_company(company_id: str) -> Response | None:
    """404 unless ``company_id`` (from the path or query) is the seeded company."""
    if company_id == str(seed.COMPANY_ID):
        return None
    return not_found(f"Couldn't find Company with 'id'={company_id[:40]}")
