"""Every IAM call the lifecycle makes is one the bot's own policy allows (docs/bot-iam-policy.json,
``iam-user-bot policy bot``): rotation, enforcement, disabling, the back-fill, ``keys``, the App Home
and removals, each run against moto server with every call recorded."""

from __future__ import annotations

from bot.domain.lifecycle import rotate_value
from bot.domain.plan import OWNER_TAG
from bot.ops.check_aws import REQUIRED_ACTIONS
from tests.conftest import APPROVER, RECIPIENT, REQUESTER
from tests.lifecycle.conftest import Life, make_life
from tests.lifecycle.test_offboarding import file_and_approve
from tests.support.lifecycle import load_user


def test_every_iam_call_of_the_lifecycle_is_in_the_bots_policy(moto_server, iam, slack, tmp_path, clock) -> None:
    life: Life = make_life(moto_server, iam, slack, tmp_path, clock, key_rotation_enforce=True)
    life.user("due.user", RECIPIENT)
    life.user("old.user", REQUESTER, sealed=True)
    life.iam.untag_user(UserName="old.user", TagKeys=[OWNER_TAG])
    life.user("gone.user", "U0LEAVER01")
    life.user("deleted.user", RECIPIENT)
    load_user(life.iam, "deleted.user")
    life.user("disabled.user", RECIPIENT)

    life.services.backfill.run()
    life.age("due.user", 80)
    life.services.lifecycle_check.run()  # notices, unused, owners (users.info), recovery
    (key,) = life.keys("due.user")
    assert life.services.rotations.rotate(rotate_value("due.user", key), RECIPIENT).ok
    life.reveal_newest(RECIPIENT)
    life.age("old.user", 95)
    life.services.lifecycle_check.run()  # enforcement
    life.services.owners.departed("U0LEAVER01", source="event")
    life.services.unused.disable("due.user", APPROVER, None)
    life.services.key_desk.reply(RECIPIENT)
    life.services.key_desk.home_blocks(APPROVER, approver=True, limit=20)
    for name, mode in (("deleted.user", "delete"), ("disabled.user", "disable")):
        request = file_and_approve(life, [name], mode)
        assert life.services.offboarding.remove(request.id).status == "provisioned"  # type: ignore[union-attr]

    used = {f"iam:{operation}" for operation in life.recorder.operations()}
    assert used - set(REQUIRED_ACTIONS) == set()
    assert {
        "iam:TagUser",
        "iam:GetAccessKeyLastUsed",
        "iam:GetLoginProfile",
        "iam:CreateAccessKey",
        "iam:UpdateAccessKey",
        "iam:DeleteLoginProfile",
        "iam:DeleteSigningCertificate",
        "iam:DeleteSSHPublicKey",
        "iam:DeleteServiceSpecificCredential",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
        "iam:DeleteUser",
    } <= used
