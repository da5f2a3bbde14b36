"""The AWS half of ``iam-user-bot check``: the bot's identity and its IAM permissions, worded as
check lines (the calls themselves are :mod:`bot.aws.selfcheck`'s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.aws.selfcheck import AwsFailure, identity, probe, simulate
from bot.ops.report import CheckLine

# Every IAM action the bot calls (docs/bot-iam-policy.json allows exactly these; a test keeps
# the two in step). sts:GetCallerIdentity needs no permission and is not listed.
READ_ACTIONS = (
    "iam:GetAccountPasswordPolicy",
    "iam:GetAccountSummary",
    "iam:GetGroup",
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
    """The AWS identity line, then the IAM permissions line (simulated, else probed)."""
    try:
        caller = identity(make_client("sts"))
    except AwsFailure as error:
        return [
            CheckLine(
                "aws identity",
                False,
                str(error),
                "configure AWS credentials (AWS_PROFILE, an instance or task role, or AWS_ACCESS_KEY_ID)",
            )
        ]
    arn = caller["Arn"]
    lines = [CheckLine("aws identity", True, f"{arn} in account {caller['Account']}")]
    principal = role_arn(arn)
    if principal is None:
        lines.append(
            CheckLine(
                "iam permissions", False, "running as the account root user", "use a role or user with " + POLICY_HINT
            )
        )
        return lines
    iam = make_client("iam")
    results = simulate(iam, principal, REQUIRED_ACTIONS)
    lines.append(simulation_line(results, principal) if results is not None else probe_line(iam))
    return lines


def simulation_line(results: list[dict[str, Any]], principal: str) -> CheckLine:
    """The permissions line from ``iam:SimulatePrincipalPolicy`` results: denied actions fail it;
    actions allowed only under a condition (missing context values) are named."""
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


def probe_line(iam: Any) -> CheckLine:
    """The permissions line from read-only probes (when simulation is not allowed)."""
    tried, refused = probe(iam)
    if refused:
        return CheckLine("iam permissions", False, "refused: " + ", ".join(refused), POLICY_HINT)
    return CheckLine(
        "iam permissions",
        True,
        f"read-only probes passed ({tried}); writes unverified because iam:SimulatePrincipalPolicy "
        "is not allowed on the bot's own ARN (allow it to have them checked)",
    )
