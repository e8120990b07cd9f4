"""``relink config allow`` / ``deny``: trust a ./relink.toml to set what only a trusted config
file may (engine.trust), tied to its content; ``relink config show``: the configuration in force
and where each value came from (engine.configuration)."""

from pathlib import Path
from typing import Annotated, Any

import typer

from commands.app import DEFAULT_WORKFLOW, Root, console, emit_json, group, guard, line, say

config_app = group("The configuration in force (show), and which ./relink.toml to trust"
                   " (allow, deny).")

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


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """The configuration in force: which config files were read, every setting's value and
    where it came from (option, environment, file, default), the secrets as set or unset
    (never their values) and each workflow's permission policy.

    Example: relink config show
    """
    with guard(ctx) as options:
        from engine.configuration import describe

        doc = describe(options.settings, config=options.config)
        if options.json:
            emit_json(doc)
            return
        _show(options, doc)


_TRUST = {
    "trusted": "trusted",
    "allowed": "allowed (`relink config allow`; any edit voids it)",
    "working-directory": "working directory: trusted for [http] only until `relink config"
                         " allow`",
}


def _show(options: Root, doc: dict[str, Any]) -> None:
    from rich.table import Table

    from commands.render import requirement_text
    from engine.terminal import rich_safe

    out = console(options)
    out.print("Config files, lowest precedence first:")
    for file in doc["config_files"]:
        out.print(rich_safe(f"  {file['path']} ({_TRUST[file['trust']]})"))
    if not doc["config_files"]:
        out.print("  none: environment and built-in defaults only")
    settings = Table(title="Settings (option > environment > config file > default)",
                     title_justify="left", box=None, padding=(0, 1))
    settings.add_column("setting", no_wrap=True)
    settings.add_column("value", overflow="fold")
    settings.add_column("from", overflow="fold")
    for item in doc["settings"]:
        value = "—" if item["value"] is None else str(item["value"])
        settings.add_row(rich_safe(item["key"]), rich_safe(value),
                         rich_safe(_origin(item)))
    out.print(settings)
    secrets = Table(title="Secrets (set or unset only)", title_justify="left", box=None,
                    padding=(0, 1))
    secrets.add_column("", no_wrap=True)
    secrets.add_column("secret", overflow="fold")
    secrets.add_column("what", overflow="fold")
    for secret in doc["secrets"]:
        secrets.add_row("set" if secret["set"] else "unset", rich_safe(secret["name"]),
                        rich_safe(secret["what"]))
    out.print(secrets)
    for name, policy in doc["policy"].items():
        state = (f"looser than product.md's, {policy['fingerprint']}" if policy["fingerprint"]
                 else "product.md's or stricter")
        steps = Table(title=f"Policy of {name} ({state})", title_justify="left", box=None,
                      padding=(0, 1))
        steps.add_column("step", no_wrap=True)
        steps.add_column("requires", overflow="fold")
        steps.add_column("from", overflow="fold")
        for step in policy["steps"]:
            source = step["source"] if step["source"] != "default" else "default"
            if step["loosened"]:
                source += f"; loosened: {'; '.join(step['loosened'])}"
            steps.add_row(rich_safe(step["step"]), rich_safe(requirement_text(step["requires"])),
                          rich_safe(source))
        out.print(steps)


def _origin(item: dict[str, Any]) -> str:
    """Where a setting came from: ``--db``, the variable, the file, ``default`` or ``unset``
    (the variable of each: README's table, or ``env`` in --json)."""
    return str(item["from"]) if item["source"] in ("option", "env", "file") else str(
        item["source"])
