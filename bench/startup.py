"""P1 and P1b: start-up wall time of relink's light and read-only paths, each as a ratio against
its floor measured in the same run: `--version`, `--help` and subcommands' `--help` against
`python -c "import typer"` (P1, <= 1.5x), `show ID`, `list` and `audit log` on SQLite against
`python -c "import sqlmodel"` (P1b, <= 1.3x). Medians of interleaved runs; the last line is one
JSON object.

Every process runs with its bytecode cached (in a scratch PYTHONPYCACHEPREFIX, warmed once), as
an installed relink runs: pip compiles a package when it installs it. An environment with
PYTHONDONTWRITEBYTECODE set (this project's shells have it) would otherwise compile relink's own
modules from source on every run, and time that instead of relink.

    python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "RELINK_DATABASE_URL": f"sqlite:///{scratch}/bench.db",
               "RELINK_CONFIG": "", "PYTHONPYCACHEPREFIX": f"{scratch}/pycache"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        relink = str(BIN / "relink")
        subprocess.run([relink, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        seed_one_correction(env)
        commands = {
            "import_typer": [sys.executable, "-c", "import typer"],
            "import_sqlmodel": [sys.executable, "-c", "import sqlmodel"],
            "version": [relink, "--version"],
            "help": [relink, "--help"],
            "audit_log_help": [relink, "audit", "log", "--help"],
            "advance_help": [relink, "advance", "--help"],
            "show": [relink, "show", "1"],
            "list": [relink, "list"],
            "audit_log": [relink, "audit", "log"],
        }
        for argv in commands.values():  # warm the caches (bytecode, page cache) twice
            wall(argv, env)
            wall(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(wall(argv, env))
    median = {name: statistics.median(values) for name, values in samples.items()}
    light = ("version", "help", "audit_log_help", "advance_help")
    reads = ("show", "list", "audit_log")
    figures = {
        "runs": args.runs,
        "median_s": {k: round(v, 4) for k, v in median.items()},
        **{f"P1_{name}_ratio": round(median[name] / median["import_typer"], 3)
           for name in light},
        **{f"P1b_{name}_ratio": round(median[name] / median["import_sqlmodel"], 3)
           for name in reads},
        "targets": {"P1": 1.5, "P1b": 1.3},
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }
    print(json.dumps(figures))


def seed_one_correction(env: dict[str, str]) -> None:
    """One correction with a short history, written through the sandbox like any other."""
    code = (
        "from sandbox.server import SandboxServer\n"
        "from engine.app import connect_remotes, open_database\n"
        "from commands.demo import sandbox_settings\n"
        "from engine.service import CorrectionService\n"
        "import os\n"
        "with SandboxServer() as s:\n"
        "    env = s.env() | {'RELINK_PROCORE_TOKEN': 'sandbox-ana'}\n"
        "    settings = sandbox_settings(env, os.environ['RELINK_DATABASE_URL'])\n"
        "    service = CorrectionService(open_database(settings),"
        " lambda: connect_remotes(settings, env), workflow='subcontractor-invoice')\n"
        "    wid = service.start('9001', 101, 'bench').id\n"
        "    service.advance(wid, 'delete-in-erp')\n"
        "    service.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


if __name__ == "__main__":
    main()
