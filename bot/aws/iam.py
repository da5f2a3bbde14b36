"""IAM and STS reads: catalog, account settings, quotas, the "copy from user" expansion.

Together with :mod:`bot.aws.writes` (plan execution and rollback, the writes) this is the only
code that calls IAM and STS.

boto3 picks up ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION`` and
``AWS_ENDPOINT_URL`` from the environment. Retries use botocore's ``standard`` mode, which
retries IAM's ``Throttling`` and 5xx answers with capped backoff. IAM is eventually
consistent, so calls on a just-created user also retry ``NoSuchEntity`` for a bounded time.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bot.domain.models import AttachedPolicy, CreatedCredentials, GroupGrant, UserPermissions
from bot.domain.plan import PROVENANCE_TAG_KEYS
from bot.domain.rules import AccountQuotas, PasswordPolicy, generate_password

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
# Bounded read-after-create retry for NoSuchEntity (IAM eventual consistency): ~30 s in all.
CONSISTENCY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15)
REQUEST_ID_TAG = PROVENANCE_TAG_KEYS[0]


class IamError(Exception):
    """An IAM call failed for good. ``code`` is IAM's error code; the message holds no secret."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.operation = operation


def error_code(error: ClientError) -> str:
    """IAM's error code of a ``ClientError`` (``NoSuchEntity``, ``EntityAlreadyExists``…)."""
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def as_iam_error(error: ClientError) -> IamError:
    """Wrap a botocore error; request ids and parameters are left out on purpose."""
    info = error.response.get("Error", {})
    return IamError(error_code(error), str(info.get("Message", "")), error.operation_name)


@dataclass(frozen=True)
class ManagedPolicy:
    """A managed policy as ``list_policies`` returns it: ``name``, ``arn``, and whether AWS owns it.

    AWS managed policies have ``aws`` as the account field of their ARN
    (``arn:aws:iam::aws:policy/…``); customer managed ones carry the account id.
    """

    name: str
    arn: str
    aws_managed: bool

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> ManagedPolicy:
        arn = str(item["Arn"])
        return cls(name=str(item["PolicyName"]), arn=arn, aws_managed=arn.split(":")[4] == "aws")


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the options menus and validation read: names as IAM returns them, plus the account's
    password policy, per-user quotas and id (each read once per refresh, never per request)."""

    user_names: tuple[str, ...]
    group_names: tuple[str, ...]
    loaded_at: float
    policies: tuple[ManagedPolicy, ...] = ()
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    quotas: AccountQuotas = field(default_factory=AccountQuotas)
    account_id: str | None = None


def retry_no_such_entity(
    call: Callable[[], T], sleep: Callable[[float], None], delays: tuple[float, ...] = CONSISTENCY_DELAYS
) -> T:
    """``call()``, retried after each of ``delays`` (seconds) while IAM answers ``NoSuchEntity``.

    IAM is eventually consistent: right after ``CreateUser`` another call may not see the user
    yet. The last ``NoSuchEntity`` (or any other error) is raised as the ``ClientError`` it is.
    """
    for delay in (*delays, None):
        try:
            return call()
        except ClientError as error:
            if error_code(error) != "NoSuchEntity" or delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")


def make_clients(session: boto3.session.Session | None = None) -> tuple[Any, Any]:
    """``(iam, sts)`` clients with standard retries; endpoint from ``AWS_ENDPOINT_URL`` if set."""
    session = session or boto3.session.Session()
    region = session.region_name or "us-east-1"
    return (
        session.client("iam", config=RETRY_CONFIG, region_name=region),
        session.client("sts", config=RETRY_CONFIG, region_name=region),
    )


class IamGateway:
    """Reads from and writes to IAM for the bot.

    Args:
        iam: a boto3 IAM client; sts: a boto3 STS client (for the account id).
        sleep: the delay function for retries (tests pass a no-op).
    """

    def __init__(self, iam: Any, sts: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self._account_id: str | None = None
        self.iam = iam
        self.sts = sts
        self.sleep = sleep

    # -- reads ---------------------------------------------------------------------------------

    def _paginate(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.iam.get_paginator(operation).paginate(**kwargs):
            items.extend(page[key])
        return items

    def load_catalog(self) -> CatalogSnapshot:
        """Every user, group and managed policy (AWS and customer managed), with full pagination,
        plus the password policy, the per-user quotas and the account id.

        Slow on big accounts (about 1,300 AWS managed policies alone, 100 a page): call it in
        the background, never inside a Slack request. The password policy, account summary and
        caller identity are optional: when IAM refuses them the defaults stay (a warning is logged).

        Raises:
            IamError: a list call failed (the caller keeps its previous snapshot).
        """
        try:
            users = tuple(u["UserName"] for u in self._paginate("list_users", "Users"))
            groups = tuple(g["GroupName"] for g in self._paginate("list_groups", "Groups"))
            policies = tuple(
                ManagedPolicy.from_api(p) for p in self._paginate("list_policies", "Policies", Scope="All")
            )
        except ClientError as error:
            raise as_iam_error(error) from None
        try:
            password_policy = self.password_policy()
        except IamError as error:
            # IAM still enforces the real policy at create_login_profile; validation is then looser.
            log.warning("get_account_password_policy failed (%s); assuming AWS's default policy", error.code)
            password_policy = PasswordPolicy()
        quotas = AccountQuotas()
        try:
            quotas = AccountQuotas.from_summary(self.iam.get_account_summary()["SummaryMap"])
        except ClientError as error:
            log.warning("get_account_summary failed (%s); assuming IAM's default quotas", error_code(error))
        account_id = None
        try:
            account_id = self.account_id()
        except ClientError as error:
            log.warning("sts:GetCallerIdentity failed (%s)", error_code(error))
        return CatalogSnapshot(
            user_names=users,
            group_names=groups,
            loaded_at=time.time(),
            policies=policies,
            password_policy=password_policy,
            quotas=quotas,
            account_id=account_id,
        )

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
                groups=tuple(
                    g["GroupName"] for g in self._paginate("list_groups_for_user", "Groups", UserName=user_name)
                ),
                managed_policy_arns=tuple(
                    p["PolicyArn"]
                    for p in self._paginate("list_attached_user_policies", "AttachedPolicies", UserName=user_name)
                ),
                inline_policy_names=tuple(self._paginate("list_user_policies", "PolicyNames", UserName=user_name)),
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
            attached = self._paginate("list_attached_group_policies", "AttachedPolicies", GroupName=group_name)
            inline = self._paginate("list_group_policies", "PolicyNames", GroupName=group_name)
        except ClientError as error:
            raise as_iam_error(error) from None
        return GroupGrant(
            name=group_name,
            managed_policies=tuple(AttachedPolicy(arn=p["PolicyArn"], name=p["PolicyName"]) for p in attached),
            inline_policy_names=tuple(inline),
        )

    def user_policy_document(self, user_name: str, policy_name: str) -> dict[str, Any]:
        """An inline user policy's document as a dict (boto3 URL-decodes and parses it).

        Raises:
            IamError: ``NoSuchEntity`` when the user or policy does not exist.
        """
        try:
            document = self.iam.get_user_policy(UserName=user_name, PolicyName=policy_name)["PolicyDocument"]
        except ClientError as error:
            raise as_iam_error(error) from None
        return json.loads(document) if isinstance(document, str) else dict(document)

    def console_url(self) -> str:
        """``https://<alias or account id>.signin.aws.amazon.com/console`` (IAM user guide)."""
        try:
            aliases = self.iam.list_account_aliases().get("AccountAliases", [])
        except ClientError:
            aliases = []  # list_account_aliases may be denied; the account id always works
        account = aliases[0] if aliases else self.sts.get_caller_identity()["Account"]
        return f"https://{account}.signin.aws.amazon.com/console"

    # -- writes --------------------------------------------------------------------------------

    # -- reads for provisioning: quotas, ownership, conflicts -----------------------------------

    def _retry_consistency(self, call: Callable[[], T], delays: tuple[float, ...] = CONSISTENCY_DELAYS) -> T:
        return retry_no_such_entity(call, self.sleep, delays)

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

    def inline_policy_size(self, user_name: str, policy_name: str) -> int:
        """Non-whitespace characters of one inline policy of ``user_name`` (IAM counts these
        against ``UserPolicySizeQuota``, 2,048 per user).

        Raises:
            IamError: the policy or user is gone, or the read was refused.
        """
        try:
            document = self.iam.get_user_policy(UserName=user_name, PolicyName=policy_name)["PolicyDocument"]
        except ClientError as error:
            raise as_iam_error(error) from None
        text = document if isinstance(document, str) else json.dumps(document)
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

    def tags_of(self, user_name: str, *, delays: tuple[float, ...] = ()) -> dict[str, str] | None:
        """The tags of a user (``ListUserTags``), or None when the user does not exist.

        ``delays``: retry ``NoSuchEntity`` this way first, for a user that should exist.
        """
        try:
            pages = self._retry_consistency(
                lambda: self._paginate("list_user_tags", "Tags", UserName=user_name), delays
            )
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None
            raise as_iam_error(error) from None
        return {tag["Key"]: tag["Value"] for tag in pages}

    def users_in_the_way(self, user_names: Sequence[str], request_id: str) -> list[str]:
        """Existing IAM users whose names equal one of ``user_names`` ignoring case (IAM user
        names are unique case-insensitively) and that this request did not create.

        Raises:
            IamError: a read was refused.
        """
        wanted = {name.lower() for name in user_names}
        try:
            existing = [u["UserName"] for u in self._paginate("list_users", "Users") if u["UserName"].lower() in wanted]
        except ClientError as error:
            raise as_iam_error(error) from None
        return [name for name in existing if (self.tags_of(name) or {}).get(REQUEST_ID_TAG) != request_id]

    # -- one-time link life: re-issue and expiry (called by bot.links) --------------------------

    def replace_access_key(self, user_name: str, old_access_key_id: str | None) -> tuple[str, str]:
        """Delete ``old_access_key_id`` (if given and still there), then create a new access key.

        Deleting first because the old key may be in the wrong hands, and because IAM allows
        at most 2 access keys per user, inactive ones included (IAM quotas). Returns
        ``(access key id, secret access key)``; the secret must go straight into a sealed link.

        Raises:
            IamError: IAM refused (``NoSuchEntity`` when the user is gone, ``LimitExceeded``…).
        """
        try:
            if old_access_key_id:
                try:
                    self.iam.delete_access_key(UserName=user_name, AccessKeyId=old_access_key_id)
                except ClientError as error:
                    if error_code(error) != "NoSuchEntity":
                        raise
            key = self._retry_consistency(lambda: self.iam.create_access_key(UserName=user_name))["AccessKey"]
        except ClientError as error:
            raise as_iam_error(error) from None
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def reset_login_password(self, user_name: str, policy: PasswordPolicy | None = None) -> str:
        """Give the login profile a new generated password that must be changed at next sign-in
        (``UpdateLoginProfile`` with ``PasswordResetRequired=True``); returns the password.

        Raises:
            IamError: IAM refused (``NoSuchEntity`` when the user has no login profile).
        """
        password = generate_password(policy or self.password_policy())
        try:
            self.iam.update_login_profile(UserName=user_name, Password=password, PasswordResetRequired=True)
        except ClientError as error:
            raise as_iam_error(error) from None
        return password

    def deactivate_access_key(self, user_name: str, access_key_id: str) -> bool:
        """``UpdateAccessKey Status=Inactive``; False when the key (or user) no longer exists.

        Raises:
            IamError: IAM refused for another reason.
        """
        try:
            self.iam.update_access_key(UserName=user_name, AccessKeyId=access_key_id, Status="Inactive")
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise as_iam_error(error) from None
        return True

    def lock_login_profile(self, user_name: str) -> bool:
        """Make the console password of an unopened link useless: a fresh generated password
        that nobody is told, with ``PasswordResetRequired=True`` (``UpdateLoginProfile``).

        Nobody can sign in until an approver re-issues credentials (which sets a new password
        and sends it in a new link). False when the user has no login profile.

        Raises:
            IamError: IAM refused for another reason.
        """
        try:
            self.reset_login_password(user_name)
        except IamError as error:
            if error.code == "NoSuchEntity":
                return False
            raise
        return True


def credentials_from_outputs(user_name: str, console_url: str | None, outputs: dict[str, str]) -> CreatedCredentials:
    """Collect one user's step outputs into :class:`CreatedCredentials`."""
    return CreatedCredentials(
        user_name=user_name,
        console_url=console_url if "password" in outputs else None,
        password=outputs.get("password"),
        access_key_id=outputs.get("access_key_id"),
        secret_access_key=outputs.get("secret_access_key"),
    )
