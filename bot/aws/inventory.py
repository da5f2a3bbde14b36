"""Reading the bot's own users from IAM for their life after onboarding: who they are and whom
they belong to, what each holds before a removal, when a password was made, and the owner tag
written on users made before it existed.

Every user the bot creates lives under :data:`~bot.domain.plan.USER_PATH` with
``iam-user-bot:managed=true`` (contract, section 4), so ``ListUsers`` with that path prefix finds
them all, and no other user is ever read here for the lifecycle checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from botocore.exceptions import ClientError

from bot.aws.clients import IamError, as_iam_error, error_code
from bot.aws.iam import IamGateway
from bot.domain.lifecycle import ManagedUser
from bot.domain.models import AttachedPolicy, PermissionExpansion, UserHoldings
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG, USER_PATH


class Inventory:
    """Reads (and the one tag write of the back-fill) through the IAM client of ``gateway``."""

    def __init__(self, gateway: IamGateway) -> None:
        self.gateway = gateway
        self.iam = gateway.iam

    def bot_users(self) -> list[ManagedUser]:
        """Every user under ``/iam-user-bot/`` that carries ``iam-user-bot:managed=true``, with its
        owner and request tags (``ListUsers`` with the path prefix, then ``ListUserTags`` each:
        1 + n calls; ``ListUsers`` returns no tags).

        Raises:
            IamError: IAM refused a read.
        """
        try:
            listed = self.gateway.list("list_users", "Users", PathPrefix=USER_PATH)
        except ClientError as error:
            raise as_iam_error(error) from None
        users = []
        for item in listed:
            tags = self.gateway.tags_of(item["UserName"])
            if tags is None or tags.get(MANAGED_TAG) != "true":
                continue  # deleted meanwhile, or not the bot's (never touched)
            users.append(
                ManagedUser(
                    user_name=str(item["UserName"]),
                    owner=tags.get(OWNER_TAG) or None,
                    request_id=tags.get(REQUEST_ID_TAG) or None,
                    created=item["CreateDate"],
                    password_last_used=item.get("PasswordLastUsed"),
                )
            )
        return users

    def password_created(self, user_name: str) -> datetime | None:
        """When the user's login profile was made (``GetLoginProfile``), or None without one.

        Raises:
            IamError: IAM refused the read.
        """
        try:
            return self.iam.get_login_profile(UserName=user_name)["LoginProfile"]["CreateDate"]
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None
            raise as_iam_error(error) from None

    def holdings(self, user_name: str) -> UserHoldings | None:
        """What ``user_name`` holds that ``DeleteUser`` refuses to delete past, and its owner tag;
        None when the user does not exist. About ten reads, each list paginated in full.

        Raises:
            IamError: IAM refused a read.
        """
        gateway = self.gateway

        def names(operation: str, key: str, field: str) -> tuple[str, ...]:
            return tuple(str(item[field]) for item in gateway.list(operation, key, UserName=user_name))

        tags = gateway.tags_of(user_name)
        if tags is None:
            return None
        try:
            keys = gateway.list("list_access_keys", "AccessKeyMetadata", UserName=user_name)
            credentials = self.iam.list_service_specific_credentials(UserName=user_name)["ServiceSpecificCredentials"]
            attached = gateway.list("list_attached_user_policies", "AttachedPolicies", UserName=user_name)
            return UserHoldings(
                user_name=user_name,
                owner=tags.get(OWNER_TAG) or None,
                login_profile=self.password_created(user_name) is not None,
                access_keys=tuple((str(k["AccessKeyId"]), str(k["Status"])) for k in keys),
                signing_certificates=names("list_signing_certificates", "Certificates", "CertificateId"),
                ssh_public_keys=names("list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId"),
                service_credentials=tuple(str(c["ServiceSpecificCredentialId"]) for c in credentials),
                mfa_devices=names("list_mfa_devices", "MFADevices", "SerialNumber"),
                inline_policies=tuple(gateway.list("list_user_policies", "PolicyNames", UserName=user_name)),
                managed_policies=tuple(AttachedPolicy(arn=p["PolicyArn"], name=p["PolicyName"]) for p in attached),
                groups=names("list_groups_for_user", "Groups", "GroupName"),
            )
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None  # deleted while being read
            raise as_iam_error(error) from None

    def read_removal(self, user_names: Sequence[str]) -> PermissionExpansion:
        """What a removal request takes away, read from IAM now: each user's holdings, and the
        groups (with their policies) and managed policies they hold between them, so the risk
        rules see a sensitive permission among them. Never raises: an unreadable request comes
        back with ``error`` set and cannot be approved (fail closed), as for onboarding.
        """
        try:
            holdings = []
            for name in user_names:
                held = self.holdings(name)
                if held is None:
                    raise IamError("NoSuchEntity", f"the IAM user {name} does not exist", "GetUser")
                holdings.append(held)
            group_names = dict.fromkeys(g for h in holdings for g in h.groups)
            policies = {p.arn: p for h in holdings for p in h.managed_policies}
            return PermissionExpansion(
                groups=tuple(self.gateway.group_grant(name) for name in group_names),
                managed_policies=tuple(policies.values()),
                account_id=self.gateway.account_id(),
                holdings=tuple(holdings),
            )
        except IamError as error:
            return PermissionExpansion(error=str(error)[:300])
        except ClientError as error:
            return PermissionExpansion(error=str(as_iam_error(error))[:300])

    def tag_owner(self, user_name: str, owner: str) -> None:
        """Write ``iam-user-bot:owner`` on a bot-made user that lacks it (``TagUser``; the managed
        tag goes with it, as the bot's policy requires ``aws:RequestTag`` of it on every tagging).

        Raises:
            IamError: ``NotManaged`` before the write; IAM refused (``AccessDenied`` for a user
                outside ``/iam-user-bot/``, which the bot's policy does not let it tag).
        """
        self.gateway.require_managed(user_name, "TagUser")
        tags = [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": OWNER_TAG, "Value": owner}]
        try:
            self.iam.tag_user(UserName=user_name, Tags=tags)
        except ClientError as error:
            raise as_iam_error(error) from None
