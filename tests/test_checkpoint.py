"""Signed checkpoints: keys, signatures, verification against the log, and the CLI's exit codes."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cli
from audit.checkpoint import (
    generate_keypair,
    read_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from audit.errors import CheckpointError, CheckpointUnreadable
from audit.log import Filters
from engine.db import Database
from engine.errors import IntegrityError, UsageError
from engine.reviews import AuditService
from tests.audit_support import Raw, append, build_log, correction, opened

HASH = "ab" * 32


@pytest.fixture(name="db")
def fixture_db(db_url: str) -> Iterator[Database]:
    with opened(db_url) as db:
        build_log(db, corrections=2)  # 10 entries
        yield db


@pytest.fixture(name="keys")
def fixture_keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "signing.key")


@pytest.fixture(name="other_keys")
def fixture_other_keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "other.key")


def signed(private: Path, **overrides: Any) -> dict[str, Any]:
    fields = {"log_id": "f" * 32, "seq": 42, "hash": HASH, "signed_at": "2026-11-27T18:04:05Z"}
    return sign_checkpoint(private, **(fields | overrides))


# keys and signatures -------------------------------------------------------------------------


def test_keygen_writes_a_private_pem_0600_and_a_public_pem(keys: tuple[Path, Path]) -> None:
    """keygen writes an unencrypted PKCS#8 private key (mode 0600) and KEYFILE.pub."""
    private, public = keys
    assert public.name == "signing.key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite(keys: tuple[Path, Path], tmp_path: Path) -> None:
    """keygen never overwrites a private key or a lone public key."""
    private, _ = keys
    before = private.read_bytes()
    with pytest.raises(CheckpointUnreadable, match="already exists"):
        generate_keypair(private)
    assert private.read_bytes() == before
    (tmp_path / "lone.key.pub").write_text("mine")
    with pytest.raises(CheckpointUnreadable, match="already exists"):
        generate_keypair(tmp_path / "lone.key")
    assert not (tmp_path / "lone.key").exists()


def test_a_checkpoint_verifies_with_its_own_key(keys: tuple[Path, Path]) -> None:
    """A checkpoint carries the signed fields, its raw public key and signature in base64."""
    private, public = keys
    checkpoint = signed(private)
    assert set(checkpoint) == {"log_id", "seq", "hash", "signed_at", "public_key", "signature"}
    verify_checkpoint(checkpoint, public)


def test_a_checkpoint_fails_with_another_key(
    keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    """Verifying with another public key fails, naming both keys."""
    checkpoint = signed(keys[0])
    with pytest.raises(CheckpointError, match="signed with another key"):
        verify_checkpoint(checkpoint, other_keys[1])


@pytest.mark.parametrize("field, value", [("seq", 43), ("hash", "cd" * 32),
                                          ("log_id", "e" * 32), ("signed_at", "2030-01-01")])
def test_an_altered_checkpoint_fails(keys: tuple[Path, Path], field: str, value: Any) -> None:
    """Changing any signed field breaks the signature."""
    checkpoint = signed(keys[0]) | {field: value}
    with pytest.raises(CheckpointError, match="bad checkpoint signature"):
        verify_checkpoint(checkpoint, keys[1])


@pytest.mark.parametrize("text, reason", [
    ("not json", "not a JSON checkpoint"),
    ("[1, 2]", "must be a JSON object"),
    ('{"seq": 1}', "lacks log_id"),
    ('{"seq": ' + "[" * 30_000 + "]" * 30_000 + "}", "not a JSON checkpoint"),
    ('{"seq": 5, "seq": 7}', 'holds the key "seq" twice'),
])
def test_a_malformed_checkpoint_file_is_unreadable(tmp_path: Path, text: str, reason: str) -> None:
    """A checkpoint file that is not a checkpoint is an input problem, not a failed check."""
    path = tmp_path / "cp.json"
    path.write_text(text)
    with pytest.raises(CheckpointUnreadable, match=reason):
        read_checkpoint(path)


def test_a_private_key_is_not_a_public_key(keys: tuple[Path, Path]) -> None:
    """Giving the private key where the public key belongs is an unreadable-input error."""
    with pytest.raises(CheckpointUnreadable, match="not a PEM public key"):
        verify_checkpoint(signed(keys[0]), keys[0])


# against the log -----------------------------------------------------------------------------


def test_checkpoint_appends_a_log_level_entry_and_signs_it(
    db: Database, keys: tuple[Path, Path]
) -> None:
    """checkpoint first appends a `checkpoint` entry (workflow_id null), then signs that head."""
    service = AuditService(db)
    checkpoint = service.checkpoint(keys[0])
    last = next(iter(service.entries(Filters(), newest_first=True, limit=1)))
    assert (last["seq"], last["hash"], last["action"]) == (11, checkpoint["hash"], "checkpoint")
    assert last["workflow_id"] is None and last["outcome"] == "succeeded"
    assert checkpoint["seq"] == 11 and checkpoint["signed_at"] == last["recorded_at"]
    result = service.verify(checkpoint=write(checkpoint, keys[0].parent), public_key=keys[1])
    assert result["checkpoint"]["seq"] == 11
    assert result["head_seq"] == 11


def test_verify_fails_with_another_key(
    db: Database, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    """A checkpoint checked against another public key fails with exit 5."""
    path = write(AuditService(db).checkpoint(keys[0]), keys[0].parent)
    with pytest.raises(IntegrityError, match="another key"):
        AuditService(db).verify(checkpoint=path, public_key=other_keys[1])


def test_verify_fails_against_another_log(
    db: Database, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """A checkpoint of one log cannot be replayed against another log (its log_id)."""
    path = write(AuditService(db).checkpoint(keys[0]), tmp_path)
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    other.upgrade()
    build_log(other, corrections=3)
    with pytest.raises(IntegrityError, match=r"is of log \w+, not of this log"):
        AuditService(other).verify(checkpoint=path, public_key=keys[1])
    other.dispose()


def test_verify_fails_when_the_tail_is_cut_below_the_checkpoint(
    db: Database, keys: tuple[Path, Path]
) -> None:
    """Entries deleted down below the checkpoint's seq (head moved too) fail at the first gone."""
    path = write(AuditService(db).checkpoint(keys[0]), keys[0].parent)  # seq 11
    append(db, correction(3, 9003, 101))
    raw = Raw(db)
    raw.drop_triggers()
    raw.execute("DELETE FROM audit_entry WHERE seq > 8")
    last = raw.execute("SELECT hash FROM audit_entry WHERE seq = 8")[0][0]
    raw.execute("UPDATE audit_head SET seq = 8, hash = ? WHERE id = 1", (last,))
    raw.close()
    with pytest.raises(IntegrityError, match="failed at seq 9: the log ends at seq 8"):
        AuditService(db).verify(checkpoint=path, public_key=keys[1])


def test_checkpoint_with_an_unreadable_key_writes_nothing(db: Database, tmp_path: Path) -> None:
    """A missing or foreign key file is a usage error, and no entry is appended."""
    (tmp_path / "junk.key").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    for key in (tmp_path / "missing.key", tmp_path / "junk.key"):
        with pytest.raises(UsageError):
            AuditService(db).checkpoint(key)
    assert AuditService(db).verify()["head_seq"] == 10


# the CLI -------------------------------------------------------------------------------------


def test_cli_keygen_checkpoint_verify(db_url: str, tmp_path: Path) -> None:
    """`relink audit keygen/checkpoint/verify` exit 0 on a sound log, 5 on a failed check and
    2 on unreadable input."""
    with opened(db_url) as db:
        build_log(db, corrections=1)
    key, other, cp = tmp_path / "k", tmp_path / "o", tmp_path / "cp.json"

    def relink(*args: str) -> Any:
        return CliRunner().invoke(cli.app, ["--db", db_url, "audit", *args],
                                  env={"RELINK_CONFIG": ""})

    assert relink("keygen", "--out", str(key)).exit_code == 0
    assert relink("keygen", "--out", str(other)).exit_code == 0
    again = relink("keygen", "--out", str(key))
    assert again.exit_code == 2 and "already exists" in again.stderr
    made = relink("checkpoint", "--key", str(key), "--out", str(cp))
    assert made.exit_code == 0, made.output
    assert json.loads(cp.read_text())["seq"] == 6
    ok = relink("verify", "--checkpoint", str(cp), "--public-key", f"{key}.pub")
    assert ok.exit_code == 0 and "checkpoint at seq 6 verified" in ok.stdout
    wrong = relink("verify", "--checkpoint", str(cp), "--public-key", f"{other}.pub")
    assert wrong.exit_code == 5 and "another key" in wrong.stderr
    (tmp_path / "bad.json").write_text("{")
    assert relink("verify", "--checkpoint", str(tmp_path / "bad.json"),
                  "--public-key", f"{key}.pub").exit_code == 2
    assert relink("verify", "--checkpoint", str(tmp_path / "gone.json"),
                  "--public-key", f"{key}.pub").exit_code == 2
    assert relink("checkpoint", "--key", str(tmp_path / "gone.key")).exit_code == 2
    printed = relink("checkpoint", "--key", str(key))
    assert printed.exit_code == 0 and json.loads(printed.stdout)["seq"] == 7


BAD_CHECKPOINTS: dict[str, Any] = {
    "nested 30,000 deep": lambda cp: json.dumps(cp)[:-1] + ', "x": ' + "[" * 30_000
    + "]" * 30_000 + "}",
    "seq 10**30": lambda cp: json.dumps(cp | {"seq": 10**30}),
    "a key twice": lambda cp: json.dumps(cp)[:-1] + f', "seq": {cp["seq"] - 1}}}',
}


@pytest.mark.parametrize("case", BAD_CHECKPOINTS)
def test_cli_refuses_an_unreadable_checkpoint_in_one_line(
    db_url: str, keys: tuple[Path, Path], case: str
) -> None:
    """A checkpoint nested 30,000 deep, with a seq of 10**30 or a key held twice: exit 2 and one
    line, never an unexpected error."""
    with opened(db_url) as db:
        path = keys[0].parent / "cp.json"
        path.write_text(BAD_CHECKPOINTS[case](AuditService(db).checkpoint(keys[0])))
    outcome = CliRunner().invoke(cli.app, ["--db", db_url, "audit", "verify", "--checkpoint",
                                           str(path), "--public-key", str(keys[1])],
                                 env={"RELINK_CONFIG": ""})
    lines = outcome.stderr.strip().splitlines()
    assert (outcome.exit_code, len(lines), outcome.stdout) == (2, 1, ""), outcome.stderr
    assert "Traceback" not in outcome.stderr and str(path) in lines[0]


def write(checkpoint: dict[str, Any], folder: Path) -> Path:
    path = folder / f"cp-{checkpoint['seq']}.json"
    path.write_text(json.dumps(checkpoint))
    return path
