"""Parameter conversion that does not import pydantic when nothing needs it (targets P1, P1b).

Typer converts each parameter's value through a pydantic ``TypeAdapter``, built the first time
the parameter is processed, default values included. Importing pydantic and building adapters
costs a tenth of a second: ``relink audit log --help`` paid it for the root's ``--db`` and
``--config`` on its way to the help, and ``relink show 1`` for values it passes on unchanged.

:func:`lighten` gives every parameter a converter that settles the plain cases itself, the way
Typer's adapter would: text as text, a value through the parameter's own ``parser``, a default
that is already one of its choices or within its range. Anything else (a number typed on the
command line, a path, a value out of range) goes to Typer's own converter, built then, so its
checks and its messages stay Typer's. Only Typer's lazily built converter is replaced; a Typer
without one is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from typer import _click

_UNSETTLED = object()
_DIGITS = re.compile(r"-?[0-9]{1,18}")

try:  # Typer >= 0.26: conversion through RuntimeParam objects
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
except ImportError:  # pragma: no cover - an older Typer converts without pydantic
    RuntimeParam = None  # type: ignore[assignment,misc]


def lighten(command: _click.Command, words: Collection[str] | None = None) -> None:
    """Give every parameter of ``command`` and of the commands below it the light converter
    (only below those named in ``words``, the command line, when given)."""
    if RuntimeParam is None:  # pragma: no cover
        return
    # the --help option is made on first use: make it now (relink keeps click's "--help")
    helper = command.get_help_option(_click.Context(command))
    for param in [*command.params, *([helper] if helper is not None else [])]:
        descriptor = getattr(param, "type_descriptor", None)
        if isinstance(descriptor, TypeDescriptor) and getattr(param, "_runtime_param", 0) is None:
            settle = _settler(descriptor)
            if settle is not None:
                param._runtime_param = _Light(  # type: ignore[attr-defined]
                    parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                    descriptor=descriptor, settle=settle)
    for name, child in getattr(command, "commands", {}).items():
        if words is None or name in words:
            lighten(child, words)


def _settler(descriptor: Any) -> Callable[[Any], Any] | None:
    """How the plain values of this parameter are settled (returning ``_UNSETTLED`` for the
    others), or None when every value is Typer's to convert."""
    info, kind = descriptor.parameter_info, descriptor.annotation
    if descriptor.is_list or descriptor.is_tuple or descriptor.is_file:
        return None
    parser = info.parser
    if parser is not None:

        def parsed(value: Any) -> Any:
            try:
                return parser(value)
            except ValueError:  # Typer's converter words it
                return _UNSETTLED

        return parsed
    if kind is bool:
        return lambda value: value if isinstance(value, bool) else _UNSETTLED
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        return lambda value: value if value in choices and isinstance(value, str) else _UNSETTLED
    if kind is str and not descriptor.is_choice and not descriptor.is_path:
        return lambda value: value if isinstance(value, str) else _UNSETTLED
    if kind in (int, float) and not info.clamp:
        low, high = info.min, info.max

        def number(value: Any) -> Any:
            if kind is int and isinstance(value, str) and _DIGITS.fullmatch(value):
                value = int(value)  # as Typer reads "50"; anything less plain is Typer's
            plain = isinstance(value, kind) and not isinstance(value, bool)
            inside = plain and (low is None or value >= low) and (high is None or value <= high)
            return value if inside else _UNSETTLED

        return number
    return None


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _Light(RuntimeParam):
        """Settles plain values itself; hands the rest to Typer's converter."""

        descriptor: Any = None
        settle: Callable[[Any], Any] = field(default=lambda value: _UNSETTLED)

        def _coerce_value(self, value: Any, param: Any, ctx: _click.Context) -> Any:
            settled = self.settle(value)
            if settled is not _UNSETTLED:
                return settled
            typer_own = build_runtime_param(self.descriptor)
            param._runtime_param = typer_own  # from now on, Typer's alone
            return typer_own._coerce_value(value, param=param, ctx=ctx)
