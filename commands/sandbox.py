"""The commands that start the local simulator: ``relink demo`` and ``relink sandbox serve``.

The simulator itself is started by :mod:`commands.demo`, imported only when one of them runs.
"""

from typing import Annotated, Literal

import typer

from commands.app import console, emit_json, group, guard, usage

sandbox_app = group("The local Procore + ERP simulator.")

# the ERP products the sandbox simulates (engine.settings.ERP_PRODUCTS)
Erp = Literal["qbo", "xero", "intacct"]
ErpOption = Annotated[Erp, typer.Option("--erp", help="The ERP to simulate.")]


def demo(
    ctx: typer.Context,
    erp: ErpOption = "qbo",
    db: Annotated[str | None, typer.Option(
        "--db", help="Database URL (default: a temporary SQLite file).")] = None,
) -> None:
    """Run one complete correction and two refusals against the built-in sandbox."""
    with guard(ctx) as options:
        from commands.demo import run_demo

        code = run_demo(erp=erp, db_url=db or options.db, console=console(options),
                        as_json=options.json, emit=emit_json)
        raise typer.Exit(code)


@sandbox_app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8765,
    erp: ErpOption = "qbo",
    latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, max=600_000,
                                            help="Delay of every API call.")] = 0,
    fault_rate: Annotated[float, typer.Option("--fault-rate", min=0.0, max=1.0,
                                              help="Share of API calls that fail.")] = 0.0,
    rate_limit: Annotated[str | None, typer.Option(
        "--rate-limit", help="N/H: N calls per H hours.")] = None,
) -> None:
    """Run the simulator until interrupted."""
    with guard(ctx):
        from commands.demo import serve_sandbox

        serve_sandbox(host=host, port=port, erp=erp, latency_ms=latency_ms,
                      fault_rate=fault_rate, rate_limit=parse_rate_limit(rate_limit), echo=print)


def parse_rate_limit(text: str | None) -> tuple[int, float] | None:
    """``N/H``: N calls per H hours, as (calls, seconds)."""
    if text is None:
        return None
    try:
        count, hours = text.split("/")
        parsed = (int(count), float(hours) * 3600)
    except ValueError:
        raise usage(f"--rate-limit wants N/H, e.g. 3600/1, not {text!r}") from None
    if not (1 <= parsed[0] <= 10**9 and 0 < parsed[1] <= 10**5 * 3600):  # NaN, inf fail too
        raise usage("--rate-limit wants N from 1 to 10^9 and H hours from above 0 to 10^5")
    return parsed
