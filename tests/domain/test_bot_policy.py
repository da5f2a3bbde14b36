"""The bot's own IAM policy: every scoping statement asserted (moto evaluates no condition), the
shipped file is the generator's output, parliament finds no escalation that reaches a user the bot
did not create, and none at all once a boundary is set; without one, ``policy bot`` refuses unless
told, because the bot's credentials could then grant anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from bot.cli import main
from bot.domain.bot_policy import (
    GRANTING_WRITES,
    GROUP_WRITES,
    MANAGED_USER_WRITES,
    NO_BOUNDARY_RISK,
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
    groups = "AddAndRemoveUsersOnlyInAllowedGroups"
    assert (actions_of(default[groups]), default[groups]["Resource"]) == (
        set(GROUP_WRITES),
        [f"arn:aws:iam::*:group{USER_PATH}*"],
    )
    assert full[groups]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:group/developers",
        f"arn:aws:iam::{ACCOUNT}:group/teams/*",
    ]
    # IAM checks both membership writes against the group alone, for any user of the account: no
    # statement allows either on a group outside the list (RemoveUserFromGroup once had group/*).
    for document in (default, full):
        holders = [s for s in document.values() if s["Effect"] == "Allow" and actions_of(s) & set(GROUP_WRITES)]
        assert [s["Sid"] for s in holders] == [groups]
        assert "Condition" not in holders[0]
        assert not [r for r in holders[0]["Resource"] if r.endswith((":group/*", ":*"))]
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
    """Whether an Allow statement reaches only the bot's own users (or allow-listed groups), and,
    when it grants permissions (attaches or puts a policy), only within a permissions boundary:
    the managed tag alone does not stop a holder of the bot's credentials from granting a user of
    their own anything (CreateUser under the path with the tag, then CreateAccessKey)."""
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    condition = statement.get("Condition", {})
    tags = condition.get("StringEquals", {})
    if actions_of(statement) & set(GRANTING_WRITES) and not condition.get("ArnEquals", {}).get(
        "iam:PermissionsBoundary"
    ):
        return False
    if all(":group/" in r and not r.endswith((":group/*", ":group/")) for r in resources):
        return True  # AddUserToGroup, RemoveUserFromGroup: IAM checks the group; only allow-listed groups
    if tags.get("aws:ResourceTag/iam-user-bot:managed") == "true":
        return True
    return tags.get("aws:RequestTag/iam-user-bot:managed") == "true" and all(
        r.endswith(f":user{USER_PATH}*") for r in resources
    )


UNBOUNDED = PolicyScope(
    account=ACCOUNT, groups=("developers",), policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",)
)
GRANTING_STATEMENTS = {"AttachOnlyAllowedPoliciesToManagedUsers", "PutInlinePoliciesOnlyOnManagedUsers"}


@pytest.mark.parametrize(
    ("scope", "unconfined"),
    [(PolicyScope(), GRANTING_STATEMENTS), (UNBOUNDED, GRANTING_STATEMENTS), (FULL, set())],
    ids=["shipped-no-boundary", "allow-lists-no-boundary", "configured"],
)
def test_parliament_finds_no_escalation_beyond_the_bots_own_users(scope: PolicyScope, unconfined: set[str]) -> None:
    document = bot_policy(scope)
    findings = analyze_policy_string(json.dumps(document), include_community_auditors=True).findings
    issues = {f.issue for f in findings}
    # parliament's escalation auditor reads actions only; the statements holding them are what
    # decides. Its six known paths are all here, and each is confined to the bot's users; with a
    # boundary, granting is confined too. Without one, attaching and putting policies are not
    # (PutUserPolicy takes any document; an allow-list of policies always holds the bot's own,
    # which its credentials may re-create with any document): exactly those two statements.
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
    escaping = set()
    for path, actions in escalations.items():
        holders = [sid for sid, acts in lowered.items() if set(actions) & acts]
        assert holders, path
        escaping |= {sid for sid in holders if not confined(statements[sid])}
    assert escaping == unconfined
    # Nothing else parliament knows beyond the broad reads (RESOURCE_STAR) and the write
    # families it lists for review, every one of them in a confined statement.
    assert issues <= {"PRIVILEGE_ESCALATION", "CREDENTIALS_EXPOSURE", "PERMISSIONS_MANAGEMENT_ACTIONS", "RESOURCE_STAR"}
    for finding in findings:
        if finding.issue in ("CREDENTIALS_EXPOSURE", "PERMISSIONS_MANAGEMENT_ACTIONS"):
            for action in finding.location["actions"]:
                holders = [sid for sid, acts in lowered.items() if action in acts]
                # CreatePolicy, TagPolicy, DeletePolicy: only the bot's two policies, by name; any
                # document (IAM has no condition key on it), which the bot compares before attaching.
                assert all(
                    confined(statements[sid]) or sid in unconfined or sid.startswith(("DeleteOnly", "CreateOnly"))
                    for sid in holders
                ), (action, holders)
    star = [f for f in findings if f.issue == "RESOURCE_STAR"]
    assert len(star) == 1  # the read statement, and nothing else with Resource "*"


def test_policy_bot_prints_the_configured_policy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "bot", "--account", ACCOUNT, "--boundary", BOUNDARY, "--groups", "developers, /teams/"]
    argv += ["--policies", f"arn:aws:iam::aws:policy/ReadOnlyAccess,arn:aws:iam::{ACCOUNT}:policy/app-*"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert printed.out == policy_text(bot_policy(FULL)) and printed.err == ""


def test_without_a_boundary_policy_bot_refuses_unless_told_and_then_warns(capsys: pytest.CaptureFixture[str]) -> None:
    # Without a boundary, stolen bot credentials grant anything: no quiet default.
    assert main(["policy", "bot"]) == 2
    refused = capsys.readouterr()
    assert refused.out == "" and "no --boundary given" in refused.err and "--no-boundary" in refused.err
    assert NO_BOUNDARY_RISK in refused.err and "administrator of the account" in NO_BOUNDARY_RISK
    # Told so, it prints the shipped reference document, and says the risk again on stderr.
    assert main(["policy", "bot", "--no-boundary"]) == 0
    printed = capsys.readouterr()
    assert printed.out == (ROOT / "docs" / "bot-iam-policy.json").read_text()
    assert printed.err.startswith("policy: WARNING (--no-boundary): ") and NO_BOUNDARY_RISK in printed.err
    assert main(["policy", "bot", "--boundary", BOUNDARY, "--no-boundary"]) == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--account", "12345"], "12-digit"),
        (["--boundary", "DeveloperBoundary"], "--boundary must be one managed policy's ARN"),
        # ArnEquals treats * and ? as wildcards: such a boundary matches any policy.
        (["--boundary", "arn:aws:iam::*:policy/*"], "without * or ?"),
        (["--boundary", "arn:aws:iam::111122223333:policy/Dev?"], "without * or ?"),
        (["--account", "111122223333", "--boundary", "arn:aws:iam::999999999999:policy/B"], "of account 111122223333"),
        (["--policies", "ReadOnlyAccess"], "'ReadOnlyAccess' is not one"),
        (["--groups", "/teams"], "not '/teams'"),
        (["--groups", "developers,/"], "the group path / is every group of the account"),
        # IAM's wildcards and policy variables would widen the group statement: ?????? is Admins too.
        (["--groups", "??????"], "not '??????'"),
        (["--groups", "/?/"], "not '/?/'"),
        (["--groups", "/team/*"], "not '/team/*'"),
        (["--groups", "${aws:username}"], "not '${aws:username}'"),
        (["--groups", " , "], "--groups names no group"),
    ],
)
def test_policy_bot_refuses_options_it_cannot_scope_with(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = [] if "--boundary" in argv else ["--no-boundary"]  # so the option under test is the problem
    assert main(["policy", "bot", *accepted, *argv]) == 2
    captured = capsys.readouterr()
    assert problem in captured.err and captured.out == ""


def test_scoping_options_go_with_the_bot_policy_only(capsys: pytest.CaptureFixture[str]) -> None:
    for option in (["--account", ACCOUNT], ["--no-boundary"]):
        assert main(["policy", "require-mfa", *option]) == 2
        assert "go with 'policy bot'" in capsys.readouterr().err


def test_a_group_path_of_slash_is_refused_by_the_generator_too() -> None:
    # "/" would make the group statement group/*: every group of the account, Admins included.
    with pytest.raises(ValueError, match="every group of the account"):
        bot_policy(PolicyScope(account=ACCOUNT, boundary_arn=BOUNDARY, groups=("/",)))
    for widened in ("Adm?ns", "/team/*", "${aws:username}", "dev ops"):
        with pytest.raises(ValueError, match="letters, digits"):
            bot_policy(PolicyScope(account=ACCOUNT, boundary_arn=BOUNDARY, groups=(widened,)))


@pytest.mark.parametrize("name", ["AdministratorAccess", "IAMFullAccess"])
def test_a_boundary_that_caps_nothing_is_printed_with_a_warning(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["policy", "bot", "--account", ACCOUNT, "--boundary", f"arn:aws:iam::aws:policy/{name}"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert (
        printed.err.startswith("policy: WARNING (--boundary): ")
        and f"{name} as the permissions boundary" in printed.err
    )
    assert json.loads(printed.out)["Statement"]  # the policy is still printed, on stdout only
    assert main(["policy", "bot", "--account", ACCOUNT, "--boundary", BOUNDARY]) == 0
    assert capsys.readouterr().err == ""  # a boundary of the account's own: no warning
