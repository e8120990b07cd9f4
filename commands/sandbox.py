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
    unlink: Annotated[Literal["procore", "integrator"], typer.Option(
        "--unlink", help="How the link is cleared: the operator's click in Procore (played by"
        " the sandbox) or External Data Sync with the integration's service account.")
    ] = "procore",
) -> None:
    """Run one complete correction and two refusals against the built-in sandbox."""
    with guard(ctx) as options:
        from commands.demo import run_demo

        code = run_demo(erp=erp, db_url=db or options.db, console=console(options),
                        as_json=options.json, emit=emit_json, unlink_mode=unlink)
        raise typer.Exit(code)


@sandbox_app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by"
                                                    " default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port to listen on (0: any free one).")] = 8765,
    erp: ErpOption = "qbo",
    latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, max=600_000,
                                            help="Delay of every API call.")] = 0,
    fault_rate: Annotated[float, typer.Option("--fault-rate", min=0.0, max=1.0,
                                              help="Share of API calls that fail.")] = 0.0,
    rate_limit: Annotated[str | None, typer.Option(
        "--rate-limit", help="Procore's limit, N/H: N calls per H hours, plus a 10-second spike"
        " window (default: 1000 times Procore's 3600/1).")] = None,
    erp_rate_limit: Annotated[str | None, typer.Option(
        "--erp-rate-limit", metavar="N/PERIOD[,N/PERIOD]",
        help="The ERP's limits in its product's dialect, e.g. Xero 60/min,5000/day, QuickBooks"
        " Online 500/min (and 10 at once); PERIOD s, min, h or day, with a count (20/2s)"
        " (default: 1000 times the documented figures).")] = None,
    token_lifetime: Annotated[int | None, typer.Option(
        "--token-lifetime", min=1, max=86_400, metavar="SECONDS",
        help="Issued Procore and ERP access tokens expire after this long (default: each"
             " product's own lifetime).")] = None,
    auto_unlink: Annotated[bool, typer.Option(
        "--auto-unlink", help="Play the operator's Unlink click in Procore: an invoice whose"
        " bill is gone from the ERP is unlinked when next read.")] = False,
) -> None:
    """Run the simulator until interrupted."""
    with guard(ctx):
        from commands.demo import serve_sandbox

        serve_sandbox(host=host, port=port, erp=erp, latency_ms=latency_ms,
                      fault_rate=fault_rate, rate_limit=parse_rate_limit(rate_limit), echo=print,
                      token_lifetime=token_lifetime, auto_unlink=auto_unlink,
                      erp_rate_limit=erp_rate_limit)


@sandbox_app.command("click-unlink")
def click_unlink(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(metavar="ID", help="The invoice (or commitment) id.",
                                           min=1, max=2**63 - 1)],
    item_type: Annotated[Literal["requisition", "work_order_contract",
                                 "purchase_order_contract"], typer.Option(
        "--type", help="What is unlinked.")] = "requisition",
) -> None:
    """Play an operator's Unlink click in the sandbox's ERP Integrations tool.

    Example: relink sandbox click-unlink 9001
    """
    with guard(ctx) as options:
        from commands.demo import click_in_sandbox

        detail = click_in_sandbox(options.settings.procore_url, item_type, item_id)
        if options.json:
            emit_json(detail)
        elif detail["status"] == "success":
            console(options).print(f"Unlinked {item_type} {item_id} in the sandbox's Procore.")
        else:
            from engine.terminal import rich_safe

            for message in detail["messages"]:
                console(options).print(rich_safe(str(message)), style="red")
        raise typer.Exit(0 if detail["status"] == "success" else 1)


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

