"""Settings: command-line option > environment > relink.toml > default (spec/cli.md).

Loading is cheap (stdlib only) so the CLI can read settings without importing the heavy layers.
Secrets are not settings: tokens come from :mod:`engine.credentials`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError

APP = "relink"
ERP_PRODUCTS = ("qbo", "xero", "intacct")
STEP_NAMES = (
    "start",
    "delete-in-erp",
    "confirm-erp-deletion",
    "unlink",
    "delete-in-procore",
    "reenter",
    "cancel",
)

# (section, key) -> (environment variable, type)
KEYS: dict[tuple[str, str], tuple[str | None, type]] = {
    ("database", "url"): ("RELINK_DATABASE_URL", str),
    ("procore", "api_url"): ("RELINK_PROCORE_URL", str),
    ("procore", "login_url"): ("RELINK_PROCORE_LOGIN_URL", str),
    ("procore", "company_id"): ("RELINK_COMPANY_ID", int),
    ("procore", "client_id"): ("RELINK_PROCORE_CLIENT_ID", str),
    ("erp", "product"): ("RELINK_ERP", str),
    ("erp", "api_url"): ("RELINK_ERP_URL", str),
    ("erp", "company"): ("RELINK_ERP_COMPANY", str),
    ("http", "connect_timeout"): ("RELINK_HTTP_CONNECT_TIMEOUT", float),
    ("http", "read_timeout"): ("RELINK_HTTP_READ_TIMEOUT", float),
    ("http", "max_attempts"): ("RELINK_HTTP_MAX_ATTEMPTS", int),
    ("http", "max_wait"): ("RELINK_HTTP_MAX_WAIT", float),
    ("http", "backoff_initial"): ("RELINK_HTTP_BACKOFF_INITIAL", float),
    ("http", "backoff_max"): ("RELINK_HTTP_BACKOFF_MAX", float),
    ("http", "pace_below"): ("RELINK_HTTP_PACE_BELOW", int),
}
# Secrets never go into relink.toml: these keys are refused with a pointer to the right place.
SECRET_KEYS = {
    ("procore", "token"): "RELINK_PROCORE_TOKEN or `relink login`",
    ("procore", "access_token"): "RELINK_PROCORE_TOKEN or `relink login`",
    ("procore", "refresh_token"): "`relink login`",
    ("procore", "client_secret"): "RELINK_PROCORE_CLIENT_SECRET or the `relink login` prompt",
    ("erp", "token"): "RELINK_ERP_TOKEN",
}
DEFAULTS: dict[tuple[str, str], Any] = {
    ("procore", "api_url"): "https://api.procore.com",
    ("procore", "login_url"): "https://login.procore.com",
    ("http", "connect_timeout"): 5.0,
    ("http", "read_timeout"): 10.0,
    ("http", "max_attempts"): 4,
    ("http", "max_wait"): 60.0,
    ("http", "backoff_initial"): 0.2,
    ("http", "backoff_max"): 5.0,
    ("http", "pace_below"): 10,
}


def data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP, appauthor=False)


def config_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP, appauthor=False)


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'relink.db'}"


@dataclass(frozen=True)
class Settings:
    """Every non-secret setting, resolved; ``source`` says where the config file came from."""

    database_url: str
    procore_url: str
    procore_login_url: str
    company_id: int | None
    procore_client_id: str | None
    erp: str | None
    erp_url: str | None
    erp_company: str | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    max_wait: float
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    pace_below: int = 10
    policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    config_file: Path | None = None

    def require_company(self) -> int:
        if self.company_id is None:
            raise UsageError("no Procore company is configured: set RELINK_COMPANY_ID")
        return self.company_id


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """``--config`` > ``RELINK_CONFIG`` > ./relink.toml > <user config dir>/relink.toml."""
    chosen = explicit or env.get("RELINK_CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        return path
    for candidate in (Path("relink.toml"), config_dir() / "relink.toml"):
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
    return raw


def load_settings(
    *,
    db: str | None = None,
    config: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings; any invalid value is a UsageError naming the key and the file."""
    env = os.environ if env is None else env
    path = find_config(config, env)
    raw = read_config(path) if path else {}
    where = str(path) if path else "config"
    policy = _policy(raw.pop("policy", {}), where)
    for section, table in raw.items():
        for key in table if isinstance(table, dict) else ():
            if (section, key) in SECRET_KEYS:
                raise UsageError(
                    f"{where}: {section}.{key} is a secret and does not belong in the config file;"
                    f" use {SECRET_KEYS[(section, key)]}"
                )
        if not isinstance(table, dict) or not all((section, k) in KEYS for k in table):
            bad = (
                section
                if not isinstance(table, dict)
                else next(f"{section}.{k}" for k in table if (section, k) not in KEYS)
            )
            raise UsageError(f"{where}: unknown setting {bad!r}")
    values: dict[tuple[str, str], Any] = {}
    origins: dict[tuple[str, str], str] = {}  # where each value came from, for messages
    for (section, key), (variable, kind) in KEYS.items():
        value = DEFAULTS.get((section, key))
        origins[(section, key)] = f"{section}.{key}"
        if key in raw.get(section, {}):
            origins[(section, key)] = f"{where}: {section}.{key}"
            value = _coerce(raw[section][key], kind, origins[(section, key)])
        if variable and env.get(variable):
            origins[(section, key)] = variable
            value = _coerce(env[variable], kind, variable)
        values[(section, key)] = value
    if db:
        values[("database", "url")] = db
    erp = values[("erp", "product")]
    if erp is not None and erp not in ERP_PRODUCTS:
        raise UsageError(
            f"{origins[('erp', 'product')]}: unknown ERP product {erp!r}:"
            f" use one of {', '.join(ERP_PRODUCTS)}"
        )
    for key in ("connect_timeout", "read_timeout", "max_wait"):
        if values[("http", key)] <= 0:
            raise UsageError(f"{origins[('http', key)]} must be greater than 0")
    for key in ("backoff_initial", "backoff_max", "pace_below"):
        if values[("http", key)] < 0:
            raise UsageError(f"{origins[('http', key)]} must not be negative")
    if not 1 <= values[("http", "max_attempts")] <= 20:
        raise UsageError(f"{origins[('http', 'max_attempts')]} must be between 1 and 20")
    return Settings(
        database_url=values[("database", "url")] or default_database_url(),
        procore_url=values[("procore", "api_url")].rstrip("/"),
        procore_login_url=values[("procore", "login_url")].rstrip("/"),
        company_id=values[("procore", "company_id")],
        procore_client_id=values[("procore", "client_id")],
        erp=erp,
        erp_url=(values[("erp", "api_url")] or "").rstrip("/") or None,
        erp_company=values[("erp", "company")],
        connect_timeout=values[("http", "connect_timeout")],
        read_timeout=values[("http", "read_timeout")],
        max_attempts=values[("http", "max_attempts")],
        max_wait=values[("http", "max_wait")],
        backoff_initial=values[("http", "backoff_initial")],
        backoff_max=values[("http", "backoff_max")],
        pace_below=values[("http", "pace_below")],
        policy=policy,
        config_file=path,
    )


def _coerce(value: Any, kind: type, origin: str) -> Any:
    if value is None:
        return None
    if kind is str:
        if not isinstance(value, str):
            raise UsageError(f"{origin} must be a string")
        return value
    if isinstance(value, bool):
        raise UsageError(f"{origin} must be a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise UsageError(
            f"{origin} must be {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is int and isinstance(value, float):
        raise UsageError(f"{origin} must be an integer")
    return number


def _policy(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """``[policy.<step>]`` tables: each replaces that step's whole default requirement."""
    from workflows.definition import Requirement

    if not isinstance(raw, dict):
        raise UsageError(f"{where}: [policy] must be a table of steps")
    for step, rule in raw.items():
        if step not in STEP_NAMES:
            raise UsageError(f"{where}: policy for unknown step {step!r}")
        if not isinstance(rule, dict):
            raise UsageError(f"{where}: [policy.{step}] must be a table")
        try:
            Requirement.parse(rule)
        except ValueError as exc:
            raise UsageError(f"{where}: [policy.{step}]: {exc}") from exc
    return raw
