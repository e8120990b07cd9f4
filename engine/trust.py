"""Which config files relink trusts, and the allowances ``relink config allow`` records.

Trusted: the environment, ``--config FILE`` / ``RELINK_CONFIG`` and
``<user config dir>/relink.toml`` — places only the operator controls. A ``relink.toml`` found
in the working directory may have been put there by anyone who can write to that directory (a
shared checkout, an unpacked archive), so, like git's ``safe.directory`` and direnv's ``allow``,
relink trusts it only for :data:`SAFE_SECTIONS` (``[http]``: how long to wait, how often to
retry) unless the operator allowed it. Anything else it sets — the permission policy, an
endpoint (where tokens go), the ERP product, the OAuth client, a company, the database, the
lease — is refused (exit 2) naming the key and ``relink config allow``.

An allowance is the file's absolute path and the SHA-256 of its bytes, kept in
``<user config dir>/allowed.json`` (mode 0600, replaced atomically)::

    {"version": 1, "files": {"/abs/path/relink.toml": {"sha256": "...", "allowed_at": "..."}}}

Any edit of the file changes its hash and so voids the allowance. The bytes hashed are the
bytes parsed: the file is read once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.private_files import exclusive_lock, read_private, write_private_json
from engine.settings import config_dir, load_config, validate_config

ALLOWED_FILE = "allowed.json"
FILE_VERSION = 1
SAFE_SECTIONS = frozenset({"http"})
ALLOW_HINT = "if you trust it, run `relink config allow`"


def untrusted_keys(raw: Mapping[str, Any]) -> list[str]:
    """The settings in ``raw`` that only a trusted (or allowed) file may set."""
    keys: list[str] = []
    for section, table in raw.items():
        if section in SAFE_SECTIONS:
            continue
        if isinstance(table, Mapping) and table:
            keys.extend(f"{section}.{key}" for key in table)
        else:
            keys.append(section)
    return keys


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_working_directory_file(path: Path, raw: Mapping[str, Any], data: bytes) -> None:
    """Refuse (UsageError, exit 2) a ``./relink.toml`` that sets what only a trusted file may,
    unless it was allowed with exactly these bytes."""
    keys = untrusted_keys(raw)
    if not keys:
        return
    named = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
    allowed = Allowances().sha256_of(_absolute(path, strict=False))
    if allowed == digest(data):
        return
    if allowed is None:
        raise UsageError(
            f"{path}: a relink.toml in the working directory may not set {named} unless you"
            f" allow it: review it, then {ALLOW_HINT}"
        )
    raise UsageError(
        f"{path} changed since it was allowed, so it may not set {named}: review it, then"
        f" {ALLOW_HINT} again"
    )


# the use cases of `relink config` -------------------------------------------------------------


def allow(path: Path, *, default_workflow: str | None = None) -> dict[str, Any]:
    """Record ``path`` (validated; ``[policy.<step>]`` naming ``default_workflow``'s steps) as
    trusted with its current content."""
    file = _absolute(path)
    raw, data = load_config(file)
    validate_config(raw, str(file), default_workflow=default_workflow)
    sha256 = digest(data)
    store = Allowances()
    with store.locked():
        files = store.read()
        files[str(file)] = {"sha256": sha256, "allowed_at": _now()}
        store.write(files)
    return {"file": str(file), "sha256": sha256, "sets": untrusted_keys(raw),
            "allowances": str(store.path)}


def deny(path: Path) -> dict[str, Any]:
    """Forget the allowance of ``path`` (the file itself may be gone)."""
    file = _absolute(path, strict=False)
    store = Allowances()
    with store.locked():
        files = store.read()
        removed = files.pop(str(file), None) is not None
        if removed:
            store.write(files)
    return {"file": str(file), "removed": removed, "allowances": str(store.path)}


def _absolute(path: Path, *, strict: bool = True) -> Path:
    path = path.expanduser()
    try:
        return path.resolve(strict=strict)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop
        raise UsageError(f"{path}: cannot resolve it ({exc})") from exc


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# the file ---------------------------------------------------------------------------------------


class Allowances:
    """``allowed.json``: validated reads, atomic 0600 writes, a lock across processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / ALLOWED_FILE

    def sha256_of(self, file: Path) -> str | None:
        entry = self.read().get(str(file))
        return None if entry is None else str(entry["sha256"])

    def read(self) -> dict[str, dict[str, Any]]:
        """Absolute path -> allowance; empty when there is no file. A file others may change,
        or one relink did not write, is refused: it decides what relink trusts."""
        try:
            found = read_private(self.path)
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read it ({exc.strerror})") from exc
        if found is None:
            return {}
        raw, info = found
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and (mode & 0o022 or info.st_uid != os.geteuid()):
            raise UsageError(
                f"{self.path} may be changed by other users (mode {mode:o}, owner"
                f" {info.st_uid}): make it yours with mode 600, or delete it"
            )
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if not _valid(doc):
            raise UsageError(
                f"{self.path}: not a relink allowances file; delete it and run"
                " `relink config allow` again"
            )
        return dict(doc["files"])

    def write(self, files: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the file atomically; it is never visible with other permissions than 0600."""
        try:
            write_private_json(self.path, {"version": FILE_VERSION, "files": dict(files)})
        except OSError as exc:
            raise UsageError(f"{self.path.parent}: cannot write there ({exc.strerror})") from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock that serialises changes to the file (POSIX; no-op elsewhere)."""
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(exclusive_lock(self.path.with_suffix(".lock")))
            except OSError as exc:
                raise UsageError(
                    f"{self.path.parent}: cannot write there ({exc.strerror})") from exc
            yield


def _valid(doc: Any) -> bool:
    if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
        return False
    files = doc.get("files")
    return isinstance(files, dict) and all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
        for entry in files.values()
    )
