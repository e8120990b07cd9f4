"""`relink config show`: the configuration in force and where each part of it came from.

Which config files were read (and how far each is trusted), every setting with its value and its
source (``option``: ``--db``; ``env``: the variable; ``file``: the config file; ``default``), the
secrets as set or unset only (never a value, never a length), and the permission policy of every
workflow: each step's requirement, whether a config file replaced the default (and which), and
the fingerprint of a policy looser than product.md's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.settings import ERP_PRODUCTS, KEYS, Settings, find_configs, load_config


def describe(
    settings: Settings, *, config: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The document `relink config show` prints (``config``: the ``--config`` given)."""
    env = os.environ if env is None else env
    return {
        "config_files": _files(config, env),
        "settings": _settings(settings),
        "secrets": _secrets(settings, env),
        "policy": _policy(settings),
    }


def _files(config: str | None, env: Mapping[str, str]) -> list[dict[str, Any]]:
    from engine.trust import Allowances, digest

    files = []
    for path, trusted in find_configs(config, env):
        if trusted:
            files.append({"path": str(path), "trust": "trusted"})
            continue
        _raw, data = load_config(path)
        allowed = Allowances().sha256_of(path) == digest(data)
        files.append({"path": str(path), "trust": "allowed" if allowed else "working-directory"})
    return files


def _settings(settings: Settings) -> list[dict[str, Any]]:
    from engine.db import redact

    shown = []
    for (section, key), (variable, _kind) in KEYS.items():
        source, origin = settings.sources.get((section, key), ("default", ""))
        value = settings.resolved.get((section, key))
        if (section, key) == ("database", "url"):
            value = redact(settings.database_url)  # a password in the URL is never shown
        shown.append({"key": f"{section}.{key}", "env": variable, "value": value,
                      "source": source if value is not None else "unset", "from": origin})
    return shown


def _secrets(settings: Settings, env: Mapping[str, str]) -> list[dict[str, Any]]:
    from engine.credential_files import credentials_path, erp_credentials_path
    from engine.credentials import (
        CLIENT_SECRET_ENV,
        ERP_CLIENT_SECRET_ENV,
        ERP_TOKEN_ENV,
        INTEGRATOR_TOKEN_ENV,
        PROCORE_TOKEN_ENV,
    )

    variables = (
        (PROCORE_TOKEN_ENV, "Procore access token (wins over the stored session)"),
        (CLIENT_SECRET_ENV, "Procore OAuth client secret"),
        (ERP_TOKEN_ENV, "ERP access token (wins over the stored ERP session)"),
        (ERP_CLIENT_SECRET_ENV, "ERP OAuth client secret"),
        (INTEGRATOR_TOKEN_ENV, "the integration's service-account token (integrator mode)"),
    )
    found = [{"name": name, "what": what, "kind": "env", "set": bool(env.get(name))}
             for name, what in variables]
    sessions = [(credentials_path(), "Procore session (`relink login`)")] + [
        (erp_credentials_path(product), f"{product} session (`relink login --erp`)")
        for product in ERP_PRODUCTS if product == settings.erp
        or erp_credentials_path(product).exists()
    ]
    found += [{"name": str(path), "what": what, "kind": "file", "set": _present(path)}
              for path, what in sessions]
    return found


def _present(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _policy(settings: Settings) -> dict[str, Any]:
    from engine.policy import policy_in_force
    from workflows import registry

    policy: dict[str, Any] = {}
    for definition in registry.all_definitions():
        name = definition.name
        in_force = policy_in_force(definition, settings.policy.get(name, {}))
        loosened = settings.policy_loosened.get(name, {})
        policy[name] = {
            "fingerprint": settings.policy_fingerprints.get(name),
            "steps": [
                {"step": step, "requires": requirement.as_dict(definition.checks),
                 "source": settings.policy_sources.get((name, step), "default"),
                 "loosened": loosened.get(step, [])}
                for step, requirement in in_force.items()
            ],
        }
    return policy
