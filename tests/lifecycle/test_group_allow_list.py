"""Group memberships under the narrowed policy: ``RemoveUserFromGroup`` is allowed only on the
groups ``AddUserToGroup`` may use (it was every group, so the bot's credentials could take anyone
out of a quarantine or MFA-enforcement group). The bot never needs more: a user it made is only in
allowed groups, so rollback still leaves no trace; a removal that meets a group someone added by
hand stops there and names what is left.

moto evaluates no IAM policy, so a stand-in evaluates the generated policy's one group statement
(IAM matches its ``Resource`` ARN patterns against the group's ARN, path included) on each
membership call the bot makes, and refuses the others with ``AccessDenied`` as IAM would.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.inventory import Inventory
from bot.domain.bot_policy import GROUP_WRITES, PolicyScope, bot_policy
from bot.domain.states import RequestStatus
from tests.conftest import RECIPIENT, REQUESTER
from tests.lifecycle.conftest import Life
from tests.lifecycle.test_offboarding import file_and_approve
from tests.support.lifecycle import load_user
from tests.support.provisioning import (
    FailOnCall,
    build_world,
    full_form,
    make_harness,
    reset_password_policy,
)
from tests.support.provisioning import file_and_approve as approve_new_user

ACCOUNT = "123456789012"
SCOPE = PolicyScope(account=ACCOUNT, boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary", groups=("developers",))


class GroupStatement:
    """IAM's decision on ``AddUserToGroup`` / ``RemoveUserFromGroup`` under ``scope``'s policy."""

    def __init__(self, moto_server: Any, scope: PolicyScope) -> None:
        (self.statement,) = [
            s for s in bot_policy(scope)["Statement"] if s["Effect"] == "Allow" and set(s["Action"]) & set(GROUP_WRITES)
        ]
        self.reader = moto_server.boto3_client("iam")  # a client of its own: no hook, no recursion
        self.refused: list[tuple[str, str]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name not in {a.split(":")[1] for a in GROUP_WRITES}:
            return
        arn = self.reader.get_group(GroupName=params["GroupName"])["Group"]["Arn"]
        if not any(fnmatchcase(arn, pattern) for pattern in self.statement["Resource"]):
            self.refused.append((model.name, params["GroupName"]))
            message = f"not authorized to perform: iam:{model.name} on resource: {arn}"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, model.name)


def test_a_removal_meeting_a_group_outside_the_list_stops_and_names_what_is_left(life: Life, moto_server) -> None:
    life.user("nina.newhire", RECIPIENT)
    load_user(life.iam, "nina.newhire")  # everything IAM makes you remove first, "developers" among it
    life.iam.create_group(GroupName="admins", Path="/ops/")
    life.iam.add_user_to_group(UserName="nina.newhire", GroupName="admins")  # by hand, by an administrator
    request = file_and_approve(life, ["nina.newhire"], "delete")
    iam_says = GroupStatement(moto_server, SCOPE)
    life.services.iam.iam.meta.events.register("before-parameter-build.iam", iam_says)

    failed = life.services.offboarding.remove(request.id)

    assert failed is not None and failed.status is RequestStatus.FAILED
    assert iam_says.refused == [("RemoveUserFromGroup", "admins")]
    error = failed.error or ""
    assert "AccessDenied" in error and "iam:RemoveUserFromGroup" in error
    held = Inventory(life.services.iam).holdings("nina.newhire")
    assert held is not None and "admins" in held.groups  # IAM still holds the membership, and the user
    for thing in ["the user itself", *held.left()]:
        assert thing in error, thing
    assert any("AccessDenied" in m["text"] for m in life.dms(REQUESTER))


def test_rollback_takes_a_new_user_out_of_its_allowed_group(moto_server, slack, iam, tmp_path) -> None:
    world = build_world(iam)  # the template user is in "developers"; the request copies it
    try:
        bot = make_harness(moto_server, slack, tmp_path / "bot.db")
        iam_says = GroupStatement(moto_server, SCOPE)
        bot.gateway.iam.meta.events.register("before-parameter-build.iam", iam_says)
        bot.gateway.iam.meta.events.register("before-call.iam.PutUserPolicy", FailOnCall("PutUserPolicy", 1))
        request = approve_new_user(bot, full_form(world))

        failed = bot.provisioning.provision(request.id)

        assert failed is not None and failed.status is RequestStatus.FAILED and "injected failure" in failed.error
        assert {op for op, _ in bot.recorder.calls} >= {"AddUserToGroup", "RemoveUserFromGroup", "DeleteUser"}
        assert iam_says.refused == []  # both membership calls were within the allow-list
        assert [u["UserName"] for u in iam.list_users()["Users"]] == ["template.user"]
        assert "nina.newhire" not in [u["UserName"] for u in iam.get_group(GroupName="developers")["Users"]]
    finally:
        reset_password_policy(iam)
