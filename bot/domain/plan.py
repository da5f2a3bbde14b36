"""Turn an approved request into the ordered IAM steps that create its users. Pure: no I/O.

A plan holds names and ARNs only, never a secret: passwords and keys are made while the
steps run. Step order follows what IAM needs: the user first, then what hangs off it.
"Copy from user" arrives already expanded (:class:`~bot.domain.models.UserPermissions`, read from
the API), so the plan shows exactly what will be copied.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from bot.domain.models import OnboardingRequest, PermissionMode, Tag, UserPermissions

# What the bot leaves on every user it creates (contract, section 4), besides the request's tags:
# the managed marker its own IAM policy keys on, the owner (the recipient's Slack id), and the
# provenance of the request. They count towards IAM's 50 tags per user.
MANAGED_TAG = "iam-user-bot:managed"  # also on the bot-managed customer managed policies
OWNER_TAG = "iam-user-bot:owner"
PROVENANCE_TAG_KEYS = ("iam-user-bot:request-id", "iam-user-bot:requested-by", "iam-user-bot:approved-by")
REQUEST_ID_TAG = PROVENANCE_TAG_KEYS[0]
BOT_TAG_KEYS = (MANAGED_TAG, OWNER_TAG, *PROVENANCE_TAG_KEYS)
# The IAM path of every user the bot creates. The bot's policy lets it create and tag users only
# here (bot.domain.bot_policy), which keeps its managed tag off every user it did not create.
USER_PATH = "/iam-user-bot/"
# Bot-managed customer managed policies (documents in bot/policies/, reasoning in docs/).
MFA_POLICY_NAME = "iam-user-bot-require-mfa"
SELF_MANAGE_POLICY_NAME = "iam-user-bot-self-manage-credentials"
# Each one's short name: its document is bot/policies/<short>.json, printed by `iam-user-bot policy <short>`.
BOT_POLICY_SHORT_NAMES = {MFA_POLICY_NAME: "require-mfa", SELF_MANAGE_POLICY_NAME: "self-manage-credentials"}
# The description the bot gives each one (CreatePolicy ``Description``, at most 1,000 characters).
BOT_POLICY_DESCRIPTIONS = {
    MFA_POLICY_NAME: "iam-user-bot: deny everything but first sign-in and MFA set-up until the user signs in with MFA",
    SELF_MANAGE_POLICY_NAME: "iam-user-bot: let users manage their own password, access keys and MFA device",
}
CHANGE_PASSWORD_POLICY_ARN = "arn:aws:iam::aws:policy/IAMUserChangePassword"  # noqa: S105 - an ARN


class StepKind(enum.StrEnum):
    """One IAM API call the plan needs, named after the call."""

    ENSURE_BOT_POLICY = "ensure_bot_policy"  # create_policy once if absent (account-wide)
    CREATE_USER = "create_user"
    CREATE_LOGIN_PROFILE = "create_login_profile"
    CREATE_ACCESS_KEY = "create_access_key"
    ADD_USER_TO_GROUP = "add_user_to_group"
    ATTACH_USER_POLICY = "attach_user_policy"
    PUT_USER_POLICY = "put_user_policy"  # copies an inline policy of the source user
    # Taking an existing user apart (/iam-user remove; bot.domain.removal builds these plans).
    DEACTIVATE_ACCESS_KEY = "deactivate_access_key"  # update_access_key --status Inactive
    DELETE_LOGIN_PROFILE = "delete_login_profile"
    DELETE_ACCESS_KEY = "delete_access_key"
    DELETE_SIGNING_CERTIFICATE = "delete_signing_certificate"
    DELETE_SSH_PUBLIC_KEY = "delete_ssh_public_key"
    DELETE_SERVICE_SPECIFIC_CREDENTIAL = "delete_service_specific_credential"
    DEACTIVATE_MFA_DEVICE = "deactivate_mfa_device"
    DELETE_VIRTUAL_MFA_DEVICE = "delete_virtual_mfa_device"
    DELETE_USER_POLICY = "delete_user_policy"
    DETACH_USER_POLICY = "detach_user_policy"
    REMOVE_USER_FROM_GROUP = "remove_user_from_group"
    DELETE_USER = "delete_user"


@dataclass(frozen=True)
class KindRules:
    """How the plan treats one step kind.

    ``account_wide``: runs once before every user's steps (``user_name`` empty).
    ``makes_secret``: its output (a password, a secret access key) lives only in the memory of
    the run that made it, so after a crash the step runs again. ``quota``: the
    ``get_account_summary`` quota that counts this kind per user, and its words. ``removes``:
    it takes something away from an existing user (a removal plan's step).
    """

    account_wide: bool = False
    makes_secret: bool = False
    quota: tuple[str, str] | None = None
    removes: bool = False


REMOVES = KindRules(removes=True)


# The plan's table: every StepKind has its rules here (a test checks none is missing).
STEP_KINDS: Mapping[StepKind, KindRules] = {
    StepKind.ENSURE_BOT_POLICY: KindRules(account_wide=True),
    StepKind.CREATE_USER: KindRules(),
    StepKind.CREATE_LOGIN_PROFILE: KindRules(makes_secret=True),
    StepKind.CREATE_ACCESS_KEY: KindRules(makes_secret=True, quota=("AccessKeysPerUserQuota", "access keys")),
    StepKind.ADD_USER_TO_GROUP: KindRules(quota=("GroupsPerUserQuota", "groups")),
    StepKind.ATTACH_USER_POLICY: KindRules(quota=("AttachedPoliciesPerUserQuota", "managed policies")),
    StepKind.PUT_USER_POLICY: KindRules(),
    StepKind.DEACTIVATE_ACCESS_KEY: REMOVES,
    StepKind.DELETE_LOGIN_PROFILE: REMOVES,
    StepKind.DELETE_ACCESS_KEY: REMOVES,
    StepKind.DELETE_SIGNING_CERTIFICATE: REMOVES,
    StepKind.DELETE_SSH_PUBLIC_KEY: REMOVES,
    StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL: REMOVES,
    StepKind.DEACTIVATE_MFA_DEVICE: REMOVES,
    StepKind.DELETE_VIRTUAL_MFA_DEVICE: REMOVES,
    StepKind.DELETE_USER_POLICY: REMOVES,
    StepKind.DETACH_USER_POLICY: REMOVES,
    StepKind.REMOVE_USER_FROM_GROUP: REMOVES,
    StepKind.DELETE_USER: REMOVES,
}


class Step(BaseModel):
    """One IAM call.

    ``target`` is the group name (``add_user_to_group``, ``remove_user_from_group``), the policy
    ARN (``attach_user_policy``, ``detach_user_policy``), the inline policy name
    (``put_user_policy``, ``delete_user_policy``), the bot policy name (``ensure_bot_policy``), or
    the id of what a removal step takes away (an access key id, a certificate or SSH key id, a
    service-specific credential id, an MFA device's serial number). ``source_user`` is the user an
    inline policy is copied from. ``user_name`` is empty for account-wide steps.
    ``document_sha256`` is the digest of the copied inline policy's document as the approvers saw
    it (:func:`policy_document_sha256`).
    ``policy_arn`` and ``tags`` of ``ensure_bot_policy``: the ARN the policy gets, and the tags
    it is created with (the managed marker and the request id), so the CLI preview can make it
    exactly as the bot does (plans stored before they existed leave them empty).
    """

    model_config = ConfigDict(frozen=True)

    kind: StepKind
    user_name: str = ""
    target: str | None = None
    tags: tuple[Tag, ...] = ()
    permissions_boundary_arn: str | None = None
    password_reset_required: bool = False
    source_user: str | None = None
    document_sha256: str | None = None
    policy_arn: str | None = None

    @property
    def label(self) -> str:
        """Short human text, for journals and progress lines."""
        suffix = f" → {self.target}" if self.target else ""
        return f"{self.kind.value} {self.user_name}{suffix}".replace("  ", " ")


def bot_tags(request: OnboardingRequest, approver: str, owner: str) -> tuple[Tag, ...]:
    """The bot's tags on one new user (:data:`BOT_TAG_KEYS`): managed, its owner (the recipient
    who gets its credentials), and the request id, requester and approver that made it."""
    values = ("true", owner, request.id, request.requester, approver)
    return tuple(Tag(key=key, value=value) for key, value in zip(BOT_TAG_KEYS, values, strict=True))


def bot_policy_tags(request: OnboardingRequest) -> tuple[Tag, ...]:
    """The tags of a bot-managed policy ``request`` creates: the managed marker, which the bot
    adopts an existing policy by, and the request id, which lets a rollback delete only the
    policy this request made."""
    return (Tag(key=MANAGED_TAG, value="true"), Tag(key=REQUEST_ID_TAG, value=request.id))


def policy_document_sha256(document: Mapping[str, object]) -> str:
    """sha256 (hex) of a policy document's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def bot_policy_arn(account_id: str, name: str) -> str:
    """ARN of a bot-managed customer managed policy (created at path ``/``)."""
    return f"arn:aws:iam::{account_id}:policy/{name}"


def build_plan(
    request: OnboardingRequest,
    approver: str,
    *,
    account_id: str,
    copy_source: UserPermissions | None = None,
    users_may_change_password: bool = True,
    inline_digests: Mapping[str, str] | None = None,
) -> list[Step]:
    """The IAM steps for every user of ``request``.

    Args:
        approver: Slack id of the approver (a provenance tag).
        account_id: the AWS account, for the ARNs of the bot-managed policies.
        copy_source: the expanded "copy from user" source; required when the request's
            permission mode is ``copy_user``.
        inline_digests: the approved digest of each copied inline policy, by name; the step
            refuses to copy a document that has changed since (what was approved is what runs).
        users_may_change_password: the account password policy's ``AllowUsersToChangePassword``.
            When a reset is required and users may not change their password, the AWS managed
            policy ``IAMUserChangePassword`` is attached so the first sign-in can complete.

    Order: account-wide bot policies first; then per user ``create_user`` (tags, boundary),
    ``create_login_profile``, ``create_access_key``, groups, managed policies, inline policies.

    Raises:
        ValueError: ``copy_user`` mode without ``copy_source``.
    """
    form = request.form
    groups: tuple[str, ...] = ()
    policies: list[str] = []
    inline: tuple[str, ...] = ()
    boundary = form.permissions_boundary_arn
    if form.permission_mode is PermissionMode.GROUPS:
        groups = form.groups
    elif form.permission_mode is PermissionMode.POLICIES:
        policies = list(form.policy_arns)
    else:
        if copy_source is None:
            raise ValueError("a copy_user request needs the expanded source user")
        groups = copy_source.groups
        policies = list(copy_source.managed_policy_arns)
        inline = copy_source.inline_policy_names
        boundary = boundary or copy_source.permissions_boundary_arn

    steps: list[Step] = []
    for wanted, name in ((form.mfa_required, MFA_POLICY_NAME), (form.self_manage_credentials, SELF_MANAGE_POLICY_NAME)):
        if wanted:
            arn = bot_policy_arn(account_id, name)
            steps.append(
                Step(kind=StepKind.ENSURE_BOT_POLICY, target=name, policy_arn=arn, tags=bot_policy_tags(request))
            )
            policies.append(arn)
    if form.console and form.require_reset and not users_may_change_password:
        policies.append(CHANGE_PASSWORD_POLICY_ARN)
    policies = list(dict.fromkeys(policies))

    for user_name in form.user_names:
        tags = (*form.tags, *bot_tags(request, approver, form.recipient_of(user_name)))
        steps.append(Step(kind=StepKind.CREATE_USER, user_name=user_name, tags=tags, permissions_boundary_arn=boundary))
        if form.console:
            steps.append(
                Step(
                    kind=StepKind.CREATE_LOGIN_PROFILE,
                    user_name=user_name,
                    password_reset_required=form.require_reset,
                )
            )
        if form.programmatic:
            steps.append(Step(kind=StepKind.CREATE_ACCESS_KEY, user_name=user_name))
        steps.extend(Step(kind=StepKind.ADD_USER_TO_GROUP, user_name=user_name, target=g) for g in groups)
        steps.extend(Step(kind=StepKind.ATTACH_USER_POLICY, user_name=user_name, target=arn) for arn in policies)
        steps.extend(
            Step(
                kind=StepKind.PUT_USER_POLICY,
                user_name=user_name,
                target=name,
                source_user=copy_source.user_name if copy_source else None,
                document_sha256=(inline_digests or {}).get(name),
            )
            for name in inline
        )
    return steps
