"""The code keeps to the bot's policy: every per-user write first confirms
``iam-user-bot:managed=true``; a user without it is refused in words before any IAM write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.inventory import Inventory
from bot.aws.keys import KeyKeeper
from bot.aws.removal import Remover
from bot.aws.steps import RunContext, StepRunner
from bot.domain.models import Tag
from bot.domain.plan import MANAGED_TAG, REQUEST_ID_TAG, USER_PATH, Step, StepKind
from bot.domain.rules import PasswordPolicy

READS = ("Get", "List")


class World:
    def __init__(self, iam: Any) -> None:
        self.iam = iam
        self.gateway = IamGateway(iam, boto3.client("sts", region_name="us-east-1"), sleep=lambda s: None)
        self.calls: list[str] = []
        iam.meta.events.register("before-call.iam.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def writes(self) -> list[str]:
        return [name for name in self.calls if not name.startswith(READS)]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        # An administrator the bot did not create (same request-id tag a forger could copy: not enough).
        iam.create_user(UserName="admin", Tags=[{"Key": REQUEST_ID_TAG, "Value": "R-1"}])
        admin = iam.create_policy(PolicyName="Admin", PolicyDocument='{"Version": "2012-10-17", "Statement": '
                                  '[{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')  # fmt: skip
        iam.attach_user_policy(UserName="admin", PolicyArn=admin["Policy"]["Arn"])
        iam.create_login_profile(UserName="admin", Password="Admin-Passw0rd!xyz")
        iam.create_access_key(UserName="admin")
        iam.create_user(UserName="made.by.bot", Path=USER_PATH, Tags=[{"Key": MANAGED_TAG, "Value": "true"}])
        iam.create_login_profile(UserName="made.by.bot", Password="Bot-Passw0rd!xyz")
        yield World(iam)


def admin_state(iam: Any) -> tuple[object, ...]:
    keys = [(k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName="admin")["AccessKeyMetadata"]]
    return (keys, iam.get_login_profile(UserName="admin")["LoginProfile"]["UserName"])


def assert_refused(world: World, call: Any, operation: str) -> None:
    before = admin_state(world.iam)
    world.calls.clear()
    with pytest.raises(IamError) as refused:
        call()
    assert (refused.value.code, refused.value.operation) == ("NotManaged", operation)
    assert "admin was not created by this bot" in str(refused.value)
    assert world.writes() == [], "no IAM write may be attempted on a user the bot did not create"
    assert admin_state(world.iam) == before


def test_credential_writes_refuse_a_user_without_the_managed_tag(world: World) -> None:
    keys = KeyKeeper(world.gateway)
    key_id = world.iam.list_access_keys(UserName="admin")["AccessKeyMetadata"][0]["AccessKeyId"]
    assert_refused(world, lambda: keys.replace_access_key("admin", key_id), "CreateAccessKey")
    assert_refused(world, lambda: keys.reset_login_password("admin", PasswordPolicy()), "UpdateLoginProfile")
    assert_refused(world, lambda: keys.deactivate_access_key("admin", key_id), "UpdateAccessKey")
    assert_refused(world, lambda: keys.lock_login_profile("admin"), "UpdateLoginProfile")
    # The lifecycle's writes: rotation, disabling (owner left, unused), the owner tag back-fill.
    assert_refused(world, lambda: keys.create_access_key("admin"), "CreateAccessKey")
    assert_refused(world, lambda: keys.delete_access_key("admin", key_id), "DeleteAccessKey")
    assert_refused(world, lambda: keys.disable_user("admin"), "UpdateAccessKey")
    assert_refused(world, lambda: Inventory(world.gateway).tag_owner("admin", "U0FORGER01"), "TagUser")
    # The control: the bot's own user is served.
    world.calls.clear()
    assert keys.lock_login_profile("made.by.bot")
    assert world.writes() == ["UpdateLoginProfile"]
    world.calls.clear()
    assert keys.disable_user("made.by.bot").login_profile is True
    assert world.writes() == ["DeleteLoginProfile"]


def test_removal_refuses_a_user_without_the_managed_tag(world: World) -> None:
    remover = Remover(world.gateway)
    assert_refused(world, lambda: remover.delete_user_completely("admin"), "DeleteUser")
    # Rollback needs both the request's id tag and the managed tag: the forged id is not enough.
    world.calls.clear()
    assert remover.rollback_user("admin", "R-1", expect_exists=False) is False
    assert world.writes() == [] and world.iam.get_user(UserName="admin")
    remover.delete_user_completely("made.by.bot")
    assert "DeleteUser" in world.writes()
    with pytest.raises(world.iam.exceptions.NoSuchEntityException):
        world.iam.get_user(UserName="made.by.bot")
    assert "DeleteUserPermissionsBoundary" not in world.calls  # the boundary goes with the user


@pytest.mark.parametrize(
    ("kind", "target", "operation"),
    [
        (StepKind.CREATE_LOGIN_PROFILE, None, "CreateLoginProfile"),
        (StepKind.CREATE_ACCESS_KEY, None, "CreateAccessKey"),
        (StepKind.ADD_USER_TO_GROUP, "admins", "AddUserToGroup"),
        (StepKind.ATTACH_USER_POLICY, "arn:aws:iam::123456789012:policy/Admin", "AttachUserPolicy"),
        (StepKind.DEACTIVATE_ACCESS_KEY, "AKIAEXAMPLEEXAMPLE01", "DeactivateAccessKey"),
        (StepKind.DELETE_LOGIN_PROFILE, None, "DeleteLoginProfile"),
        (StepKind.DELETE_ACCESS_KEY, "AKIAEXAMPLEEXAMPLE01", "DeleteAccessKey"),
        (StepKind.DETACH_USER_POLICY, "arn:aws:iam::123456789012:policy/Admin", "DetachUserPolicy"),
        (StepKind.DELETE_USER, None, "DeleteUser"),
    ],
)
def test_plan_steps_refuse_a_user_without_the_managed_tag(world: World, kind: StepKind, target, operation) -> None:
    world.iam.create_group(GroupName="admins")
    runner = StepRunner(world.gateway)
    step = Step(kind=kind, user_name="admin", target=target)
    context = RunContext("R-1", "123456789012", PasswordPolicy())
    assert_refused(world, lambda: runner.run_step(step, context, rerun=True), operation)


def test_created_users_live_under_the_bots_path_with_the_managed_tag(world: World) -> None:
    runner = StepRunner(world.gateway)
    tags = (Tag(key=MANAGED_TAG, value="true"), Tag(key=REQUEST_ID_TAG, value="R-2"))
    context = RunContext("R-2", "123456789012", PasswordPolicy())
    runner.run_step(Step(kind=StepKind.CREATE_USER, user_name="nina", tags=tags), context)
    user = world.iam.get_user(UserName="nina")["User"]
    assert user["Path"] == USER_PATH and user["Arn"].endswith(f":user{USER_PATH}nina")
    world.calls.clear()
    runner.run_step(Step(kind=StepKind.CREATE_ACCESS_KEY, user_name="nina"), context)
    assert world.calls == ["ListUserTags", "CreateAccessKey"]  # the tag is read first, then the write
