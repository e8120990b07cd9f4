"""Where tokens come from, and how the stored Procore session stays alive.

Procore: ``RELINK_PROCORE_TOKEN`` (used as given, never refreshed), else the session that
``relink login`` stored in ``<user config dir>/credentials.json``. ERP: ``RELINK_ERP_TOKEN``.
Tokens never go into settings, the database, the audit log or any message.

The credentials file is one JSON object, mode 0600 in a 0700 directory, replaced atomically
(temporary file in the same directory, fsync, rename)::

    {"version": 1, "login_url", "api_url", "client_id", "client_secret", "grant",
     "token_type", "access_token", "refresh_token", "expires_at", "obtained_at",
     "refresh_started_at"}

``expires_at`` and ``obtained_at`` are Unix seconds by this machine's clock; ``grant`` is
``authorization_code`` or ``client_credentials``; ``refresh_started_at`` is set only while a
refresh is under way (or when its answer was lost). Refresh semantics:

* An access token within :data:`REFRESH_MARGIN` seconds of ``expires_at`` is refreshed *before*
  it is used; a 401 on a stored token gets one refresh and one more try.
* Procore's refresh tokens are single-use. A refresh holds an exclusive lock
  (``credentials.lock``) and re-reads the file first, so concurrent relink processes refresh once
  and the others adopt the new pair.
* The file is replaced only once the new pair is in hand, so a refresh that fails (network
  error) leaves the previous session intact: run the command again. If Procore consumed the
  refresh token but its answer was lost, Procore refuses that token on the next try, and relink
  says to run ``relink login`` again.
* Sessions from the client-credentials grant are renewed with that grant (no refresh token
  involved).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.settings import Settings, config_dir
from integrations.errors import RemoteRejectedCredentials, RemoteUnavailable

PROCORE_TOKEN_ENV = "RELINK_PROCORE_TOKEN"
ERP_TOKEN_ENV = "RELINK_ERP_TOKEN"
CLIENT_SECRET_ENV = "RELINK_PROCORE_CLIENT_SECRET"
FILE_VERSION = 1
REFRESH_MARGIN = 60.0  # seconds: a token this close to expires_at counts as expired
GRANTS = ("authorization_code", "client_credentials")
LOGIN_AGAIN = "run `relink login` again"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


# the file --------------------------------------------------------------------------------------


class CredentialStore:
    """The credentials file: validated reads, atomic 0600 writes, a lock across processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or credentials_path()

    def read(self) -> dict[str, Any] | None:
        """The stored session, or None when there is none; UsageError when it is unusable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            why = f"{self.path}: cannot read it ({exc.strerror}); {LOGIN_AGAIN}"
            raise UsageError(why) from exc
        with os.fdopen(fd, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if os.name == "posix" and mode & 0o077:
                raise UsageError(
                    f"{self.path} may be read by other users (mode {mode:o}): run"
                    f" `chmod 600 {self.path}`, or {LOGIN_AGAIN}"
                )
            raw = handle.read()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not _valid(doc):
            raise UsageError(f"{self.path}: not a relink credentials file; {LOGIN_AGAIN}")
        return dict(doc)

    def write(self, doc: Mapping[str, Any]) -> None:
        """Replace the file atomically; it is never visible with other permissions than 0600."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and stat.S_IMODE(directory.stat().st_mode) & 0o077:
            os.chmod(directory, 0o700)
        temporary = directory / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(temporary, flags, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                if os.name == "posix":
                    os.fchmod(handle.fileno(), 0o600)
                json.dump(dict(doc), handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        _fsync_directory(directory)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock that serialises logins and refreshes (POSIX; no-op elsewhere)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / "credentials.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def _valid(doc: Any) -> bool:
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        return False
    texts = ("login_url", "api_url", "client_id", "access_token")
    if not all(isinstance(doc.get(key), str) and doc[key] for key in texts):
        return False
    if not (doc["access_token"].isascii() and doc["access_token"].isprintable()):
        return False  # a header could not carry it
    if doc.get("grant") not in GRANTS:
        return False
    optional_texts = ("client_secret", "refresh_token")
    if any(doc.get(key) is not None and not isinstance(doc[key], str) for key in optional_texts):
        return False
    numbers = ("expires_at", "obtained_at", "refresh_started_at")
    return all(
        doc.get(key) is None
        or (isinstance(doc[key], int | float) and not isinstance(doc[key], bool))
        for key in numbers
    )


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def session_document(
    answer: Mapping[str, Any],
    *,
    login_url: str,
    api_url: str,
    client_id: str,
    client_secret: str | None,
    grant: str,
    now: float,
) -> dict[str, Any]:
    """What the credentials file holds after a token answer (``exchange_token``'s result)."""
    expires_in = answer.get("expires_in")
    return {
        "version": FILE_VERSION,
        "login_url": login_url,
        "api_url": api_url,
        "client_id": client_id,
        "client_secret": client_secret,
        "grant": grant,
        "token_type": answer.get("token_type", "bearer"),
        "access_token": answer["access_token"],
        "refresh_token": answer.get("refresh_token"),
        "expires_at": now + expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
        "obtained_at": now,
        "refresh_started_at": None,
    }


# the token source ------------------------------------------------------------------------------


class StoredSession:
    """The stored session as an :class:`integrations.auth.TokenSource`; thread-safe."""

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
        self._doc = doc
        self._client_secret = client_secret
        self._policy = policy
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoredSession({str(self._store.path)!r})"

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
        return expires_at is not None and self._clock() >= expires_at - REFRESH_MARGIN

    def _refresh(self, stale: str) -> None:
        """Replace the session whose access token is ``stale``; raises RemoteError subclasses."""
        with self._store.locked():
            current = self._store.read()
            if current is None or current["api_url"] != self._doc["api_url"]:
                raise RemoteRejectedCredentials(
                    f"the stored Procore session was removed or replaced; {LOGIN_AGAIN}",
                    system="procore",
                )
            if current["access_token"] != stale and not self._expired(current):
                self._doc = current  # another relink process refreshed it meanwhile
                return
            form = self._form(current)
            if form["grant_type"] == "refresh_token":  # only sharpens a later message
                with contextlib.suppress(OSError):
                    self._store.write({**current, "refresh_started_at": self._clock()})
            answer = self._exchange(current, form)
            renewed = session_document(
                answer,
                login_url=current["login_url"],
                api_url=current["api_url"],
                client_id=current["client_id"],
                client_secret=current.get("client_secret"),
                grant=current["grant"],
                now=self._clock(),
            )
            try:
                self._store.write(renewed)
            except OSError as exc:
                raise RemoteRejectedCredentials(
                    f"could not save the refreshed Procore session to {self._store.path}"
                    f" ({exc.strerror}); the previous refresh token is used up: {LOGIN_AGAIN}",
                    system="procore",
                ) from exc
            self._doc = renewed

    def _form(self, current: Mapping[str, Any]) -> dict[str, str]:
        secret = self._client_secret or current.get("client_secret")
        if not secret:
            raise RemoteRejectedCredentials(
                f"no client secret to renew the Procore session: set {CLIENT_SECRET_ENV}, or"
                f" {LOGIN_AGAIN}",
                system="procore",
            )
        base = {"client_id": str(current["client_id"]), "client_secret": str(secret)}
        if current["grant"] == "client_credentials":
            return {"grant_type": "client_credentials", **base}
        if not current.get("refresh_token"):
            raise RemoteRejectedCredentials(
                f"the Procore session has expired and holds no refresh token; {LOGIN_AGAIN}",
                system="procore",
            )
        return {"grant_type": "refresh_token", "refresh_token": current["refresh_token"], **base}

    def _exchange(self, current: Mapping[str, Any], form: dict[str, str]) -> dict[str, Any]:
        from integrations.procore import exchange_token

        try:
            return exchange_token(
                current["login_url"], form, policy=self._policy, transport=self._transport
            )
        except RemoteRejectedCredentials as exc:
            if form["grant_type"] == "client_credentials":
                why = "Procore rejected the stored client credentials"
            elif current.get("refresh_started_at") is not None:
                why = (
                    "Procore no longer accepts the stored refresh token: an earlier refresh got"
                    " no answer, and refresh tokens can be used only once"
                )
            else:
                why = "Procore no longer accepts the stored refresh token (used or revoked)"
            raise RemoteRejectedCredentials(
                f"{why}; {LOGIN_AGAIN}", system="procore", status=exc.status
            ) from exc
        except RemoteUnavailable as exc:
            raise type(exc)(
                f"could not renew the Procore session ({exc.message}); the stored session is"
                " kept, run the command again (if Procore then refuses the refresh token,"
                f" {LOGIN_AGAIN})",
                system="procore",
                status=exc.status,
            ) from exc


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
