"""``iam-user-bot check`` as a real command; the bot's own IAM policy matches the calls it makes;
the bot-managed policy documents say what docs/bot-managed-policies.md promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from bot.aws.removal import Remover
from bot.domain.states import RequestStatus
from bot.ops.check_aws import REQUIRED_ACTIONS, role_arn
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN
from tests.support.provisioning import (
    FailOnCall,
    build_world,
    file_and_approve,
    full_form,
    make_harness,
    reset_password_policy,
)

ROOT = Path(__file__).resolve().parents[2]
USER_ARNS = {"arn:aws:iam::*:user/${aws:username}", "arn:aws:iam::*:user/*/${aws:username}"}


def policy_actions(document: dict) -> set[str]:
    actions: set[str] = set()
    for statement in document["Statement"]:
        listed = statement.get("Action", [])
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def run_check(env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWS_", "APPROV", "PUBLIC_", "DATABASE"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "check"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def check_env(moto_server, slack, tmp_path) -> dict[str, str]:
    return {
        **moto_server.client_env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "a-signing-secret-for-the-check-test",
        "SLACK_API_URL": slack.base_url,
        "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
        "APPROVER_USER_IDS": APPROVER,
        "PUBLIC_BASE_URL": "https://bot.example.com",
        "DATABASE_PATH": str(tmp_path / "check.db"),
    }


def test_check_passes_against_moto_and_the_stand_in(check_env) -> None:
    result = run_check(check_env)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in lines] == [
        "ok   configuration",
        "ok   database",
        "ok   public url",
        "ok   slack",
        "ok   slack scopes",
        "ok   slack people",
        "ok   aws identity",
        "ok   iam permissions",
        "warn iam scoping",
        "ok   bot policies",
    ]
    assert "in account 123456789012" in lines[-4]
    # moto does not implement SimulatePrincipalPolicy: the read-only probes ran, and say so; the
    # policy's scoping to the bot's own users could not be checked, and the line says that.
    assert "read-only probes passed" in lines[-3] and "writes unverified" in lines[-3]
    assert "could not check that writes stay on the bot's own users" in lines[-2]
    assert lines[-1] == (
        "ok   bot policies: iam-user-bot-require-mfa not created yet; "
        "iam-user-bot-self-manage-credentials not created yet"
    )


def test_check_fails_on_a_bot_policy_that_is_not_the_shipped_document(check_env, iam) -> None:
    # The bot's credentials may create its two policies with any document; the bot then refuses
    # to attach one that is not the shipped document, and check says so before a request fails.
    from bot.aws.steps import bot_policy_document

    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    tag = [{"Key": "iam-user-bot:managed", "Value": "true"}]
    mfa = iam.create_policy(PolicyName="iam-user-bot-require-mfa", PolicyDocument=json.dumps(everything), Tags=tag)
    shipped = bot_policy_document("iam-user-bot-self-manage-credentials")
    own = iam.create_policy(PolicyName="iam-user-bot-self-manage-credentials", PolicyDocument=shipped, Tags=tag)
    try:
        result = run_check(check_env)
        assert result.returncode == 1, result.stdout
        (line,) = [line for line in result.stdout.splitlines() if "bot policies" in line]
        arn = "arn:aws:iam::123456789012:policy/iam-user-bot-require-mfa"
        assert line == (
            "FAIL bot policies: iam-user-bot-require-mfa: not the document this bot ships (changed or replaced in "
            "IAM); the bot refuses to attach it, so requests that need it fail — fix: find out who changed it "
            f"(CloudTrail), then restore it: aws iam create-policy-version --policy-arn {arn} --set-as-default "
            '--policy-document "$(iam-user-bot policy require-mfa)"'
        )
        restore = bot_policy_document("iam-user-bot-require-mfa")
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=restore, SetAsDefault=True)
        restored = run_check(check_env)
        assert restored.returncode == 0, restored.stdout
        assert restored.stdout.splitlines()[-1] == (
            "ok   bot policies: iam-user-bot-require-mfa holds the shipped document; "
            "iam-user-bot-self-manage-credentials holds the shipped document"
        )
    finally:
        for policy in (mfa, own):
            arn = policy["Policy"]["Arn"]
            for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
                if not version["IsDefaultVersion"]:
                    iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
            iam.delete_policy(PolicyArn=arn)


def test_check_names_what_is_wrong_and_the_fix_without_printing_secrets(check_env) -> None:
    bad_token = "xoxb-not-the-right-token-0000"
    result = run_check({**check_env, "SLACK_BOT_TOKEN": bad_token})
    assert result.returncode == 1
    slack_line = next(line for line in result.stdout.splitlines() if line.split(":")[0].endswith("slack"))
    assert (
        slack_line.startswith("FAIL slack: auth.test answered invalid_auth")
        and "fix: check SLACK_BOT_TOKEN" in slack_line
    )
    assert bad_token not in result.stdout + result.stderr

    missing = {k: v for k, v in check_env.items() if k != "APPROVAL_CHANNEL_ID"}
    result = run_check(missing)
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert lines[0].startswith("FAIL configuration: APPROVAL_CHANNEL_ID is required")
    assert lines[-3].startswith("ok   iam permissions")  # AWS is still checked


def test_role_arn_for_simulation() -> None:
    assert role_arn("arn:aws:sts::123456789012:assumed-role/iam-user-bot/i-0abc") == (
        "arn:aws:iam::123456789012:role/iam-user-bot"
    )
    assert (
        role_arn("arn:aws:iam::123456789012:user/bots/iam-user-bot")
        == "arn:aws:iam::123456789012:user/bots/iam-user-bot"
    )
    assert role_arn("arn:aws:iam::123456789012:root") is None


def test_bot_iam_policy_allows_exactly_the_listed_actions() -> None:
    document = json.loads((ROOT / "docs" / "bot-iam-policy.json").read_text())
    allows = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    assert policy_actions({"Statement": allows}) == set(REQUIRED_ACTIONS)
    assert not [s for s in allows if "*" in policy_actions({"Statement": [s]})]
    # What is denied is never called: removing or changing a boundary, untagging the bot's tags.
    denies = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    assert policy_actions({"Statement": denies}) & set(REQUIRED_ACTIONS) == {"iam:TagUser"}


def test_every_iam_call_the_bot_makes_is_in_its_policy(moto_server, slack, iam, tmp_path) -> None:
    """Success, failure with rollback, resume, catalog: every IAM operation seen is allowed."""
    world = build_world(iam)
    try:
        bot = make_harness(moto_server, slack, tmp_path / "bot.db")
        bot.gateway.load_catalog()
        bot.gateway.iam.meta.events.register("before-call.iam.PutUserPolicy", FailOnCall("PutUserPolicy", 1))
        bad = file_and_approve(bot, full_form(world, ("omar.newhire",)))
        assert bot.provisioning.provision(bad.id).status is RequestStatus.FAILED
        ok = file_and_approve(bot, full_form(world, ("nina.newhire",)))
        assert bot.provisioning.provision(ok.id).status is RequestStatus.PROVISIONED
        Remover(bot.gateway).delete_user_completely("nina.newhire")
    finally:
        reset_password_policy(iam)
    used = {f"iam:{operation}" for operation in bot.recorder.operations()}
    assert used - set(REQUIRED_ACTIONS) == set()
    assert {"iam:CreateUser", "iam:DeleteUser", "iam:CreatePolicy", "iam:DeletePolicy", "iam:PutUserPolicy"} <= used


@pytest.mark.parametrize("name", ["require-mfa.json", "self-manage-credentials.json"])
def test_bot_policies_match_users_with_paths_and_are_small(name: str) -> None:
    text = resources.files("bot").joinpath("policies", name).read_text()
    document = json.loads(text)
    # A customer managed policy holds at most 6,144 non-whitespace characters.
    assert sum(1 for c in text if not c.isspace()) < 6144
    for statement in document["Statement"]:
        resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any("${aws:username}" in r for r in resources_):
            assert set(resources_) == USER_ARNS, statement["Sid"]


def test_mfa_policy_lets_a_forced_password_change_through_and_denies_the_rest() -> None:
    document = json.loads(resources.files("bot").joinpath("policies", "require-mfa.json").read_text())
    (deny,) = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    assert {"iam:ChangePassword", "iam:GetAccountPasswordPolicy"} <= set(deny["NotAction"])
    # Nothing that manages keys escapes the deny without MFA.
    assert not {"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:DeactivateMFADevice"} & set(deny["NotAction"])
    allowed = policy_actions({"Statement": [s for s in document["Statement"] if s["Effect"] == "Allow"]})
    assert {"iam:ChangePassword", "iam:EnableMFADevice", "iam:CreateVirtualMFADevice", "iam:CreateAccessKey"} <= allowed


def test_simulation_reports_denied_and_conditional_actions() -> None:
    import boto3
    from botocore.stub import Stubber

    from bot.aws.selfcheck import simulate
    from bot.ops.check_aws import simulation_line

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    principal = "arn:aws:iam::123456789012:role/iam-user-bot"

    def results(denied: set[str], conditional: set[str]) -> dict:
        rows = []
        for action in REQUIRED_ACTIONS:
            row = {"EvalActionName": action, "EvalDecision": "allowed"}
            if action in denied | conditional:
                row["EvalDecision"] = "implicitDeny"
            if action in conditional:
                row["MissingContextValues"] = ["iam:PermissionsBoundary"]
            rows.append(row)
        return {"EvaluationResults": rows, "IsTruncated": False}

    expected = {"PolicySourceArn": principal, "ActionNames": list(REQUIRED_ACTIONS)}
    with Stubber(iam) as stub:
        stub.add_response("simulate_principal_policy", results(set(), {"iam:CreateUser"}), expected)
        stub.add_response("simulate_principal_policy", results({"iam:DeleteUser", "iam:TagUser"}, set()), expected)
        stub.add_client_error("simulate_principal_policy", "AccessDenied", expected_params=expected)
        ok = simulation_line(simulate(iam, principal, REQUIRED_ACTIONS), principal)
        assert ok is not None and ok.ok and "allowed only under a condition" in ok.detail
        assert "iam:CreateUser" in ok.detail
        denied = simulation_line(simulate(iam, principal, REQUIRED_ACTIONS), principal)
        assert denied is not None and not denied.ok
        assert denied.render() == (
            "FAIL iam permissions: not allowed: iam:DeleteUser, iam:TagUser"
            " — fix: attach the output of `iam-user-bot policy bot --account … --boundary …` to the bot's role or"
            " user (docs/bot-iam-policy.json lists every action)"
        )
        assert simulate(iam, principal, REQUIRED_ACTIONS) is None  # not allowed to simulate: probes run instead


def test_scoping_is_simulated_on_a_managed_user_an_unmanaged_user_and_boundary_removal() -> None:
    import boto3
    from botocore.stub import Stubber

    from bot.aws.selfcheck import TAKEOVER_ACTIONS, simulate_scoping
    from bot.domain.bot_policy import GRANTING_WRITES
    from bot.ops.check_aws import scoping_line

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    principal = "arn:aws:iam::123456789012:role/iam-user-bot"
    managed = "arn:aws:iam::123456789012:user/iam-user-bot/iam-user-bot-check-probe"
    other = "arn:aws:iam::123456789012:user/iam-user-bot-check-probe"
    tag = [
        {
            "ContextKeyName": "aws:ResourceTag/iam-user-bot:managed",
            "ContextKeyValues": ["true"],
            "ContextKeyType": "string",
        }
    ]
    # A managed user with no boundary, and AdministratorAccess as the policy to attach.
    administrator = [
        *tag,
        {
            "ContextKeyName": "iam:PolicyARN",
            "ContextKeyValues": ["arn:aws:iam::aws:policy/AdministratorAccess"],
            "ContextKeyType": "string",
        },
    ]

    def answer(actions, allowed: set[str]) -> dict:
        rows = [{"EvalActionName": a, "EvalDecision": "allowed" if a in allowed else "implicitDeny"} for a in actions]
        return {"EvaluationResults": rows, "IsTruncated": False}

    def expect(stub, actions, resource, context, allowed: set[str]) -> None:
        params = {
            "PolicySourceArn": principal,
            "ActionNames": list(actions),
            "ResourceArns": [resource],
            "ContextEntries": context,
        }
        stub.add_response("simulate_principal_policy", answer(actions, allowed), params)

    def policy(stub, *, on_other: set[str], boundary_removal: bool, granting: set[str]) -> None:
        expect(stub, TAKEOVER_ACTIONS, managed, tag, set(TAKEOVER_ACTIONS))
        expect(stub, TAKEOVER_ACTIONS, other, [], on_other)
        expect(stub, boundary, managed, tag, set(boundary) if boundary_removal else set())
        expect(stub, GRANTING_WRITES, managed, administrator, granting)

    boundary = ["iam:DeleteUserPermissionsBoundary"]
    with Stubber(iam) as stub:
        # The scoped policy with a boundary: granting needs it, so a user without one gets nothing.
        policy(stub, on_other=set(), boundary_removal=False, granting=set())
        # The old, unscoped policy: keys for anyone, boundary removal allowed, granting anything.
        policy(
            stub,
            on_other={"iam:CreateAccessKey", "iam:UpdateLoginProfile"},
            boundary_removal=True,
            granting=set(GRANTING_WRITES),
        )
        # The scoped policy without a boundary (`policy bot --no-boundary`, the template's NoBoundary):
        # confined to the bot's users, and still an account takeover.
        policy(stub, on_other=set(), boundary_removal=False, granting=set(GRANTING_WRITES))
        # With an allow-list of policies but no boundary: AdministratorAccess is refused, an inline
        # policy is not.
        policy(stub, on_other=set(), boundary_removal=False, granting={"iam:PutUserPolicy"})
        stub.add_client_error("simulate_principal_policy", "AccessDenied")
        ok, bad, unbounded, listed, unknown = (
            scoping_line(simulate_scoping(iam, principal, "123456789012", "/iam-user-bot/"), principal)
            for _ in range(5)
        )
    assert ok.render() == (
        "ok   iam scoping: key and password writes allowed on a managed user, denied on a user the bot did not "
        "create; granting policies needs the permissions boundary; boundary removal denied "
        f"(simulated for {principal})"
    )
    assert not bad.ok and bad.render().startswith(
        "FAIL iam scoping: iam:CreateAccessKey, iam:UpdateLoginProfile allowed on a user the bot did not create; "
        "iam:DeleteUserPermissionsBoundary allowed; iam:AttachUserPolicy of AdministratorAccess, iam:PutUserPolicy "
        "allowed on a managed user without a permissions boundary"
    )
    assert bad.fix.startswith("replace the bot's policy with the output of `iam-user-bot policy bot --account … --b")
    assert not unbounded.ok and unbounded.render() == (
        "FAIL iam scoping: iam:AttachUserPolicy of AdministratorAccess, iam:PutUserPolicy allowed on a managed "
        "user without a permissions boundary: whoever holds the bot's credentials can create a user, grant it "
        "everything and make it a key (account administrator) — fix: set a permissions boundary: attach the "
        "output of `iam-user-bot policy bot --account … --boundary ARN`, or deploy deploy/iam-user-bot-role.yaml "
        "with PermissionsBoundaryArn (docs/security-model.md)"
    )
    assert not listed.ok and listed.detail.startswith("iam:PutUserPolicy allowed on a managed user without")
    assert "set a permissions boundary" in listed.fix
    assert unknown.ok and unknown.warn and unknown.render().startswith("warn iam scoping: could not check")


def test_the_bot_policies_line_says_when_it_could_not_read_them() -> None:
    import boto3
    from botocore.stub import Stubber

    from bot.aws.selfcheck import read_bot_policies
    from bot.ops.check_aws import bot_policies_line

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iam) as stub:
        stub.add_client_error("get_policy", "AccessDenied")
        states = read_bot_policies(iam, "123456789012")
    assert states is None
    line = bot_policies_line(states, "123456789012")
    assert (
        line.ok
        and line.warn
        and line.render().startswith(
            "warn bot policies: could not read the bot-managed policies (iam:GetPolicy, iam:GetPolicyVersion)"
        )
    )
