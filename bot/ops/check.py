"""``iam-user-bot check``: is the bot set up to work? One line per check, each with its fix.

Every problem is reported in one run: a bad variable does not hide the others, nor the Slack,
database and AWS checks that do not depend on it. Checks, in order: configuration (every bad
or missing variable, one line each), the database file, the public URL (HTTPS), Slack
(``auth.test`` with the bot token; the token's scopes against the app manifest; approvers,
requesters and their user groups exist; in Socket Mode the app-level token), the AWS identity
(``sts:GetCallerIdentity``, which needs no permission) and the IAM permissions the bot needs.
Permissions are checked with ``iam:SimulatePrincipalPolicy`` on the bot's own ARN when that
call is allowed (it evaluates every action without performing any); otherwise read-only probes
run and the write permissions are reported as unverified. Nothing is created or changed in IAM
or Slack (the database file is created and migrated if it does not exist yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from bot.config import APPROVERS_MISSING, SIGNING_SECRET_MISSING, Settings, cross_field_problems, describe_errors

# Every IAM action the bot calls (docs/bot-iam-policy.json allows exactly these; a test keeps
# the two in step). sts:GetCallerIdentity needs no permission and is not listed.
READ_ACTIONS = (
    "iam:GetAccountPasswordPolicy",
    "iam:GetAccountSummary",
    "iam:GetPolicy",
    "iam:GetUser",
    "iam:GetUserPolicy",
    "iam:ListAccessKeys",
    "iam:ListAccountAliases",
    "iam:ListAttachedGroupPolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupPolicies",
    "iam:ListGroups",
    "iam:ListGroupsForUser",
    "iam:ListMFADevices",
    "iam:ListPolicies",
    "iam:ListUserPolicies",
    "iam:ListUserTags",
    "iam:ListUsers",
    "iam:SimulatePrincipalPolicy",
)
WRITE_ACTIONS = (
    "iam:AddUserToGroup",
    "iam:AttachUserPolicy",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:CreatePolicy",
    "iam:CreateUser",
    "iam:DeactivateMFADevice",
    "iam:DeleteAccessKey",
    "iam:DeleteLoginProfile",
    "iam:DeletePolicy",
    "iam:DeleteUser",
    "iam:DeleteUserPermissionsBoundary",
    "iam:DeleteUserPolicy",
    "iam:DeleteVirtualMFADevice",
    "iam:DetachUserPolicy",
    "iam:PutUserPolicy",
    "iam:RemoveUserFromGroup",
    "iam:TagPolicy",
    "iam:TagUser",
    "iam:UpdateAccessKey",
    "iam:UpdateLoginProfile",
)
REQUIRED_ACTIONS = READ_ACTIONS + WRITE_ACTIONS
POLICY_HINT = "attach docs/bot-iam-policy.json to the bot's role or user"
# check answers in seconds, not after a minute of retries against an unreachable endpoint.
CHECK_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=10)


@dataclass(frozen=True)
class CheckLine:
    """One check's outcome: ``ok``, what was found, and (when not ok) how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def render(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix and not self.ok else "")


# How to fix each variable, for the configuration lines (README, "Configuration").
CONFIG_FIXES = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "copy the Signing Secret from the app's Basic Information page",
    "SLACK_APP_TOKEN": "generate an app-level token (xapp-…) with connections:write under Basic Information",
    "SLACK_API_URL": "leave it unset for Slack itself (https://slack.com/api/)",
    "APPROVAL_CHANNEL_ID": "use the channel's ID (channel details → About → Channel ID, C… or G…), not its name",
    "APPROVER_USER_IDS": "use member IDs (profile → ⋮ → Copy member ID, U…), separated by commas",
    "REQUESTER_USER_IDS": "use member IDs (profile → ⋮ → Copy member ID, U…), separated by commas",
    "PUBLIC_BASE_URL": "set the bot's external address, like https://iam-bot.example.org",
    "DATABASE_PATH": "point it at a writable file on persistent local storage",
}
CROSS_FIELD_FIXES = {
    APPROVERS_MISSING: "set APPROVER_USER_IDS to approvers' member IDs (U…), or APPROVER_USERGROUP_ID to a "
    "user group (S…)",
    SIGNING_SECRET_MISSING: "copy the Signing Secret from the app's Basic Information page, or set SLACK_APP_TOKEN "
    "for Socket Mode",
}
CONFIG_FIX_DEFAULT = "set it as the README's Configuration table says"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_configuration() -> tuple[list[CheckLine], Settings | None]:
    """One line when the configuration is valid, else one line per problem (each with its fix)."""
    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        problems = [(message.removeprefix("configuration: "), variable) for variable, message in describe_errors(error)]
        # pydantic checks the rules across variables only when every variable is valid: read them
        # from the environment too, so one run names them all.
        problems += [(problem, "") for problem in cross_field_problems(os.environ)]
        lines = [
            CheckLine(
                "configuration",
                False,
                message,
                CONFIG_FIXES.get(variable, CONFIG_FIX_DEFAULT) if variable else CROSS_FIELD_FIXES.get(message, ""),
            )
            for message, variable in dict.fromkeys(problems)
        ]
        return lines, None
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    return [CheckLine("configuration", True, f"{mode}, approvals in {settings.approval_channel_id}")], settings


def check_database(path: Path) -> CheckLine:
    from bot.storage import open_database

    try:
        version = open_database(path).schema_version
    except Exception as error:
        return CheckLine(
            "database",
            False,
            f"{path}: {error}",
            "point DATABASE_PATH at a writable file on persistent storage",
        )
    return CheckLine("database", True, f"{path} at schema version {version}")


def check_public_url(url: str) -> CheckLine:
    """One-time links must be HTTPS: over plain HTTP the page that reads the key could be altered."""
    parts = urlsplit(url)
    if parts.scheme == "https" or parts.hostname in LOCAL_HOSTS:
        return CheckLine("public url", True, f"one-time links start with {url.rstrip('/')}/credentials/")
    return CheckLine(
        "public url",
        False,
        f"{url} is not HTTPS: the link page, which reads the decryption key, could be altered on the way",
        "serve the bot behind HTTPS and set PUBLIC_BASE_URL=https://…",
    )


def _ids(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip().isalnum() and p.strip()[:1] in ("U", "W"))


@dataclass(frozen=True)
class Inputs:
    """What the checks after the configuration need: from valid settings, or read leniently
    from the environment when the configuration is broken (so one bad variable hides nothing)."""

    database_path: Path
    public_base_url: str | None
    slack_base_url: str
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    approver_ids: tuple[str, ...] = ()
    requester_ids: tuple[str, ...] = ()
    approver_group: str | None = None
    requester_group: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Inputs:
        return cls(
            database_path=settings.database_path,
            public_base_url=str(settings.public_base_url),
            slack_base_url=settings.slack_base_url,
            bot_token=settings.slack_bot_token.get_secret_value(),
            app_token=settings.slack_app_token.get_secret_value() if settings.slack_app_token else None,
            approver_ids=settings.approver_user_ids,
            requester_ids=settings.requester_user_ids,
            approver_group=settings.approver_usergroup_id,
            requester_group=settings.requester_usergroup_id,
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Inputs:
        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        url = get("PUBLIC_BASE_URL")
        base = get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
        return cls(
            database_path=Path(get("DATABASE_PATH") or "iam-user-bot.db"),
            public_base_url=url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname else None,
            slack_base_url=base if base.endswith("/") else base + "/",
            bot_token=get("SLACK_BOT_TOKEN") if get("SLACK_BOT_TOKEN").startswith("xoxb-") else None,
            app_token=get("SLACK_APP_TOKEN") if get("SLACK_APP_TOKEN").startswith("xapp-") else None,
            approver_ids=_ids(get("APPROVER_USER_IDS")),
            requester_ids=_ids(get("REQUESTER_USER_IDS")),
            approver_group=get("APPROVER_USERGROUP_ID") or None,
            requester_group=get("REQUESTER_USERGROUP_ID") or None,
        )


def role_arn(caller_arn: str) -> str | None:
    """The IAM ARN to simulate for a caller ARN: users as they are; an assumed role's session
    ARN becomes its role's ARN (a role with a path is not found this way: probes then run);
    the root user gives None."""
    if ":assumed-role/" in caller_arn:
        prefix, _, rest = caller_arn.partition(":assumed-role/")
        account = prefix.rsplit(":", 1)[-1]
        partition = prefix.split(":")[1]
        return f"arn:{partition}:iam::{account}:role/{rest.split('/')[0]}"
    if caller_arn.endswith(":root"):
        return None
    return caller_arn


def check_aws(make_client: Callable[[str], Any]) -> list[CheckLine]:
    try:
        identity = make_client("sts").get_caller_identity()
    except (ClientError, BotoCoreError) as error:
        return [
            CheckLine(
                "aws identity",
                False,
                str(error),
                "configure AWS credentials (AWS_PROFILE, an instance or task role, or AWS_ACCESS_KEY_ID)",
            )
        ]
    arn = str(identity["Arn"])
    lines = [CheckLine("aws identity", True, f"{arn} in account {identity['Account']}")]
    principal = role_arn(arn)
    if principal is None:
        lines.append(
            CheckLine(
                "iam permissions", False, "running as the account root user", "use a role or user with " + POLICY_HINT
            )
        )
        return lines
    iam = make_client("iam")
    lines.append(_simulate(iam, principal) or _probe(iam))
    return lines


def _simulate(iam: Any, principal: str) -> CheckLine | None:
    try:
        results: list[dict[str, Any]] = []
        for page in iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=principal, ActionNames=list(REQUIRED_ACTIONS)
        ):
            results.extend(page["EvaluationResults"])
    except Exception:  # refused, or not supported by this endpoint (moto): probe instead
        return None
    denied = sorted(
        r["EvalActionName"] for r in results if r["EvalDecision"] != "allowed" and not r.get("MissingContextValues")
    )
    conditional = sorted(
        r["EvalActionName"] for r in results if r["EvalDecision"] != "allowed" and r.get("MissingContextValues")
    )
    if denied:
        return CheckLine("iam permissions", False, "not allowed: " + ", ".join(denied), POLICY_HINT)
    detail = f"all {len(REQUIRED_ACTIONS)} actions allowed (simulated for {principal})"
    if conditional:
        detail += "; allowed only under a condition (the permissions boundary): " + ", ".join(conditional)
    return CheckLine("iam permissions", True, detail)


def _probe(iam: Any) -> CheckLine:
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
            if error.response.get("Error", {}).get("Code") != "NoSuchEntity":  # no password policy is fine
                refused.append(action)
        except (BotoCoreError, ValueError):  # unreachable endpoint, unparsable answer
            refused.append(action)
    if refused:
        return CheckLine("iam permissions", False, "refused: " + ", ".join(refused), POLICY_HINT)
    return CheckLine(
        "iam permissions",
        True,
        f"read-only probes passed ({len(probes)}); writes unverified because iam:SimulatePrincipalPolicy "
        "is not allowed on the bot's own ARN (allow it to have them checked)",
    )


def default_client(service: str) -> Any:
    session = boto3.session.Session()
    return session.client(service, config=CHECK_CLIENT_CONFIG, region_name=session.region_name or "us-east-1")


def run_checks(make_client: Callable[[str], Any] = default_client) -> list[CheckLine]:
    """Every check, in order. With a broken configuration, every check that does not depend on
    the broken variables still runs (database, public URL, Slack, AWS)."""
    from bot.ops.check_slack import check_slack

    lines, settings = check_configuration()
    inputs = Inputs.from_settings(settings) if settings is not None else Inputs.from_environment(os.environ)
    lines.append(check_database(inputs.database_path))
    if inputs.public_base_url:
        lines.append(check_public_url(inputs.public_base_url))
    if inputs.bot_token:
        lines += check_slack(inputs)
    lines += check_aws(make_client)
    return lines


def main() -> int:
    """Print one line per check; exit status 0 when all passed, 1 otherwise."""
    lines = run_checks()
    for line in lines:
        print(line.render())
    return 0 if all(line.ok for line in lines) else 1
