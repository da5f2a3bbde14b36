"""A real one-time link's record, copied whole under a new id or with one field edited by someone
who can write the store, makes the bot neither create credentials nor switch any off: its seal
(:class:`bot.domain.seal.RecordSeal`, a key the store never holds) does not match. IAM's tags
cannot tell such a copy from the original (same request, owner, user and key id); the seal can.
The bot's own links (a rotation's, its resend, expiry and re-issue) still work, with the same AWS
calls as before. On both stores; IAM on moto server, every call the bot makes recorded.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.domain.lifecycle import rotate_value
from bot.domain.records import NewSecret, SecretRow
from bot.domain.seal import RecordSeal
from tests.conftest import APPROVER, RECIPIENT, STRANGER
from tests.credentials.test_forged_link_records import CREDENTIAL_WRITES, VICTIM, approvers_posts, events, told
from tests.support.lifecycle import seed_user
from tests.support.provisioning import Harness
from tests.support.tamper import Tamper, edit_secret, tampered_harness


def rotation_link(bot: Harness, iam) -> tuple[SecretRow, str]:
    """The victim (a user the bot made for RECIPIENT) after its owner's **Rotate**: the link the
    bot wrote (sealed) and the old key id. IAM's recorded calls cleared."""
    request_id = seed_user(bot.store, iam, VICTIM, RECIPIENT)
    (old_key,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]]
    rotated = bot.services.rotations.rotate(rotate_value(VICTIM, old_key), RECIPIENT)
    assert rotated.ok, rotated.message
    (link,) = [s for s in bot.store.secrets_for_request(request_id) if s.user_name == VICTIM]
    assert link.seal and link.seal.startswith("seal1:")
    bot.recorder.calls.clear()
    return link, old_key


def copy(tamper: Tamper, real: SecretRow, new_id: str, expires_in: timedelta, seal: str | None = None) -> None:
    """``real`` written again under ``new_id``, every field and its seal as stored (or ``seal``)."""
    tamper.open_store().put_secret(
        NewSecret(
            secret_id=new_id,
            request_id=real.request_id,
            recipient=real.recipient,
            user_name=real.user_name,
            nonce=b"\0" * 12,
            ciphertext=b"\0" * 32,
            expires_at=real.created_at + expires_in,
            access_key_id=real.access_key_id,
            console=real.console,
            replaces=real.replaces,
            seal=real.seal if seal is None else seal,
        )
    )


def keys_of(iam) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]}


def assert_refused(bot: Harness, slack, iam, before: dict[str, str], why: str) -> None:
    assert bot.recorder.calls == []  # no AWS call at all, let alone a write
    assert keys_of(iam) == before
    (mismatch,) = events(bot, "link_record_mismatch")
    assert why in mismatch["why"] and mismatch["user_name"] == VICTIM
    (alert,) = approvers_posts(slack)
    assert why in alert and "tampered" in alert


@pytest.mark.parametrize("who", ["recipient", "approver"])
def test_a_real_record_copied_under_a_new_id_gets_nobody_new_credentials(
    moto_server, slack, iam, tamper, tmp_path, who
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    real, _ = rotation_link(bot, iam)
    before = keys_of(iam)
    copy(tamper, real, "c" * 64, timedelta(hours=1))

    reissues = bot.services.reissues
    outcome = reissues.resend("c" * 64, RECIPIENT) if who == "recipient" else reissues.rotate("c" * 64, APPROVER)

    assert not outcome.ok and "does not match its seal" in outcome.message
    assert_refused(bot, slack, iam, before, "does not match its seal")
    assert bot.store.secret_row("c" * 64).reissued_at is None  # type: ignore[union-attr]
    assert bot.store.secret_row(real.id).reissued_at is None  # type: ignore[union-attr]


def test_a_real_record_copied_under_a_new_id_switches_nothing_off_at_expiry(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    real, _ = rotation_link(bot, iam)
    before = keys_of(iam)
    copy(tamper, real, "d" * 64, timedelta(seconds=-1))  # already past its expiry

    assert bot.services.link_expiry.expire_due() == []

    assert_refused(bot, slack, iam, before, "does not match its seal")
    (done,) = events(bot, "link_expiry_done")
    assert "does not match its seal" in done["refused"]
    assert bot.services.link_expiry.expire_due() == [] and len(approvers_posts(slack)) == 1  # told once


@pytest.mark.parametrize(
    ("name", "value"), [("recipient", STRANGER), ("access_key_id", "AKIAFORGEDFORGED0000"), ("request_id", "R-X")]
)
def test_a_real_record_with_one_field_edited_is_refused(moto_server, slack, iam, tamper, tmp_path, name, value) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    real, _ = rotation_link(bot, iam)
    before = keys_of(iam)
    edit_secret(tamper, real.id, name, value)

    outcome = bot.services.reissues.resend(real.id, RECIPIENT if name != "recipient" else STRANGER)

    assert not outcome.ok
    assert_refused(bot, slack, iam, before, "does not match its seal")
    assert told(slack, STRANGER) == []


def test_a_real_record_whose_expiry_was_moved_back_switches_nothing_off(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    """An unopened link's expiry moved into the past would have the sweep switch its credentials
    off early: its seal covers the expiry."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    real, _ = rotation_link(bot, iam)
    before = keys_of(iam)
    edit_secret(tamper, real.id, "expires_at", (bot.store.clock() - timedelta(minutes=1)).isoformat())

    assert bot.services.link_expiry.expire_due() == []

    assert_refused(bot, slack, iam, before, "does not match its seal")


def test_a_record_sealed_under_another_key_is_refused_and_says_so(moto_server, slack, iam, tamper, tmp_path) -> None:
    """What a changed sealing secret looks like (or a seal made elsewhere): refused, named apart."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    real, _ = rotation_link(bot, iam)
    before = keys_of(iam)
    other = RecordSeal(bytes(32))
    forged = dataclasses.replace(real, id="e" * 64)
    copy(tamper, real, "e" * 64, timedelta(hours=1), seal=other.link(forged))

    outcome = bot.services.reissues.resend("e" * 64, RECIPIENT)

    assert not outcome.ok
    assert_refused(bot, slack, iam, before, "sealed under another key")


def test_the_bots_own_links_work_with_the_same_aws_calls(moto_server, slack, iam, tamper, tmp_path) -> None:
    """A rotation's link, its resend, its expiry and an approver's re-issue: each sealed by the
    bot, each verified, none alerting; the seal check adds no AWS call (one ``ListUserTags`` per
    record check, as before)."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    link, old_key = rotation_link(bot, iam)

    resent = bot.services.reissues.resend(link.id, RECIPIENT)
    assert resent.ok, resent.message
    second = next(s for s in bot.store.secrets_for_request(link.request_id) if s.replaces == link.id)
    assert second.seal == bot.services.links.seal.link(second)
    operations = [op for op, _ in bot.recorder.calls]
    first_write = min(operations.index(op) for op in CREDENTIAL_WRITES & set(operations))
    assert operations[0] == "ListUserTags" and operations[:first_write].count("ListUserTags") == 2

    bot.store.clock = lambda: second.expires_at + timedelta(seconds=1)  # type: ignore[method-assign]
    bot.recorder.calls.clear()
    assert bot.services.link_expiry.expire_due() == [second.id]
    assert next(op for op, _ in bot.recorder.calls) == "ListUserTags"
    assert keys_of(iam) == {old_key: "Active", second.access_key_id: "Inactive"}

    reissued = bot.services.reissues.rotate(second.id, APPROVER)
    assert reissued.ok, reissued.message
    assert events(bot, "link_record_mismatch") == [] and not [p for p in approvers_posts(slack) if "refused" in p]
