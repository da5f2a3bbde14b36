"""Sealing one-time secrets: AES-256-GCM under a fresh key that only the link carries.

Wire format (interface contract, "Credentials"): link ``/credentials/<id>#<key>``, ``<id>``
random (144 bits here), ``<key>`` the 32-byte key in base64url without padding; the
associated data is the ASCII ``<id>``, binding a ciphertext to its link. The caller stores
``nonce`` and ``ciphertext`` and forgets ``key`` once the link is sent.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.domain.models import CreatedCredentials

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard 96-bit nonce
SECRET_ID_BYTES = 18  # 144 bits: comfortably above the contract's 128
SECRET_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def b64url(data: bytes) -> str:
    """base64url without padding, as the link and the reveal answer use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url`. Raises ``ValueError`` on bad input."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SealedSecret:
    """A freshly sealed secret. ``key`` is the link fragment; never store or log it."""

    secret_id: str
    nonce: bytes
    ciphertext: bytes
    key: str = field(repr=False)


def new_secret_id() -> str:
    """A random link id, base64url (24 characters, 144 bits)."""
    return secrets.token_urlsafe(SECRET_ID_BYTES)


def credentials_plaintext(credentials: CreatedCredentials) -> bytes:
    """The UTF-8 JSON the reveal page decrypts: ``user_name``, ``console_url``, ``password``,
    ``access_key_id``, ``secret_access_key`` (``null`` where that access was not asked for)."""
    return json.dumps(
        {
            "user_name": credentials.user_name,
            "console_url": credentials.console_url,
            "password": credentials.password,
            "access_key_id": credentials.access_key_id,
            "secret_access_key": credentials.secret_access_key,
        }
    ).encode("utf-8")


def seal(plaintext: bytes) -> SealedSecret:
    """Encrypt ``plaintext`` under a fresh 256-bit key, with the new link id as associated data."""
    secret_id = new_secret_id()
    key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, secret_id.encode("ascii"))
    return SealedSecret(secret_id=secret_id, nonce=nonce, ciphertext=ciphertext, key=b64url(key))


def open_sealed(secret_id: str, key: str, nonce: bytes, ciphertext: bytes) -> bytes:
    """Decrypt what :func:`seal` made, as the browser does (for CLIs and tests).

    Raises:
        cryptography.exceptions.InvalidTag: wrong key, id or tampered ciphertext.
        ValueError: ``key`` is not 32 bytes of base64url.
    """
    raw_key = b64url_decode(key)
    if len(raw_key) != KEY_BYTES:
        raise ValueError("the key must be 32 bytes")
    return AESGCM(raw_key).decrypt(nonce, ciphertext, secret_id.encode("ascii"))
