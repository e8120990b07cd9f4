"""The README tells the truth: its walkthrough runs, every command it lists exists and has help,
and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import cli
from tests.conftest import Relink, Sandbox

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def walkthrough() -> list[str]:
    block = README.split("<!-- walkthrough")[1].split("<!-- /walkthrough -->")[0]
    body = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """The walkthrough uses the default kind of database."""
    return sqlite_url


def test_walkthrough_runs(
    relink: Relink, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command of the README walkthrough exits as its comment says."""
    monkeypatch.chdir(tmp_path)
    ran = 0
    for line in walkthrough():
        command, _, comment = line.partition("#")
        words = shlex.split(command)
        if words[0] == "export":
            for pair in words[1:]:
                name, value = pair.split("=", 1)
                if not name.endswith("_URL"):
                    assert {**sandbox.env, "RELINK_PROCORE_TOKEN": "sandbox-ana"}[name] == value
            continue
        if words[0] == "echo":
            Path(words[-1]).write_text(words[1])
            continue
        assert words[0] == "relink", line
        outcome = relink(*words[1:])
        expected = 1 if "refused" in comment else 0
        assert outcome.exit_code == expected, (line, outcome)
        ran += 1
    assert ran >= 12


def test_every_command_has_help_and_is_documented() -> None:
    """Each command and sub-command has help text and appears in the README."""
    import typer.main

    group = typer.main.get_command(cli.app)
    seen = 0
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        for sub_name, sub in (subcommands or {name: command}).items():
            full = f"{name} {sub_name}" if subcommands else name
            assert (sub.help or "").strip(), f"relink {full} has no help"
            assert f"relink {full}" in README, f"README does not show relink {full}"
            seen += 1
    assert seen >= 15


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls `make test`, the command the README gives for the test suite."""
    assert re.search(r"^make test\s+# the whole test suite", README, re.M)
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M)
    assert re.search(r"^make demo\s+# relink demo", README, re.M)
