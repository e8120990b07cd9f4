"""The credentials files: where ``relink login`` keeps sessions, and how they are read and
written (the semantics of the sessions themselves: :mod:`engine.credentials`).

A credentials file is one JSON object, mode 0600 in a 0700 directory, replaced atomically
(temporary file in the same directory, fsync, rename)::

    {"version": 1, "login_url", "api_url", "client_id", "client_secret", "grant",
     "token_type", "access_token", "refresh_token", "expires_at", "obtained_at",
     "refresh_started_at"}

``<user config dir>/credentials.json`` holds the Procore session. An ERP session, in
``<user config dir>/erp-<product>.json`` (one file per ERP product), has ``"system"`` (``qbo``,
``xero`` or ``intacct``) and ``token_url`` (the product's token endpoint) instead of
``login_url``, and ``company`` (the QuickBooks realm the sign-in named, or None) and ``username``
(Sage Intacct's client-credentials user, or None). Each file has its own lock beside it
(``credentials.lock``, ``erp-<product>.lock``) serialising logins and refreshes across
processes.

``expires_at`` and ``obtained_at`` are Unix seconds by this machine's clock; ``grant`` is
``authorization_code`` or ``client_credentials``; ``refresh_started_at`` is set only while a
refresh is under way (or when its answer was lost).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.private_files import (
    exclusive_lock,
    fsync_directory,
    read_private,
    write_private_json,
)
from engine.settings import config_dir

FILE_VERSION = 1
GRANTS = ("authorization_code", "client_credentials")
LOGIN_AGAIN = "run `relink login` again"
ERP_LOGIN_AGAIN = "run `relink login --erp` again"
PROCORE = "procore"
# the fields of a session that are not its tokens: what a refresh carries over
TOKEN_FIELDS = frozenset({
    "version", "token_type", "access_token", "refresh_token", "expires_at", "obtained_at",
    "refresh_started_at",
})


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def erp_credentials_path(product: str) -> Path:
    return config_dir() / f"erp-{product}.json"


# the file --------------------------------------------------------------------------------------


class CredentialStore:
    """A credentials file: validated reads, atomic 0600 writes, a lock across processes.

    ``system`` is whose session it holds: ``procore`` (``credentials.json``) or an ERP product
    key (``erp-<product>.json``); a file holding another system's session is refused."""

    def __init__(self, path: Path | None = None, *, system: str = PROCORE) -> None:
        self.system = system
        self.path = path or (
            credentials_path() if system == PROCORE else erp_credentials_path(system)
        )

    @property
    def login_again(self) -> str:
        return LOGIN_AGAIN if self.system == PROCORE else ERP_LOGIN_AGAIN

    def read(self) -> dict[str, Any] | None:
        """The stored session, or None when there is none; UsageError when it is unusable."""
        try:
            found = read_private(self.path)
        except OSError as exc:
            why = f"{self.path}: cannot read it ({exc.strerror}); {self.login_again}"
            raise UsageError(why) from exc
        if found is None:
            return None
        raw, info = found
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise UsageError(
                f"{self.path} may be read by other users (mode {mode:o}): run"
                f" `chmod 600 {self.path}`, or {self.login_again}"
            )
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not _valid(doc, self.system):
            raise UsageError(f"{self.path}: not a relink credentials file; {self.login_again}")
        return dict(doc)

    def write(self, doc: Mapping[str, Any]) -> None:
        """Replace the file atomically; it is never visible with other permissions than 0600."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and stat.S_IMODE(directory.stat().st_mode) & 0o077:
            os.chmod(directory, 0o700)
        write_private_json(self.path, doc)

    def remove(self) -> bool:
        """Delete the stored session, under the lock (a refresh under way finishes first);
        whether there was one. The lock file beside it stays (another process may hold it)."""
        if not os.path.lexists(self.path):
            return False  # no session: no lock file to leave behind either
        with self.locked():
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise UsageError(f"{self.path}: cannot remove it ({exc.strerror})") from exc
        fsync_directory(self.path.parent)
        return True

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the exclusive lock that serialises logins and refreshes of this file
        (``<name>.lock`` beside it; POSIX; no-op elsewhere)."""
        return exclusive_lock(self.path.with_suffix(".lock"))


def _valid(doc: Any, system: str) -> bool:
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        return False
    if doc.get("system", PROCORE) != system:
        return False
    url_key = "login_url" if system == PROCORE else "token_url"
    texts = (url_key, "api_url", "client_id", "access_token")
    if not all(isinstance(doc.get(key), str) and doc[key] for key in texts):
        return False
    if not (doc["access_token"].isascii() and doc["access_token"].isprintable()):
        return False  # a header could not carry it
    if doc.get("grant") not in GRANTS:
        return False
    optional_texts = ("client_secret", "refresh_token", "company", "username")
    if any(doc.get(key) is not None and not isinstance(doc[key], str) for key in optional_texts):
        return False
    numbers = ("expires_at", "obtained_at", "refresh_started_at")
    return all(
        doc.get(key) is None
        or (isinstance(doc[key], int | float) and not isinstance(doc[key], bool))
        for key in numbers
    )


def session_document(answer: Mapping[str, Any], *, now: float, **identity: Any) -> dict[str, Any]:
    """What a credentials file holds after a token answer (``exchange_token``'s result):
    ``identity`` is everything but the tokens (``login_url`` or ``token_url``, ``api_url``,
    ``client_id``, ``client_secret``, ``grant``; an ERP's ``system``, ``company``,
    ``username``)."""
    expires_in = answer.get("expires_in")
    return {
        "version": FILE_VERSION,
        **identity,
        "token_type": answer.get("token_type", "bearer"),
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token"),
        "expires_at": now + expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
        "obtained_at": now,
        "refresh_started_at": None,
    }
