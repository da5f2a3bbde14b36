"""IAM and STS reads: the catalog, account settings and quotas, one user's or group's permissions,
and a request's permissions made concrete (the "expansion" approvers judge).

Writes live in :mod:`bot.aws.steps` (a plan's steps), :mod:`bot.aws.removal` (taking users apart)
and :mod:`bot.aws.keys` (credentials of existing users); with this module they are the only code
that calls IAM and STS.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.catalog import CatalogSnapshot, ManagedPolicy
from bot.aws.clients import IamError, as_iam_error, error_code, paginate, retry_no_such_entity
from bot.domain.models import (
    AttachedPolicy,
    GroupGrant,
    InlinePolicyCopy,
    PermissionExpansion,
    PermissionMode,
    RequestForm,
    UserPermissions,
)
from bot.domain.plan import MANAGED_TAG, policy_document_sha256
from bot.domain.quotas import AccountQuotas
from bot.domain.risk import allows_everything
from bot.domain.rules import PasswordPolicy

log = logging.getLogger(__name__)


class IamGateway:
    """Reads IAM for the bot (and hands its client to the write modules).

    Args:
        iam: a boto3 IAM client; sts: a boto3 STS client (for the account id).
        sleep: the delay function for retries (tests pass a no-op).
    """

    def __init__(self, iam: Any, sts: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self._account_id: str | None = None
        self.iam = iam
        self.sts = sts
        self.sleep = sleep

    def retry(self, call: Callable[[], Any], delays: Sequence[float] | None = None) -> Any:
        """``call()`` with the ``NoSuchEntity`` retry of :func:`bot.aws.clients.retry_no_such_entity`."""
        if delays is None:
            return retry_no_such_entity(call, self.sleep)
        return retry_no_such_entity(call, self.sleep, delays)

    def list(self, operation: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item of a paginated IAM list call."""
        return paginate(self.iam, operation, key, **kwargs)

    # -- the catalog and the account ---------------------------------------------------------------

    def load_catalog(self) -> CatalogSnapshot:
        """Every user, group and managed policy (AWS and customer managed), with full pagination,
        plus the password policy, the per-user quotas and the account id.

        Slow on big accounts (about 1,300 AWS managed policies alone, 100 a page): call it in
        the background, never inside a Slack request. The password policy, account summary and
        caller identity are optional: when IAM refuses them the defaults stay (a warning is logged).

        Raises:
            IamError: a list call failed (the caller keeps its previous snapshot).
        """
        started = time.time()
        users, groups = self.user_names(), self.group_names()
        policies = self.managed_policies("All")
        try:
            password_policy = self.password_policy()
        except IamError as error:
            # IAM still enforces the real policy at create_login_profile; validation is then looser.
            log.warning("get_account_password_policy failed (%s); assuming AWS's default policy", error.code)
            password_policy = PasswordPolicy()
        quotas = AccountQuotas()
        try:
            quotas = AccountQuotas.from_summary(self.account_summary())
        except IamError as error:
            log.warning("get_account_summary failed (%s); assuming IAM's default quotas", error.code)
        account_id = None
        try:
            account_id = self.account_id()
        except ClientError as error:
            log.warning("sts:GetCallerIdentity failed (%s)", error_code(error))
        return CatalogSnapshot(
            user_names=users,
            group_names=groups,
            loaded_at=started,
            policies=policies,
            password_policy=password_policy,
            quotas=quotas,
            account_id=account_id,
        )

    def _names(self, operation: str, key: str, field: str) -> tuple[str, ...]:
        try:
            return tuple(item[field] for item in self.list(operation, key))
        except ClientError as error:
            raise as_iam_error(error) from None

    def user_names(self) -> tuple[str, ...]:
        """Every IAM user's name (``ListUsers``, every page: 100 users a page).

        Raises:
            IamError: the read was refused.
        """
        return self._names("list_users", "Users", "UserName")

    def group_names(self) -> tuple[str, ...]:
        """Every IAM group's name (``ListGroups``, every page).

        Raises:
            IamError: the read was refused.
        """
        return self._names("list_groups", "Groups", "GroupName")

    def managed_policies(self, scope: str = "Local") -> tuple[ManagedPolicy, ...]:
        """Managed policies (``ListPolicies``, every page): ``Local`` the account's own,
        ``All`` the AWS managed ones too (1,300 and more).

        Raises:
            IamError: the read was refused.
        """
        try:
            return tuple(ManagedPolicy.from_api(p) for p in self.list("list_policies", "Policies", Scope=scope))
        except ClientError as error:
            raise as_iam_error(error) from None

    def password_policy(self) -> PasswordPolicy:
        """The account password policy, or AWS's default policy when none is set."""
        try:
            answer = self.iam.get_account_password_policy()
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return PasswordPolicy()
            raise as_iam_error(error) from None
        return PasswordPolicy.from_api(answer["PasswordPolicy"])

    def account_id(self) -> str:
        """The AWS account id of the bot's own credentials (``sts:GetCallerIdentity``).

        Asked once per gateway: the credentials' account cannot change under a running bot.
        """
        if self._account_id is None:
            self._account_id = str(self.sts.get_caller_identity()["Account"])
        return self._account_id

    def console_url(self) -> str:
        """``https://<alias or account id>.signin.aws.amazon.com/console`` (IAM user guide)."""
        try:
            aliases = self.iam.list_account_aliases().get("AccountAliases", [])
        except ClientError:
            aliases = []  # list_account_aliases may be denied; the account id always works
        account = aliases[0] if aliases else self.account_id()
        return f"https://{account}.signin.aws.amazon.com/console"

    def account_summary(self) -> dict[str, int]:
        """``get_account_summary()["SummaryMap"]``: usage and quotas (``UsersQuota``,
        ``AttachedPoliciesPerUserQuota``, ``GroupsPerUserQuota``, ``AccessKeysPerUserQuota``…).

        Raises:
            IamError: the call was refused.
        """
        try:
            return dict(self.iam.get_account_summary()["SummaryMap"])
        except ClientError as error:
            raise as_iam_error(error) from None

    # -- users, groups, policies -------------------------------------------------------------------

    def user_permissions(self, user_name: str) -> UserPermissions:
        """Groups, attached managed policies, inline policy names and boundary of a user.

        Names come from the list APIs, never from parsing ARNs (users can have paths).

        Raises:
            IamError: ``NoSuchEntity`` when the user does not exist.
        """
        try:
            user = self.iam.get_user(UserName=user_name)["User"]
            return UserPermissions(
                user_name=user["UserName"],
                groups=tuple(g["GroupName"] for g in self.list("list_groups_for_user", "Groups", UserName=user_name)),
                managed_policy_arns=tuple(
                    p["PolicyArn"]
                    for p in self.list("list_attached_user_policies", "AttachedPolicies", UserName=user_name)
                ),
                inline_policy_names=tuple(self.list("list_user_policies", "PolicyNames", UserName=user_name)),
                permissions_boundary_arn=(user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            )
        except ClientError as error:
            raise as_iam_error(error) from None

    def group_grant(self, group_name: str) -> GroupGrant:
        """A group's attached managed policies and inline policy names (what joining it grants).

        Raises:
            IamError: ``NoSuchEntity`` when the group does not exist.
        """
        try:
            attached = self.list("list_attached_group_policies", "AttachedPolicies", GroupName=group_name)
            inline = self.list("list_group_policies", "PolicyNames", GroupName=group_name)
        except ClientError as error:
            raise as_iam_error(error) from None
        return GroupGrant(
            name=group_name,
            managed_policies=tuple(AttachedPolicy(arn=p["PolicyArn"], name=p["PolicyName"]) for p in attached),
            inline_policy_names=tuple(inline),
        )

    def user_policy_document(self, user_name: str, policy_name: str) -> dict[str, Any]:
        """An inline user policy's document as a dict (boto3 URL-decodes it; a string is parsed).

        Raises:
            IamError: ``NoSuchEntity`` when the user or policy does not exist.
        """
        try:
            document = self.iam.get_user_policy(UserName=user_name, PolicyName=policy_name)["PolicyDocument"]
        except ClientError as error:
            raise as_iam_error(error) from None
        return json.loads(document) if isinstance(document, str) else dict(document)

    def inline_policy_size(self, user_name: str, policy_name: str) -> int:
        """Non-whitespace characters of one inline policy of ``user_name`` (IAM counts these
        against ``UserPolicySizeQuota``, 2,048 per user).

        Raises:
            IamError: the policy or user is gone, or the read was refused.
        """
        text = json.dumps(self.user_policy_document(user_name, policy_name))
        return sum(1 for char in text if not char.isspace())

    def customer_policy_exists(self, arn: str) -> bool:
        """Whether a customer managed policy with this ARN exists (``GetPolicy``)."""
        try:
            self.iam.get_policy(PolicyArn=arn)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise as_iam_error(error) from None
        return True

    def policy_document(self, arn: str, *, delays: Sequence[float] = ()) -> dict[str, Any] | None:
        """The document of a managed policy's default version (``GetPolicy``, then
        ``GetPolicyVersion``; boto3 URL-decodes it, a string is parsed), or None when the policy
        does not exist.

        ``delays``: retry ``NoSuchEntity`` this way first, for a policy that should exist.

        Raises:
            IamError: a read was refused.
        """

        def read() -> Any:
            version = self.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            return self.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]

        try:
            document = self.retry(read, delays)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None
            raise as_iam_error(error) from None
        return json.loads(document) if isinstance(document, str) else dict(document)

    def tags_of(self, user_name: str, *, delays: Sequence[float] = ()) -> dict[str, str] | None:
        """The tags of a user (``ListUserTags``), or None when the user does not exist.

        ``delays``: retry ``NoSuchEntity`` this way first, for a user that should exist.
        """
        try:
            pages = self.retry(lambda: self.list("list_user_tags", "Tags", UserName=user_name), delays)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None
            raise as_iam_error(error) from None
        return {tag["Key"]: tag["Value"] for tag in pages}

    def require_managed(self, user_name: str, operation: str, *, delays: Sequence[float] = ()) -> None:
        """Refuse, before any write, to touch a user that lacks ``iam-user-bot:managed=true``.

        The bot's IAM policy allows writes only on such users (contract, sections 4 and 7); the
        code keeps to the same rule, whatever policy is attached, and says why in words. A user
        that does not exist passes (the write itself then reports ``NoSuchEntity``).

        Args:
            operation: the IAM call about to be made (named in the error).
            delays: retry ``NoSuchEntity`` this way first, for a user that should exist.

        Raises:
            IamError: ``NotManaged`` when the user exists without the tag; a read was refused.
        """
        tags = self.tags_of(user_name, delays=delays)
        if tags is not None and tags.get(MANAGED_TAG) != "true":
            raise IamError(
                "NotManaged",
                f"the IAM user {user_name} was not created by this bot (it has no {MANAGED_TAG}=true tag), "
                "so the bot leaves it alone",
                operation,
            )

    # -- a request's permissions, made concrete ----------------------------------------------------

    def read_expansion(self, form: RequestForm) -> PermissionExpansion:
        """What ``form`` would grant, read from IAM now: groups with their policies, "copy from
        user" replaced by what the source user holds, each copied inline policy's digest.

        Slow (several IAM reads): call it after a Slack ack. Never raises for IAM errors: an
        unreadable request comes back with ``error`` set, so the caller can store it and refuse
        approval (fail closed) instead of losing the request.
        """
        try:
            return self._read_expansion(form)
        except IamError as error:
            return PermissionExpansion(error=str(error)[:300])
        except Exception as error:  # STS, network, a malformed answer: fail closed all the same
            log.warning("reading a request's permissions failed: %s", type(error).__name__)
            return PermissionExpansion(error=f"{type(error).__name__} while reading IAM")

    def _read_expansion(self, form: RequestForm) -> PermissionExpansion:
        boundary = form.permissions_boundary_arn
        copy_source = None
        inline: tuple[InlinePolicyCopy, ...] = ()
        if form.permission_mode is PermissionMode.COPY_USER:
            if not form.copy_from_user:
                raise ValueError("copy_user mode without a source user")
            copy_source = self.user_permissions(form.copy_from_user)
            group_names = copy_source.groups
            managed = tuple(AttachedPolicy.from_arn(arn) for arn in copy_source.managed_policy_arns)
            inline = tuple(self._inline_copy(copy_source.user_name, name) for name in copy_source.inline_policy_names)
            boundary = boundary or copy_source.permissions_boundary_arn
        elif form.permission_mode is PermissionMode.POLICIES:
            group_names = ()
            managed = tuple(AttachedPolicy.from_arn(arn) for arn in form.policy_arns)
        else:
            group_names = form.groups
            managed = ()
        return PermissionExpansion(
            groups=tuple(self.group_grant(name) for name in group_names),
            managed_policies=managed,
            inline_policies=inline,
            permissions_boundary_arn=boundary,
            copy_source=copy_source,
            account_id=self.account_id(),
            users_may_change_password=self.password_policy().allow_users_to_change_password,
        )

    def _inline_copy(self, user_name: str, policy_name: str) -> InlinePolicyCopy:
        document = self.user_policy_document(user_name, policy_name)
        return InlinePolicyCopy(
            name=policy_name, sha256=policy_document_sha256(document), broad=allows_everything(document)
        )
