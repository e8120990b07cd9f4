"""Who the operator is and what Procore lets them do: read once per service, never from a flag."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from integrations.base import ProcoreAPI
from integrations.models import User
from workflows.definition import COMPANY, PRIVILEGES, TOOLS, Requirement


class PermissionReader:
    """Reads identity, tool levels and privileges from Procore, each at most once per instance
    (so a batch reads them once, not once per subject). ``max_age`` (seconds, None: never) makes
    what was read expire, to be read again (a batch running for long); the threads of a batch
    share one reader, so reads are serialised (each is made once, not once per thread)."""

    def __init__(
        self, procore: ProcoreAPI, *, max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._procore = procore
        self.max_age = max_age
        self._clock = clock
        self._read_at = clock()
        self._lock = threading.RLock()
        self._actor: User | None = None
        self._project_levels: dict[int, dict[str, str]] = {}
        self._company_levels: dict[str, str] | None = None
        self._privileges: dict[str, bool] = {}
        # privilege name -> how Procore tells it (spec/remote-apis.md)
        self._readers: dict[str, Callable[[], bool]] = {
            "can_push_to_accounting": procore.can_push_to_accounting,
        }

    def actor(self) -> User:
        with self._lock:
            self._expire()
            if self._actor is None:
                self._actor = self._procore.me()
            return self._actor

    def _expire(self) -> None:
        """Forget what was read once it is older than ``max_age``."""
        if self.max_age is not None and self._clock() - self._read_at >= self.max_age:
            self._actor, self._company_levels = None, None
            self._project_levels, self._privileges = {}, {}
            self._read_at = self._clock()

    def granted(self, requirement: Requirement, project_id: int) -> dict[str, Any]:
        """The levels and privileges ``requirement`` is checked against (only those it needs
        are read)."""
        return self._read(requirement.checks, project_id)

    def everything(self, checks: Iterable[str], project_id: int | None) -> dict[str, Any]:
        """Every level and privilege of ``checks`` (for ``whoami``): project tools only when a
        project is given."""
        wanted = [
            name for name in checks
            if project_id is not None or name in PRIVILEGES or TOOLS[name][0] == COMPANY
        ]
        return self._read(wanted, project_id or 0)

    def _read(self, names: Iterable[str], project_id: int) -> dict[str, Any]:
        with self._lock:
            self._expire()
            return self._read_now(names, project_id)

    def _read_now(self, names: Iterable[str], project_id: int) -> dict[str, Any]:
        granted: dict[str, Any] = {}
        for name in names:
            if name in PRIVILEGES:
                if name not in self._privileges:
                    self._privileges[name] = self._readers[name]()
                granted[name] = self._privileges[name]
            elif TOOLS[name][0] == COMPANY:
                if self._company_levels is None:
                    self._company_levels = self._procore.tool_levels()
                granted[name] = self._company_levels.get(name, "None")
            else:
                if project_id not in self._project_levels:
                    self._project_levels[project_id] = self._procore.tool_levels(
                        project_id=project_id
                    )
                granted[name] = self._project_levels[project_id].get(name, "None")
        return granted
