"""The CLI layer below ``cli.py``, which builds the root app from these modules.

- :mod:`commands.app`: what every command shares: the root options in Typer's context
  (:class:`commands.app.Root`, settings read on first use), the error guard that maps engine
  errors to exit codes, JSON and rich output, the integer parsers.
- The commands, one module per group: :mod:`commands.corrections` (``init``, ``start``,
  ``advance``, ``resume``, ``show``, ``list``), :mod:`commands.session` (``login``, ``whoami``),
  :mod:`commands.audit`, :mod:`commands.workflows`, :mod:`commands.config` and
  :mod:`commands.sandbox` (``demo``, ``sandbox serve``). They import only Typer and
  :mod:`commands.app` at module level, so ``relink --help`` stays fast; the engine when they run.
  They (and ``cli.py``) do without ``from __future__ import annotations``: Typer reads every
  parameter's ``Annotated[...]`` on each start, and as strings it would compile and evaluate
  them all, which doubled the time to build the command tree.
- :mod:`commands.root` (the root group: exit codes, ``--json`` for every error) and
  :mod:`commands.help` (help without type labels, examples, the global flags accepted after the
  command).
- What a command does besides parsing its arguments, when that is no use case of the engine:
  :mod:`commands.datafile` (data files, durations, audit filters), :mod:`commands.filters` (the
  audit filter options), :mod:`commands.render` and :mod:`commands.layout` (rich tables that
  never break ids, states, steps or times; local times), and :mod:`commands.demo`, the one
  production module that starts the local simulator (:mod:`sandbox`). Nothing in
  ``engine/``, ``workflows/``, ``audit/`` or ``integrations/`` imports this package or
  :mod:`sandbox` (``lint-imports``, ``tests/test_layers.py``).
"""
