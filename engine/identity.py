"""`whoami`: the Procore user behind the token and the permissions relink will check."""

from __future__ import annotations

from typing import Any

from engine.errors import CredentialsRejected, Refused, Unavailable
from engine.permissions import PermissionReader
from engine.remotes import Remotes
from engine.settings import Settings
from integrations.errors import (
    RemoteError,
    RemoteRefused,
    RemoteRejectedCredentials,
    RemoteUnavailable,
)


def whoami(remotes: Remotes, settings: Settings, project_id: int | None = None) -> dict[str, Any]:
    """Identity and permission levels (company-wide, and per project when given)."""
    reader = PermissionReader(remotes.procore)
    try:
        actor = reader.actor()
        granted = reader.everything(project_id)
    except RemoteRejectedCredentials as exc:
        raise CredentialsRejected(f"Procore rejected the credentials ({exc.message})") from exc
    except RemoteUnavailable as exc:
        raise Unavailable(exc.message) from exc
    except (RemoteRefused, RemoteError) as exc:
        raise Refused(f"Procore refused: {exc.message}") from exc
    finally:
        remotes.close()
    return {
        "id": actor.id,
        "login": actor.login,
        "name": actor.name,
        "company_id": settings.company_id,
        "erp": settings.erp,
        "permissions": granted,
    }

