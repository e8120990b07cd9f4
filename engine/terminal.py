"""Text that relink did not write, made safe to show on a terminal.

Every string from a user, a file, the database or a remote system (reasons, messages, remote
numbers, vendor names, logins, names, evidence values, refusals, paths, error lines) goes
through one of these before a person sees it:

- :func:`printable` shows control characters (C0, DEL, C1), bidirectional marks and overrides
  (U+061C, U+200E/F, U+202A to E, U+2066 to 9), line and paragraph separators and lone
  surrogates as visible escapes (``\\x1b``, ``\\u202e``): nothing can clear the screen, set
  the window title, plant a hyperlink or reorder what is read. Everything else, backslashes
  included, is kept.
- :func:`rich_safe` is :func:`printable`, then escaped for rich markup (``[/bold]`` shows as
  typed), for every string that rich parses as markup (``console.print(str)``, table cells).
  A :class:`rich.text.Text` is not parsed as markup: give it :func:`printable` text instead.
- :func:`terminal_safe_json` writes the same characters in a JSON document's text as
  ``\\uXXXX`` escapes: the same JSON value, safe on a terminal (``json.dumps`` already escapes
  C0 controls, but with ``ensure_ascii=False`` it leaves DEL, C1 and bidi characters raw).
- :func:`for_terminal` wraps a stream of JSON lines or CSV when, and only when, it is a
  terminal; piped or redirected, the data is written unchanged.
"""

from __future__ import annotations

from typing import IO, Any, cast

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_UNSAFE = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    *_BIDI,
    0x2028,
    0x2029,
    *range(0xD800, 0xE000),  # lone surrogates (undecodable bytes in argv or file names)
)


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_VISIBLE = {code: _visible(code) for code in _UNSAFE}
_VISIBLE_KEEPING_LINES = {code: text for code, text in _VISIBLE.items() if code != 0x0A}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}


def printable(text: object, *, newlines: bool = False) -> str:
    """``text`` (``str()`` of it) with every unsafe character shown as an escape; with
    ``newlines`` a line feed is kept (for messages relink itself splits into lines)."""
    return str(text).translate(_VISIBLE_KEEPING_LINES if newlines else _VISIBLE)


def rich_safe(text: object) -> str:
    """``text`` as rich markup that shows exactly :func:`printable` of it."""
    from rich.markup import escape

    return escape(printable(text))


def terminal_safe_json(document: str) -> str:
    """JSON text with DEL, C1, bidi, separator and surrogate characters as ``\\uXXXX``
    escapes (outside strings JSON text is ASCII, so only string contents change)."""
    return document.translate(_JSON_ESCAPES)


class _Escaping:
    """A text stream that passes everything written through ``escape``."""

    def __init__(self, stream: IO[str], csv: bool) -> None:
        self._stream = stream
        self._csv = csv

    def write(self, text: str) -> int:
        if self._csv:  # line ends kept, every other control character shown
            text = printable(text.replace("\r\n", "\n"), newlines=True)
        else:
            text = terminal_safe_json(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def for_terminal(stream: IO[str], fmt: str) -> IO[str]:
    """``stream`` itself, unless it is a terminal: then ``jsonl``/``ocsf`` lines go through
    :func:`terminal_safe_json` (the same values) and ``csv`` through :func:`printable`."""
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty) or not isatty():
        return stream
    return cast(IO[str], _Escaping(stream, csv=fmt == "csv"))
