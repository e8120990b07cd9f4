"""`relink logout`: forget the stored Procore session (``--erp``: the configured ERP's).

The credentials file goes (under its lock, so a refresh under way in another relink process
finishes first); the tokens it held stay valid at Procore or the ERP until they expire, so a
leaked one is revoked there (Procore: the app's page in the App Management tool; the ERP: its
connected-apps page). A token in the environment is not relink's to forget: the answer says
when one is still set, as it goes on being used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from engine.credential_files import PROCORE, CredentialStore
from engine.credentials import ERP_TOKEN_ENV, PROCORE_TOKEN_ENV
from engine.errors import UsageError
from engine.settings import ERP_PRODUCTS, Settings


def logout(
    settings: Settings, *, erp: bool = False, env: Mapping[str, str] | None = None,
    store: CredentialStore | None = None,
) -> dict[str, Any]:
    """Remove the stored session; says what was removed and which token variable, if any, is
    still set (and so still used)."""
    env = os.environ if env is None else env
    if erp:
        if settings.erp is None:
            raise UsageError("which ERP? set RELINK_ERP (" + ", ".join(ERP_PRODUCTS) + ") to"
                             " name the session `relink logout --erp` removes")
        system, variable = settings.erp, ERP_TOKEN_ENV
    else:
        system, variable = PROCORE, PROCORE_TOKEN_ENV
    store = store or CredentialStore(system=system)
    removed = store.remove()
    return {"system": system, "credentials_file": str(store.path), "removed": removed,
            "token_variable": variable, "token_variable_set": bool(env.get(variable))}
