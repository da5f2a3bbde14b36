"""``iam-user-bot check``: is the bot set up to work? One line per check, each with its fix.

Checks, in order: configuration (the environment, per the contract), the database file,
Slack (``auth.test`` with the bot token), the AWS identity (``sts:GetCallerIdentity``, which
needs no permission) and the IAM permissions the bot needs. Permissions are checked with
``iam:SimulatePrincipalPolicy`` on the bot's own ARN when that call is allowed (it evaluates
every action without performing any); otherwise read-only probes run and the write
permissions are reported as unverified. Nothing is created or changed in IAM or Slack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.config import ConfigError, Settings, load_settings

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
    "iam:ListAttachedUserPolicies",
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


def check_configuration() -> tuple[CheckLine, Settings | None]:
    try:
        settings = load_settings()
    except ConfigError as error:
        detail = str(error).removeprefix("configuration: ")
        return CheckLine("configuration", False, detail, "set it in the environment (see README)"), None
    mode = "Socket Mode" if settings.socket_mode else "HTTP mode"
    return CheckLine("configuration", True, f"{mode}, approvals in {settings.approval_channel_id}"), settings


def check_database(settings: Settings) -> CheckLine:
    from bot.store import SCHEMA_VERSION, Store

    try:
        store = Store(settings.database_path)
        store.close()
    except Exception as error:
        return CheckLine(
            "database",
            False,
            f"{settings.database_path}: {error}",
            "point DATABASE_PATH at a writable file on persistent storage",
        )
    return CheckLine("database", True, f"{settings.database_path} at schema version {SCHEMA_VERSION}")


def check_slack(settings: Settings) -> CheckLine:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_base_url, timeout=10)
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown")
        return CheckLine(
            "slack", False, f"auth.test answered {code}", "check SLACK_BOT_TOKEN (reinstall the app for a new token)"
        )
    except OSError as error:
        return CheckLine(
            "slack", False, f"cannot reach {settings.slack_base_url}: {error}", "check SLACK_API_URL and the network"
        )
    return CheckLine("slack", True, f"bot user {answer.get('user')} in workspace {answer.get('team')}")


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
    """Every check, in order. Slack and the database are skipped when the configuration fails."""
    config_line, settings = check_configuration()
    lines = [config_line]
    if settings is not None:
        lines += [check_database(settings), check_slack(settings)]
    lines += check_aws(make_client)
    return lines


def main() -> int:
    """Print one line per check; exit status 0 when all passed, 1 otherwise."""
    lines = run_checks()
    for line in lines:
        print(line.render())
    return 0 if all(line.ok for line in lines) else 1
