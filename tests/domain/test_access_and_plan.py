"""Pure decisions: who may decide; what the plan creates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.access import may_decide, may_request
from bot.domain.models import AccessType, OnboardingRequest, PermissionMode, RequestForm, UserPermissions
from bot.domain.plan import CHANGE_PASSWORD_POLICY_ARN, StepKind, build_plan
from bot.domain.states import RequestStatus

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def request(**form: object) -> OnboardingRequest:
    base = {
        "recipients": ("U_NEW",),
        "user_names": ("nina",),
        "access_types": frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        "groups": ("dev",),
        "justification": "needs access",
    }
    base.update(form)
    return OnboardingRequest(
        id="R-TEST0001",
        requester="U_REQ",
        form=RequestForm(**base),
        status=RequestStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [("U_APP", True), ("U_REQ", False), ("U_NEW", False), ("U_OTHER", False)],
)
def test_only_an_uninvolved_approver_decides(actor: str, allowed: bool) -> None:
    approvers = {"U_APP", "U_REQ", "U_NEW"}  # even approvers may not decide their own request
    assert may_decide(actor, request(), approvers).allowed is allowed


def test_requesters_unset_means_everyone() -> None:
    assert may_request("U_ANY", None).allowed
    assert not may_request("U_ANY", {"U_REQ"}).allowed


def test_plan_orders_steps_per_user() -> None:
    steps = build_plan(request(user_names=("a", "b"), recipients=("U1", "U2")), "U_APP", account_id="123456789012")
    kinds = [(s.kind, s.user_name) for s in steps]
    assert kinds == [
        (StepKind.CREATE_USER, "a"),
        (StepKind.CREATE_LOGIN_PROFILE, "a"),
        (StepKind.CREATE_ACCESS_KEY, "a"),
        (StepKind.ADD_USER_TO_GROUP, "a"),
        (StepKind.CREATE_USER, "b"),
        (StepKind.CREATE_LOGIN_PROFILE, "b"),
        (StepKind.CREATE_ACCESS_KEY, "b"),
        (StepKind.ADD_USER_TO_GROUP, "b"),
    ]
    tags = {t.key: t.value for t in steps[0].tags}
    assert tags == {
        "iam-user-bot:managed": "true",
        "iam-user-bot:owner": "U1",
        "iam-user-bot:request-id": "R-TEST0001",
        "iam-user-bot:requested-by": "U_REQ",
        "iam-user-bot:approved-by": "U_APP",
    }
    # Each user's owner is the recipient who gets its credentials.
    owners = {s.user_name: dict((t.key, t.value) for t in s.tags)["iam-user-bot:owner"] for s in steps if s.tags}
    assert owners == {"a": "U1", "b": "U2"}


def test_copy_from_user_expands_and_bot_policies_come_first() -> None:
    source = UserPermissions(
        user_name="template",
        groups=("g1",),
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        inline_policy_names=("inline-1",),
        permissions_boundary_arn="arn:aws:iam::123456789012:policy/boundary",
    )
    req = request(permission_mode=PermissionMode.COPY_USER, copy_from_user="template", groups=(), mfa_required=True)
    steps = build_plan(req, "U_APP", account_id="123456789012", copy_source=source, users_may_change_password=False)
    assert steps[0].kind is StepKind.ENSURE_BOT_POLICY
    assert steps[1].permissions_boundary_arn == "arn:aws:iam::123456789012:policy/boundary"
    attached = [s.target for s in steps if s.kind is StepKind.ATTACH_USER_POLICY]
    assert attached == [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/iam-user-bot-require-mfa",
        CHANGE_PASSWORD_POLICY_ARN,
    ]
    inline = [s for s in steps if s.kind is StepKind.PUT_USER_POLICY]
    assert [(s.target, s.source_user) for s in inline] == [("inline-1", "template")]
    with pytest.raises(ValueError):
        build_plan(req, "U_APP", account_id="123456789012")
