"""The AWS CLI rendering of plans: each line parses (POSIX shell) to the exact call, no secret, no
comment, nothing zsh reads differently. (tests/provisioning/test_cli_preview_runs.py runs them.)"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import AccessType, OnboardingRequest, PermissionMode, RequestForm, Tag, UserPermissions
from bot.domain.plan import Step, StepKind, build_plan
from bot.domain.plan_text import cli_lines, cli_script, preview, shell_word, step_command
from bot.domain.states import RequestStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def request(form: RequestForm) -> OnboardingRequest:
    return OnboardingRequest(
        id="R-ABCDEFGH", requester="U0REQ", form=form, status=RequestStatus.APPROVED, created_at=NOW, updated_at=NOW
    )


def argv(line: str) -> list[str]:
    return shlex.split(line)


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
    assert len(lines) == len(steps) + 1  # the bot-managed policy: its document, then the policy
    assert argv(lines[0]) == ["iam-user-bot", "policy", "require-mfa", ">", "iam-user-bot-require-mfa.json"]
    assert argv(lines[1])[:3] == ["aws", "iam", "get-policy"] and "create-policy" in argv(lines[1])
    first_user = [argv(line) for line, step in zip(lines[1:], steps, strict=True) if step.user_name == "ana"]
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
    assert (
        '--password="$PASSWORD"' in lines[3]
        and "--password=$PASSWORD" in login
        and "--password-reset-required" in login
    )
    assert first_user[3][-1] == "developers"
    assert first_user[4][-1] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert first_user[5][-1] == "arn:aws:iam::123456789012:policy/iam-user-bot-require-mfa"
    put = first_user[6]
    document = put[put.index("--policy-document") + 1]
    assert "get-user-policy --user-name template.dev --policy-name s3-scratch" in document
    script = cli_script(steps)
    assert "#" not in script and "sealed" not in script  # no comment (zsh), no secret
    notes = " ".join(preview(steps).notes)
    assert "Set `PASSWORD` first" in notes and "iam-user-bot policy" in notes


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
    arn = "arn:aws:iam::123456789012:policy/iam-user-bot-require-mfa"
    tags = (Tag(key="iam-user-bot:managed", value="true"), Tag(key="iam-user-bot:request-id", value="R-1"))
    write, create = step_command(
        Step(kind=StepKind.ENSURE_BOT_POLICY, target="iam-user-bot-require-mfa", policy_arn=arn, tags=tags)
    ).split("\n")
    assert write == "iam-user-bot policy require-mfa > iam-user-bot-require-mfa.json"
    guard, made = create.split(" || ")
    assert argv(guard) == ["aws", "iam", "get-policy", "--policy-arn", arn, ">", "/dev/null", "2>&1"]
    words = argv(made)
    assert words[:5] == ["aws", "iam", "create-policy", "--policy-name", "iam-user-bot-require-mfa"]
    assert words[words.index("--path") + 1] == "/"
    assert words[words.index("--description") + 1].startswith("iam-user-bot: deny everything")
    assert json.loads(words[words.index("--tags") + 1]) == [{"Key": t.key, "Value": t.value} for t in tags]
    assert words[-2:] == ["--policy-document", "file://iam-user-bot-require-mfa.json"]


def test_a_value_starting_with_a_dash_is_joined_to_its_option() -> None:
    """``--user-name -gina`` fails in the AWS CLI ("expected one argument"); ``=`` joins them."""
    for kind in (StepKind.CREATE_USER, StepKind.CREATE_ACCESS_KEY, StepKind.CREATE_LOGIN_PROFILE):
        assert "--user-name=-gina" in argv(step_command(Step(kind=kind, user_name="-gina")))
    words = argv(step_command(Step(kind=StepKind.ADD_USER_TO_GROUP, user_name="-gina", target="-ops")))
    assert words[3:] == ["--user-name=-gina", "--group-name=-ops"]


@given(st.text(alphabet="abcXYZ019_+=,.@-", min_size=1, max_size=64))
def test_every_word_is_one_word_for_bash_and_zsh(name: str) -> None:
    """shlex reads the word back; a word starting with ``=`` is quoted (zsh's EQUALS expansion)."""
    quoted = shell_word(name)
    assert shlex.split(quoted) == [name]
    assert not quoted.startswith("=")
