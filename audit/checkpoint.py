"""Signed checkpoints: an Ed25519 signature over the RFC 8785 (JCS) bytes of
``{"log_id", "seq", "hash", "signed_at"}``, kept by reviewers outside the database.

A checkpoint file is a JSON object with those four fields plus ``public_key`` (the raw 32-byte
Ed25519 public key) and ``signature`` (the raw 64-byte signature), both in standard base64.
Key files are PEM: the private key PKCS#8 unencrypted (mode 0600), the public key
SubjectPublicKeyInfo, written next to it as ``KEYFILE.pub``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import canonical
from audit.chain import DuplicateKey, unique_object
from audit.errors import CheckpointError, CheckpointUnreadable

SIGNED_FIELDS = ("log_id", "seq", "hash", "signed_at")
MAX_FILE = 64 * 1024
MAX_SEQ = 2**53 - 1  # the largest integer JCS (and so a signature) can carry
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def public_key_path(private_key_path: Path) -> Path:
    """Where the public key of ``KEYFILE`` lives: ``KEYFILE.pub``."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def generate_keypair(out: Path) -> tuple[Path, Path]:
    """Create ``out`` (private key, mode 0600) and ``out.pub``; never overwrite either."""
    public_path = public_key_path(out)
    for path in (out, public_path):
        if path.exists() or path.is_symlink():
            raise CheckpointUnreadable(f"{path} already exists: refusing to overwrite a key file")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create(out, private_pem, 0o600)
    try:
        _create(public_path, public_pem, 0o644)
    except CheckpointUnreadable:
        out.unlink(missing_ok=True)
        raise
    return out, public_path


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise CheckpointUnreadable(
            f"{path} already exists: refusing to overwrite a key file"
        ) from None
    except OSError as exc:
        raise CheckpointUnreadable(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise CheckpointUnreadable(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file; CheckpointUnreadable when it is anything else."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CheckpointUnreadable(
            f"{path}: encrypted private keys are not supported (use `relink audit keygen`)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CheckpointUnreadable(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointUnreadable(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file; CheckpointUnreadable when it is anything else."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise CheckpointUnreadable(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointUnreadable(f"{path}: not an Ed25519 public key")
    return key


def sign_checkpoint(
    private_key: Path | Ed25519PrivateKey, *, log_id: str, seq: int, hash: str, signed_at: str
) -> dict[str, Any]:
    """The signed checkpoint of the entry ``seq`` (whose hash is ``hash``) of log ``log_id``."""
    key = private_key if isinstance(private_key, Ed25519PrivateKey) else load_private_key(
        private_key
    )
    payload: dict[str, Any] = {"log_id": log_id, "seq": seq, "hash": hash, "signed_at": signed_at}
    signature = key.sign(canonical.dumps(payload))
    return payload | {
        "public_key": _b64(_raw(key.public_key())),
        "signature": _b64(signature),
    }


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file, parsed and checked for shape (not yet for its signature)."""
    data = _read(path, "checkpoint")
    try:
        checkpoint = json.loads(data, object_pairs_hook=unique_object)
    except DuplicateKey as exc:
        raise CheckpointUnreadable(f"{path}: the checkpoint holds {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CheckpointUnreadable(f"{path}: not a JSON checkpoint file") from None
    _check_shape(checkpoint, str(path))
    return dict(checkpoint)


def verify_checkpoint(checkpoint: dict[str, Any], public_key_path: Path) -> None:
    """Raise CheckpointError unless ``checkpoint`` was signed by the key in ``public_key_path``.

    Input problems (malformed checkpoint, unreadable key) raise CheckpointUnreadable.
    """
    _check_shape(checkpoint, "checkpoint")
    key = load_public_key(public_key_path)
    embedded = base64.b64decode(checkpoint["public_key"], validate=True)
    if embedded != _raw(key):
        theirs = hashlib.sha256(embedded).hexdigest()[:16]
        raise CheckpointError(
            f"checkpoint was signed with another key ({theirs}, expected {fingerprint(key)})"
        )
    payload = {field: checkpoint[field] for field in SIGNED_FIELDS}
    try:
        key.verify(base64.b64decode(checkpoint["signature"], validate=True),
                   canonical.dumps(payload))
    except InvalidSignature:
        raise CheckpointError(
            f"bad checkpoint signature: seq {checkpoint['seq']} was altered or not signed by"
            f" key {fingerprint(key)}"
        ) from None


# helpers -----------------------------------------------------------------------------------


def _check_shape(checkpoint: Any, where: str) -> None:
    if not isinstance(checkpoint, dict):
        raise CheckpointUnreadable(f"{where}: a checkpoint must be a JSON object")
    missing = [f for f in (*SIGNED_FIELDS, "public_key", "signature") if f not in checkpoint]
    if missing:
        raise CheckpointUnreadable(f"{where}: checkpoint lacks {', '.join(missing)}")
    seq = checkpoint["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        raise CheckpointUnreadable(
            f"{where}: checkpoint seq must be an integer from 0 to {MAX_SEQ}"
        )
    for field in ("log_id", "hash", "signed_at", "public_key", "signature"):
        if not isinstance(checkpoint[field], str):
            raise CheckpointUnreadable(f"{where}: checkpoint {field} must be a string")
    if not _HEX64.match(checkpoint["hash"]):
        raise CheckpointUnreadable(f"{where}: checkpoint hash must be 64 lowercase hex digits")
    for field, size in (("public_key", 32), ("signature", 64)):
        try:
            raw = base64.b64decode(checkpoint[field], validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointUnreadable(f"{where}: checkpoint {field} is not base64") from None
        if len(raw) != size:
            raise CheckpointUnreadable(f"{where}: checkpoint {field} must be {size} bytes")


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE + 1)
    except FileNotFoundError:
        raise CheckpointUnreadable(f"{path}: no such {what} file") from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise CheckpointUnreadable(f"{path}: cannot read the {what} ({reason})") from None
    if len(data) > MAX_FILE:
        raise CheckpointUnreadable(f"{path}: too large for a {what} file")
    return data


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
