"""Custom passwords are sealed: the token opens only with the server secret and the same requester."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.credentials.sealing import PasswordSealer, SealError, sealer_from_secrets

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
    sealer = sealer_from_secrets(SECRET.decode())
    assert SECRET.decode() not in repr(sealer)
    with pytest.raises(SealError) as caught:
        sealer.open("v1.AAAA.AAAA.AAAA", "U0REQ")
    assert SECRET.decode() not in str(caught.value) and "file the request again" in str(caught.value)


SEALING_KEY = "a-dedicated-sealing-key-of-43-random-characters"


def test_with_a_dedicated_key_a_slack_token_rotation_keeps_pending_passwords() -> None:
    before = sealer_from_secrets("xoxb-the-token-before-rotation", SEALING_KEY)
    token = before.seal("Pending-Passw0rd!", "U0REQ")
    after = sealer_from_secrets("xoxb-the-token-after-rotation", SEALING_KEY)
    assert after.open(token, "U0REQ") == "Pending-Passw0rd!"
    # The dedicated key is what seals: the bot token alone does not open it.
    with pytest.raises(SealError):
        sealer_from_secrets("xoxb-the-token-before-rotation").open(token, "U0REQ")


def test_setting_the_key_keeps_what_the_token_sealed_and_without_it_rotation_breaks() -> None:
    token_only = sealer_from_secrets("xoxb-the-token-before-rotation")
    sealed_by_token = token_only.seal("Older-Passw0rd!", "U0REQ")
    # The operator adds CUSTOM_PASSWORD_SEALING_KEY: requests sealed before still open.
    assert sealer_from_secrets("xoxb-the-token-before-rotation", SEALING_KEY).open(sealed_by_token, "U0REQ") == (
        "Older-Passw0rd!"
    )
    # Without a dedicated key (the fallback), a new bot token cannot open them: file again.
    with pytest.raises(SealError, match="file the request again"):
        sealer_from_secrets("xoxb-the-token-after-rotation").open(sealed_by_token, "U0REQ")
