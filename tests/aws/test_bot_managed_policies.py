"""A bot-managed policy is attached only while it holds the document the bot ships.

The bot's credentials may create and delete ``iam-user-bot-require-mfa`` and
``iam-user-bot-self-manage-credentials`` with any document (IAM has no condition key on a policy's
content), so a holder of them can put ``"*"`` under either name. ``ensure_bot_policy`` compares an
existing policy's default version with ``bot/policies/`` before the plan goes on, and attaching one
compares again just before ``AttachUserPolicy``. (Found by a review: the bot used to reuse any
policy of that name that carried the managed tag.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.steps import RunContext, StepRunner, bot_policy_document
from bot.domain.plan import MANAGED_TAG, MFA_POLICY_NAME, SELF_MANAGE_POLICY_NAME, USER_PATH, Step, StepKind
from bot.domain.rules import PasswordPolicy

ACCOUNT = "123456789012"  # moto's account
MFA_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{MFA_POLICY_NAME}"
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
MANAGED = [{"Key": MANAGED_TAG, "Value": "true"}]
CONTEXT = RunContext("R-ABCDEFGH", ACCOUNT, PasswordPolicy())


class Bot:
    """A step runner on a moto IAM client, with every IAM operation it calls recorded."""

    def __init__(self, iam: Any) -> None:
        self.iam = iam
        self.runner = StepRunner(IamGateway(iam, boto3.client("sts", region_name="us-east-1"), sleep=lambda s: None))
        self.calls: list[str] = []
        iam.meta.events.register("before-call.iam.*", lambda model, **_: self.calls.append(model.name))

    def ensure(self, name: str = MFA_POLICY_NAME) -> dict[str, object]:
        return self.runner.run_step(Step(kind=StepKind.ENSURE_BOT_POLICY, target=name), CONTEXT).record

    def attach(self, user: str, arn: str) -> None:
        self.runner.run_step(Step(kind=StepKind.ATTACH_USER_POLICY, user_name=user, target=arn), CONTEXT)

    def attached(self, user: str) -> list[str]:
        return [p["PolicyArn"] for p in self.iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]]


@pytest.fixture
def bot() -> Iterator[Bot]:
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="nina.newhire", Path=USER_PATH, Tags=MANAGED)
        yield Bot(iam)


def test_a_replaced_policy_under_the_bots_name_is_refused_before_anything_is_attached(bot: Bot) -> None:
    # What the reviewer did with the bot's credentials: CreatePolicy on the exact name, tagged managed.
    bot.iam.create_policy(PolicyName=MFA_POLICY_NAME, PolicyDocument=json.dumps(EVERYTHING), Tags=MANAGED)
    bot.calls.clear()

    with pytest.raises(IamError) as refused:
        bot.ensure()

    assert refused.value.code == "PolicyDocumentChanged" and refused.value.operation == "CreatePolicy"
    assert MFA_POLICY_NAME in str(refused.value) and "`iam-user-bot policy require-mfa`" in str(refused.value)
    assert "attached nothing" in str(refused.value)
    assert bot.calls == ["GetPolicy", "GetPolicy", "GetPolicyVersion"]  # reads only
    assert bot.attached("nina.newhire") == []


def test_the_shipped_document_is_accepted_however_it_was_formatted(bot: Bot) -> None:
    # Created by the operator (say, Terraform): other whitespace and key order, the same document.
    shipped = json.loads(bot_policy_document(SELF_MANAGE_POLICY_NAME))
    reordered = json.dumps(dict(reversed(list(shipped.items()))), indent=4, sort_keys=False)
    bot.iam.create_policy(PolicyName=SELF_MANAGE_POLICY_NAME, PolicyDocument=reordered, Tags=MANAGED)

    record = bot.ensure(SELF_MANAGE_POLICY_NAME)

    assert record == {"policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/{SELF_MANAGE_POLICY_NAME}", "created": False}


def test_a_policy_changed_after_the_ensure_step_is_not_attached(bot: Bot) -> None:
    assert bot.ensure() == {"policy_arn": MFA_ARN, "created": True}
    # Between the account-wide step and the user's attachment, the default version changes.
    bot.iam.create_policy_version(PolicyArn=MFA_ARN, PolicyDocument=json.dumps(EVERYTHING), SetAsDefault=True)
    bot.calls.clear()

    with pytest.raises(IamError) as refused:
        bot.attach("nina.newhire", MFA_ARN)

    assert (refused.value.code, refused.value.operation) == ("PolicyDocumentChanged", "AttachUserPolicy")
    assert "AttachUserPolicy" not in bot.calls and bot.attached("nina.newhire") == []
    # Restored to the shipped document, it is attached; any other policy is attached without the compare.
    bot.iam.create_policy_version(
        PolicyArn=MFA_ARN, PolicyDocument=bot_policy_document(MFA_POLICY_NAME), SetAsDefault=True
    )
    other = bot.iam.create_policy(PolicyName="team-read", PolicyDocument=json.dumps(EVERYTHING))["Policy"]["Arn"]
    bot.calls.clear()
    bot.attach("nina.newhire", MFA_ARN)
    bot.attach("nina.newhire", other)
    assert sorted(bot.attached("nina.newhire")) == sorted([MFA_ARN, other])
    assert bot.calls.count("GetPolicyVersion") == 1


def test_a_policy_of_that_name_in_another_account_is_not_taken_for_the_bots(bot: Bot) -> None:
    from bot.aws.steps import bot_policy_name_of

    assert bot_policy_name_of(MFA_ARN, ACCOUNT) == MFA_POLICY_NAME
    assert bot_policy_name_of(f"arn:aws:iam::210987654321:policy/{MFA_POLICY_NAME}", ACCOUNT) is None
    assert bot_policy_name_of(f"arn:aws:iam::{ACCOUNT}:policy/team/{MFA_POLICY_NAME}", ACCOUNT) is None
    assert bot_policy_name_of("arn:aws:iam::aws:policy/IAMUserChangePassword", ACCOUNT) is None
