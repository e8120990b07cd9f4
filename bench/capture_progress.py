"""What `relink batch run` shows on a terminal, captured for the README: a batch of the sandbox's
invoices (integrator mode, latency 50 ms, P4's Procore limit) run by the installed ``relink`` on
a pseudo-terminal; prints the final screen (the progress bar's last frame and the summary
table), colours removed.

    .venv/bin/python bench/capture_progress.py --invoices 200 --columns 120
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/engine.py would shadow relink's `engine`
    sys.path.remove(str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import tempfile
import termios

from bench.backends import temporary_database
from bench.batch import FIRST_INVOICE, PROCORE_LIMIT, UNTIL, create, sandbox
from bench.scenario import RELINK, Target

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def on_terminal(args: list[str], env: dict[str, str], columns: int) -> str:
    """Run ``relink ARGS`` on a pseudo-terminal; everything it wrote."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    process = subprocess.Popen([RELINK, *args], stdin=secondary, stdout=secondary,
                               stderr=secondary, env={**environment, "TERM": "xterm-256color"},
                               close_fds=True)
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([primary], [], [], 600)
        if not ready:
            break
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    process.wait()
    return b"".join(chunks).decode()


def final_screen(raw: str) -> str:
    """The lines as they stand at the end: each redraw of the progress line replaces the last."""
    lines: list[str] = []
    for piece in re.split(r"(\r\n|\n)", raw):
        if piece in ("\r\n", "\n"):
            lines.append("")
            continue
        frame = ANSI.sub("", piece.split("\r")[-1])
        if not lines:
            lines.append(frame)
        elif frame:
            lines[-1] = frame
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--columns", type=int, default=120)
    parser.add_argument("--rows", type=int, default=8, help="table rows to keep")
    args = parser.parse_args()
    with temporary_database("sqlite") as url, \
            sandbox(latency_ms=50, rate_limit=PROCORE_LIMIT) as (base, env), \
            tempfile.TemporaryDirectory() as folder:
        target = Target(url, base, env)
        batch = create(target, Path(folder), [FIRST_INVOICE + n for n in range(args.invoices)])
        screen = final_screen(on_terminal(["batch", "run", str(batch), "--until", UNTIL],
                                          target.env(), args.columns))
    lines = screen.splitlines()
    head = [n for n, line in enumerate(lines) if line.startswith("Batch ")]
    if head and len(lines) > head[0] + args.rows + 6:  # the table's first rows, then its end
        cut = head[0] + 2 + args.rows
        lines = [*lines[:cut], "…", *lines[-3:]]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
