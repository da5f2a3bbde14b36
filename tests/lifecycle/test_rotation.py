"""Keys that age, in process: the notice (once, on the right day), the owner's Rotate (and nobody
else's), the old key off when the new one is revealed, IAM's two-key limit, enforcement, recovery.

IAM is moto server and Slack the stand-in; a key is made old by moving its dates back in the tests'
moto server (keys a rotation makes afterwards are new, as in AWS), and the store's clock is moved
where the bot's own times matter (a link's expiry, a stale rotation). moto reports a key's last use
only when a request signed with it reaches moto, so "the new key works" is an STS call signed with it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.domain.lifecycle import KEY_DEACTIVATED, ROTATION_DUE, rotate_value
from bot.domain.states import FindingState, RotationEvent, RotationState
from bot.lifecycle.messages import ROTATE_ACTION
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, RECIPIENT, STRANGER
from tests.lifecycle.conftest import Life, make_life
from tests.support.lifecycle import buttons_of, start_sealed_rotation

NAME = "nina.newhire"


def rotate_button_of(life: Life) -> dict:
    (notice,) = [m for m in life.dms(RECIPIENT) if "rotate" in m["text"].lower()]
    (button,) = [b for b in buttons_of(notice) if b["action_id"] == ROTATE_ACTION]
    return button


def test_the_notice_goes_once_on_the_day_the_key_is_due(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)

    life.age(NAME, 75)  # 90 - 14 = 76: not due yet
    assert life.services.lifecycle_check.run().notices == []
    assert life.dms(RECIPIENT) == []

    life.age(NAME, 5)  # 80 days old
    assert life.services.lifecycle_check.run().notices == [old_key]
    for _ in range(3):  # later checks send nothing more
        life.clock.advance(hours=1)
        assert life.services.lifecycle_check.run().notices == []
    other = SqliteStore(life.store.path, clock=life.clock)  # what another process sees
    assert other.get_finding(ROTATION_DUE, old_key).state is FindingState.OPEN  # type: ignore[union-attr]

    (notice,) = life.dms(RECIPIENT)
    assert old_key in notice["text"] and NAME in notice["text"] and "80 days" in str(notice["blocks"])
    assert rotate_button_of(life)["value"] == rotate_value(NAME, old_key)
    assert life.events("rotation_notice_sent") == ["rotation_notice_sent"]
    assert life.keys(NAME) == {old_key: "Active"}  # a notice changes nothing in IAM


def test_concurrent_checks_in_two_processes_send_one_notice(moto_server, iam, slack, tmp_path, clock) -> None:
    first = make_life(moto_server, iam, slack, tmp_path, clock)
    second = make_life(moto_server, iam, slack, tmp_path, clock)  # the same database file: another process
    first.user(NAME, RECIPIENT)
    first.age(NAME, 80)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda life: life.services.lifecycle_check.run(), (first, second)))
    assert sorted(len(r.notices) for r in reports) == [0, 1]
    assert len(first.dms(RECIPIENT)) == 1


def test_the_owner_rotates_and_ends_with_one_active_working_key(life: Life) -> None:
    request_id = life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    life.age(NAME, 80)
    life.services.lifecycle_check.run()
    value = rotate_button_of(life)["value"]

    # Someone else's click is refused and changes nothing.
    refused = life.services.rotations.rotate(value, STRANGER)
    assert not refused.ok and f"<@{RECIPIENT}>" in refused.message
    assert life.keys(NAME) == {old_key: "Active"} and life.store.get_rotation(NAME) is None
    assert life.events("refused_rotation") == ["refused_rotation"]

    done = life.services.rotations.rotate(value, RECIPIENT)
    assert done.ok, done.message
    keys = life.keys(NAME)
    (new_key,) = set(keys) - {old_key}
    assert keys == {old_key: "Active", new_key: "Active"}  # the old key works until the new one is revealed
    rotation = life.store.get_rotation(NAME)
    assert rotation is not None and rotation.state is RotationState.DELIVERED and rotation.new_key_id == new_key

    # A second click while the link waits is not a second key.
    again = life.services.rotations.rotate(value, RECIPIENT)
    assert again.ok and new_key in again.message  # the unrevealed key made room for a newer one
    assert len(life.keys(NAME)) == 2 and new_key not in life.keys(NAME)
    (newer_key,) = set(life.keys(NAME)) - {old_key}
    assert newer_key != new_key

    revealed = life.reveal_newest(RECIPIENT)
    assert revealed["access_key_id"] == newer_key and revealed["password"] is None
    assert life.keys(NAME) == {old_key: "Inactive", newer_key: "Active"}
    assert life.store.get_rotation(NAME).state is RotationState.COMPLETED  # type: ignore[union-attr]
    assert life.store.get_finding(ROTATION_DUE, old_key).state is FindingState.RESOLVED  # type: ignore[union-attr]
    sts = life.moto.boto3_client(
        "sts", aws_access_key_id=newer_key, aws_secret_access_key=revealed["secret_access_key"]
    )
    assert sts.get_caller_identity()["Arn"].endswith(f":user/iam-user-bot/{NAME}")
    assert any("Rotation of" in m["text"] and "inactive" in m["text"] for m in life.dms(RECIPIENT))
    moves = [e.event for e in life.store.audit_events(request_id=request_id) if e.event in set(RotationEvent)]
    assert moves == [
        RotationEvent.STARTED,
        RotationEvent.KEY_CREATED,
        RotationEvent.DELIVERED,
        RotationEvent.STARTED,
        RotationEvent.KEY_CREATED,
        RotationEvent.DELIVERED,
        RotationEvent.COMPLETED,
    ]
    # Rotating the rotated key again is refused: it was rotated already.
    assert not life.services.rotations.rotate(value, RECIPIENT).ok
    assert len(life.keys(NAME)) == 2
    # The new key is new: later checks send no notice for it (the key of the one notice is off).
    assert life.services.lifecycle_check.run().notices == []
    assert len([m for m in life.dms(RECIPIENT) if "days old" in m["text"]]) == 1


def test_two_keys_an_inactive_one_makes_room_two_active_ones_are_refused(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    second = life.iam.create_access_key(UserName=NAME)["AccessKey"]["AccessKeyId"]

    both_active = life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT)
    assert not both_active.ok and "two active access keys" in both_active.message
    assert life.keys(NAME) == {old_key: "Active", second: "Active"}

    life.iam.update_access_key(UserName=NAME, AccessKeyId=second, Status="Inactive")
    made_room = life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT)
    assert made_room.ok and second in made_room.message
    keys = life.keys(NAME)
    assert second not in keys and len(keys) == 2 and keys[old_key] == "Active"


def test_a_forged_or_stale_button_changes_nothing(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    life.iam.create_user(UserName="not.the.bots")
    for value in ("nonsense", f"{NAME}|AKIADOESNOTEXIST0001", "not.the.bots|" + old_key, "ghost|" + old_key):
        outcome = life.services.rotations.rotate(value, RECIPIENT)
        assert not outcome.ok
    assert life.keys(NAME) == {old_key: "Active"} and life.store.get_rotation(NAME) is None
    assert len(life.events("refused_rotation")) == 4


@pytest.mark.parametrize("enforce", [True, False])
def test_a_key_past_its_age_is_deactivated_only_when_enforced(
    moto_server, iam, slack, tmp_path, clock, enforce
) -> None:
    life = make_life(moto_server, iam, slack, tmp_path, clock, key_rotation_enforce=enforce)
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    life.age(NAME, 91)
    for _ in range(2):
        life.services.lifecycle_check.run()
        clock.advance(hours=1)
    told = [p for p in life.posts() if old_key in p["text"] and "Deactivated" in p["text"]]
    if enforce:
        assert life.keys(NAME) == {old_key: "Inactive"}
        assert len(told) == 1 and f"<@{RECIPIENT}>" in told[0]["text"]
        assert len([m for m in life.dms(RECIPIENT) if "deactivated" in m["text"]]) == 1
        assert life.store.get_finding(KEY_DEACTIVATED, old_key) is not None
        assert life.events("access_key_deactivated") == ["access_key_deactivated"]
    else:
        assert life.keys(NAME) == {old_key: "Active"} and told == []
        assert len(life.dms(RECIPIENT)) == 1  # the notice (past the limit), once


def test_a_rotation_a_dead_process_left_is_undone_after_a_while(life: Life) -> None:
    request_id = life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    # A process started a rotation and made the key, then died before sealing its link.
    assert start_sealed_rotation(life.store, life.services.links.seal, NAME, old_key, RECIPIENT, request_id)
    orphan = life.iam.create_access_key(UserName=NAME)["AccessKey"]["AccessKeyId"]
    assert life.store.move_rotation(NAME, RotationEvent.KEY_CREATED, actor=None, new_key_id=orphan)

    assert life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT).ok is False  # under way
    life.clock.advance(minutes=5)
    assert life.services.rotations.recover(life.clock()) == []  # not stale yet
    life.clock.advance(minutes=15)
    assert life.services.rotations.recover(life.clock()) == [NAME]
    assert life.keys(NAME) == {old_key: "Active"}
    failed = life.store.get_rotation(NAME)
    assert failed is not None and failed.state is RotationState.FAILED and "interrupted" in (failed.error or "")
    assert life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT).ok  # the owner can start again


def test_a_reveal_whose_work_died_is_finished_by_the_check(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    assert life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT).ok
    (new_key,) = set(life.keys(NAME)) - {old_key}
    # The reveal's after-work never runs (its process died): claim the ciphertext directly.
    rotation = life.store.get_rotation(NAME)
    assert rotation is not None and life.store.claim_secret(str(rotation.secret_id)) is not None
    assert life.keys(NAME)[old_key] == "Active"

    life.services.lifecycle_check.run()

    assert life.keys(NAME) == {old_key: "Inactive", new_key: "Active"}
    assert life.store.get_rotation(NAME).state is RotationState.COMPLETED  # type: ignore[union-attr]


def test_the_rotation_link_expiring_unopened_switches_the_new_key_off_and_rotate_works_again(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    (old_key,) = life.keys(NAME)
    assert life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT).ok
    (new_key,) = set(life.keys(NAME)) - {old_key}
    life.clock.advance(days=2)
    life.services.link_expiry.expire_due()
    assert life.keys(NAME) == {old_key: "Active", new_key: "Inactive"}

    assert life.services.rotations.rotate(rotate_value(NAME, old_key), RECIPIENT).ok
    keys = life.keys(NAME)
    assert new_key not in keys and keys[old_key] == "Active" and len(keys) == 2
    assert any("expired unopened" in p["text"] for p in life.posts(APPROVAL_CHANNEL))


def test_the_notice_window_follows_the_settings(moto_server, iam, slack, tmp_path, clock) -> None:
    life = make_life(moto_server, iam, slack, tmp_path, clock, key_max_age_days=30, key_rotation_notice_days=5)
    life.user(NAME, RECIPIENT)
    life.age(NAME, 24)
    assert life.services.lifecycle_check.run().notices == []
    life.age(NAME, 1)
    assert len(life.services.lifecycle_check.run().notices) == 1
    (notice,) = life.dms(RECIPIENT)
    assert "25 days old" in notice["text"] and "30-day limit" in str(notice["blocks"])
