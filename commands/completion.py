"""Shell completion of relink's arguments (bash, zsh, fish: ``relink --install-completion``):
correction ids, newest first, and the steps a correction may take next.

Each callback reads the database named by ``--db`` (or the settings), read-only and quickly
(engine.completion); anything amiss (no database, a broken config file) completes nothing and is
never an error: a Tab press must not print one.
"""

import typer

from commands.app import DEFAULT_WORKFLOW


def correction_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The ids of the newest corrections starting with what is typed, each with its state."""
    url = _database_url(ctx)
    if url is None:
        return []
    from engine.completion import correction_ids as stored

    return [(wid, about) for wid, about in stored(url) if wid.startswith(incomplete)]


def next_steps(ctx: typer.Context, incomplete: str) -> list[str]:
    """The steps the correction named before (``relink advance ID <Tab>``) may take next."""
    workflow_id = ctx.params.get("workflow_id")
    url = _database_url(ctx)
    if not isinstance(workflow_id, int) or url is None:
        return []
    from engine.completion import next_steps as allowed

    return [step for step in allowed(url, workflow_id) if step.startswith(incomplete.lower())]


def _database_url(ctx: typer.Context) -> str | None:
    """The database of the command line being completed (``--db``, ``--config``, environment,
    config file, default), or None when the settings cannot be read."""
    root = ctx.find_root().params
    try:
        from engine.settings import load_settings

        settings = load_settings(db=root.get("db"), config=root.get("config"),
                                 default_workflow=DEFAULT_WORKFLOW)
    except Exception:  # a Tab press never prints an error
        return None
    return settings.database_url
