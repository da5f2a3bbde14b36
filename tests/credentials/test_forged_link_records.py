"""A one-time link's record written into the store cannot aim new credentials, or their switching
off, at a user the bot manages: its seal (a key the store does not hold) and IAM's tags (the link's
request and owner) decide, and the store's writers can change neither. Without the tag check, a
record naming someone else's user with the attacker as recipient showed up in the attacker's App
Home with **Send a new link**, and one click replaced that user's key and password and sent the
new ones to the attacker.

The records that agree with IAM (every link the bot makes: onboarding, re-issue, key rotation)
still work, and the check costs one ``ListUserTags`` before the first write.

On both stores; IAM on moto server, every call the bot makes recorded.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from bot.domain.lifecycle import rotate_value
from bot.domain.plan import OWNER_TAG
from bot.domain.records import NewSecret, SecretRow
from bot.domain.states import SecretState
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, SECOND_APPROVER, STRANGER
from tests.support.lifecycle import seed_user
from tests.support.provisioning import Harness
from tests.support.tamper import Tamper, tampered_harness

VICTIM = "vera.victim"
CREDENTIAL_WRITES = {"CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey", "UpdateLoginProfile"}


def forge(
    bot: Harness,
    tamper: Tamper,
    iam,
    *,
    recipient: str,
    expires_in: timedelta,
    request_id: str | None = None,
    sealed: bool = False,
) -> tuple[str, str]:
    """The victim (a user the bot made for RECIPIENT), and a link record about it written into the
    store: its real request id (readable in the store) unless ``request_id``, ``recipient``, its
    real key id. ``(secret id, key id)``. With ``sealed``, the record carries the bot's own seal
    (as if the bot had written it: what IAM's tags still check); else none, as a store writer
    without the bot's secrets writes it."""
    real_request = seed_user(bot.store, iam, VICTIM, RECIPIENT)
    key_id = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"][0]["AccessKeyId"]
    attacker = tamper.open_store()
    secret_id = "f" * 64
    record = NewSecret(
        secret_id=secret_id,
        request_id=request_id or real_request,
        recipient=recipient,
        user_name=VICTIM,
        nonce=b"\0" * 12,
        ciphertext=b"\0" * 32,
        expires_at=bot.store.clock() + expires_in,
        access_key_id=key_id,
        console=True,
    )
    seal = bot.services.links.seal.link(record) if sealed else None
    attacker.put_secret(dataclasses.replace(record, seal=seal))
    bot.recorder.calls.clear()
    return secret_id, key_id


def approvers_posts(slack) -> list[str]:
    return [c.args["text"] for c in slack.calls("chat.postMessage") if c.args.get("channel") == APPROVAL_CHANNEL]


def told(slack, user: str) -> list[str]:
    """Slack calls that would reach ``user``: an ephemeral message, or opening a DM with them."""
    ephemeral = [c.method for c in slack.calls("chat.postEphemeral") if c.args.get("user") == user]
    opened = [c.method for c in slack.calls("conversations.open") if user in str(c.args.get("users"))]
    return ephemeral + opened


def events(bot: Harness, name: str) -> list[dict]:
    return [e.detail for e in bot.store.audit_events() if e.event == name]


@pytest.mark.parametrize("who", ["recipient", "approver"])
@pytest.mark.parametrize("request_of", ["victim", "attacker"])
def test_an_unsealed_link_record_gets_nobody_new_credentials(
    moto_server, slack, iam, tamper, tmp_path, who, request_of
) -> None:
    """A record a store writer wrote (no seal: the key is not in the store) is refused before any
    AWS call."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    own = seed_user(bot.store, iam, "sam.stranger", STRANGER) if request_of == "attacker" else None
    secret_id, key_id = forge(bot, tamper, iam, recipient=STRANGER, expires_in=timedelta(hours=1), request_id=own)
    reissues = bot.services.reissues
    outcome = reissues.resend(secret_id, STRANGER) if who == "recipient" else reissues.rotate(secret_id, APPROVER)

    assert not outcome.ok and "carries no seal" in outcome.message
    assert bot.recorder.calls == []  # the seal check makes no AWS call
    keys = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key_id, "Active")]
    assert told(slack, STRANGER) == []
    (mismatch,) = events(bot, "link_record_mismatch")
    assert mismatch["user_name"] == VICTIM and "carries no seal" in mismatch["why"]
    (alert,) = approvers_posts(slack)
    assert "tampered" in alert and "carries no seal" in alert
    assert bot.store.secret_row(secret_id).reissued_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("who", ["recipient", "approver"])
@pytest.mark.parametrize("request_of", ["victim", "attacker"])
def test_a_sealed_link_record_iam_disagrees_with_gets_nobody_new_credentials(
    moto_server, slack, iam, tamper, tmp_path, who, request_of
) -> None:
    """IAM's tags still decide behind the seal: a record carrying the bot's seal that names a
    recipient or request the user's tags do not is refused after one ``ListUserTags``."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    # The record names the victim's own request (read from the store), or the attacker's own request.
    own = seed_user(bot.store, iam, "sam.stranger", STRANGER) if request_of == "attacker" else None
    secret_id, key_id = forge(
        bot, tamper, iam, recipient=STRANGER, expires_in=timedelta(hours=1), request_id=own, sealed=True
    )
    # Send a new link (the attacker, in their own App Home), or an approver's Rotate on a forged alert.
    reissues = bot.services.reissues
    outcome = reissues.resend(secret_id, STRANGER) if who == "recipient" else reissues.rotate(secret_id, APPROVER)

    assert not outcome.ok and "does not match IAM user `vera.victim`" in outcome.message
    assert [op for op, _ in bot.recorder.calls] == ["ListUserTags"]  # the check, and no write
    keys = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key_id, "Active")]
    assert told(slack, STRANGER) == []
    action = "resend" if who == "recipient" else "rotate"
    (refused,) = events(bot, f"refused_{action}")
    assert refused["reason"] == "record does not match IAM"
    (mismatch,) = events(bot, "link_record_mismatch")
    assert mismatch["user_name"] == VICTIM and "iam-user-bot:owner differs" in mismatch["why"]
    assert ("iam-user-bot:request-id differs" in mismatch["why"]) is (request_of == "attacker")
    (alert,) = approvers_posts(slack)
    clicker = STRANGER if who == "recipient" else APPROVER
    assert VICTIM in alert and "tampered" in alert and f"<@{clicker}>" in alert
    assert "credentials_rotated" not in [e.event for e in bot.store.audit_events()]
    assert bot.store.secret_row(secret_id).reissued_at is None  # type: ignore[union-attr]


def test_a_forged_expired_link_record_switches_nothing_off(moto_server, slack, iam, tamper, tmp_path) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    _, key_id = forge(bot, tamper, iam, recipient=STRANGER, expires_in=timedelta(seconds=-1))

    assert bot.services.link_expiry.expire_due() == []

    assert bot.recorder.calls == []  # refused on its missing seal: no AWS call
    keys = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key_id, "Active")]
    (alert,) = approvers_posts(slack)
    assert "tampered" in alert and VICTIM in alert and "expired link" in alert
    (mismatch,) = events(bot, "link_record_mismatch")
    assert mismatch["action"] == "switch off the credentials of an expired link"
    assert "carries no seal" in alert
    (done,) = events(bot, "link_expiry_done")
    assert "carries no seal" in done["refused"]
    assert told(slack, STRANGER) == []
    # Done with it: a later sweep neither switches anything off nor alerts again.
    assert bot.services.link_expiry.expire_due() == [] and len(slack.calls("chat.postMessage")) == 1
    assert CREDENTIAL_WRITES.isdisjoint(bot.recorder.operations())


@pytest.mark.parametrize("change", ["another owner", "no owner tag"])
def test_a_user_whose_owner_tag_changed_gets_no_new_credentials_from_the_old_link(
    moto_server, slack, iam, tamper, tmp_path, change
) -> None:
    """The bot never changes an owner tag; an administrator may (or an old user lacks it): the
    user's credentials then go only where IAM says, through its owner's **Rotate**."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    secret_id, key_id = forge(bot, tamper, iam, recipient=RECIPIENT, expires_in=timedelta(hours=1), sealed=True)
    if change == "another owner":
        iam.tag_user(UserName=VICTIM, Tags=[{"Key": OWNER_TAG, "Value": SECOND_APPROVER}])
    else:
        iam.untag_user(UserName=VICTIM, TagKeys=[OWNER_TAG])

    outcome = bot.services.reissues.resend(secret_id, RECIPIENT)

    words = "iam-user-bot:owner differs" if change == "another owner" else "iam-user-bot:owner is not set"
    assert not outcome.ok and words in outcome.message
    assert CREDENTIAL_WRITES.isdisjoint(bot.recorder.operations())
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]] == [key_id]
    assert told(slack, RECIPIENT) == [] and len(approvers_posts(slack)) == 1


@pytest.mark.parametrize("change", ["another owner", "no owner tag"])
def test_an_expired_link_the_bot_sealed_is_switched_off_even_if_the_owner_tag_changed(
    moto_server, slack, iam, tamper, tmp_path, change
) -> None:
    """Switching credentials off is the safe direction: an expired link's record the bot sealed
    has its key and password switched off whatever its user's owner tag says now."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    secret_id, key_id = forge(bot, tamper, iam, recipient=RECIPIENT, expires_in=timedelta(seconds=-1), sealed=True)
    if change == "another owner":
        iam.tag_user(UserName=VICTIM, Tags=[{"Key": OWNER_TAG, "Value": SECOND_APPROVER}])
    else:
        iam.untag_user(UserName=VICTIM, TagKeys=[OWNER_TAG])

    assert bot.services.link_expiry.expire_due() == [secret_id]

    keys = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(key_id, "Inactive")]
    assert events(bot, "link_record_mismatch") == []


def test_a_sealed_record_that_agrees_with_iam_gets_new_credentials_for_the_owner(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    """A record the bot sealed that agrees with IAM: new credentials for the user's own owner (the
    old ones gone), no one else. The checks cost one ``ListUserTags`` (the seal none), before the
    first write. (A copy of such a record is refused: tests/credentials/test_sealed_link_records.py.)"""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    secret_id, key_id = forge(bot, tamper, iam, recipient=RECIPIENT, expires_in=timedelta(hours=1), sealed=True)

    outcome = bot.services.reissues.resend(secret_id, RECIPIENT)

    assert outcome.ok, outcome.message
    keys = iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]
    assert len(keys) == 1 and keys[0]["AccessKeyId"] != key_id
    assert told(slack, RECIPIENT) and told(slack, STRANGER) == []
    operations = [op for op, _ in bot.recorder.calls]
    first_write = min(operations.index(op) for op in CREDENTIAL_WRITES & set(operations))
    assert operations[0] == "ListUserTags" and operations[:first_write].count("ListUserTags") == 2
    # One for the record, one for the managed tag before the first write (KeyKeeper's own guard).
    assert operations.count("ListUserTags") == 3 and events(bot, "link_record_mismatch") == []
    assert approvers_posts(slack) == []


def newest_link(bot: Harness, request_id: str) -> SecretRow:
    return [s for s in bot.store.secrets_for_request(request_id) if s.user_name == VICTIM][-1]


def test_a_rotation_link_is_resent_expired_and_re_issued_like_any_other(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    """A key rotation's link (filed under the request the user's tag names, for its owner), then
    its owner's **Send a new link**, its expiry, and an approver's **Re-issue**: each record the
    bot wrote agrees with IAM, so each step changes IAM and alerts nobody."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request_id = seed_user(bot.store, iam, VICTIM, RECIPIENT)
    (old_key,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]]

    rotated = bot.services.rotations.rotate(rotate_value(VICTIM, old_key), RECIPIENT)
    assert rotated.ok, rotated.message
    link = newest_link(bot, request_id)
    assert (link.recipient, link.access_key_id != old_key) == (RECIPIENT, True)

    resent = bot.services.reissues.resend(link.id, RECIPIENT)
    assert resent.ok, resent.message
    second = newest_link(bot, request_id)
    assert second.replaces == link.id and second.access_key_id not in (old_key, link.access_key_id)

    bot.store.clock = lambda: second.expires_at + timedelta(seconds=1)  # type: ignore[method-assign]
    assert bot.services.link_expiry.expire_due() == [second.id]
    statuses = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]}
    assert statuses == {old_key: "Active", second.access_key_id: "Inactive"}

    reissued = bot.services.reissues.rotate(second.id, APPROVER)
    assert reissued.ok, reissued.message
    third = newest_link(bot, request_id)
    assert third.replaces == second.id and third.state is SecretState.SEALED and third.recipient == RECIPIENT
    assert third.access_key_id in {k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]}
    assert events(bot, "link_record_mismatch") == []
    assert not [p for p in approvers_posts(slack) if "refused" in p]


def test_a_record_changed_between_the_check_and_the_claim_gets_nobody_new_credentials(
    moto_server, slack, iam, tamper, tmp_path, monkeypatch
) -> None:
    """IAM's tags are checked on the record as read; a store writer who then points the record at
    another user before the claim reads it again gets that user nothing."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    secret_id, key_id = forge(bot, tamper, iam, recipient=RECIPIENT, expires_in=timedelta(hours=1), sealed=True)
    seed_user(bot.store, iam, "otto.other", SECOND_APPROVER)
    other_keys = iam.list_access_keys(UserName="otto.other")["AccessKeyMetadata"]
    bot.recorder.calls.clear()
    claim = bot.store.claim_reissue

    def claim_after_a_write(*args, **kwargs):  # the row as a concurrent store write left it
        claimed = claim(*args, **kwargs)
        return None if claimed is None else dataclasses.replace(claimed, user_name="otto.other")

    monkeypatch.setattr(bot.store, "claim_reissue", claim_after_a_write)
    outcome = bot.services.reissues.resend(secret_id, RECIPIENT)

    assert not outcome.ok and "changed while I checked it" in outcome.message
    assert CREDENTIAL_WRITES.isdisjoint(bot.recorder.operations())
    assert iam.list_access_keys(UserName="otto.other")["AccessKeyMetadata"] == other_keys
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]] == [key_id]
    assert told(slack, RECIPIENT) == []
    (refused,) = events(bot, "refused_resend")
    assert refused["reason"] == "record changed after the check"
    (alert,) = approvers_posts(slack)  # the changed record names a user its recipient does not own
    assert "otto.other" in alert
