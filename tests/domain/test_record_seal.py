"""The record seal of one-time link and key rotation records (bot/domain/seal.py RecordSeal) and its
key (bot/credentials/sealing.py record_seal_key): its own key, every field counts, the key id tells
a changed secret from a forgery. Pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.credentials.sealing import approval_seal_key, record_seal_key
from bot.domain.records import RotationRow, SecretRow
from bot.domain.seal import ApprovalSeal, RecordSeal, SealCause
from bot.domain.states import RotationState, SecretState

AT = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
LINK = SecretRow(
    id="a" * 64,
    request_id="R-AAAA2222",
    recipient="U0RECIPIENT",
    user_name="ann.example",
    state=SecretState.SEALED,
    created_at=AT,
    expires_at=AT + timedelta(hours=1),
    access_key_id="AKIAEXAMPLEEXAMPLE00",
    console=True,
    replaces="b" * 64,
)
ROTATION = RotationRow(
    "ann.example", RotationState.STARTED, "AKIAOLD", "U0RECIPIENT", "R-AAAA2222", AT, AT, ("AKIAKEPT",)
)


def test_the_record_seal_has_its_own_key_from_the_same_secret() -> None:
    token, dedicated = "xoxb-" + "1" * 40, "k" * 43
    key = record_seal_key(token, dedicated)
    assert len(key) == 32 and key != approval_seal_key(token, dedicated)
    assert record_seal_key("xoxb-" + "2" * 40, dedicated) == key  # the dedicated key decides
    assert record_seal_key(token) != key
    seal = RecordSeal(key)
    assert seal.key_id != ApprovalSeal(approval_seal_key(token, dedicated)).key_id
    assert repr(seal) == "RecordSeal(<key hidden>)" and key.hex() not in repr(seal)
    with pytest.raises(ValueError, match="16 bytes"):
        record_seal_key("short")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "c" * 64),
        ("request_id", "R-BBBB3333"),
        ("recipient", "U0STRANGER"),
        ("user_name", "bob.example"),
        ("access_key_id", "AKIAOTHEROTHER000000"),
        ("console", False),
        ("replaces", None),
        ("expires_at", AT - timedelta(minutes=1)),
    ],
)
def test_every_field_of_a_links_record_counts(field: str, value: object) -> None:
    seal = RecordSeal(bytes(range(32)))
    stored = seal.link(LINK)
    assert stored.startswith(f"seal1:{seal.key_id}:") and seal.problem(seal.link(LINK), stored, "it") is None
    edited = dataclasses.replace(LINK, **{field: value})
    problem = seal.problem(seal.link(edited), stored, "the link's record")
    assert problem is not None and problem.cause is SealCause.TAMPERED and "does not match its seal" in problem.what


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_name", "bob.example"),
        ("old_key_id", "AKIAOTHER"),
        ("owner", "U0STRANGER"),
        ("request_id", "R-BBBB3333"),
        ("kept_key_ids", ()),
        ("started_at", AT - timedelta(days=30)),
    ],
)
def test_every_field_a_rotation_starts_with_counts(field: str, value: object) -> None:
    seal = RecordSeal(bytes(range(32)))
    stored = seal.rotation(ROTATION)
    edited = dataclasses.replace(ROTATION, **{field: value})
    assert seal.problem(seal.rotation(edited), stored, "it") is not None
    # What a rotation becomes later (state, new key, link) is not in it; the same instant in
    # another zone is the same start.
    later = dataclasses.replace(ROTATION, state=RotationState.DELIVERED, new_key_id="AKIANEW", secret_id="d" * 64)
    moved = dataclasses.replace(ROTATION, started_at=AT.astimezone(timezone(timedelta(hours=2))))
    assert seal.rotation(later) == stored == seal.rotation(moved)


def test_a_missing_seal_and_another_keys_seal_are_told_apart() -> None:
    seal, other = RecordSeal(bytes(range(32))), RecordSeal(bytes(32))
    missing = seal.problem(seal.link(LINK), None, "the link's record")
    assert missing is not None and "carries no seal" in missing.what
    rekeyed = seal.problem(seal.link(LINK), other.link(LINK), "the link's record")
    assert rekeyed is not None and rekeyed.cause is SealCause.OTHER_KEY and rekeyed.reapprove
    # A link's seal is never a rotation's, nor an approval's.
    assert seal.link(LINK) != seal.rotation(ROTATION)
