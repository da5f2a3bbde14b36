"""Custom passwords are sealed: the token opens only with the server secret and the same requester."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.credentials.sealing import PasswordSealer, SealError, sealer_from_bot_token

SECRET = b"xoxb-0000-1111-server-side-secret"


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=1, max_size=128))
def test_round_trip_and_the_token_hides_the_password(password: str) -> None:
    sealer = PasswordSealer(SECRET)
    token = sealer.seal(password, "U0REQ")
    assert sealer.open(token, "U0REQ") == password
    assert password not in token or len(password) < 4  # a 1-3 char password may occur in base64 by chance


def test_each_seal_is_fresh_and_bound_to_requester_and_secret() -> None:
    sealer = PasswordSealer(SECRET)
    first, second = sealer.seal("Same-Password-1!", "U0REQ"), sealer.seal("Same-Password-1!", "U0REQ")
    assert first != second
    with pytest.raises(SealError):
        sealer.open(first, "U0OTHER")
    with pytest.raises(SealError):
        PasswordSealer(b"another-server-secret-of-length").open(first, "U0REQ")
    tampered = first[:-2] + ("A" if first[-2] != "A" else "B") + first[-1]
    with pytest.raises(SealError):
        sealer.open(tampered, "U0REQ")
    with pytest.raises(SealError):
        sealer.open("plaintext-password", "U0REQ")
    with pytest.raises(ValueError, match="16 bytes"):
        PasswordSealer(b"short")


def test_sealer_never_shows_its_secret() -> None:
    sealer = sealer_from_bot_token(SECRET.decode())
    assert SECRET.decode() not in repr(sealer)
    with pytest.raises(SealError) as caught:
        sealer.open("v1.AAAA.AAAA.AAAA", "U0REQ")
    assert SECRET.decode() not in str(caught.value) and "file the request again" in str(caught.value)
