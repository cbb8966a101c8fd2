"""Salted password hashes for charge point identities (OCPP security profile 1: HTTP Basic auth).

A charge point's password is stored only as an scrypt hash (RFC 7914) in the self-describing form
``scrypt$n$r$p$<salt, base64>$<hash, base64>``, so the cost parameters can be raised later without
breaking stored hashes. The plain password is never stored or logged.

References
----------
RFC 7914, "The scrypt Password-Based Key Derivation Function" (2016).
OWASP Password Storage Cheat Sheet: scrypt with N=2^14 (or more), r=8, p=1 as a minimum (the
CPU/memory cost suits a handshake-time check: about 16 MiB and a few tens of milliseconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
"""CPU/memory cost (a power of two); memory used is 128·n·r bytes = 16 MiB."""
SCRYPT_R = 8
"""Block size."""
SCRYPT_P = 1
"""Parallelisation."""
SALT_BYTES = 16
"""Random salt per password (RFC 7914 §11 recommends a unique salt per password)."""
HASH_BYTES = 32
"""Derived key length."""
_MAXMEM_BYTES = 64 * 1024 * 1024  # headroom above 128·n·r for the stored parameters


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=_MAXMEM_BYTES)


def hash_password(password: str) -> str:
    """The encoded scrypt hash of ``password`` with a fresh random salt.

    Parameters
    ----------
    password : str
        The plain password (non-empty).

    Returns
    -------
    str
        ``scrypt$16384$8$1$<salt b64>$<hash b64>``.

    Raises
    ------
    ValueError
        If the password is empty.
    """
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    b64 = base64.b64encode
    return (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$"
            f"{b64(salt).decode('ascii')}${b64(digest).decode('ascii')}")


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the stored ``encoded`` hash (constant-time comparison).

    Parameters
    ----------
    password : str
        The password offered (for example in the HTTP Basic header of a websocket upgrade).
    encoded : str
        A hash made by :func:`hash_password`.

    Returns
    -------
    bool
        ``True`` only on a match; an empty password never matches.

    Raises
    ------
    ValueError
        If ``encoded`` is not an scrypt hash in this module's format (a corrupt stored hash is a
        fault to surface, not a wrong password).
    """
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not an scrypt password hash (expected scrypt$n$r$p$salt$hash)")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise ValueError(f"corrupt scrypt password hash: {exc}") from None
    if not password:
        return False
    return hmac.compare_digest(_derive(password, salt, n, r, p, len(expected)), expected)
