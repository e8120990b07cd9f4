"""The tokens the sandbox's token endpoints issue (Procore's and the ERP's), and the grant log.

Each access token belongs to one system (``procore`` or the ERP key) and one subject (a Procore
user id, an ERP company or user) and expires ``expires_in`` seconds after it was issued, by this
machine's clock: the product's own lifetime (Procore 5400 s, QuickBooks Online 3600 s, Xero 1800
s, Sage Intacct 3600 s **(model)**), or the ledger's ``lifetime`` when one is set (``relink
sandbox serve --token-lifetime N`` compresses them all, so a short run exercises refresh). An
expired access token is refused like an unknown one. Refresh tokens do not expire here; each can
be used once (the rotating refresh tokens of every product). The fixed ``sandbox-<name>`` and
``sandbox-erp`` tokens are not issued here and never expire.

The grant log (``GET /_sandbox/token-grants``) records every token issued, oldest first:
``{"system", "grant_type", "subject", "expires_in"}`` -- never a token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Issued:
    """What the sandbox knows about one token it issued."""

    system: str
    subject: Any  # a Procore user id; an ERP company (or Intacct user) as text
    expires_at: float | None = None  # None for refresh tokens


class TokenLedger:
    """Issued access and refresh tokens; the caller holds the world's lock."""

    def __init__(self, lifetime: int | None = None, clock: Callable[[], float] = time.time) -> None:
        if lifetime is not None and lifetime < 1:
            raise ValueError("the token lifetime must be at least 1 second")
        self.lifetime = lifetime
        self._clock = clock
        self._access: dict[str, Issued] = {}
        self._refresh: dict[str, Issued] = {}
        self.grants: list[dict[str, Any]] = []

    def issue(
        self,
        system: str,
        subject: Any,
        *,
        grant_type: str,
        lifetime: int,
        refresh: bool = True,
        shown_as: str | None = None,
    ) -> tuple[str, str | None, int]:
        """A new access token (and refresh token unless ``refresh`` is false) for ``subject``:
        ``(access_token, refresh_token, expires_in)``. ``shown_as`` names the subject in the log."""
        expires_in = self.lifetime or lifetime
        access = secrets.token_urlsafe(32)
        self._access[access] = Issued(system, subject, self._clock() + expires_in)
        refresh_token = None
        if refresh:
            refresh_token = secrets.token_urlsafe(32)
            self._refresh[refresh_token] = Issued(system, subject)
        self.grants.append({
            "system": system,
            "grant_type": grant_type,
            "subject": shown_as if shown_as is not None else str(subject),
            "expires_in": expires_in,
        })
        return access, refresh_token, expires_in

    def subject(self, system: str, token: str | None) -> Any | None:
        """Whom ``token`` stands for, if it is a live access token of ``system``; else None."""
        issued = self._access.get(token or "")
        if issued is None or issued.system != system:
            return None
        if issued.expires_at is not None and self._clock() >= issued.expires_at:
            del self._access[token or ""]
            return None
        return issued.subject

    def redeem(self, system: str, refresh_token: str | None) -> Any | None:
        """The subject of an unused refresh token of ``system``, using it up; else None."""
        issued = self._refresh.get(refresh_token or "")
        if issued is None or issued.system != system:
            return None
        del self._refresh[refresh_token or ""]
        return issued.subject
