"""Encryption at rest for counterpart secrets (T/CEC 102 platform keys).

The key comes from the ``secret_key`` setting (``CSMS_SECRET_KEY``: any passphrase;
a 256-bit key is derived from it with HKDF-SHA256). When it is unset, a random key is
generated once and kept in ``{data_dir}/secret.key`` (mode 0600). Nodes that share a
database must share the key: set ``CSMS_SECRET_KEY`` on every node in production.

Values are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``). A value
sealed under another key does not open: :class:`SecretKeyMismatch` says so without
revealing anything about the value.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SecretBox", "SecretKeyMismatch", "secret_box"]

KEY_FILE = "secret.key"


class SecretKeyMismatch(RuntimeError):
    """A stored secret was sealed with a different key than this node's."""


def _derive(passphrase: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"csms-secretbox-v1",
               info=b"platform secrets").derive(passphrase.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Seals and opens values; *passphrase* may be a callable, resolved at first use (so that
    a node without platforms never creates a key file)."""

    def __init__(self, passphrase: str | Callable[[], str]) -> None:
        if not passphrase:
            raise ValueError("secret key must not be empty")
        self._passphrase = passphrase
        self._cached: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._cached is None:
            key = self._passphrase() if callable(self._passphrase) else self._passphrase
            if not key:
                raise ValueError("secret key must not be empty")
            self._cached = Fernet(_derive(key))
        return self._cached

    def __repr__(self) -> str:
        return "SecretBox(<key redacted>)"

    def seal(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._fernet.decrypt(bytes(sealed))
        except InvalidToken:
            raise SecretKeyMismatch(
                "stored platform secrets cannot be decrypted with this node's secret key "
                "(CSMS_SECRET_KEY or data_dir/secret.key differs from the one they were stored with)"
            ) from None


def _key_from_file(data_dir: Path) -> str:
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it just now
        return path.read_text(encoding="ascii").strip()
    try:
        os.write(fd, key.encode("ascii") + b"\n")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return key


def secret_box(settings) -> SecretBox:
    """The box for *settings*: ``secret_key`` if set, else the key file in ``data_dir``."""
    key = getattr(settings, "secret_key", None)
    if key is not None and hasattr(key, "get_secret_value"):
        key = key.get_secret_value()
    if not key:
        data_dir = settings.data_dir
        return SecretBox(lambda: _key_from_file(data_dir))
    return SecretBox(key)
