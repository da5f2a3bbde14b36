"""Sealing: AES-256-GCM, key only in the link, id bound as associated data."""

from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidTag

from bot.credentials.vault import b64url, b64url_decode, credentials_plaintext, open_sealed, seal
from bot.domain.models import CreatedCredentials


def test_seal_round_trip_and_fresh_key_each_time() -> None:
    first, second = seal(b"hello"), seal(b"hello")
    assert open_sealed(first.secret_id, first.key, first.nonce, first.ciphertext) == b"hello"
    assert first.key != second.key and first.secret_id != second.secret_id and first.nonce != second.nonce
    assert len(b64url_decode(first.key)) == 32 and len(first.nonce) == 12
    assert len(first.ciphertext) == len(b"hello") + 16  # GCM tag appended
    assert len(b64url_decode(first.secret_id)) * 8 >= 128
    assert "=" not in first.key and "=" not in first.secret_id


def test_wrong_key_or_moved_ciphertext_fails() -> None:
    one, other = seal(b"secret"), seal(b"secret")
    with pytest.raises(InvalidTag):
        open_sealed(one.secret_id, other.key, one.nonce, one.ciphertext)
    with pytest.raises(InvalidTag):  # the id is associated data: a ciphertext under another link fails
        open_sealed(other.secret_id, one.key, one.nonce, one.ciphertext)
    with pytest.raises(ValueError):
        open_sealed(one.secret_id, b64url(b"short"), one.nonce, one.ciphertext)


def test_repr_hides_key_and_secrets() -> None:
    sealed = seal(b"x")
    assert sealed.key not in repr(sealed)
    creds = CreatedCredentials(user_name="u", password="Pw-very-secret-1", secret_access_key="SAK-very-secret")
    assert "Pw-very-secret-1" not in repr(creds) and "SAK-very-secret" not in repr(creds)


def test_plaintext_has_the_contract_fields() -> None:
    creds = CreatedCredentials(user_name="u", access_key_id="AKIA1", secret_access_key="s")
    assert json.loads(credentials_plaintext(creds)) == {
        "user_name": "u",
        "console_url": None,
        "password": None,
        "access_key_id": "AKIA1",
        "secret_access_key": "s",
    }
