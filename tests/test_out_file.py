"""`--out` replaces only regular files, atomically; `-` is standard output (issue 8, defect 6).

Everything happens inside tmp_path: a FIFO, a directory and symbolic links stand in for devices.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import audit.export
import cli
from audit.checkpoint import generate_keypair
from engine.errors import IntegrityError, UsageError
from engine.outfile import check_target, out_path, write_atomically
from tests.audit_support import build_log, opened
from tests.conftest import Outcome

ENTRIES = 5


@pytest.fixture(name="db_url")
def fixture_db_url(sqlite_url: str) -> Iterator[str]:
    """A SQLite log of one correction (5 entries); where --out writes does not depend on it."""
    with opened(sqlite_url) as db:
        build_log(db, corrections=1)
    yield sqlite_url


@pytest.fixture(name="run")
def fixture_run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`relink --db URL ...` in-process, in tmp_path."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Outcome:
        result = CliRunner().invoke(cli.app, ["--db", db_url, *args],
                                    env={"RELINK_CONFIG": "", "NO_COLOR": "1"})
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_folder(path: Path) -> Path:
    path.mkdir()
    (path / "kept.txt").write_text("kept\n")
    return path


def link_to(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def make_link(path: Path) -> Path:
        target = make(path.with_name(path.name + ".target"))
        path.symlink_to(target)
        return path

    return make_link


def make_file(path: Path) -> Path:
    path.write_text("someone's file\n")
    return path


def make_dangling_link(path: Path) -> Path:
    path.symlink_to(path.with_name("nowhere"))
    return path


TARGETS: dict[str, Callable[[Path], Path]] = {
    "fifo": make_fifo,
    "directory": make_folder,
    "link-to-fifo": link_to(make_fifo),
    "link-to-directory": link_to(make_folder),
    "link-to-file": link_to(make_file),
    "dangling-link": make_dangling_link,
}


def snapshot(folder: Path) -> dict[str, tuple[int, str | None]]:
    """Every name under ``folder`` with its file type and, for links, its target."""
    return {
        str(path.relative_to(folder)): (stat.S_IFMT(os.lstat(path).st_mode),
                                        os.readlink(path) if path.is_symlink() else None)
        for path in sorted(folder.rglob("*"))
    }


def log_length(run: Callable[..., Outcome]) -> int:
    return int(json.loads(run("--json", "audit", "verify").stdout)["entries"])


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("command", ["export", "checkpoint"])
def test_out_refuses_what_is_not_a_regular_file(
    run: Callable[..., Outcome], tmp_path: Path, kind: str, command: str
) -> None:
    """A FIFO, a directory or a symbolic link as --out: exit 2, one line, nothing written."""
    area = tmp_path / "area"
    area.mkdir()
    key, _ = generate_keypair(tmp_path / "signing.key")
    target = TARGETS[kind](area / "target")
    before = snapshot(area)
    args = (["audit", "export", "--format", "jsonl"] if command == "export"
            else ["audit", "checkpoint", "--key", str(key)])
    outcome = run(*args, "--out", str(target))
    assert outcome.exit_code == 2, outcome
    assert outcome.stderr.startswith(f"Error: refusing to write {target}: it is "), outcome
    assert len(outcome.stderr.splitlines()) == 1 and outcome.stdout == ""
    assert snapshot(area) == before
    assert log_length(run) == ENTRIES  # no checkpoint entry either


def test_keygen_refuses_existing_targets_and_standard_output(
    run: Callable[..., Outcome], tmp_path: Path
) -> None:
    """keygen never overwrites: a FIFO or directory is refused, and so is `-` (two files)."""
    fifo, folder = make_fifo(tmp_path / "fifo"), make_folder(tmp_path / "folder")
    before = snapshot(tmp_path)
    for out in (str(fifo), str(folder), "-"):
        outcome = run("audit", "keygen", "--out", out)
        assert outcome.exit_code == 2 and len(outcome.stderr.splitlines()) == 1, outcome
    assert snapshot(tmp_path) == before


def test_dash_is_standard_output(run: Callable[..., Outcome], tmp_path: Path) -> None:
    """--out - streams the export and prints the checkpoint on stdout; no file named '-'."""
    exported = run("audit", "export", "--format", "jsonl", "--out", "-")
    assert exported.exit_code == 0, exported
    assert [json.loads(line)["seq"] for line in exported.stdout.splitlines()] == [1, 2, 3, 4, 5]
    key, _ = generate_keypair(tmp_path / "signing.key")
    signed = run("audit", "checkpoint", "--key", str(key), "--out", "-")
    assert signed.exit_code == 0, signed
    assert json.loads(signed.stdout)["seq"] == ENTRIES + 1
    assert not (tmp_path / "-").exists()


def test_out_replaces_a_regular_file(run: Callable[..., Outcome], tmp_path: Path) -> None:
    """An existing regular file is replaced whole, mode 0600, with no temporary file left."""
    out = make_file(tmp_path / "audit.jsonl")
    outcome = run("audit", "export", "--format", "jsonl", "--out", str(out))
    assert outcome.exit_code == 0, outcome
    assert len(out.read_text().splitlines()) == ENTRIES
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_out_refuses_the_database_it_reads(
    run: Callable[..., Outcome], db_url: str, tmp_path: Path
) -> None:
    """--out naming the SQLite database (or its journal) is refused; the log still verifies."""
    database = Path(db_url.removeprefix("sqlite:///"))
    for out in (database, tmp_path / ".." / tmp_path.name / database.name,
                database.with_name(database.name + "-wal")):
        outcome = run("audit", "export", "--format", "csv", "--out", str(out))
        assert outcome.exit_code == 2 and "the database being read" in outcome.stderr, outcome
    assert log_length(run) == ENTRIES


@pytest.mark.parametrize(
    "failure", [OSError(28, "No space left on device"), IntegrityError("evidence is corrupt")]
)
def test_a_failed_export_leaves_no_partial_file(
    run: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    """An export failing half-way exits with its code and leaves no file and no temporary."""
    folder = tmp_path / "exports"
    folder.mkdir()

    real = audit.export.export_part

    def half_then_fail(stored: Any, fmt: str, **options: Any) -> Any:
        yield next(iter(real(stored, fmt, **options)))  # part of the file is written...
        raise failure  # ...then the disk fills up, or an entry turns out corrupt

    monkeypatch.setattr(audit.export, "export_part", half_then_fail)
    outcome = run("audit", "export", "--format", "jsonl", "--out", str(folder / "a.jsonl"))
    assert outcome.exit_code == (2 if isinstance(failure, OSError) else 5), outcome
    assert list(folder.iterdir()) == []


def test_write_atomically_checks_the_target_again_before_renaming(tmp_path: Path) -> None:
    """A target that becomes a FIFO while the file is written is refused and kept."""
    out = tmp_path / "out.txt"

    def write_then_swap(stream: Any) -> None:
        stream.write("data\n")
        make_fifo(out)

    with pytest.raises(UsageError, match="a FIFO"):
        write_atomically(out, write_then_swap)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_out_path_and_check_target() -> None:
    """`-` and no option are stdout; a missing folder is refused by name."""
    assert out_path(None) is None and out_path("-") is None and out_path(Path("-")) is None
    assert out_path("a.csv") == Path("a.csv")
    with pytest.raises(UsageError, match="does not exist"):
        check_target(Path("/nonexistent-relink-folder/a.csv"))


def test_a_long_write_is_synced_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a file is written, what is written so far goes to the disk every few tenths of a
    second (the closing fsync then waits for the last stretch only); the file is whole."""
    import threading
    import time

    import engine.outfile

    synced: list[int] = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(engine.outfile, "SYNC_EVERY", 0.02)
    monkeypatch.setattr(os, "fdatasync", counted)
    chunk = "x" * 4095 + "\n"

    def write(stream: Any) -> None:
        for _ in range(20):
            stream.write(chunk * 16)
            stream.flush()
            time.sleep(0.01)

    out = tmp_path / "big.txt"
    write_atomically(out, write)
    assert out.read_text() == chunk * 16 * 20
    assert len(synced) >= 3 and synced == sorted(synced) and 0 < synced[0] < out.stat().st_size
    assert not any(thread.name == "relink-sync" for thread in threading.enumerate())
