"""The CLI's fixed choices (Literal types Typer checks) are the engine's own vocabulary."""

from __future__ import annotations

from typing import get_args

import pytest

from commands.audit import ExportFormat, LogFormat, Outcome
from commands.sandbox import Erp
from commands.workflows import DiagramFormat
from engine.reviews import FORMATS, OUTCOMES
from engine.settings import ERP_PRODUCTS
from tests.conftest import Relink


def test_choices_are_the_engines_vocabulary() -> None:
    """--outcome, audit export --format and --erp offer exactly what the engine accepts."""
    assert get_args(Outcome) == OUTCOMES
    assert get_args(ExportFormat) == FORMATS
    assert get_args(Erp) == ERP_PRODUCTS
    assert set(get_args(LogFormat)) == {"table", "json"} | (set(FORMATS) - {"ocsf"})
    assert get_args(DiagramFormat) == ("mermaid", "dot")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["audit", "log", "--format", "xml"], "--format"),
        (["audit", "export", "--format", "ocsf2"], "--format"),
        (["audit", "log", "--outcome", "bogus"], "--outcome"),
        (["workflows", "graph", "subcontractor-invoice", "--format", "png"], "--format"),
        (["demo", "--erp", "sap"], "--erp"),
        (["sandbox", "serve", "--erp", "sap"], "--erp"),
    ],
)
def test_a_value_beyond_the_choices_is_a_usage_error(
    relink: Relink, args: list[str], option: str
) -> None:
    """A value outside an option's choices exits 2 with one line naming the option and them."""
    outcome = relink(*args)
    assert outcome.exit_code == 2
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: Invalid value for '{option}': ")
    assert "is not one of" in lines[0]
    assert outcome.stdout == ""
