"""Charger passwords (security profiles 1 and 2): salted scrypt hashes.

Verifying scrypt costs tens of milliseconds, and a whole fleet reconnects at
once after a restart, so :class:`PasswordVerifier` runs checks in a thread and
remembers successful (hash, password) pairs for the life of the process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os

__all__ = ["hash_password", "verify_password", "PasswordVerifier"]

_N, _R, _P = 2 ** 14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class PasswordVerifier:
    def __init__(self) -> None:
        self._ok: set[bytes] = set()

    async def verify(self, password: str, stored: str) -> bool:
        key = hashlib.sha256(stored.encode() + b"\0" + password.encode()).digest()
        if key in self._ok:
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        if ok:
            self._ok.add(key)
        return ok
