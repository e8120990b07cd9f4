"""`relink --version` and `--help` stay light: no SQLModel, httpx or transitions import."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlmodel", "sqlalchemy", "httpx", "transitions", "rich")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["audit", "--help"]])
def test_light_paths_import_nothing_heavy(args: list[str]) -> None:
    """The version and help paths import none of the heavy layers."""
    code = (
        f"import sys; sys.argv = ['relink', *{args!r}]\n"
        "import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_version_prints_name_and_version() -> None:
    """relink --version prints `relink <version>`."""
    from importlib.metadata import version

    result = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout == f"relink {version('relink')}\n"
