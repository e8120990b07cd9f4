"""Writing the audit report's HTML: every text escaped, evidence values as nested lists.

:class:`Markup` collects the page's parts. Everything an entry holds is text relink did not
write: :meth:`Markup.t` (text) and :meth:`Markup.a` (attribute values) first make it readable
with the caller's ``visible`` (control and bidirectional characters shown as escapes), then
HTML-escape it, quotes included.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from typing import Any

from audit.timeline import ABSENT, scalar_text

OUTCOME_WORDS = {"in_flight": "in flight"}
MAX_DEPTH = 8  # deeper evidence is shown as its JSON text


class Markup:
    """The parts of a page being written, and how values become markup."""

    def __init__(self, visible: Callable[[str], str]) -> None:
        self.visible = visible
        self.out: list[str] = []

    # escaping ------------------------------------------------------------------------------

    def t(self, value: Any) -> str:
        """Text content: readable (line breaks kept), then escaped."""
        return "\n".join(html.escape(self.visible(part)) for part in str(value).split("\n"))

    def a(self, value: Any) -> str:
        """An attribute value: readable on one line, then escaped (quotes too)."""
        return html.escape(self.visible(str(value)), quote=True)

    def w(self, *parts: str) -> None:
        self.out.extend(parts)

    # values --------------------------------------------------------------------------------

    def value(self, value: Any, depth: int = 0) -> str:
        """A JSON value of evidence: objects as nested lists, scalars as text."""
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            inner = "".join(f"<dt>{self.t(k)}</dt><dd>{self.value(v, depth + 1)}</dd>"
                            for k, v in value.items())
            return f'<dl class="kv">{inner}</dl>'
        if isinstance(value, list) and value and depth < MAX_DEPTH:
            return "<ol>" + "".join(f"<li>{self.value(v, depth + 1)}</li>" for v in value) + (
                "</ol>")
        if isinstance(value, dict | list):
            return f"<code>{self.t(json.dumps(value, ensure_ascii=False))}</code>"
        return self.value_cell(value)

    def value_cell(self, value: Any) -> str:
        if value is None:
            return '<span class="null">null</span>'
        if value is ABSENT:
            return '<span class="null">—</span>'
        return f'<span class="pre">{self.t(scalar_text(value))}</span>'

    def counts(self, outcomes: Mapping[str, int]) -> str:
        order = ("succeeded", "refused", "failed", "in_flight")
        names = [*order, *sorted(k for k in outcomes if k not in order)]
        return self.t(", ".join(f"{outcomes[n]} {OUTCOME_WORDS.get(n, n)}"
                                for n in names if outcomes.get(n)) or "none")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``word`` for one, ``many`` (or ``word`` + s) for any other count."""
    return word if count == 1 else (many or word + "s")
