"""The installed ``relink`` script run in a pseudo-terminal (a real terminal as rich sees it:
a size, colours, local time), and corrections with a real history to show there."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Relink

RELINK = str(Path(sys.executable).with_name("relink"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# a zone far from UTC, with no summer time: local times differ from UTC by 5 h 30 min
ZONE = "Asia/Kolkata"


def in_terminal(args: list[str], env: dict[str, str], *, columns: int = 80,
                timeout: float = 60) -> tuple[int, str]:
    """Run ``relink ARGS`` on a pseudo-terminal ``columns`` wide; its exit code and what it
    wrote (stdout and stderr, as the terminal shows them: ``\\r\\n`` line ends, colours)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    environment.update({"TERM": "xterm-256color", "TZ": ZONE, **env})
    process = subprocess.Popen([RELINK, *args], stdin=secondary, stdout=secondary,
                               stderr=secondary, env=environment, close_fds=True)
    os.close(secondary)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], timeout)
            if not ready:
                break
            try:
                data = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
        code = process.wait(timeout=timeout)
    return code, b"".join(chunks).decode()


def plain(text: str) -> str:
    """Terminal output without colours and with ``\\n`` line ends."""
    return ANSI.sub("", text).replace("\r\n", "\n")


def local(recorded_at: str, *, seconds: bool = True) -> str:
    """A stored UTC time as relink shows it on a terminal in :data:`ZONE`."""
    moment = dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    shown = moment.astimezone(ZoneInfo(ZONE))
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def utc(recorded_at: str, *, seconds: bool = True) -> str:
    moment = dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def script_env(relink: Relink) -> dict[str, str]:
    """The environment the installed script needs to reach ``relink``'s database and sandbox."""
    return {**relink.env, "RELINK_DATABASE_URL": relink.db_url, "RELINK_CONFIG": "",
            "RELINK_PROCORE_TOKEN": "sandbox-ana"}


def corrections(relink: Relink, folder: Path) -> dict[str, Any]:
    """Three corrections with real histories: 9001 re-entered (a refusal on the way), 9002
    cancelled, 9003 just started; their ids, and the new invoice's."""
    _, first = relink.json("start", "9001", "--project", "101", "--reason",
                           "Exported with the wrong invoice number")
    wid = str(first["id"])
    assert relink("advance", wid, "unlink").exit_code == 1  # still in the ERP: refused
    for step in ("delete-in-erp", "unlink", "delete-in-procore"):
        code, doc = relink.json("advance", wid, step, "--reason", f"the {step} step")
        assert code == 0, doc
    data = folder / "corrected.json"
    data.write_text('{"invoice_number": "INV-1001-C"}')
    code, doc = relink.json("advance", wid, "reenter", "--data", str(data), "--yes")
    assert code == 0, doc
    new_invoice = relink.json("show", wid)[1]["new_invoice_id"]
    _, second = relink.json("start", "9002", "--project", "101", "--reason", "duplicate")
    assert relink.json("advance", str(second["id"]), "cancel")[0] == 0
    _, third = relink.json("start", "9003", "--project", "101", "--reason", "wrong amount")
    return {"reentered": first["id"], "cancelled": second["id"], "open": third["id"],
            "new_invoice": new_invoice}
