"""The PostgreSQL "separate owner" set-up scripts (``audit/sql/*.sql``), rendered for a driver.

The scripts are written for psql (``-v owner=... -v app=... -v schema=...``); :func:`render`
substitutes those variables as quoted identifiers and drops psql's meta-commands, giving plain
statements any driver can run.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL = Path(__file__).parent / "sql"
ROLES = SQL / "postgres_roles.sql"  # as a superuser, before `relink init`
GRANTS = SQL / "postgres_grants.sql"  # as the schema owner, after `relink init`
_VARIABLE = re.compile(r':"(\w+)"')


def quote(identifier: str) -> str:
    """``identifier`` as a PostgreSQL quoted identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def render(script: Path, **names: str) -> list[str]:
    """The statements of ``script`` with ``:"name"`` replaced by ``names[name]``, quoted."""

    def substitute(match: re.Match[str]) -> str:
        if match[1] not in names:
            raise KeyError(f"{script.name} needs -v {match[1]}=...")
        return quote(names[match[1]])

    lines = [
        line for line in script.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith(("--", "\\"))
    ]
    text = _VARIABLE.sub(substitute, "\n".join(lines))
    return [statement.strip() for statement in text.split(";") if statement.strip()]
