"""The lifecycle's pure rules: key age and the notice window, unused credentials, the Rotate
button's value, the removal plans and their CLI, what a removal leaves, the new settings, and the
approved-plan fingerprint unchanged for requests approved before removals existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import ConfigError, cross_field_problems, load_settings
from bot.domain import plan_text
from bot.domain.lifecycle import (
    PASSWORD,
    KeyInfo,
    LifecyclePolicy,
    ManagedUser,
    age_days,
    parse_rotate_value,
    rotate_value,
    unused_credentials,
)
from bot.domain.models import (
    AccessType,
    AttachedPolicy,
    GroupGrant,
    PermissionExpansion,
    RemoveMode,
    RequestForm,
    Tag,
    UserHoldings,
)
from bot.domain.plan import StepKind
from bot.domain.removal import removal_plan, what_is_left
from bot.domain.risk import assess, fingerprint

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
VIRTUAL = "arn:aws:iam::123456789012:mfa/nina-phone"
HARDWARE = "GAHT12345678"


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_age_is_whole_days_rounded_down_and_never_negative() -> None:
    assert age_days(ago(79.99), NOW) == 79 and age_days(ago(80), NOW) == 80 and age_days(NOW + timedelta(1), NOW) == 0


def test_the_notice_window_and_the_limit() -> None:
    policy = LifecyclePolicy()  # 90 days, notice 14 before
    assert policy.notice_at_days == 76
    assert [policy.notice_due(d) for d in (75, 76, 80, 200)] == [False, True, True, True]
    assert [policy.past_max_age(d) for d in (89, 90)] == [False, True]
    assert [policy.unused(d) for d in (44, 45)] == [False, True]


def test_unused_credentials_count_from_last_use_or_creation_and_skip_inactive_keys() -> None:
    user = ManagedUser("nina", "U1", "R-1", created=ago(100), password_last_used=ago(10))
    keys = [
        KeyInfo("AKIAUSEDLONGAGO00001", "Active", ago(100), last_used=ago(60)),
        KeyInfo("AKIANEVERUSED0000002", "Active", ago(50)),
        KeyInfo("AKIAINACTIVE00000003", "Inactive", ago(300)),
        KeyInfo("AKIAFRESHLYUSED00004", "Active", ago(300), last_used=ago(1)),
    ]
    found = unused_credentials(user, keys, password_created=ago(100), policy=LifecyclePolicy(), now=NOW)
    assert [(f.credential, f.days, f.never_used) for f in found] == [
        ("AKIAUSEDLONGAGO00001", 60, False),
        ("AKIANEVERUSED0000002", 50, True),
    ]
    never = ManagedUser("omar", None, None, created=ago(60))
    (password,) = unused_credentials(never, [], password_created=ago(46), policy=LifecyclePolicy(), now=NOW)
    assert (password.credential, password.days, password.never_used) == (PASSWORD, 46, True)
    assert password.subject == f"omar/password/{ago(46).isoformat()}"
    assert unused_credentials(never, [], password_created=None, policy=LifecyclePolicy(), now=NOW) == []


@given(
    st.from_regex(r"[\w+=,.@-]{1,64}", fullmatch=True).filter(lambda n: "|" not in n),
    st.from_regex(r"[A-Z0-9]{16,128}", fullmatch=True),
)
def test_the_rotate_value_round_trips(user_name: str, key_id: str) -> None:
    value = rotate_value(user_name, key_id)
    assert len(value) <= 2000 and parse_rotate_value(value) == (user_name, key_id)


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "nina",
        "|AKIA0000000000000001",
        "nina|",
        "nina|AKIA|X",
        "nina|short",
        "x" * 65 + "|AKIA0000000000000001",
        "nina|AKIA-00000000000000",
    ],
)
def test_a_forged_rotate_value_is_refused(forged: str) -> None:
    assert parse_rotate_value(forged) is None


LOADED = UserHoldings(
    user_name="nina",
    owner="U1",
    login_profile=True,
    access_keys=(("AKIAACTIVE0000000001", "Active"), ("AKIAINACTIVE00000002", "Inactive")),
    signing_certificates=("CERT1",),
    ssh_public_keys=("APKA1",),
    service_credentials=("ACCA1",),
    mfa_devices=(VIRTUAL, HARDWARE),
    inline_policies=("scratch",),
    managed_policies=(AttachedPolicy.from_arn("arn:aws:iam::123456789012:policy/team-read"),),
    groups=("developers",),
)


def test_delete_follows_iams_order_and_deletes_only_virtual_mfa_devices() -> None:
    steps = removal_plan([LOADED], RemoveMode.DELETE)
    assert [(s.kind, s.target) for s in steps] == [
        (StepKind.DELETE_LOGIN_PROFILE, None),
        (StepKind.DELETE_ACCESS_KEY, "AKIAACTIVE0000000001"),
        (StepKind.DELETE_ACCESS_KEY, "AKIAINACTIVE00000002"),
        (StepKind.DELETE_SIGNING_CERTIFICATE, "CERT1"),
        (StepKind.DELETE_SSH_PUBLIC_KEY, "APKA1"),
        (StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL, "ACCA1"),
        (StepKind.DEACTIVATE_MFA_DEVICE, VIRTUAL),
        (StepKind.DELETE_VIRTUAL_MFA_DEVICE, VIRTUAL),
        (StepKind.DEACTIVATE_MFA_DEVICE, HARDWARE),
        (StepKind.DELETE_USER_POLICY, "scratch"),
        (StepKind.DETACH_USER_POLICY, "arn:aws:iam::123456789012:policy/team-read"),
        (StepKind.REMOVE_USER_FROM_GROUP, "developers"),
        (StepKind.DELETE_USER, None),
    ]
    assert {s.user_name for s in steps} == {"nina"}


def test_disable_switches_active_keys_off_and_deletes_the_login_profile_only() -> None:
    steps = removal_plan([LOADED, UserHoldings(user_name="omar")], RemoveMode.DISABLE)
    assert [(s.kind, s.user_name, s.target) for s in steps] == [
        (StepKind.DEACTIVATE_ACCESS_KEY, "nina", "AKIAACTIVE0000000001"),
        (StepKind.DELETE_LOGIN_PROFILE, "nina", None),
    ]


def test_the_removal_cli_is_the_aws_cli_shell_quoted() -> None:
    lines = plan_text.cli_lines(removal_plan([LOADED], RemoveMode.DELETE))
    assert lines[0] == "aws iam delete-login-profile --user-name nina"
    assert "aws iam delete-service-specific-credential --user-name nina --service-specific-credential-id ACCA1" in lines
    assert f"aws iam delete-virtual-mfa-device --serial-number {VIRTUAL}" in lines
    assert lines[-1] == "aws iam delete-user --user-name nina"
    odd = UserHoldings(user_name="o'brien,x", login_profile=True)
    assert plan_text.cli_lines(removal_plan([odd], RemoveMode.DISABLE)) == [
        "aws iam delete-login-profile --user-name 'o'\"'\"'brien,x'"
    ]
    (deactivate,) = plan_text.cli_lines(
        removal_plan([UserHoldings(user_name="n", access_keys=(("K1", "Active"),))], RemoveMode.DISABLE)
    )
    assert deactivate == "aws iam update-access-key --user-name n --access-key-id K1 --status Inactive"


def test_what_a_removal_leaves_in_words() -> None:
    assert what_is_left(None, RemoveMode.DELETE) == [] and what_is_left(None, RemoveMode.DISABLE) == []
    left = what_is_left(LOADED, RemoveMode.DELETE)
    assert left[0] == "the user itself" and "SSH public keys: APKA1" in left and "groups: developers" in left
    assert what_is_left(LOADED, RemoveMode.DISABLE) == ["active credentials: AKIAACTIVE0000000001, console password"]
    switched_off = UserHoldings(user_name="nina", access_keys=(("K", "Inactive"),), groups=("developers",))
    assert what_is_left(switched_off, RemoveMode.DISABLE) == []


def test_removing_a_user_with_a_sensitive_permission_is_sensitive() -> None:
    form = RequestForm(
        recipients=("U1",), user_names=("nina",), access_types=frozenset(), remove_mode=RemoveMode.DELETE
    )
    admin = GroupGrant(
        name="ops", managed_policies=(AttachedPolicy.from_arn("arn:aws:iam::aws:policy/AdministratorAccess"),)
    )
    flags = assess(form, PermissionExpansion(groups=(admin,), holdings=(LOADED,)), ("AdministratorAccess",))
    assert [f.code for f in flags] == ["sensitive", "irreversible"] and flags[0].sensitive
    plain = assess(form.model_copy(update={"remove_mode": RemoveMode.DISABLE}), PermissionExpansion(), ("x",))
    assert plain == ()  # no boundary or MFA flags for taking access away


def test_a_request_approved_before_removals_existed_keeps_its_fingerprint() -> None:
    form = RequestForm(
        recipients=("U0NEWHIRE1",),
        user_names=("nina.newhire",),
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        groups=("developers",),
        tags=(Tag(key="team", value="data"),),
        justification="Joins the data team.",
    )
    read_only = AttachedPolicy.from_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
    expansion = PermissionExpansion(
        groups=(GroupGrant(name="developers", managed_policies=(read_only,)),), account_id="123456789012"
    )
    # Computed with the code of main before this change (the form had no remove_mode, the expansion no holdings).
    assert fingerprint(form, expansion) == "583b2e681cd47192ec23fcfdb9d5c72b6c933d6d3ff7716b88452d4a5d83345c"


BASE = {
    "slack_bot_token": "xoxb-0000000000-test",
    "slack_signing_secret": "s",
    "approval_channel_id": "C0123456789",
    "approver_user_ids": "U0123456789",
    "public_base_url": "https://bot.example.org",
}


def test_the_lifecycle_settings_and_their_rule() -> None:
    settings = load_settings(**BASE)
    assert settings.lifecycle_policy == LifecyclePolicy(90, 14, False, 45)
    assert settings.lifecycle_check_interval_seconds == 3600
    custom = load_settings(**BASE, key_max_age_days=30, key_rotation_notice_days=7, key_rotation_enforce="true")
    assert custom.lifecycle_policy == LifecyclePolicy(30, 7, True, 45)
    with pytest.raises(ConfigError, match="KEY_ROTATION_NOTICE_DAYS must be smaller than KEY_MAX_AGE_DAYS"):
        load_settings(**BASE, key_max_age_days=10, key_rotation_notice_days=10)
    with pytest.raises(ConfigError, match="UNUSED_CREDENTIALS_DAYS"):
        load_settings(**BASE, unused_credentials_days=0)
    assert cross_field_problems({"KEY_MAX_AGE_DAYS": "10", "KEY_ROTATION_NOTICE_DAYS": "14"}) == [
        "APPROVER_USER_IDS or APPROVER_USERGROUP_ID must be set",
        "SLACK_SIGNING_SECRET is required in HTTP mode (no SLACK_APP_TOKEN)",
        "KEY_ROTATION_NOTICE_DAYS must be smaller than KEY_MAX_AGE_DAYS",
    ]
