"""Make a request's permissions concrete from IAM: groups with their policies, "copy from user"
replaced by what the source user holds now.

Read after the filing's ack (never in a click path: a big account's reads can take seconds),
stored with the request, shown to approvers and fingerprinted at approval. Read again right
before provisioning: if the fresh read fingerprints differently, what would run is not what
was approved (:func:`bot.domain.risk.fingerprint`).
"""

from __future__ import annotations

import logging

from bot.aws.iam import IamError, IamGateway
from bot.domain.models import (
    AttachedPolicy,
    GroupGrant,
    InlinePolicyCopy,
    PermissionExpansion,
    PermissionMode,
    RequestForm,
)
from bot.domain.plan import policy_document_sha256
from bot.domain.risk import allows_everything

log = logging.getLogger(__name__)


def read_expansion(form: RequestForm, iam: IamGateway) -> PermissionExpansion:
    """What ``form`` would grant, read from IAM now. Slow (several IAM reads): call after the ack.

    Never raises for IAM errors: an unreadable request comes back with ``error`` set, so the
    caller can store it and refuse approval (fail closed) instead of losing the request.
    """
    try:
        return _read(form, iam)
    except IamError as error:
        return PermissionExpansion(error=str(error)[:300])
    except Exception as error:  # STS, network, a malformed answer: fail closed all the same
        log.warning("reading a request's permissions failed: %s", type(error).__name__)
        return PermissionExpansion(error=f"{type(error).__name__} while reading IAM")


def _read(form: RequestForm, iam: IamGateway) -> PermissionExpansion:
    boundary = form.permissions_boundary_arn
    copy_source = None
    inline: tuple[InlinePolicyCopy, ...] = ()
    if form.permission_mode is PermissionMode.COPY_USER:
        if not form.copy_from_user:
            raise ValueError("copy_user mode without a source user")
        copy_source = iam.user_permissions(form.copy_from_user)
        group_names = copy_source.groups
        managed = tuple(AttachedPolicy.from_arn(arn) for arn in copy_source.managed_policy_arns)
        inline = tuple(_inline_copy(iam, copy_source.user_name, name) for name in copy_source.inline_policy_names)
        boundary = boundary or copy_source.permissions_boundary_arn
    elif form.permission_mode is PermissionMode.POLICIES:
        group_names = ()
        managed = tuple(AttachedPolicy.from_arn(arn) for arn in form.policy_arns)
    else:
        group_names = form.groups
        managed = ()
    groups: tuple[GroupGrant, ...] = tuple(iam.group_grant(name) for name in group_names)
    return PermissionExpansion(
        groups=groups,
        managed_policies=managed,
        inline_policies=inline,
        permissions_boundary_arn=boundary,
        copy_source=copy_source,
        account_id=iam.account_id(),
        users_may_change_password=iam.password_policy().allow_users_to_change_password,
    )


def _inline_copy(iam: IamGateway, user_name: str, policy_name: str) -> InlinePolicyCopy:
    document = iam.user_policy_document(user_name, policy_name)
    return InlinePolicyCopy(
        name=policy_name,
        sha256=policy_document_sha256(document),
        broad=allows_everything(document),
    )
