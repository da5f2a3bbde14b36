"""The owner tag on users made before it existed: written once from the store, audited, idempotent,
and never on a user the bot did not make (in process, moto server)."""

from __future__ import annotations

from bot.domain.lifecycle import OWNER_BACKFILL
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG
from tests.conftest import RECIPIENT, REQUESTER
from tests.lifecycle.conftest import Life
from tests.support.provisioning import FailOnCall


def tags_of(life: Life, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in life.iam.list_user_tags(UserName=name)["Tags"]}


def untag_owner(life: Life, name: str) -> None:
    """As a user made before the owner tag existed looks."""
    life.iam.untag_user(UserName=name, TagKeys=[OWNER_TAG])


def test_the_backfill_tags_each_old_user_once_from_the_store(life: Life) -> None:
    old = life.user("old.user", RECIPIENT, sealed=True)
    untag_owner(life, "old.user")
    life.user("new.user", REQUESTER)  # tagged already
    life.user("impostor", RECIPIENT)
    untag_owner(life, "impostor")
    life.iam.untag_user(UserName="impostor", TagKeys=[MANAGED_TAG])  # not the bot's: never touched

    assert life.services.backfill.run() == 1

    assert tags_of(life, "old.user")[OWNER_TAG] == RECIPIENT and tags_of(life, "old.user")[MANAGED_TAG] == "true"
    assert OWNER_TAG not in tags_of(life, "impostor")
    (audited,) = [e for e in life.store.audit_events() if e.event == "owner_tag_backfilled"]
    assert audited.request_id == old and audited.detail == {"user_name": "old.user", "owner": RECIPIENT}
    assert life.store.get_finding(OWNER_BACKFILL, "v1") is not None
    tag_calls = [p for op, p in life.recorder.calls if op == "TagUser"]
    assert tag_calls == [
        {
            "UserName": "old.user",
            "Tags": [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": OWNER_TAG, "Value": RECIPIENT}],
        }
    ]

    # Started again (every start runs it): nothing is read or written.
    life.recorder.calls.clear()
    assert life.services.backfill.run() is None
    assert life.recorder.calls == []


def test_a_user_of_that_name_the_request_did_not_make_is_left_alone(life: Life) -> None:
    life.user("old.user", RECIPIENT, sealed=True)
    untag_owner(life, "old.user")
    life.iam.tag_user(UserName="old.user", Tags=[{"Key": REQUEST_ID_TAG, "Value": "R-ZZZZZZZZ"}])
    assert life.services.backfill.run() == 0
    assert OWNER_TAG not in tags_of(life, "old.user")


def test_a_refused_tag_is_audited_with_the_command_and_retried_at_the_next_start(life: Life) -> None:
    life.user("old.user", RECIPIENT, sealed=True)
    untag_owner(life, "old.user")
    life.services.iam.iam.meta.events.register("before-call.iam.TagUser", FailOnCall("TagUser", 1))

    assert life.services.backfill.run() == 0

    (refused,) = [e for e in life.store.audit_events() if e.event == "owner_tag_backfill_refused"]
    assert refused.detail["error"] == "AccessDenied"
    assert refused.detail["run_instead"] == (
        f"aws iam tag-user --user-name old.user --tags Key={OWNER_TAG},Value={RECIPIENT}"
    )
    assert life.store.get_finding(OWNER_BACKFILL, "v1") is None  # not done: the next start tries again
    assert life.services.backfill.run() == 1
    assert tags_of(life, "old.user")[OWNER_TAG] == RECIPIENT
