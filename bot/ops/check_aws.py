"""The AWS half of ``iam-user-bot check``: the bot's identity and its IAM permissions, worded as
check lines (the calls themselves are :mod:`bot.aws.selfcheck`'s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.aws.selfcheck import (
    TAKEOVER_ACTIONS,
    AwsFailure,
    BotPolicyState,
    Failure,
    Probes,
    Scoping,
    classify,
    identity,
    probe,
    read_bot_policies,
    simulate,
    simulate_scoping,
)
from bot.domain.bot_policy import READ_ACTIONS, WRITE_ACTIONS
from bot.domain.plan import USER_PATH, bot_policy_arn
from bot.ops.report import CheckLine

# Every IAM action the bot calls (bot.domain.bot_policy allows exactly these; a test keeps the
# code in step). sts:GetCallerIdentity needs no permission and is not listed.
REQUIRED_ACTIONS = READ_ACTIONS + WRITE_ACTIONS
POLICY_HINT = (
    "attach the output of `iam-user-bot policy bot --account … --boundary …` to the bot's role or user "
    "(docs/bot-iam-policy.json lists every action)"
)
# Why sts:GetCallerIdentity failed → how to fix it (bot.aws.selfcheck.Failure).
UNREACHABLE_FIX = (
    "let the bot reach AWS over HTTPS (firewall, DNS, HTTPS_PROXY for a proxy); if AWS_ENDPOINT_URL is set, "
    "check that it points at a live endpoint"
)
IDENTITY_FIXES = {
    Failure.UNREACHABLE: UNREACHABLE_FIX,
    Failure.NO_CREDENTIALS: "configure AWS credentials (AWS_PROFILE, an instance or task role, or AWS_ACCESS_KEY_ID)",
    Failure.REJECTED: "the credentials are unknown, disabled or expired: renew the session, or set a valid "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    Failure.DENIED: "sts:GetCallerIdentity needs no permission, so an explicit deny (an SCP or a VPC endpoint "
    "policy) blocks it: ask your AWS administrator",
    Failure.OTHER: "configure AWS credentials (AWS_PROFILE, an instance or task role, or AWS_ACCESS_KEY_ID)",
}
IDENTITY_WORDS = {
    Failure.UNREACHABLE: "cannot reach AWS",
    Failure.NO_CREDENTIALS: "no AWS credentials",
    Failure.REJECTED: "AWS refused the credentials",
    Failure.DENIED: "AWS denied sts:GetCallerIdentity",
    Failure.OTHER: "sts:GetCallerIdentity failed",
}
SCOPING_HINT = (
    "replace the bot's policy with the output of `iam-user-bot policy bot --account … --boundary …` (docs/deploy.md)"
)
BOUNDARY_HINT = (
    "set a permissions boundary: attach the output of `iam-user-bot policy bot --account … --boundary ARN`, or "
    "deploy deploy/iam-user-bot-role.yaml with PermissionsBoundaryArn (docs/security-model.md)"
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
    """The AWS identity line, the IAM permissions line (simulated, else probed), the scoping line
    and the bot-managed policies' line."""
    try:
        caller = identity(make_client("sts"))
    except AwsFailure as error:
        kind = classify(error)
        return [CheckLine("aws identity", False, f"{IDENTITY_WORDS[kind]}: {error}", IDENTITY_FIXES[kind])]
    arn = caller["Arn"]
    lines = [CheckLine("aws identity", True, f"{arn} in account {caller['Account']}")]
    principal = role_arn(arn)
    if principal is None:
        lines.append(
            CheckLine(
                "iam permissions",
                False,
                "running as the account root user",
                "run as a role or user instead, and " + POLICY_HINT,
            )
        )
        return lines
    iam = make_client("iam")
    results = simulate(iam, principal, REQUIRED_ACTIONS)
    if results is not None:
        lines.append(simulation_line(results, principal))
    else:
        found = probe(iam)
        lines.append(probe_line(found))
        if found.unreachable is not None:
            return lines  # no scoping line: IAM did not answer, which the line above says
    lines.append(scoping_line(simulate_scoping(iam, principal, caller["Account"], USER_PATH), principal))
    lines.append(bot_policies_line(read_bot_policies(iam, caller["Account"]), caller["Account"]))
    return lines


def bot_policies_line(states: dict[str, BotPolicyState] | None, account: str) -> CheckLine:
    """One line: whether the bot-managed policies in IAM hold the shipped documents. One that does
    not (someone changed or replaced it) fails: the bot refuses to attach it, so requests that ask
    for it fail until it is restored."""
    name = "bot policies"
    if states is None:
        return CheckLine(
            name,
            True,
            "could not read the bot-managed policies (iam:GetPolicy, iam:GetPolicyVersion)",
            POLICY_HINT,
            warn=True,
        )
    changed = sorted(policy for policy, state in states.items() if state is BotPolicyState.CHANGED)
    if changed:
        restore = " and ".join(
            f"aws iam create-policy-version --policy-arn {bot_policy_arn(account, policy)} --set-as-default "
            f'--policy-document "$(iam-user-bot policy {policy.removeprefix("iam-user-bot-")})"'
            for policy in changed
        )
        return CheckLine(
            name,
            False,
            f"{', '.join(changed)}: not the document this bot ships (changed or replaced in IAM); the bot "
            "refuses to attach it, so requests that need it fail",
            f"find out who changed it (CloudTrail), then restore it: {restore}",
        )
    found = {BotPolicyState.SHIPPED: "holds the shipped document", BotPolicyState.ABSENT: "not created yet"}
    return CheckLine(name, True, "; ".join(f"{policy} {found[state]}" for policy, state in sorted(states.items())))


def scoping_line(scoping: Scoping | None, principal: str) -> CheckLine:
    """One line: whether the deployed policy keeps the bot to its own users (simulated), or
    that it could not be checked (no ``iam:SimulatePrincipalPolicy`` here: moto, or refused)."""
    name = "iam scoping"
    if scoping is None:
        return CheckLine(
            name,
            True,
            "could not check that writes stay on the bot's own users: iam:SimulatePrincipalPolicy is not available",
            "allow iam:SimulatePrincipalPolicy on the bot's own ARN (docs/bot-iam-policy.json does)",
            warn=True,
        )
    problems = []
    if scoping.allowed_on_unmanaged:
        problems.append(f"{', '.join(scoping.allowed_on_unmanaged)} allowed on a user the bot did not create")
    if scoping.boundary_removal_allowed:
        problems.append("iam:DeleteUserPermissionsBoundary allowed")
    if scoping.granting_without_boundary:
        # A FAIL, not a warning: this is an account takeover by whoever holds the credentials,
        # and a warning leaves check's exit status 0.
        granted = ", ".join(
            f"{action} of AdministratorAccess" if action == "iam:AttachUserPolicy" else action
            for action in scoping.granting_without_boundary
        )
        problems.append(
            f"{granted} allowed on a managed user without a permissions boundary: whoever holds the bot's "
            "credentials can create a user, grant it everything and make it a key (account administrator)"
        )
    missing = sorted(set(TAKEOVER_ACTIONS) - set(scoping.allowed_on_managed))
    if problems:
        only_boundary = not scoping.allowed_on_unmanaged and not scoping.boundary_removal_allowed
        return CheckLine(name, False, "; ".join(problems), BOUNDARY_HINT if only_boundary else SCOPING_HINT)
    if missing:
        return CheckLine(name, False, f"{', '.join(missing)} denied even on the bot's own users", SCOPING_HINT)
    return CheckLine(
        name,
        True,
        "key and password writes allowed on a managed user, denied on a user the bot did not create; "
        "granting policies needs the permissions boundary; "
        f"boundary removal denied (simulated for {principal})",
    )


def simulation_line(results: list[dict[str, Any]], principal: str) -> CheckLine:
    """The permissions line from ``iam:SimulatePrincipalPolicy`` results: denied actions fail it;
    actions allowed only under a condition (missing context values: the managed tag, the
    boundary, the policy allow-list) are named; :func:`scoping_line` checks those conditions."""
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
        detail += "; allowed only under a condition (managed tag, boundary, allow-list): " + ", ".join(conditional)
    return CheckLine("iam permissions", True, detail)


def probe_line(found: Probes) -> CheckLine:
    """The permissions line from read-only probes (when simulation is not allowed)."""
    if found.unreachable is not None:
        return CheckLine("iam permissions", False, f"cannot reach IAM: {found.unreachable}", UNREACHABLE_FIX)
    if found.refused:
        return CheckLine("iam permissions", False, "refused: " + ", ".join(found.refused), POLICY_HINT)
    return CheckLine(
        "iam permissions",
        True,
        f"read-only probes passed ({found.tried}); writes unverified because iam:SimulatePrincipalPolicy "
        "is not allowed on the bot's own ARN (allow it to have them checked)",
    )
