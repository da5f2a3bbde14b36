"""What was approved is what runs: a copied inline policy edited after approval is not copied."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from bot.aws.iam import IamError, IamGateway
from bot.aws.steps import RunContext, StepRunner
from bot.domain.plan import Step, StepKind, policy_document_sha256
from bot.domain.rules import PasswordPolicy

APPROVED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}
EDITED = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture
def runner():
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="template")
        iam.create_user(UserName="nina", Tags=[{"Key": "iam-user-bot:managed", "Value": "true"}])
        yield iam, StepRunner(IamGateway(iam, boto3.client("sts", region_name="us-east-1"), sleep=lambda s: None))


def copy_step(digest: str) -> Step:
    return Step(
        kind=StepKind.PUT_USER_POLICY,
        user_name="nina",
        target="s3-read",
        source_user="template",
        document_sha256=digest,
    )


def test_the_approved_document_is_copied(runner) -> None:
    iam, steps = runner
    iam.put_user_policy(UserName="template", PolicyName="s3-read", PolicyDocument=json.dumps(APPROVED))
    steps.run_step(copy_step(policy_document_sha256(APPROVED)), RunContext("R-1", "123456789012", PasswordPolicy()))
    assert iam.get_user_policy(UserName="nina", PolicyName="s3-read")["PolicyDocument"] == APPROVED


def test_a_document_edited_after_approval_is_refused(runner) -> None:
    iam, steps = runner
    iam.put_user_policy(UserName="template", PolicyName="s3-read", PolicyDocument=json.dumps(EDITED))
    with pytest.raises(IamError) as refused:
        steps.run_step(copy_step(policy_document_sha256(APPROVED)), RunContext("R-1", "123456789012", PasswordPolicy()))
    assert refused.value.code == "PlanChanged" and "file the request again" in str(refused.value)
    assert iam.list_user_policies(UserName="nina")["PolicyNames"] == []
