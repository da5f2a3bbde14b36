"""The AWS CLI rendering of plans: each line parses (POSIX shell) to the exact call, no secret."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import AccessType, OnboardingRequest, PermissionMode, RequestForm, Tag, UserPermissions
from bot.domain.plan import Step, StepKind, build_plan
from bot.domain.plan_text import cli_lines, cli_script, step_command
from bot.domain.states import RequestStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def request(form: RequestForm) -> OnboardingRequest:
    return OnboardingRequest(
        id="R-ABCDEFGH", requester="U0REQ", form=form, status=RequestStatus.APPROVED, created_at=NOW, updated_at=NOW
    )


def argv(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def test_copy_user_plan_renders_every_call_in_order() -> None:
    form = RequestForm(
        recipients=("U1", "U2"),
        user_names=("ana", "bo"),
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        permission_mode=PermissionMode.COPY_USER,
        copy_from_user="template.dev",
        tags=(Tag(key="cost center", value="a,b=c"),),
        mfa_required=True,
        custom_password_sealed="v1.sealed-not-a-password",
    )
    source = UserPermissions(
        user_name="template.dev",
        groups=("developers",),
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        inline_policy_names=("s3-scratch",),
        permissions_boundary_arn="arn:aws:iam::123456789012:policy/boundary",
    )
    steps = build_plan(request(form), "U0APP", account_id="123456789012", copy_source=source)
    lines = cli_lines(steps)
    assert len(lines) == len(steps)
    commands = [argv(line)[:3] for line in lines]
    assert commands[0] == ["aws", "iam", "create-policy"]
    first_user = [argv(line) for line, step in zip(lines, steps, strict=True) if step.user_name == "ana"]
    assert [a[2] for a in first_user] == [
        "create-user",
        "create-login-profile",
        "create-access-key",
        "add-user-to-group",
        "attach-user-policy",
        "attach-user-policy",
        "put-user-policy",
    ]
    create = first_user[0]
    assert create[create.index("--permissions-boundary") + 1] == "arn:aws:iam::123456789012:policy/boundary"
    tags = json.loads(create[create.index("--tags") + 1])
    assert {"Key": "cost center", "Value": "a,b=c"} in tags
    assert {"Key": "iam-user-bot:request-id", "Value": "R-ABCDEFGH"} in tags
    login = first_user[1]
    assert login[login.index("--password") + 1] == "$PASSWORD" and "--password-reset-required" in login
    assert first_user[3][-1] == "developers"
    assert first_user[4][-1] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert first_user[5][-1] == "arn:aws:iam::123456789012:policy/iam-user-bot-require-mfa"
    put = first_user[6]
    document = put[put.index("--policy-document") + 1]
    assert "get-user-policy --user-name template.dev --policy-name s3-scratch" in document
    script = cli_script(steps)
    assert script.startswith("# PASSWORD:") and "sealed" not in script


@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=40),
)
def test_any_tag_survives_shell_quoting(key: str, value: str) -> None:
    line = step_command(Step(kind=StepKind.CREATE_USER, user_name="u", tags=(Tag(key=key, value=value),)))
    words = argv(line)
    assert json.loads(words[words.index("--tags") + 1]) == [{"Key": key, "Value": value}]


def test_no_reset_and_bot_policies() -> None:
    line = step_command(Step(kind=StepKind.CREATE_LOGIN_PROFILE, user_name="u", password_reset_required=False))
    assert argv(line)[-1] == "--no-password-reset-required"
    policy = step_command(Step(kind=StepKind.ENSURE_BOT_POLICY, target="iam-user-bot-require-mfa"))
    assert argv(policy) == [
        "aws", "iam", "create-policy", "--policy-name", "iam-user-bot-require-mfa",
        "--policy-document", "file://bot/policies/iam-user-bot-require-mfa.json",
    ]  # fmt: skip
    assert policy.endswith("# only if the account has none yet")
