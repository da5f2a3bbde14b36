"""The bot's own IAM policy: every scoping statement asserted (moto evaluates no condition), the
shipped file is the generator's output, and parliament finds no escalation that reaches a user
the bot did not create."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from bot.cli import main
from bot.domain.bot_policy import (
    GRANTING_WRITES,
    MANAGED_USER_WRITES,
    READ_ACTIONS,
    WRITE_ACTIONS,
    PolicyScope,
    bot_policy,
    policy_text,
)
from bot.domain.plan import USER_PATH

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/DeveloperBoundary"
MANAGED = {"StringEquals": {"aws:ResourceTag/iam-user-bot:managed": "true"}}
NEW_MANAGED = {"StringEquals": {"aws:RequestTag/iam-user-bot:managed": "true"}}
FULL = PolicyScope(
    account=ACCOUNT,
    boundary_arn=BOUNDARY,
    groups=("developers", "/teams/"),
    policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess", f"arn:aws:iam::{ACCOUNT}:policy/app-*"),
)


def by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def actions_of(statement: dict[str, Any]) -> set[str]:
    listed = statement["Action"]
    return {listed} if isinstance(listed, str) else set(listed)


def test_the_shipped_policy_is_the_generators_default() -> None:
    assert (ROOT / "docs" / "bot-iam-policy.json").read_text() == policy_text(bot_policy())


def test_every_allowed_write_is_scoped_and_reads_are_broad() -> None:
    statements = by_sid(bot_policy())
    assert actions_of(statements["ReadAccountUsersGroupsAndPolicies"]) == set(READ_ACTIONS)
    assert statements["ReadAccountUsersGroupsAndPolicies"]["Resource"] == "*"
    assert all(a.startswith(("iam:Get", "iam:List", "iam:Simulate")) for a in READ_ACTIONS)
    allowed_writes = {
        a for s in statements.values() if s["Effect"] == "Allow" for a in actions_of(s) if a not in READ_ACTIONS
    }
    assert allowed_writes == set(WRITE_ACTIONS)
    for statement in statements.values():
        if statement["Effect"] == "Allow" and statement["Sid"] != "ReadAccountUsersGroupsAndPolicies":
            assert statement["Resource"] != "*" and "*" not in json.dumps(statement["Action"]), statement["Sid"]


def test_writes_on_existing_users_need_the_managed_tag() -> None:
    statements = by_sid(bot_policy())
    writes = statements["WriteOnlyUsersTaggedManaged"]
    assert actions_of(writes) == set(MANAGED_USER_WRITES)
    assert {"iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile"} <= actions_of(writes)
    assert (writes["Resource"], writes["Condition"]) == ("arn:aws:iam::*:user/*", MANAGED)
    for sid, action in (
        ("AttachOnlyAllowedPoliciesToManagedUsers", "iam:AttachUserPolicy"),
        ("PutInlinePoliciesOnlyOnManagedUsers", "iam:PutUserPolicy"),
    ):
        assert (actions_of(statements[sid]), statements[sid]["Condition"]) == ({action}, MANAGED)
    # No statement allows a per-user write without that condition.
    per_user = set(MANAGED_USER_WRITES) | set(GRANTING_WRITES)
    for statement in statements.values():
        if statement["Effect"] == "Allow" and actions_of(statement) & per_user:
            assert statement["Condition"]["StringEquals"]["aws:ResourceTag/iam-user-bot:managed"] == "true"


def test_users_are_created_and_tagged_only_under_the_bots_path_with_the_managed_tag() -> None:
    statements = by_sid(bot_policy())
    path_users = f"arn:aws:iam::*:user{USER_PATH}*"
    create, tag = statements["CreateUsersOnlyTaggedManaged"], statements["TagOnlyNewUsersUnderTheBotsPath"]
    assert (actions_of(create), create["Resource"], create["Condition"]) == (
        {"iam:CreateUser"},
        path_users,
        NEW_MANAGED,
    )
    assert (actions_of(tag), tag["Resource"], tag["Condition"]) == ({"iam:TagUser"}, path_users, NEW_MANAGED)
    # Nothing else allows TagUser, and no statement allows UntagUser or UpdateUser (a path move).
    taggers = [s["Sid"] for s in statements.values() if s["Effect"] == "Allow" and "iam:TagUser" in actions_of(s)]
    assert taggers == ["TagOnlyNewUsersUnderTheBotsPath"]
    allowed = {a for s in statements.values() if s["Effect"] == "Allow" for a in actions_of(s)}
    assert not allowed & {"iam:UntagUser", "iam:UpdateUser", "iam:PutUserPermissionsBoundary"}
    # And whatever else is attached: the bot's tags never come off, nor go onto other users.
    untag, retag = statements["NeverUntagTheBotsTags"], statements["NeverTagOtherUsersWithTheBotsTags"]
    bot_keys = {"ForAnyValue:StringLike": {"aws:TagKeys": ["iam-user-bot:*"]}}
    assert (untag["Effect"], actions_of(untag), untag["Resource"], untag["Condition"]) == (
        "Deny",
        {"iam:UntagUser"},
        "*",
        bot_keys,
    )
    assert (retag["Effect"], actions_of(retag), retag["NotResource"], retag["Condition"]) == (
        "Deny",
        {"iam:TagUser"},
        path_users,
        bot_keys,
    )


def test_a_boundary_can_never_be_removed_or_changed() -> None:
    for scope in (PolicyScope(), FULL):
        deny = by_sid(bot_policy(scope))["NeverRemoveOrChangeABoundary"]
        assert (deny["Effect"], deny["Resource"], "Condition" in deny) == ("Deny", "*", False)
        assert actions_of(deny) == {"iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary"}


def test_a_configured_boundary_is_required_to_create_users_and_to_grant_them_permissions() -> None:
    statements = by_sid(bot_policy(FULL))
    create = statements["CreateUsersOnlyTaggedManaged"]
    assert create["Resource"] == f"arn:aws:iam::{ACCOUNT}:user{USER_PATH}*"
    assert create["Condition"] == {**NEW_MANAGED, "ArnEquals": {"iam:PermissionsBoundary": BOUNDARY}}
    for sid in ("AttachOnlyAllowedPoliciesToManagedUsers", "PutInlinePoliciesOnlyOnManagedUsers"):
        assert statements[sid]["Condition"]["StringEquals"] == MANAGED["StringEquals"]
        assert statements[sid]["Condition"]["ArnEquals"] == {"iam:PermissionsBoundary": BOUNDARY}
    # Rollback's removals still work on managed users without the boundary.
    assert statements["WriteOnlyUsersTaggedManaged"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/iam-user-bot:managed": "true"}
    }


def test_groups_and_attachable_policies_stay_within_their_allow_lists() -> None:
    default, full = by_sid(bot_policy()), by_sid(bot_policy(FULL))
    assert default["AddUsersOnlyToAllowedGroups"]["Resource"] == [f"arn:aws:iam::*:group{USER_PATH}*"]
    assert full["AddUsersOnlyToAllowedGroups"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:group/developers",
        f"arn:aws:iam::{ACCOUNT}:group/teams/*",
    ]
    assert "ArnLike" not in default["AttachOnlyAllowedPoliciesToManagedUsers"]["Condition"]
    assert full["AttachOnlyAllowedPoliciesToManagedUsers"]["Condition"]["ArnLike"] == {
        "iam:PolicyARN": [
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            f"arn:aws:iam::{ACCOUNT}:policy/app-*",
            f"arn:aws:iam::{ACCOUNT}:policy/iam-user-bot-require-mfa",
            f"arn:aws:iam::{ACCOUNT}:policy/iam-user-bot-self-manage-credentials",
            "arn:aws:iam::aws:policy/IAMUserChangePassword",
        ]
    }


def test_bot_managed_policies_only_under_their_own_names() -> None:
    statements = by_sid(bot_policy(FULL))
    own = [
        f"arn:aws:iam::{ACCOUNT}:policy/iam-user-bot-require-mfa",
        f"arn:aws:iam::{ACCOUNT}:policy/iam-user-bot-self-manage-credentials",
    ]
    create, delete = statements["CreateOnlyTheBotManagedPolicies"], statements["DeleteOnlyTheBotManagedPolicies"]
    assert (actions_of(create), create["Resource"], create["Condition"]) == (
        {"iam:CreatePolicy", "iam:TagPolicy"},
        own,
        NEW_MANAGED,
    )
    assert (actions_of(delete), delete["Resource"], delete["Condition"]) == ({"iam:DeletePolicy"}, own, MANAGED)
    allowed = {a for s in statements.values() if s["Effect"] == "Allow" for a in actions_of(s)}
    assert not allowed & {"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"}


def confined(statement: dict[str, Any]) -> bool:
    """Whether an Allow statement reaches only the bot's own users (or allow-listed groups)."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    condition = statement.get("Condition", {}).get("StringEquals", {})
    if all(":group/" in r and not r.endswith(":group/*") for r in resources):
        return True  # AddUserToGroup: IAM checks the group; only allow-listed groups
    if condition.get("aws:ResourceTag/iam-user-bot:managed") == "true":
        return True
    return condition.get("aws:RequestTag/iam-user-bot:managed") == "true" and all(
        r.endswith(f":user{USER_PATH}*") for r in resources
    )


@pytest.mark.parametrize("scope", [PolicyScope(), FULL], ids=["shipped", "configured"])
def test_parliament_finds_no_escalation_beyond_the_bots_own_users(scope: PolicyScope) -> None:
    document = bot_policy(scope)
    findings = analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
    issues = {f.issue for f in findings}
    # parliament's escalation auditor reads actions only; the statements holding them are what
    # decides. Its six known paths are all here, and each is confined to the bot's users.
    escalations = {f.location["type"]: f.location["actions"] for f in findings if f.issue == "PRIVILEGE_ESCALATION"}
    assert set(escalations) == {
        "CreateAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "AttachUserPolicy",
        "PutUserPolicy",
        "AddUserToGroup",
    }
    lowered = {s["Sid"]: {a.lower() for a in actions_of(s)} for s in document["Statement"] if s["Effect"] == "Allow"}
    statements = by_sid(document)
    for path, actions in escalations.items():
        holders = [sid for sid, acts in lowered.items() if set(actions) & acts]
        assert holders and all(confined(statements[sid]) for sid in holders), (path, holders)
    # Nothing else parliament knows beyond the broad reads (RESOURCE_STAR) and the write
    # families it lists for review, every one of them in a confined statement.
    assert issues <= {"PRIVILEGE_ESCALATION", "CREDENTIALS_EXPOSURE", "PERMISSIONS_MANAGEMENT_ACTIONS", "RESOURCE_STAR"}
    for finding in findings:
        if finding.issue in ("CREDENTIALS_EXPOSURE", "PERMISSIONS_MANAGEMENT_ACTIONS"):
            for action in finding.location["actions"]:
                holders = [sid for sid, acts in lowered.items() if action in acts]
                assert all(
                    confined(statements[sid]) or sid.startswith(("RemoveUsers", "DeleteOnly", "CreateOnly"))
                    for sid in holders
                ), (action, holders)
    star = [f for f in findings if f.issue == "RESOURCE_STAR"]
    assert len(star) == 1  # the read statement, and nothing else with Resource "*"


def test_policy_bot_prints_the_configured_policy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "bot", "--account", ACCOUNT, "--boundary", BOUNDARY, "--groups", "developers, /teams/"]
    argv += ["--policies", f"arn:aws:iam::aws:policy/ReadOnlyAccess,arn:aws:iam::{ACCOUNT}:policy/app-*"]
    assert main(argv) == 0
    assert capsys.readouterr().out == policy_text(bot_policy(FULL))
    assert main(["policy", "bot"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs" / "bot-iam-policy.json").read_text()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--account", "12345"], "12-digit"),
        (["--boundary", "DeveloperBoundary"], "--boundary must be a managed policy ARN"),
        (["--policies", "ReadOnlyAccess"], "'ReadOnlyAccess' is not one"),
        (["--groups", "/teams"], "not '/teams'"),
    ],
)
def test_policy_bot_refuses_options_it_cannot_scope_with(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "bot", *argv]) == 2
    captured = capsys.readouterr()
    assert problem in captured.err and captured.out == ""


def test_scoping_options_go_with_the_bot_policy_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "require-mfa", "--account", ACCOUNT]) == 2
    assert "go with 'policy bot'" in capsys.readouterr().err
