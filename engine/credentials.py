"""Where tokens come from: the environment first, then the file `relink login` writes
(``<user config dir>/credentials.json``, mode 0600). Tokens never go into settings, the database,
the audit log or any message."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.settings import config_dir


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def read_stored(path: Path | None = None) -> dict[str, Any] | None:
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable credentials file; run `relink login` again") from exc
    return data if isinstance(data, dict) else None


def procore_token(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if token := env.get("RELINK_PROCORE_TOKEN"):
        return token
    stored = read_stored()
    if stored and isinstance(stored.get("access_token"), str):
        return stored["access_token"]
    raise UsageError("no Procore credentials: set RELINK_PROCORE_TOKEN or run `relink login`")


def erp_token(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return env.get("RELINK_ERP_TOKEN") or None
