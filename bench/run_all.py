"""Run every benchmark at full size and collect the last JSON line of each into
bench/out/latest.json (the figures bench/README.md reports).

    .venv/bin/python bench/run_all.py            # everything (about half an hour on 2 cores)
    .venv/bin/python bench/run_all.py startup engine   # just these

PostgreSQL runs are included when RELINK_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["startup", "engine", "audit_scale", "races", "crashes", "faults", "batch"]


def main() -> None:
    chosen = sys.argv[1:] or SCRIPTS
    results: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    for name in chosen:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"skip {name}: no {script.name}", file=sys.stderr)
            continue
        print(f"running {script.name} ...", file=sys.stderr)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        try:
            results[name] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            results[name] = {"error": f"exit {done.returncode}", "stderr": done.stderr[-2000:]}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
