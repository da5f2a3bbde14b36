"""The AWS calls of ``iam-user-bot check``: who the bot is, and whether its IAM permissions are in
place, by simulation when it may simulate, else by read-only probes. Nothing is created or changed.

Answers are plain facts; :mod:`bot.ops.check_aws` words them as check lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.clients import error_code

# check answers in seconds, not after a minute of retries against an unreachable endpoint.
CHECK_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=10)
# What identity() and probe() may raise or meet: IAM's refusal, or no answer at all.
AwsFailure = (ClientError, BotoCoreError)


def check_client(service: str) -> Any:
    """A boto3 client for ``service`` with the check's short retries (standard boto3 chain)."""
    session = boto3.session.Session()
    return session.client(service, config=CHECK_CLIENT_CONFIG, region_name=session.region_name or "us-east-1")


def identity(sts: Any) -> dict[str, str]:
    """``sts:GetCallerIdentity`` (needs no permission): ``Arn`` and ``Account``.

    Raises:
        ClientError, BotoCoreError: no credentials, or the endpoint did not answer.
    """
    answer = sts.get_caller_identity()
    return {"Arn": str(answer["Arn"]), "Account": str(answer["Account"])}


def simulate(iam: Any, principal: str, actions: Sequence[str]) -> list[dict[str, Any]] | None:
    """``iam:SimulatePrincipalPolicy`` of ``actions`` for ``principal``: its evaluation results,
    or None when the call is refused or not supported (moto)."""
    try:
        results: list[dict[str, Any]] = []
        for page in iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=principal, ActionNames=list(actions)
        ):
            results.extend(page["EvaluationResults"])
    except Exception:  # refused, or not supported by this endpoint: the caller probes instead
        return None
    return results


def probe(iam: Any) -> tuple[int, list[str]]:
    """Read-only calls the bot makes, each once: ``(how many were tried, the actions refused)``.

    No custom password policy (``NoSuchEntity``) is not a refusal.
    """
    probes = {
        "iam:ListUsers": lambda: iam.list_users(MaxItems=1),
        "iam:ListGroups": lambda: iam.list_groups(MaxItems=1),
        "iam:ListPolicies": lambda: iam.list_policies(Scope="Local", MaxItems=1),
        "iam:GetAccountSummary": iam.get_account_summary,
        "iam:ListAccountAliases": iam.list_account_aliases,
        "iam:GetAccountPasswordPolicy": iam.get_account_password_policy,
    }
    refused = []
    for action, call in probes.items():
        try:
            call()
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                refused.append(action)
        except (BotoCoreError, ValueError):  # unreachable endpoint, unparsable answer
            refused.append(action)
    return len(probes), refused
