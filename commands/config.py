"""``relink config allow`` / ``deny``: trust a ./relink.toml to set what only a trusted config
file may (engine.trust), tied to its content."""

from pathlib import Path
from typing import Annotated

import typer

from commands.app import DEFAULT_WORKFLOW, emit_json, group, guard, line, say

config_app = group("Allow a ./relink.toml to set what only a trusted config file may.")

ConfigPath = Annotated[Path, typer.Argument(
    help="The relink.toml (default: the one in the working directory).")]


@config_app.command("allow")
def allow(ctx: typer.Context, path: ConfigPath = Path("relink.toml")) -> None:
    """Trust this relink.toml as it is now (any edit voids it); review it first."""
    with guard(ctx) as options:
        from engine.trust import allow as allow_file

        doc = allow_file(path, default_workflow=DEFAULT_WORKFLOW)
        if options.json:
            emit_json(doc)
            return
        sets = ", ".join(doc["sets"]) or "nothing that needs it"
        say(line(f"Allowed {doc['file']} (sha256 {doc['sha256'][:16]}); it may now set {sets}."
                 " Any edit voids this: run `relink config allow` again after reviewing it."))


@config_app.command("deny")
def deny(ctx: typer.Context, path: ConfigPath = Path("relink.toml")) -> None:
    """Withdraw the allowance of this relink.toml."""
    with guard(ctx) as options:
        from engine.trust import deny as deny_file

        doc = deny_file(path)
        if options.json:
            emit_json(doc)
            return
        done = "is no longer allowed" if doc["removed"] else "was not allowed"
        say(line(f"{doc['file']} {done}."))
