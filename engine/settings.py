"""Settings: command-line option > environment > relink.toml > default (spec/cli.md).

Loading is cheap (stdlib only) so the CLI can read settings without importing the heavy layers.
Config files: ``--config``/``RELINK_CONFIG`` alone, else ``<user config dir>/relink.toml``
overlaid by ``./relink.toml``; what the latter may set without an allowance: :mod:`engine.trust`.
Secrets are not settings: tokens come from :mod:`engine.credentials`.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import UsageError

APP = "relink"
ERP_PRODUCTS = ("qbo", "xero", "intacct")
UNLINK_MODES = ("procore", "integrator")  # workflows.unlinking

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
    # `relink login --erp` (engine.login): the app's OAuth client and endpoints
    ("erp", "client_id"): ("RELINK_ERP_CLIENT_ID", str),
    ("erp", "token_url"): ("RELINK_ERP_TOKEN_URL", str),
    ("erp", "authorize_url"): ("RELINK_ERP_AUTHORIZE_URL", str),
    ("erp", "redirect_uri"): ("RELINK_ERP_REDIRECT_URI", str),
    ("erp", "username"): ("RELINK_ERP_USERNAME", str),  # Intacct client credentials
    ("http", "connect_timeout"): ("RELINK_HTTP_CONNECT_TIMEOUT", float),
    ("http", "read_timeout"): ("RELINK_HTTP_READ_TIMEOUT", float),
    ("http", "max_attempts"): ("RELINK_HTTP_MAX_ATTEMPTS", int),
    ("http", "max_wait"): ("RELINK_HTTP_MAX_WAIT", float),
    ("http", "backoff_initial"): ("RELINK_HTTP_BACKOFF_INITIAL", float),
    ("http", "backoff_max"): ("RELINK_HTTP_BACKOFF_MAX", float),
    ("http", "pace_below"): ("RELINK_HTTP_PACE_BELOW", int),
    ("steps", "lease_seconds"): ("RELINK_LEASE_SECONDS", float),
    ("erp", "unlink"): ("RELINK_UNLINK_MODE", str),
    ("erp", "unlink_poll_seconds"): ("RELINK_UNLINK_POLL_SECONDS", float),
    ("erp", "unlink_wait_seconds"): ("RELINK_UNLINK_WAIT_SECONDS", float),
}
# Secrets never go into relink.toml: these keys are refused with a pointer to the right place.
SECRET_KEYS = {
    ("procore", "token"): "RELINK_PROCORE_TOKEN or `relink login`",
    ("procore", "access_token"): "RELINK_PROCORE_TOKEN or `relink login`",
    ("procore", "refresh_token"): "`relink login`",
    ("procore", "client_secret"): "RELINK_PROCORE_CLIENT_SECRET or the `relink login` prompt",
    ("erp", "token"): "RELINK_ERP_TOKEN or `relink login --erp`",
    ("erp", "access_token"): "RELINK_ERP_TOKEN or `relink login --erp`",
    ("erp", "refresh_token"): "`relink login --erp`",
    ("erp", "client_secret"): "RELINK_ERP_CLIENT_SECRET or the `relink login --erp` prompt",
    ("erp", "integrator_token"): "RELINK_INTEGRATOR_TOKEN",
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
    ("steps", "lease_seconds"): 60.0,
    ("erp", "unlink"): "procore",
    ("erp", "unlink_poll_seconds"): 2.0,
    ("erp", "unlink_wait_seconds"): 600.0,
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
    lease_seconds: float = 60.0
    # how the unlink steps clear an ERP link (workflows.unlinking): "procore" (the operator's
    # click, awaited by polling) or "integrator" (External Data Sync, service account)
    unlink_mode: str = "procore"
    unlink_poll_seconds: float = 2.0
    unlink_wait_seconds: float = 600.0
    # workflow -> step -> the requirement that replaces its default (``[policy.<workflow>.<step>]``;
    # ``[policy.<step>]`` is the default workflow's)
    policy: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    config_file: Path | None = None
    # the files read, lowest precedence first (config_file is the last)
    config_files: tuple[Path, ...] = ()
    # per workflow whose policy is looser than product.md's (engine.policy): its fingerprint,
    # recorded in the evidence of every audit entry it governs, and step -> what it accepts
    # beyond the default; absent when the policy in force is the default or stricter
    policy_fingerprints: dict[str, str] = field(default_factory=dict)
    policy_loosened: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # where each value came from, by (section, key): ("option", "--db"), ("env", VARIABLE),
    # ("file", PATH) or ("default", ""); and each [policy] override: (workflow, step) -> PATH
    # (`relink config show`)
    sources: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    policy_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    resolved: dict[tuple[str, str], Any] = field(default_factory=dict)  # by (section, key)
    # `relink login --erp`: the app's OAuth client, its endpoints (None: the product's public
    # ones) and the Intacct Web Services user of the client-credentials grant
    erp_client_id: str | None = None
    erp_token_url: str | None = None
    erp_authorize_url: str | None = None
    erp_redirect_uri: str | None = None
    erp_username: str | None = None

    def require_company(self) -> int:
        if self.company_id is None:
            raise UsageError("no Procore company is configured: set RELINK_COMPANY_ID")
        return self.company_id


def find_configs(explicit: str | None, env: Mapping[str, str]) -> list[tuple[Path, bool]]:
    """The config files to read, lowest precedence first, each with whether it is trusted.

    ``--config`` or ``RELINK_CONFIG``: that file alone (trusted). Otherwise
    ``<user config dir>/relink.toml`` (trusted), overlaid by ``./relink.toml``, which is trusted
    only for what :mod:`engine.trust` lets an unallowed file set.
    """
    chosen = explicit or env.get("RELINK_CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        return [(path, True)]
    found: list[tuple[Path, bool]] = []
    user = config_dir() / "relink.toml"
    if user.is_file():
        found.append((user, True))
    here = Path("relink.toml")
    if here.is_file() and not (found and _same_file(here, user)):
        found.append((here.absolute(), False))
    return found


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


MAX_CONFIG = 1_000_000  # bytes: a config file is a few hundred


def load_config(path: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed file and the exact bytes parsed (read once, so a hash of them is of them)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from exc
    if len(data) > MAX_CONFIG:
        raise UsageError(f"{path}: larger than {MAX_CONFIG} bytes")
    try:
        return tomllib.loads(data.decode("utf-8")), data
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML (not UTF-8 at byte {exc.start})") from exc
    except RecursionError:
        raise UsageError(f"{path}: not valid TOML (nested too deeply)") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc


def read_config(path: Path) -> dict[str, Any]:
    return load_config(path)[0]


def validate_config(
    raw: Mapping[str, Any], where: str, *, default_workflow: str | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Refuse unknown settings, secrets and an invalid ``[policy]``, naming ``where``; return
    the policy it sets (workflow -> step -> rule)."""
    policy = _policy(raw.get("policy", {}), where, default_workflow)
    for section, table in raw.items():
        if section == "policy":
            continue
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
    return policy


def load_settings(
    *,
    db: str | None = None,
    config: str | None = None,
    env: Mapping[str, str] | None = None,
    default_workflow: str | None = None,
) -> Settings:
    """Resolve settings; any invalid value is a UsageError naming the key and the file.
    ``default_workflow`` is the workflow whose steps a bare ``[policy.<step>]`` names."""
    env = os.environ if env is None else env
    sources = find_configs(config, env)
    raw: dict[str, dict[str, Any]] = {}  # the files merged, later ones over earlier ones
    where: dict[tuple[str, str], str] = {}  # the file each value in ``raw`` came from
    policy: dict[str, dict[str, dict[str, Any]]] = {}
    policy_where: dict[tuple[str, str], str] = {}  # the file each [policy] override came from
    for path, trusted in sources:
        layer, data = load_config(path)
        rules = validate_config(layer, str(path), default_workflow=default_workflow)
        if not trusted:  # ./relink.toml: policy, endpoints, database... only when allowed
            from engine.trust import check_working_directory_file

            check_working_directory_file(path, layer, data)
        layer.pop("policy", None)
        for workflow, steps in rules.items():
            policy.setdefault(workflow, {}).update(steps)
            policy_where |= {(workflow, step): str(path) for step in steps}
        for section, table in layer.items():
            raw.setdefault(section, {}).update(table)
            where |= {(section, key): str(path) for key in table}
    values: dict[tuple[str, str], Any] = {}
    origins: dict[tuple[str, str], str] = {}  # where each value came from, for messages
    came_from: dict[tuple[str, str], tuple[str, str]] = {}  # the same, for config show
    for (section, key), (variable, kind) in KEYS.items():
        value = DEFAULTS.get((section, key))
        origins[(section, key)] = f"{section}.{key}"
        came_from[(section, key)] = ("default", "")
        if key in raw.get(section, {}):
            origins[(section, key)] = f"{where[(section, key)]}: {section}.{key}"
            came_from[(section, key)] = ("file", where[(section, key)])
            value = _coerce(raw[section][key], kind, origins[(section, key)])
        if variable and env.get(variable):
            origins[(section, key)] = variable
            came_from[(section, key)] = ("env", variable)
            value = _coerce(env[variable], kind, variable)
        values[(section, key)] = value
    if db:
        values[("database", "url")] = db
        came_from[("database", "url")] = ("option", "--db")
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
    if values[("erp", "unlink")] not in UNLINK_MODES:
        raise UsageError(
            f"{origins[('erp', 'unlink')]}: unknown unlink mode {values[('erp', 'unlink')]!r}:"
            f" use one of {', '.join(UNLINK_MODES)}"
        )
    if not 0.05 <= values[("erp", "unlink_poll_seconds")] <= 600:
        raise UsageError(f"{origins[('erp', 'unlink_poll_seconds')]} must be 0.05 to 600 seconds")
    if not 0 <= values[("erp", "unlink_wait_seconds")] <= 86400:
        raise UsageError(f"{origins[('erp', 'unlink_wait_seconds')]} must be 0 to 86400 seconds")
    if not 0.1 <= values[("steps", "lease_seconds")] <= 86400:
        raise UsageError(
            f"{origins[('steps', 'lease_seconds')]} must be between 0.1 and 86400 seconds"
        )
    _check_ranges_and_urls(values, origins)
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
        lease_seconds=values[("steps", "lease_seconds")],
        unlink_mode=values[("erp", "unlink")],
        unlink_poll_seconds=values[("erp", "unlink_poll_seconds")],
        unlink_wait_seconds=values[("erp", "unlink_wait_seconds")],
        policy=policy,
        config_file=sources[-1][0] if sources else None,
        config_files=tuple(path for path, _ in sources),
        **_policy_looseness(policy),
        erp_client_id=values[("erp", "client_id")],
        erp_token_url=values[("erp", "token_url")],
        erp_authorize_url=values[("erp", "authorize_url")],
        erp_redirect_uri=values[("erp", "redirect_uri")],
        erp_username=values[("erp", "username")],
        sources=came_from,
        policy_sources=policy_where,
        resolved=values,
    )


def _policy_looseness(
    policy: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> dict[str, Any]:
    """``policy_fingerprints`` and ``policy_loosened`` of :class:`Settings`.

    Only a trusted file can have set ``policy`` (an unallowed ./relink.toml setting it was
    refused above), so a looser policy reaching here is accepted, and named by its fingerprint.
    """
    if not policy:
        return {}
    from engine.policy import fingerprint, loosened, policy_in_force
    from workflows import registry

    fingerprints: dict[str, str] = {}
    gains: dict[str, dict[str, list[str]]] = {}
    for workflow, overrides in policy.items():
        definition = registry.get(workflow)
        in_force = policy_in_force(definition, overrides)
        if looser := loosened(definition, in_force):
            fingerprints[workflow] = fingerprint(definition, in_force)
            gains[workflow] = looser
    return {"policy_fingerprints": fingerprints, "policy_loosened": gains}


def _coerce(value: Any, kind: type, origin: str) -> Any:
    if value is None:
        return None
    if kind is str:
        if not isinstance(value, str):
            raise UsageError(f"{origin} must be a string")
        try:  # an environment value of bytes that are not UTF-8 holds lone surrogates
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"{origin} is not UTF-8 text") from None
        return value
    if isinstance(value, bool):
        raise UsageError(f"{origin} must be a number")
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(
            f"{origin} must be {'an integer' if kind is int else 'a finite number'}"
        ) from None
    if kind is int and isinstance(value, float):
        raise UsageError(f"{origin} must be an integer")
    if kind is float and not math.isfinite(number):  # inf, nan, 1e400
        raise UsageError(f"{origin} must be a finite number")
    if kind is int and not INT64[0] <= number <= INT64[1]:
        raise UsageError(f"{origin} must be an integer of at most 64 bits")
    return number


INT64 = (-(2**63), 2**63 - 1)
# Upper bounds of numeric settings: beyond them a value is a slip or an attack, and would fail
# late, deep inside a library (a time_t overflow, a sleep that never ends), not here by name.
MAXIMA: dict[tuple[str, str], float] = {
    ("http", "connect_timeout"): 600.0,
    ("http", "read_timeout"): 600.0,
    ("http", "max_wait"): 3600.0,
    ("http", "backoff_initial"): 600.0,
    ("http", "backoff_max"): 600.0,
    ("http", "pace_below"): 1_000_000,
}
URL_KEYS = (
    ("procore", "api_url"), ("procore", "login_url"), ("erp", "api_url"), ("erp", "token_url"),
    ("erp", "authorize_url"), ("erp", "redirect_uri"),
)
MAX_URL = 2048
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")
_IPV4_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_ERP_COMPANY = re.compile(r"[!-~]{1,255}")  # printable ASCII, no space...
_NOT_IN_ERP_COMPANY = set("/?#%\\")  # ...and nothing that would change the URL it goes into


def _check_ranges_and_urls(
    values: Mapping[tuple[str, str], Any], origins: Mapping[tuple[str, str], str]
) -> None:
    """Upper bounds, the company ids and the endpoint URLs, checked when settings load."""
    for key, most in MAXIMA.items():
        if values[key] > most:
            raise UsageError(f"{origins[key]} must be at most {most:g}")
    company = values[("procore", "company_id")]
    if company is not None and not 0 < company <= 2**53 - 1:  # the audit log's JSON integers
        raise UsageError(
            f"{origins[('procore', 'company_id')]} must be a positive integer below 2^53"
        )
    for key in URL_KEYS:
        if values[key] is not None:
            check_url(values[key], origins[key])
    erp_company = values[("erp", "company")]
    if erp_company is not None and (
        not _ERP_COMPANY.fullmatch(erp_company) or _NOT_IN_ERP_COMPANY & set(erp_company)
    ):
        raise UsageError(  # it goes into a URL path (QuickBooks) or a header (Xero)
            f"{origins[('erp', 'company')]} must be printable ASCII without spaces or any of"
            " / ? # % \\ (at most 255 characters)"
        )


def check_url(value: str, origin: str) -> None:
    """Refuse what is not an http(s) base URL relink can send to, naming where it came from and
    never echoing it (a URL may carry credentials)."""
    problem = _url_problem(value)
    if problem:
        raise UsageError(f"{origin} is not a usable http(s) URL: {problem}")


def _url_problem(value: str) -> str | None:
    if len(value) > MAX_URL:
        return f"longer than {MAX_URL} characters"
    if not value.isascii() or not value.isprintable() or " " in value:
        return "only printable ASCII without spaces (an international host in its xn-- form)"
    try:
        parts = urlsplit(value)
        _port, host = parts.port, parts.hostname  # port: ValueError when not 0-65535
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not host:
        return "it names no host"
    if parts.username is not None or parts.password is not None:
        return "it must not hold a user name or password"
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return "it must not have a query or fragment"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "its IPv6 address is not valid"
    elif _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "its IPv4 address is not valid"
    elif not _HOST_NAME.fullmatch(host):
        return "its host name is not valid"
    return None


def _check_approval(rule: Mapping[str, Any]) -> None:
    """The four-eyes keys of a policy table, if any: ValueError naming what is wrong."""
    from workflows.definition import Requirement

    if "require_approval" in rule and not isinstance(rule["require_approval"], bool):
        raise ValueError("require_approval must be true or false")
    approver = rule.get("approver")
    if approver is not None:
        if not isinstance(approver, dict):
            raise ValueError("approver must be a table of tools and privileges")
        Requirement.parse(approver)
    minutes = rule.get("approval_minutes")
    if minutes is not None and (
        isinstance(minutes, bool) or not isinstance(minutes, int | float)
        or not 0 < minutes <= 7 * 24 * 60
    ):
        raise ValueError("approval_minutes must be a number of minutes above 0, at most a week")
    if (approver is not None or minutes is not None) and rule.get("require_approval") is not True:
        raise ValueError("approver and approval_minutes need require_approval = true")


def _policy(
    raw: Any, where: str, default_workflow: str | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """``[policy.<workflow>.<step>]`` tables (``[policy.<step>]``: ``default_workflow``'s, the
    form relink read before it ran more than one workflow), each replacing that step's whole
    default requirement; checked against the registry. Returns workflow -> step -> rule."""
    from workflows import registry
    from workflows.definition import Requirement

    if not isinstance(raw, dict):
        raise UsageError(f"{where}: [policy] must be a table of workflows")
    known = registry.names()
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for key, table in raw.items():
        if key in known:
            workflow, steps, prefix = key, table, f"policy.{key}"
            if not isinstance(steps, dict):
                raise UsageError(f"{where}: [{prefix}] must be a table of steps")
        elif default_workflow is not None:
            workflow, steps, prefix = default_workflow, {key: table}, "policy"
        else:
            raise UsageError(f"{where}: policy for unknown workflow {key!r}")
        definition = registry.get(workflow)
        for step, rule in steps.items():
            if definition.requirement(step) is None:
                of = "" if prefix == "policy" else f" of {workflow}"
                raise UsageError(f"{where}: policy for unknown step{of} {step!r}")
            if not isinstance(rule, dict):
                raise UsageError(f"{where}: [{prefix}.{step}] must be a table")
            try:
                Requirement.parse(rule)
                _check_approval(rule)
            except ValueError as exc:
                raise UsageError(f"{where}: [{prefix}.{step}]: {exc}") from exc
            found.setdefault(workflow, {})[step] = rule
    return found
