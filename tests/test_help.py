"""Help as a newcomer reads it (issue 11, item 13): `relink` alone shows the help; no odd
metavars (``{ID}``, ``<int>``); every option and argument described; every command ends with
examples that parse; unknown commands get the closest suggested."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

import cli
from commands.help import example_of
from tests.conftest import Relink
from tests.terminal_support import RELINK

# Typer's type labels (`ID <int>`, `--limit <int range>`), and braces in a usage line (`{ID}`)
LABELS = re.compile(r"<(int|str|float|path|text|file|bool|uuid|datetime)\b|range>")


def commands() -> Iterator[tuple[str, Any]]:
    """Every command and group below the root, by path (``audit log``)."""
    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        for name, sub in getattr(command, "commands", {}).items():
            full = f"{path} {name}".strip()
            yield full, sub
            yield from walk(sub, full)

    yield from walk(typer.main.get_command(cli.app), "")


PATHS = [path for path, _ in commands()]


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> str:
    """Help reads no database."""
    return sqlite_url


def test_relink_alone_shows_the_help() -> None:
    """The installed `relink` with no arguments prints its help and exits 0; a group alone
    (`relink audit`) prints the group's."""
    for args, usage in (([], "Usage: relink [OPTIONS] COMMAND [ARGS]..."),
                        (["audit"], "Usage: relink audit [OPTIONS] COMMAND [ARGS]...")):
        done = subprocess.run([RELINK, *args], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "80"})
        assert (done.returncode, done.stderr) == (0, ""), done
        assert done.stdout.startswith(usage) and "\nCommands:\n" in done.stdout


@pytest.mark.parametrize("path", ["", *PATHS])
def test_help_names_every_value_plainly(relink: Relink, path: str) -> None:
    """`--help` of every command: no Typer type labels or braces, arguments by name."""
    outcome = relink(*path.split(), "--help", COLUMNS="100")
    assert outcome.exit_code == 0, outcome
    assert LABELS.search(outcome.stdout) is None, outcome.stdout
    usage = outcome.stdout.splitlines()[0]
    assert usage.startswith(f"Usage: relink {path}".replace("  ", " ").rstrip())
    assert not set("{}<>") & set(usage), usage
    arguments = outcome.stdout.partition("\nArguments:\n")[2].partition("\n\n")[0]
    assert "[required]" not in arguments  # the usage line says it


@pytest.mark.parametrize("path", PATHS)
def test_every_option_and_argument_is_described(path: str) -> None:
    """Each option and argument a command shows has help text."""
    command = dict(commands())[path]
    bare = [param.name for param in command.params
            if not getattr(param, "hidden", False) and not (getattr(param, "help", "") or "")
            .strip()]
    assert bare == [], f"relink {path}: {bare} have no help"


@pytest.mark.parametrize("path", ["", *PATHS])
def test_every_command_ends_with_examples_that_parse(relink: Relink, path: str) -> None:
    """Each command's help ends with an Examples section; each example names the command and
    parses (its options and arguments exist and take those values)."""
    root = typer.main.get_command(cli.app)
    command = dict(commands()).get(path, root)
    examples = example_of(command, path).splitlines()
    assert examples, f"relink {path} has no example"
    shown = relink(*path.split(), "--help", COLUMNS="100").stdout
    assert "\nExamples:\n" in shown
    for example in examples:
        assert example in shown
        words = shlex.split(example)
        assert words[0] == "relink" and " ".join(words[1:]).startswith(path), example
        target, rest = root, words[1:]
        while rest and rest[0] in getattr(target, "commands", {}):
            target, rest = target.commands[rest[0]], rest[1:]  # type: ignore[attr-defined]
        if getattr(target, "commands", None):
            continue  # a group's example names a command that is checked on its own
        target.make_context(" ".join(words[: len(words) - len(rest)]), rest)


@pytest.mark.parametrize(("args", "typo", "meant"), [
    (["shw", "1"], "shw", "show"), (["audit", "lgo"], "lgo", "log"),
    (["workflow", "list"], "workflow", "workflows")])
def test_an_unknown_command_suggests_the_closest(
    relink: Relink, args: list[str], typo: str, meant: str
) -> None:
    """A mistyped command is exit 2, one line naming the command meant."""
    outcome = relink(*args)
    assert outcome.exit_code == 2 and outcome.stdout == ""
    assert outcome.stderr.splitlines() == [
        f"Error: No such command {typo!r}. Did you mean {meant!r}?"]
