"""Errors raised by the remote-system clients.

::

    RemoteError                  any failure talking to Procore or an ERP
    ├── RemoteUnavailable        timeouts, resets, 5xx, 429 after retries, unreadable answers:
    │   └── RemoteProtocolError  the answer arrived but is not what the API documents
    ├── RemoteRejectedCredentials 401: the token is missing, expired or revoked
    ├── RemoteNotFound           404 (Procore also answers 404 for "not visible to you")
    └── RemoteRefused            a business rule of the remote system said no (422, 409, ERP faults,
        └── RemoteForbidden      sync errors); 403: no permission or app not installed

Each carries ``system`` ("procore" or the ERP key), ``status`` (HTTP status or None) and
``message``: the remote system's own words where it gave any, never a token.
"""

from __future__ import annotations


class RemoteError(Exception):
    """Base class of every remote failure."""

    def __init__(self, message: str, *, system: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status


class RemoteUnavailable(RemoteError):
    """The remote system could not be reached or did not answer usefully; nothing changed."""


class RemoteProtocolError(RemoteUnavailable):
    """The remote system answered with something that does not follow its documented shape."""


class RemoteRejectedCredentials(RemoteError):
    """The remote system rejected the credentials (401)."""


class RemoteNotFound(RemoteError):
    """The object does not exist (or is not visible to this user)."""


class RemoteRefused(RemoteError):
    """A business rule of the remote system refused the request; ``message`` is its reason."""


class RemoteForbidden(RemoteRefused):
    """The remote system says this user may not do this (403)."""
