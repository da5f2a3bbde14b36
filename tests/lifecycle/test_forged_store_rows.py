"""Rows written into the store cannot steer the owner tag back-fill or a key rotation's IAM writes.

- The start-up back-fill writes ``iam-user-bot:owner`` (who may **Rotate** and receive a key) from
  a provisioned request's recipients: only from a request whose approval seal verifies. Before,
  an edited recipient in the store made a stranger the user's owner.
- A rotation's recovery deleted every key of the user its row names that the row did not list,
  and its completion switched off the key the row names when some revealed link row looked like
  its own: a forged ``started`` row deleted a user's live keys; a forged ``delivered`` row and a
  forged revealed link switched its key off. Now the row must agree with the user's tags in IAM
  (request and owner), the revealed link must be the one the rotation delivered (or re-issued
  from it) and carry the bot's seal (a row that agrees with IAM, with a link copied into the
  store, switches nothing off), and a recovery deletes only keys IAM made after the rotation
  started.

On both stores; IAM on moto server, every call the bot makes recorded.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.lifecycle import OWNER_BACKFILL, rotate_value
from bot.domain.plan import OWNER_TAG
from bot.domain.records import NewSecret, RotationRow
from bot.domain.states import RotationEvent, RotationState
from bot.lifecycle.rotation import STALE_AFTER
from tests.conftest import RECIPIENT, STRANGER
from tests.credentials.test_forged_link_records import VICTIM, approvers_posts, events, told
from tests.support.lifecycle import age, keys_of, seed_user, start_sealed_rotation
from tests.support.provisioning import Harness
from tests.support.tamper import tampered_harness

KEY_WRITES = {"CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey"}


def tags_of(iam, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=name)["Tags"]}


def test_an_edited_recipient_does_not_become_the_owner_and_a_sealed_request_still_does(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    seal = bot.services.approvals.guard.seal
    edited = seed_user(bot.store, iam, VICTIM, RECIPIENT, seal=seal)
    honest = seed_user(bot.store, iam, "olga.old", RECIPIENT, seal=seal)
    for name in (VICTIM, "olga.old"):
        iam.untag_user(UserName=name, TagKeys=[OWNER_TAG])  # as users made before the owner tag
    form = bot.store.get_request(edited).form  # type: ignore[union-attr]
    tamper.set_form(edited, form.model_copy(update={"recipients": (STRANGER,)}))
    bot.recorder.calls.clear()

    assert bot.services.backfill.run() == 1

    assert OWNER_TAG not in tags_of(iam, VICTIM)
    assert tags_of(iam, "olga.old")[OWNER_TAG] == RECIPIENT
    tagged = [p["UserName"] for op, p in bot.recorder.calls if op == "TagUser"]
    assert tagged == ["olga.old"]
    (invalid,) = [e for e in bot.store.audit_events() if e.event == "approval_seal_invalid"]
    assert invalid.request_id == edited and invalid.detail["use"] == "owner tag back-fill"
    assert [e.request_id for e in bot.store.audit_events() if e.event == "owner_tag_backfilled"] == [honest]
    (alert,) = approvers_posts(slack)
    assert f"`{edited}`" in alert and VICTIM in alert and "Nothing was tagged" in alert
    assert STRANGER not in alert and told(slack, STRANGER) == []
    # The pass ended: the next start reads and writes nothing, and tells nobody again.
    assert bot.store.get_finding(OWNER_BACKFILL, "v1") is not None
    bot.recorder.calls.clear()
    assert bot.services.backfill.run() is None
    assert bot.recorder.calls == [] and len(approvers_posts(slack)) == 1


def victim_with_an_old_key(bot: Harness, iam, moto_server) -> tuple[str, str]:
    """The victim (made for RECIPIENT), its one key two days old: ``(request id, key id)``."""
    request_id = seed_user(bot.store, iam, VICTIM, RECIPIENT)
    age(moto_server.url, VICTIM, 2)
    (key_id,) = keys_of(iam, VICTIM)
    return request_id, key_id


def later(bot: Harness) -> None:
    """The store's clock past the point a running rotation counts as abandoned."""
    now = bot.store.clock()
    bot.store.clock = lambda: now + STALE_AFTER + timedelta(minutes=1)  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("as_whom", "sealed"),
    [("attacker", False), ("copied from the store", False), ("attacker", True), ("copied from the store", True)],
)
def test_a_forged_started_rotation_deletes_no_key(moto_server, slack, iam, tamper, tmp_path, as_whom, sealed) -> None:
    """A row a store writer started (no seal) is failed with no AWS call; one carrying the bot's
    seal that IAM's tags refuse (another request and owner) is failed with no IAM write; one the
    bot sealed that names the victim's request and owner passes both checks, but the victim's key
    is older than the rotation, so it is not a key the rotation made."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request_id, key_id = victim_with_an_old_key(bot, iam, moto_server)
    own = seed_user(bot.store, iam, "sam.stranger", STRANGER) if as_whom == "attacker" else request_id
    owner = STRANGER if as_whom == "attacker" else RECIPIENT
    attacker = tamper.open_store()
    if sealed:
        assert start_sealed_rotation(attacker, bot.services.links.seal, VICTIM, "AKIANOTAKEY", owner, own)
    else:
        assert attacker.start_rotation(
            VICTIM, old_key_id="AKIANOTAKEY", owner=owner, request_id=own, kept_key_ids=[], actor=owner
        )
    later(bot)
    bot.recorder.calls.clear()

    assert bot.services.rotations.recover(bot.store.clock()) == [VICTIM]

    assert keys_of(iam, VICTIM) == {key_id: "Active"}
    assert KEY_WRITES.isdisjoint(bot.recorder.operations())
    assert bot.store.get_rotation(VICTIM).state is RotationState.FAILED  # type: ignore[union-attr]
    mismatches = events(bot, "link_record_mismatch")
    assert told(slack, STRANGER) == []
    if not sealed:
        assert bot.recorder.calls == []  # refused on its seal, before any AWS call
        (mismatch,) = mismatches
        assert "the key rotation's record carries no seal" in mismatch["why"]
        (alert,) = approvers_posts(slack)
        assert "key rotation's record" in alert and VICTIM in alert and "tampered" in alert
    elif as_whom == "attacker":
        (mismatch,) = mismatches
        assert "iam-user-bot:owner differs" in mismatch["why"] and "request-id differs" in mismatch["why"]
        (alert,) = approvers_posts(slack)
        assert "key rotation's record" in alert and VICTIM in alert and "tampered" in alert
    else:
        assert mismatches == [] and approvers_posts(slack) == []
    # Done with it: the next check neither writes nor alerts.
    assert bot.services.rotations.recover(bot.store.clock()) == []
    assert KEY_WRITES.isdisjoint(bot.recorder.operations()) and len(approvers_posts(slack)) == len(mismatches)


@pytest.mark.parametrize("edit", ["started earlier", "another old key"])
def test_a_sealed_rotation_edited_in_the_store_deletes_no_key(moto_server, slack, iam, tamper, tmp_path, edit) -> None:
    """The bot's own seal, on a rotation a store writer edited: its start moved back (so the
    victim's key would pass for one the rotation made and be deleted), or the key it replaces
    changed. Refused on the seal, before any AWS call."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request_id, key_id = victim_with_an_old_key(bot, iam, moto_server)
    now = bot.store.clock()
    honest = RotationRow(VICTIM, RotationState.STARTED, "AKIANOTAKEY", RECIPIENT, request_id, now, now)
    started = now - timedelta(days=30) if edit == "started earlier" else now
    old_key = "AKIANOTAKEY" if edit == "started earlier" else "AKIAANOTHERKEY"
    assert tamper.open_store().start_rotation(
        VICTIM,
        old_key_id=old_key,
        owner=RECIPIENT,
        request_id=request_id,
        kept_key_ids=[],
        actor=RECIPIENT,
        started_at=started,
        seal=bot.services.links.seal.rotation(honest),  # a real seal, of the row before the edit
    )
    later(bot)
    bot.recorder.calls.clear()

    assert bot.services.rotations.recover(bot.store.clock()) == [VICTIM]

    assert keys_of(iam, VICTIM) == {key_id: "Active"}
    assert bot.recorder.calls == []
    (mismatch,) = events(bot, "link_record_mismatch")
    assert "does not match its seal" in mismatch["why"]
    (alert,) = approvers_posts(slack)
    assert "key rotation's record" in alert and VICTIM in alert


@pytest.mark.parametrize("forged", ["an unsealed rotation", "another link", "another owner", "an unsealed link"])
def test_a_forged_delivered_rotation_and_revealed_link_switch_no_key_off(
    moto_server, slack, iam, tamper, tmp_path, forged
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request_id, key_id = victim_with_an_old_key(bot, iam, moto_server)
    attacker = tamper.open_store()
    owner = STRANGER if forged == "another owner" else RECIPIENT
    delivered, revealed = "d" * 64, ("e" * 64 if forged == "another link" else "d" * 64)
    if forged == "an unsealed rotation":  # as a store writer starts one
        assert attacker.start_rotation(
            VICTIM, old_key_id=key_id, owner=owner, request_id=request_id, kept_key_ids=[], actor=owner
        )
    else:  # the rotation's row as the bot sealed it: the later checks decide
        assert start_sealed_rotation(attacker, bot.services.links.seal, VICTIM, key_id, owner, request_id)
    attacker.move_rotation(VICTIM, RotationEvent.KEY_CREATED, actor=None, new_key_id="AKIAFORGEDFORGEDXX")
    attacker.move_rotation(VICTIM, RotationEvent.DELIVERED, actor=None, secret_id=delivered)
    attacker.put_secret(
        NewSecret(
            secret_id=revealed,
            request_id=request_id,
            recipient=owner,
            user_name=VICTIM,
            nonce=b"\0" * 12,
            ciphertext=b"\0" * 32,
            expires_at=bot.store.clock() + timedelta(hours=1),
            access_key_id="AKIAFORGEDFORGEDXX",
            console=False,
        )
    )
    assert attacker.claim_secret(revealed) is not None  # revealed
    bot.recorder.calls.clear()

    bot.services.rotations.revealed(bot.store.secret_row(revealed))  # type: ignore[arg-type]
    assert bot.services.rotations.recover(bot.store.clock()) == []

    assert keys_of(iam, VICTIM) == {key_id: "Active"}
    assert KEY_WRITES.isdisjoint(bot.recorder.operations())
    assert bot.store.get_rotation(VICTIM).state is RotationState.DELIVERED  # type: ignore[union-attr]
    (mismatch,) = events(bot, "link_record_mismatch")
    words = {
        "another link": "not the one the key rotation",
        "another owner": "iam-user-bot:owner differs",
        "an unsealed link": "the revealed link's record carries no seal",  # the row agrees with IAM
        "an unsealed rotation": "the key rotation's record carries no seal",
    }[forged]
    assert words in mismatch["why"]
    (alert,) = approvers_posts(slack)  # once, however many checks meet the row
    assert VICTIM in alert and "tampered" in alert
    assert told(slack, STRANGER) == [] and "rotation_completed" not in [e.event for e in bot.store.audit_events()]


def test_a_rotation_completes_from_a_link_re_sent_from_its_own(moto_server, slack, iam, tamper, tmp_path) -> None:
    """The link check follows re-issues: the owner's **Send a new link** of a rotation's link,
    revealed, still switches the old key off."""
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request_id, old_key = victim_with_an_old_key(bot, iam, moto_server)
    assert bot.services.rotations.rotate(rotate_value(VICTIM, old_key), RECIPIENT).ok
    first = [s for s in bot.store.secrets_for_request(request_id) if s.user_name == VICTIM][-1]
    assert bot.services.reissues.resend(first.id, RECIPIENT).ok
    second = [s for s in bot.store.secrets_for_request(request_id) if s.user_name == VICTIM][-1]
    assert second.replaces == first.id and bot.store.claim_secret(second.id) is not None

    bot.services.rotations.revealed(bot.store.secret_row(second.id))  # type: ignore[arg-type]

    assert keys_of(iam, VICTIM) == {old_key: "Inactive", second.access_key_id: "Active"}
    assert bot.store.get_rotation(VICTIM).state is RotationState.COMPLETED  # type: ignore[union-attr]
    assert events(bot, "link_record_mismatch") == [] and approvers_posts(slack) == []
