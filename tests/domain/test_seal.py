"""The approval seal and the checks a run makes against it (pure, bot/domain/seal.py), and the
seal's key derivation (bot/credentials/sealing.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.credentials.sealing import HKDF_INFO, approval_seal_key
from bot.domain.models import (
    AccessType,
    AttachedPolicy,
    GroupGrant,
    InlinePolicyCopy,
    OnboardingRequest,
    PermissionExpansion,
    PermissionMode,
    RemoveMode,
    RequestForm,
    Review,
    UserHoldings,
    UserPermissions,
)
from bot.domain.plan import CHANGE_PASSWORD_POLICY_ARN, Step, StepKind, build_plan
from bot.domain.removal import MODE_KINDS, removal_plan
from bot.domain.risk import fingerprint
from bot.domain.seal import (
    ApprovalSeal,
    SealCause,
    approval_problem,
    approved_plans,
    offer_problem,
    plan_problem,
    removal_problem,
)
from bot.domain.states import RequestStatus

ACCOUNT = "123456789012"
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/dev-boundary"
KEY = bytes(range(32))
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def request(form: RequestForm, request_id: str = "R-AAAA2222") -> OnboardingRequest:
    return OnboardingRequest(
        id=request_id,
        requester="U0REQUEST1",
        form=form,
        status=RequestStatus.APPROVED,
        created_at=NOW,
        updated_at=NOW,
        decided_by="U0APPROVE1",
    )


def new_user_form(**overrides: object) -> RequestForm:
    base: dict[str, object] = {
        "recipients": ("U0NEWHIRE1",),
        "user_names": ("nina.newhire",),
        "access_types": frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        "require_reset": True,
        "permission_mode": PermissionMode.POLICIES,
        "policy_arns": (READ_ONLY_ARN,),
        "permissions_boundary_arn": BOUNDARY,
        "mfa_required": True,
        "justification": "Joins the data team.",
    }
    base.update(overrides)
    return RequestForm(**base)  # type: ignore[arg-type]


EXPANSION = PermissionExpansion(
    managed_policies=(AttachedPolicy.from_arn(READ_ONLY_ARN),), permissions_boundary_arn=BOUNDARY, account_id=ACCOUNT
)


def approved_review(seal: ApprovalSeal, req: OnboardingRequest, expansion: PermissionExpansion = EXPANSION) -> Review:
    return Review(expansion=expansion, fingerprint=seal.seal(req.id, fingerprint(req.form, expansion)))


# -- the seal ---------------------------------------------------------------------------------------


def test_a_seal_binds_the_request_id_and_the_fingerprint_under_the_key() -> None:
    seal = ApprovalSeal(KEY)
    sealed = seal.seal("R-AAAA2222", "ab" * 32)
    assert sealed == ApprovalSeal(KEY).seal("R-AAAA2222", "ab" * 32)  # every process, every approver
    prefix, key_id, mac = sealed.split(":")
    assert prefix == "seal1" and len(key_id) == 8 and len(mac) == 64 and "ab" * 32 not in sealed
    assert seal.matches("R-AAAA2222", "ab" * 32, sealed)
    assert not seal.matches("R-BBBB3333", "ab" * 32, sealed)  # copied onto another request
    assert not seal.matches("R-AAAA2222", "cd" * 32, sealed)  # another content
    assert not seal.matches("R-AAAA2222", "ab" * 32, None) and not seal.matches("R-AAAA2222", "ab" * 32, "")
    other = ApprovalSeal(bytes(32))
    assert other.seal("R-AAAA2222", "ab" * 32) != sealed and not other.matches("R-AAAA2222", "ab" * 32, sealed)
    assert repr(seal) == "ApprovalSeal(<key hidden>)" and KEY.hex() not in repr(seal)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        ApprovalSeal(b"short")


def test_the_seal_key_comes_from_the_sealing_secret_under_its_own_label() -> None:
    token, rotated, dedicated = "xoxb-" + "1" * 40, "xoxb-" + "2" * 40, "k" * 43
    key = approval_seal_key(token, dedicated)
    assert len(key) == 32 and dedicated.encode() not in key and key.hex() not in dedicated
    # The dedicated key decides; rotating the bot token then changes nothing.
    assert approval_seal_key(rotated, dedicated) == key
    # Without it the bot token does, so rotating the token changes the key.
    assert approval_seal_key(token) != approval_seal_key(rotated) and approval_seal_key(token) != key
    # Not the custom password seal's derivation of the same secret (its own HKDF info label).
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    assert key != HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(dedicated.encode())
    with pytest.raises(ValueError, match="16 bytes"):
        approval_seal_key("short")


def test_the_stored_approval_must_seal_the_stored_form_and_review() -> None:
    seal = ApprovalSeal(KEY)
    req = request(new_user_form())
    review = approved_review(seal, req)
    assert approval_problem(seal, req, review) is None

    assert approval_problem(seal, req, None).what == "no review is stored for the request"  # type: ignore[union-attr]
    unapproved = approval_problem(seal, req, review.model_copy(update={"fingerprint": None}))
    assert unapproved is not None and unapproved.what == "no approval is recorded for the request"
    # The form edited after approval: admin instead of read-only, or the link sent to someone else.
    for edited in (new_user_form(policy_arns=(ADMIN_ARN,)), new_user_form(recipients=("U0ATTACK01",))):
        problem = approval_problem(seal, req.model_copy(update={"form": edited}), review)
        assert problem is not None and problem.cause is SealCause.TAMPERED and not problem.reapprove
    # The review edited so that it agrees with an edited form: still not what was sealed.
    admin = EXPANSION.model_copy(update={"managed_policies": (AttachedPolicy.from_arn(ADMIN_ARN),)})
    both = approval_problem(
        seal,
        req.model_copy(update={"form": new_user_form(policy_arns=(ADMIN_ARN,))}),
        review.model_copy(update={"expansion": admin}),
    )
    assert both is not None and both.cause is SealCause.TAMPERED
    # A genuine seal copied from another request does not cover this one.
    other = request(new_user_form(), "R-BBBB3333")
    assert approval_problem(seal, other, review) is not None
    # Approved before seals existed: the plain digest is refused, asking for a new approval.
    plain = review.model_copy(update={"fingerprint": fingerprint(req.form, EXPANSION)})
    legacy = approval_problem(seal, req, plain)
    assert legacy is not None and legacy.cause is SealCause.LEGACY and legacy.reapprove
    # Sealed under another key (the sealing secret changed): refused, asking for a new approval.
    rekeyed = approval_problem(ApprovalSeal(bytes(32)), req, review)
    assert rekeyed is not None and rekeyed.cause is SealCause.OTHER_KEY and "another key" in rekeyed.what


def test_a_click_must_find_what_the_review_sealed_when_approvers_were_shown_it() -> None:
    seal = ApprovalSeal(KEY)
    req = request(new_user_form())
    plain = fingerprint(req.form, EXPANSION)
    offered = seal.offer(req.id, plain, 1)
    assert offered != seal.seal(req.id, plain)  # its own domain: a review's seal is never an approval's
    review = Review(expansion=EXPANSION, approvals_required=1, offered=offered)
    assert offer_problem(seal, req, review) is None

    edited = req.model_copy(update={"form": new_user_form(policy_arns=(ADMIN_ARN,))})
    assert offer_problem(seal, edited, review).cause is SealCause.TAMPERED  # type: ignore[union-attr]
    recounted = review.model_copy(update={"approvals_required": 2})
    assert offer_problem(seal, req, recounted) is not None  # the approvals needed are sealed too
    unsealed = offer_problem(seal, req, review.model_copy(update={"offered": None}))
    assert unsealed is not None and unsealed.cause is SealCause.LEGACY and unsealed.reapprove
    rekeyed = offer_problem(ApprovalSeal(bytes(32)), req, review)
    assert rekeyed is not None and rekeyed.cause is SealCause.OTHER_KEY


# -- the stored plan ------------------------------------------------------------------------------


def test_a_stored_plan_must_be_the_one_the_verified_request_makes() -> None:
    req = request(new_user_form())
    approved = approved_plans(req, EXPANSION, ACCOUNT)
    # Both answers of the password policy: IAMUserChangePassword is attached only when users may
    # not change their own password.
    assert len(approved) == 2
    stored = build_plan(req, "U0APPROVE1", account_id=ACCOUNT, users_may_change_password=False)
    assert any(s.target == CHANGE_PASSWORD_POLICY_ARN for s in stored)
    assert plan_problem(stored, approved) is None

    admin = Step(kind=StepKind.ATTACH_USER_POLICY, user_name="nina.newhire", target=ADMIN_ARN)
    appended = plan_problem([*stored, admin], approved)
    assert appended is not None and appended.cause is SealCause.TAMPERED
    assert "steps nobody approved: attach_user_policy nina.newhire → " + ADMIN_ARN in appended.what
    # No boundary on the new user: every field of a step counts, not only its kind and target.
    create = next(i for i, s in enumerate(stored) if s.kind is StepKind.CREATE_USER)
    unbounded = [*stored]
    unbounded[create] = stored[create].model_copy(update={"permissions_boundary_arn": None})
    assert plan_problem(unbounded, approved) is not None
    # Another owner tag (who may rotate the user's key) is not the approved plan either.
    retagged = [*stored]
    retagged[create] = stored[create].model_copy(update={"tags": ()})
    assert plan_problem(retagged, approved) is not None
    # The journal is indexed by position: the same steps in another order are refused too.
    swapped = [stored[1], stored[0], *stored[2:]]
    reordered = plan_problem(swapped, approved)
    assert reordered is not None and "steps reordered" in reordered.what
    # A forged label cannot flood the audit row or the alert.
    long = Step(kind=StepKind.ATTACH_USER_POLICY, user_name="nina.newhire", target="x" * 5000)
    flooded = plan_problem([*stored, long, long, long, long], approved)
    assert flooded is not None and len(flooded.what) < 1000 and "(and 1 more)" in flooded.what


def test_a_copy_user_plan_is_rebuilt_from_the_approved_source_and_digests() -> None:
    form = new_user_form(permission_mode=PermissionMode.COPY_USER, policy_arns=(), copy_from_user="template.user")
    source = UserPermissions(user_name="template.user", groups=("developers",), inline_policy_names=("scratch",))
    expansion = PermissionExpansion(
        groups=(GroupGrant(name="developers"),),
        inline_policies=(InlinePolicyCopy(name="scratch", sha256="d" * 64),),
        copy_source=source,
        account_id=ACCOUNT,
    )
    req = request(form)
    stored = build_plan(req, "U0APPROVE1", account_id=ACCOUNT, copy_source=source, inline_digests={"scratch": "d" * 64})
    assert plan_problem(stored, approved_plans(req, expansion, ACCOUNT)) is None
    put = next(i for i, s in enumerate(stored) if s.kind is StepKind.PUT_USER_POLICY)
    swapped = [*stored]
    swapped[put] = stored[put].model_copy(update={"document_sha256": "e" * 64, "source_user": "admin.user"})
    assert plan_problem(swapped, approved_plans(req, expansion, ACCOUNT)) is not None
    # Without the expanded source nothing can be rebuilt, so nothing stored can match.
    unbuildable = plan_problem(stored, approved_plans(req, expansion.model_copy(update={"copy_source": None}), ACCOUNT))
    assert unbuildable is not None and "cannot be rebuilt" in unbuildable.what


# -- removals -------------------------------------------------------------------------------------


HOLDINGS = UserHoldings(
    user_name="nina.newhire",
    login_profile=True,
    access_keys=(("AKIA1", "Active"), ("AKIA2", "Inactive")),
    signing_certificates=("CERT1",),
    ssh_public_keys=("APKA1",),
    service_credentials=("ACCA1",),
    mfa_devices=(f"arn:aws:iam::{ACCOUNT}:mfa/nina",),
    inline_policies=("scratch",),
    managed_policies=(AttachedPolicy.from_arn(READ_ONLY_ARN),),
    groups=("developers",),
)


def removal(mode: RemoveMode, names: tuple[str, ...] = ("nina.newhire",)) -> RequestForm:
    return RequestForm(
        recipients=("U0NEWHIRE1",) * len(names),
        user_names=names,
        access_types=frozenset(),
        remove_mode=mode,
        justification="Nina left.",
    )


@pytest.mark.parametrize("mode", list(RemoveMode))
def test_a_removal_plan_may_only_take_away_from_the_requests_users(mode: RemoveMode) -> None:
    plan = removal_plan([HOLDINGS], mode)
    assert {s.kind for s in plan} <= MODE_KINDS[mode]
    assert removal_problem(removal(mode), plan) is None

    granting = [*plan, Step(kind=StepKind.ATTACH_USER_POLICY, user_name="nina.newhire", target=ADMIN_ARN)]
    problem = removal_problem(removal(mode), granting)
    assert problem is not None and f"steps a {mode} does not make: attach_user_policy" in problem.what
    someone_else = [*plan, Step(kind=StepKind.DELETE_USER, user_name="omar.stays")]
    problem = removal_problem(removal(mode), someone_else)
    assert problem is not None and "steps on users not in the request: delete_user omar.stays" in problem.what


def test_a_disable_plan_may_not_delete() -> None:
    deleting = [
        *removal_plan([HOLDINGS], RemoveMode.DISABLE),
        Step(kind=StepKind.DELETE_USER, user_name="nina.newhire"),
    ]
    problem = removal_problem(removal(RemoveMode.DISABLE), deleting)
    assert problem is not None and "steps a disable does not make: delete_user nina.newhire" in problem.what
    assert removal_problem(removal(RemoveMode.DISABLE), removal_plan([HOLDINGS], RemoveMode.DELETE)) is not None
    assert MODE_KINDS[RemoveMode.DISABLE] == {StepKind.DEACTIVATE_ACCESS_KEY, StepKind.DELETE_LOGIN_PROFILE}
