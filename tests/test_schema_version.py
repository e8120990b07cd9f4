"""A database whose schema is older or newer than this relink is refused with exit 5 and one
line saying what to do (`relink init`, or upgrade relink), before anything is read or sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.db import MIGRATIONS, SCHEMA_REVISION, Database
from tests.audit_support import Raw
from tests.conftest import Relink, Sandbox, _fresh_postgres

OLDER, NEWER = "0000", f"{int(SCHEMA_REVISION) + 1:04d}"


def stamp(db_url: str, revision: str) -> None:
    """Write another revision into alembic_version, as an older or newer relink would have."""
    db = Database(db_url)
    raw = Raw(db)
    try:
        raw.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    finally:
        raw.close()
        db.dispose()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


COMMANDS = [("list",), ("show", "1"), ("start", "9001", "--project", "101", "--reason", "x"),
            ("advance", "1", "delete-in-erp"), ("resume", "1"), ("audit", "verify")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_older_schema_asks_for_relink_init(
    relink: Relink, sandbox: Sandbox, command: tuple[str, ...]
) -> None:
    """Schema 0000: every command exits 5 with one line telling to run `relink init`; no
    remote call is made."""
    stamp(relink.db_url, OLDER)
    outcome = relink(*command)
    assert outcome.exit_code == 5
    line = one_line(outcome.stderr)
    assert f"at {OLDER}, this relink needs {SCHEMA_REVISION}" in line
    assert "run `relink init`" in line
    assert sandbox.calls() == []


def test_a_newer_schema_asks_to_upgrade_relink(relink: Relink) -> None:
    """A schema newer than this relink: exit 5, one line telling to upgrade relink; `relink
    init` refuses to touch it (exit 5) rather than downgrading."""
    stamp(relink.db_url, NEWER)
    outcome = relink("list")
    assert outcome.exit_code == 5
    line = one_line(outcome.stderr)
    assert f"at {NEWER}, newer than this relink ({SCHEMA_REVISION})" in line
    assert "upgrade relink" in line
    init = relink("init")
    assert init.exit_code == 5
    assert "newer than this relink" in one_line(init.stderr)


def test_init_refuses_a_revision_it_does_not_know(relink: Relink) -> None:
    """`relink init` on a revision none of its migrations knows: exit 5 and one line, not an
    unexpected error."""
    stamp(relink.db_url, OLDER)
    init = relink("init")
    assert init.exit_code == 5
    assert f"at {OLDER}, a revision this relink does not know" in one_line(init.stderr)


def test_the_json_refusal_is_one_document(relink: Relink) -> None:
    """With --json the refusal is also one JSON document on stdout carrying exit code 5."""
    stamp(relink.db_url, OLDER)
    code, doc = relink.json("list")
    assert code == 5
    assert doc["exit_code"] == 5 and "relink init" in doc["error"]


@pytest.fixture(name="empty_postgres")
def fixture_empty_postgres() -> Iterator[str]:
    """A PostgreSQL schema with no relink tables in it."""
    yield from _fresh_postgres()


@pytest.mark.postgres
def test_a_postgres_database_without_schema_asks_for_relink_init(
    empty_postgres: str, sandbox: Sandbox
) -> None:
    """PostgreSQL is never initialised implicitly: exit 5 naming `relink init`; after
    `relink init` the same command works."""
    relink = Relink(empty_postgres, sandbox.env)
    outcome = relink("list")
    assert outcome.exit_code == 5
    assert "has no relink schema: run `relink init`" in one_line(outcome.stderr)
    assert relink("init").exit_code == 0
    assert relink("list").exit_code == 0


def test_the_current_schema_is_accepted(relink: Relink) -> None:
    """At SCHEMA_REVISION, `relink init` says so and commands run."""
    init = relink("init")
    assert (init.exit_code, init.stdout.startswith(f"Schema already at {SCHEMA_REVISION}")) == (
        0, True)
    assert relink("list").exit_code == 0


def test_the_migrations_form_one_line_ending_at_schema_revision() -> None:
    """Alembic sees one head, SCHEMA_REVISION, and revisions numbered in landing order: each
    0000N revises the one before it, so two changes never branch the history."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [SCHEMA_REVISION]
    revisions = sorted(scripts.walk_revisions(), key=lambda script: script.revision)
    assert [script.revision for script in revisions] == [
        f"{n:04d}" for n in range(1, len(revisions) + 1)
    ]
    for before, script in zip([None, *revisions], revisions, strict=False):
        assert script.down_revision == (before.revision if before else None), script.revision
