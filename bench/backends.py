"""What the bench scripts share: fresh relink databases on each backend, progress, the last line.

Not a benchmark itself. ``temporary_database`` gives a database built by relink's own migrations
(so every script measures the same schema, indexes and triggers): a WAL SQLite file in a
temporary folder, or a PostgreSQL schema of its own inside ``RELINK_TEST_POSTGRES_URL`` (or
``--postgres URL``), dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

POSTGRES_ENV = "RELINK_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def log(message: str) -> None:
    """Progress, on stderr (stdout ends with the one JSON line)."""
    print(message, file=sys.stderr, flush=True)


def emit(figures: dict[str, Any]) -> None:
    """The script's figures: ONE JSON object, the last line of stdout."""
    print(json.dumps(figures, sort_keys=True), flush=True)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends", default="all",
        help="comma-separated: sqlite, postgresql; 'all' = sqlite, plus postgresql when"
             f" --postgres or ${POSTGRES_ENV} is set",
    )
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_ENV),
                        help=f"PostgreSQL URL to create throw-away schemas in (${POSTGRES_ENV})")


def chosen_backends(args: argparse.Namespace) -> list[str]:
    if args.backends == "all":
        return ["sqlite", "postgresql"] if args.postgres else ["sqlite"]
    chosen = [name.strip() for name in args.backends.split(",") if name.strip()]
    for name in chosen:
        if name not in BACKENDS:
            raise SystemExit(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
    if "postgresql" in chosen and not args.postgres:
        raise SystemExit(f"postgresql needs --postgres URL or ${POSTGRES_ENV}")
    return chosen


def schema_url(base: str, schema: str) -> str:
    """``base`` with its search_path set to ``schema`` (libpq ``options``)."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{schema}"


def libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq URI psycopg accepts."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


@contextlib.contextmanager
def temporary_database(backend: str, postgres: str | None = None) -> Iterator[str]:
    """A fresh, initialised relink database URL on ``backend``; removed afterwards."""
    from engine.db import Database

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="relink-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'relink.db'}"
            _upgrade(Database, url)
            yield url
        return
    if not postgres:
        raise SystemExit(f"postgresql needs --postgres URL or ${POSTGRES_ENV}")
    import psycopg

    schema = f"relink_bench_{secrets.token_hex(5)}"
    with psycopg.connect(libpq(postgres), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        url = schema_url(libpq(postgres), schema)
        _upgrade(Database, url)
        yield url
    finally:
        with psycopg.connect(libpq(postgres), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _upgrade(database: Any, url: str) -> None:
    db = database(url)
    try:
        db.upgrade()
    finally:
        db.dispose()


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
