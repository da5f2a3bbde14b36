"""The AWS calls of ``iam-user-bot check``: who the bot is, and whether its IAM permissions are in
place, by simulation when it may simulate, else by read-only probes. Nothing is created or changed.

Answers are plain facts; :mod:`bot.ops.check_aws` words them as check lines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as NoConnection

from bot.aws.clients import IamError, error_code
from bot.aws.iam import IamGateway
from bot.aws.steps import BOT_POLICY_FILES, bot_policy_document
from bot.domain.bot_policy import GRANTING_WRITES  # on a managed user, only with the boundary on it
from bot.domain.plan import bot_policy_arn

# check answers in seconds, not after a minute of retries against an unreachable endpoint.
CHECK_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=10)
# What identity() and probe() may raise or meet: IAM's refusal, or no answer at all.
AwsFailure = (ClientError, BotoCoreError)
# Error codes with which AWS turns down the credentials themselves (unknown, disabled, expired,
# wrongly signed), as opposed to a call they may not make.
REJECTED_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "RequestExpired",
    }
)


class Failure(StrEnum):
    """Why an AWS call of ``check`` failed; each has its own fix."""

    UNREACHABLE = "unreachable"  # no answer: network, DNS, TLS, proxy, or a wrong AWS_ENDPOINT_URL
    NO_CREDENTIALS = "no credentials"  # boto3 found none, or the named profile does not exist
    REJECTED = "rejected"  # AWS answered: the credentials are unknown, disabled or expired
    DENIED = "denied"  # AWS answered: valid credentials, but this call is not allowed
    OTHER = "other"


def classify(error: BaseException) -> Failure:
    """The :class:`Failure` of an exception raised by a boto3 call."""
    if isinstance(error, NoConnection | HTTPClientError):
        return Failure.UNREACHABLE
    missing = (NoCredentialsError, PartialCredentialsError, ProfileNotFound, CredentialRetrievalError, SSOError)
    if isinstance(error, (*missing, TokenRetrievalError)):
        return Failure.NO_CREDENTIALS
    if isinstance(error, ClientError):
        return Failure.REJECTED if error_code(error) in REJECTED_CODES else Failure.DENIED
    return Failure.OTHER


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


# The writes that take a user over (a key, a password): allowed on the bot's users only.
TAKEOVER_ACTIONS = ("iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile")
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
PROBE_USER = "iam-user-bot-check-probe"  # never created: simulation needs only its ARN


@dataclass(frozen=True)
class Scoping:
    """What simulating the bot's policy on users found: the takeover writes allowed on a user
    tagged managed (should be all), allowed on a user without the tag (should be none), whether
    removing a managed user's boundary is allowed (should not be), and the granting writes
    (``AttachUserPolicy`` of ``AdministratorAccess``, ``PutUserPolicy``) allowed on a managed user
    that carries no permissions boundary (should be none: a boundary is required)."""

    allowed_on_managed: tuple[str, ...]
    allowed_on_unmanaged: tuple[str, ...]
    boundary_removal_allowed: bool
    granting_without_boundary: tuple[str, ...] = ()


def simulate_scoping(iam: Any, principal: str, account: str, user_path: str) -> Scoping | None:
    """``iam:SimulatePrincipalPolicy`` of the takeover writes on a (never created) user under
    ``user_path`` tagged ``iam-user-bot:managed=true``, the same on one without the tag at ``/``,
    ``DeleteUserPermissionsBoundary`` on the managed one, and the granting writes on the managed
    one with ``iam:PolicyARN`` = ``AdministratorAccess`` and no ``iam:PermissionsBoundary`` in the
    context (a user without a boundary). Four calls; None when one is refused or not supported
    (moto)."""
    managed_arn = f"arn:aws:iam::{account}:user{user_path}{PROBE_USER}"
    other_arn = f"arn:aws:iam::{account}:user/{PROBE_USER}"
    tagged = [
        {
            "ContextKeyName": "aws:ResourceTag/iam-user-bot:managed",
            "ContextKeyValues": ["true"],
            "ContextKeyType": "string",
        }
    ]

    def allowed(actions: Sequence[str], resource: str, context: list[dict[str, Any]]) -> tuple[str, ...]:
        answer = iam.simulate_principal_policy(
            PolicySourceArn=principal, ActionNames=list(actions), ResourceArns=[resource], ContextEntries=context
        )
        return tuple(sorted(r["EvalActionName"] for r in answer["EvaluationResults"] if r["EvalDecision"] == "allowed"))

    administrator = [
        {"ContextKeyName": "iam:PolicyARN", "ContextKeyValues": [ADMINISTRATOR_ACCESS], "ContextKeyType": "string"}
    ]
    try:
        return Scoping(
            allowed_on_managed=allowed(TAKEOVER_ACTIONS, managed_arn, tagged),
            allowed_on_unmanaged=allowed(TAKEOVER_ACTIONS, other_arn, []),
            boundary_removal_allowed=bool(allowed(["iam:DeleteUserPermissionsBoundary"], managed_arn, tagged)),
            granting_without_boundary=allowed(GRANTING_WRITES, managed_arn, tagged + administrator),
        )
    except Exception:  # refused, or not supported by this endpoint: the caller says it could not check
        return None


class BotPolicyState(StrEnum):
    """What IAM holds under the name of a bot-managed policy."""

    ABSENT = "absent"  # not created yet: the first request that needs it creates it
    SHIPPED = "shipped"  # the document in bot/policies/
    CHANGED = "changed"  # another document: the bot refuses to attach it


def read_bot_policies(iam: Any, account: str) -> dict[str, BotPolicyState] | None:
    """Each bot-managed policy's state in ``account`` (``GetPolicy``, ``GetPolicyVersion``; the
    default version compared with the shipped document as JSON values). None when a read is
    refused or IAM does not answer."""
    gateway = IamGateway(iam, sts=None)
    states: dict[str, BotPolicyState] = {}
    try:
        for name in BOT_POLICY_FILES:
            document = gateway.policy_document(bot_policy_arn(account, name))
            if document is None:
                states[name] = BotPolicyState.ABSENT
            else:
                shipped = document == json.loads(bot_policy_document(name))
                states[name] = BotPolicyState.SHIPPED if shipped else BotPolicyState.CHANGED
    except (IamError, *AwsFailure):
        return None
    return states


@dataclass(frozen=True)
class Probes:
    """What the read-only probes found: how many ran, the actions refused, and when IAM did not
    answer at all, that error in words (the probes stop there)."""

    tried: int
    refused: list[str]
    unreachable: str | None = None


def probe(iam: Any) -> Probes:
    """Read-only calls the bot makes, each once. No custom password policy (``NoSuchEntity``) is
    not a refusal; an endpoint that does not answer stops the probes."""
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
        except (BotoCoreError, ValueError) as error:  # no answer, or an unparsable one
            if classify(error) is Failure.UNREACHABLE:
                return Probes(len(probes), refused, str(error))
            refused.append(action)
    return Probes(len(probes), refused)
