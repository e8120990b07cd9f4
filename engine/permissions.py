"""Who the operator is and what Procore lets them do: read once per service, never from a flag."""

from __future__ import annotations

from typing import Any

from integrations.base import ProcoreAPI
from integrations.models import User
from workflows.definition import Requirement

COMMITMENTS = "commitments"
ERP_INTEGRATIONS = "erp_integrations"


class PermissionReader:
    """Reads identity and permission levels from Procore, each at most once per instance
    (so a batch reads them once, not once per invoice)."""

    def __init__(self, procore: ProcoreAPI) -> None:
        self._procore = procore
        self._actor: User | None = None
        self._project_levels: dict[int, str] = {}
        self._company_level: str | None = None
        self._can_push: bool | None = None

    def actor(self) -> User:
        if self._actor is None:
            self._actor = self._procore.me()
        return self._actor

    def granted(self, requirement: Requirement, project_id: int) -> dict[str, Any]:
        """The levels ``requirement`` is checked against (only those it needs are read)."""
        granted: dict[str, Any] = {}
        if requirement.commitments:
            if project_id not in self._project_levels:
                levels = self._procore.tool_levels(project_id=project_id)
                self._project_levels[project_id] = levels.get(COMMITMENTS, "None")
            granted["commitments"] = self._project_levels[project_id]
        if requirement.erp_integrations:
            if self._company_level is None:
                self._company_level = self._procore.tool_levels().get(ERP_INTEGRATIONS, "None")
            granted["erp_integrations"] = self._company_level
        if requirement.can_push_to_accounting:
            if self._can_push is None:
                self._can_push = self._procore.can_push_to_accounting()
            granted["can_push_to_accounting"] = self._can_push
        return granted

    def everything(self, project_id: int | None) -> dict[str, Any]:
        """All levels relink checks (for ``whoami``)."""
        full = Requirement(frozenset({"Admin"}), frozenset({"Admin"}), True)
        granted = self.granted(
            Requirement(frozenset(), full.erp_integrations, True), project_id or 0
        )
        if project_id is not None:
            granted.update(self.granted(Requirement(full.commitments), project_id))
        return granted
