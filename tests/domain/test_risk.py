"""Risk flags, approvals needed and the approved-plan fingerprint (pure, bot/risk.py)."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.domain.models import (
    AccessType,
    AttachedPolicy,
    GroupGrant,
    InlinePolicyCopy,
    PermissionExpansion,
    PermissionMode,
    RequestForm,
    UserPermissions,
)
from bot.domain.risk import (
    DEFAULT_SENSITIVE_PERMISSIONS,
    allows_everything,
    approvals_required,
    assess,
    describe_change,
    fingerprint,
    too_few_approvers,
)

IAM_FULL_ARN = "arn:aws:iam::aws:policy/IAMFullAccess"
ADMIN = AttachedPolicy.from_arn("arn:aws:iam::aws:policy/AdministratorAccess")
READ_ONLY = AttachedPolicy.from_arn("arn:aws:iam::aws:policy/ReadOnlyAccess")
BOUNDARY = "arn:aws:iam::123456789012:policy/boundaries/DeveloperBoundary"


def form(**overrides: object) -> RequestForm:
    base: dict[str, object] = {
        "recipients": ("U0NEWHIRE1",),
        "user_names": ("nina",),
        "access_types": frozenset({AccessType.PROGRAMMATIC}),
        "groups": ("developers",),
        "justification": "Joins the data team and needs the dev account.",
        "permissions_boundary_arn": BOUNDARY,
    }
    base.update(overrides)
    return RequestForm(**base)  # type: ignore[arg-type]


def codes(flags) -> list[str]:
    return [f.code for f in flags]


def test_harmless_request_has_no_flags_and_needs_one_approver() -> None:
    expansion = PermissionExpansion(
        groups=(GroupGrant(name="developers", managed_policies=(READ_ONLY,)),), permissions_boundary_arn=BOUNDARY
    )
    flags = assess(form(), expansion, DEFAULT_SENSITIVE_PERMISSIONS)
    assert flags == ()
    assert approvals_required(flags, 2) == 1


def test_sensitive_policy_through_a_group_is_found_and_needs_two_approvers() -> None:
    expansion = PermissionExpansion(
        groups=(GroupGrant(name="developers", managed_policies=(READ_ONLY, ADMIN)),),
        permissions_boundary_arn=BOUNDARY,
    )
    flags = assess(form(), expansion, DEFAULT_SENSITIVE_PERMISSIONS)
    assert codes(flags) == ["sensitive"]
    assert "AdministratorAccess" in flags[0].text and "group `developers`" in flags[0].text
    assert approvals_required(flags, 2) == 2
    assert approvals_required(flags, 3) == 3


def test_sensitive_policy_attached_directly_and_sensitive_group_name() -> None:
    direct = PermissionExpansion(managed_policies=(ADMIN,), permissions_boundary_arn=BOUNDARY)
    policies_form = form(permission_mode=PermissionMode.POLICIES, groups=(), policy_arns=(ADMIN.arn,))
    assert codes(assess(policies_form, direct, DEFAULT_SENSITIVE_PERMISSIONS)) == ["sensitive"]
    admins = PermissionExpansion(groups=(GroupGrant(name="ADMINISTRATORS"),), permissions_boundary_arn=BOUNDARY)
    flags = assess(form(groups=("ADMINISTRATORS",)), admins, DEFAULT_SENSITIVE_PERMISSIONS)
    assert codes(flags) == ["sensitive"]  # group names match regardless of case, as IAM treats them


def test_copy_from_user_hits_name_the_source() -> None:
    source = UserPermissions(user_name="old.admin", groups=("ops",), managed_policy_arns=(ADMIN.arn,))
    expansion = PermissionExpansion(
        groups=(
            GroupGrant(
                name="ops", managed_policies=(AttachedPolicy.from_arn("arn:aws:iam::aws:policy/IAMFullAccess"),)
            ),
        ),
        managed_policies=(ADMIN,),
        inline_policies=(InlinePolicyCopy(name="everything", sha256="0" * 64, broad=True),),
        copy_source=source,
        permissions_boundary_arn=BOUNDARY,
    )
    copy_form = form(permission_mode=PermissionMode.COPY_USER, groups=(), copy_from_user="old.admin")
    flags = assess(copy_form, expansion, DEFAULT_SENSITIVE_PERMISSIONS)
    texts = [f.text for f in flags]
    assert len(texts) == 3 and all("copied from user `old.admin`" in t for t in texts)
    assert any("IAMFullAccess" in t and "group `ops`" in t for t in texts)
    assert any("inline policy `everything`" in t for t in texts)


def test_custom_list_matches_arns_exactly_and_names_not_partially() -> None:
    custom = ("arn:aws:iam::123456789012:policy/PaymentsWrite", "Break-Glass")
    mine = AttachedPolicy.from_arn("arn:aws:iam::123456789012:policy/PaymentsWrite")
    other_account = AttachedPolicy.from_arn("arn:aws:iam::999999999999:policy/PaymentsWrite")
    expansion = PermissionExpansion(managed_policies=(mine, other_account, ADMIN), permissions_boundary_arn=BOUNDARY)
    flags = assess(form(permission_mode=PermissionMode.POLICIES, groups=()), expansion, custom)
    assert [f.text for f in flags] == ["Sensitive: policy `PaymentsWrite`"]  # ADMIN is not on this custom list
    partial = PermissionExpansion(groups=(GroupGrant(name="Break-Glass-Readers"),), permissions_boundary_arn=BOUNDARY)
    assert assess(form(groups=("Break-Glass-Readers",)), partial, custom) == ()


def test_no_boundary_and_console_without_mfa_are_flagged_but_not_sensitive() -> None:
    expansion = PermissionExpansion(groups=(GroupGrant(name="developers"),))
    console = form(access_types=frozenset({AccessType.CONSOLE}), permissions_boundary_arn=None)
    flags = assess(console, expansion, DEFAULT_SENSITIVE_PERMISSIONS)
    assert codes(flags) == ["no_boundary", "console_without_mfa"]
    assert approvals_required(flags, 2) == 1
    with_mfa = form(access_types=frozenset({AccessType.CONSOLE}), permissions_boundary_arn=None, mfa_required=True)
    assert codes(assess(with_mfa, expansion, DEFAULT_SENSITIVE_PERMISSIONS)) == ["no_boundary"]


def test_unreadable_expansion_is_sensitive() -> None:
    flags = assess(form(), PermissionExpansion(error="NoSuchEntity"), DEFAULT_SENSITIVE_PERMISSIONS)
    assert codes(flags)[0] == "unreadable" and flags[0].sensitive


@pytest.mark.parametrize(
    ("document", "broad"),
    [
        ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, True),
        ({"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "IAM:*"], "Resource": "*"}}, True),
        ({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}, True),
        ({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}, False),
        ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}, False),
        ({}, False),
    ],
)
def test_allows_everything(document: dict, broad: bool) -> None:
    assert allows_everything(document) is broad


def test_fingerprint_is_stable_and_changes_with_what_is_granted() -> None:
    expansion = PermissionExpansion(groups=(GroupGrant(name="developers", managed_policies=(READ_ONLY,)),))
    both = frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC})
    first = fingerprint(form(access_types=both), expansion)
    assert len(first) == 64 and first == fingerprint(form(access_types=both), expansion.model_copy())
    more = PermissionExpansion(groups=(GroupGrant(name="developers", managed_policies=(READ_ONLY, ADMIN)),))
    assert fingerprint(form(access_types=both), more) != first
    assert fingerprint(form(access_types=both, user_names=("other",)), expansion) != first


def test_describe_change_names_the_copy_source() -> None:
    before = PermissionExpansion(copy_source=UserPermissions(user_name="src", managed_policy_arns=(READ_ONLY.arn,)))
    after = PermissionExpansion(copy_source=UserPermissions(user_name="src", managed_policy_arns=(ADMIN.arn,)))
    assert "user `src`" in describe_change(before, after)


def test_describe_change_when_iam_cannot_be_read_claims_nothing_else() -> None:
    # A failed read has no groups, account id or password policy; comparing them with the
    # approved read used to add "group policies changed" and "account or password policy
    # changed" to the requester's message, neither of which was known to be true.
    approved = PermissionExpansion(
        groups=(GroupGrant(name="developers", managed_policies=(READ_ONLY,)),),
        permissions_boundary_arn=BOUNDARY,
        account_id="123456789012",
        users_may_change_password=True,
    )
    unreadable = PermissionExpansion(error="NoSuchEntity while reading IAM")
    assert describe_change(approved, unreadable) == "IAM could not be read (NoSuchEntity while reading IAM)"


def test_settings_read_the_sensitive_list_and_approvals(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-0000000000",
        "SLACK_SIGNING_SECRET": "s",
        "APPROVAL_CHANNEL_ID": "C0APPROVALS",
        "APPROVER_USER_IDS": "U0APPROVE1",
        "PUBLIC_BASE_URL": "https://bot.example.com",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    defaults = load_settings()
    assert defaults.sensitive_permissions == DEFAULT_SENSITIVE_PERMISSIONS
    assert defaults.sensitive_approvals_required == 2
    monkeypatch.setenv("SENSITIVE_PERMISSIONS", " AdministratorAccess , arn:aws:iam::1:policy/X,")
    monkeypatch.setenv("SENSITIVE_APPROVALS_REQUIRED", "3")
    custom = load_settings()
    assert custom.sensitive_permissions == ("AdministratorAccess", "arn:aws:iam::1:policy/X")
    assert custom.sensitive_approvals_required == 3


def test_too_few_approvers() -> None:
    assert too_few_approvers(2, 2) is None
    flag = too_few_approvers(1, 2)
    assert flag is not None and not flag.sensitive and "only 1 approver(s)" in flag.text
