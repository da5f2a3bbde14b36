"""Credentials of existing users: a new access key for an old one, a new console password, a key
switched off, a password nobody knows, a user with every credential off. The writes behind
re-issued and expired one-time links, key rotation and disabling a user (its owner left, its
credentials went unused, an approver said so).

Every method first confirms the user carries ``iam-user-bot:managed=true``
(:meth:`~bot.aws.iam.IamGateway.require_managed`): a user the bot did not create is refused
with ``NotManaged`` before any write, as the bot's IAM policy would refuse it."""

from __future__ import annotations

from botocore.exceptions import ClientError

from bot.aws.clients import IamError, as_iam_error, error_code, gone
from bot.aws.iam import IamGateway
from bot.domain.lifecycle import Disabled, KeyInfo
from bot.domain.rules import PasswordPolicy, generate_password


class KeyKeeper:
    """Replaces, resets and switches off credentials through the IAM client of ``gateway``."""

    def __init__(self, gateway: IamGateway) -> None:
        self.gateway = gateway
        self.iam = gateway.iam

    def replace_access_key(self, user_name: str, old_access_key_id: str | None) -> tuple[str, str]:
        """Delete ``old_access_key_id`` (if given and still there), then create a new access key.

        Deleting first because the old key may be in the wrong hands, and because IAM allows
        at most 2 access keys per user, inactive ones included (IAM quotas). Returns
        ``(access key id, secret access key)``; the secret must go straight into a sealed link.

        Raises:
            IamError: ``NotManaged``; IAM refused (``NoSuchEntity`` when the user is gone,
                ``LimitExceeded``…).
        """
        self.gateway.require_managed(user_name, "CreateAccessKey")
        try:
            if old_access_key_id:
                try:
                    self.iam.delete_access_key(UserName=user_name, AccessKeyId=old_access_key_id)
                except ClientError as error:
                    if error_code(error) != "NoSuchEntity":
                        raise
            key = self.gateway.retry(lambda: self.iam.create_access_key(UserName=user_name))["AccessKey"]
        except ClientError as error:
            raise as_iam_error(error) from None
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def reset_login_password(self, user_name: str, policy: PasswordPolicy | None = None) -> str:
        """Give the login profile a new generated password that must be changed at next sign-in
        (``UpdateLoginProfile`` with ``PasswordResetRequired=True``); returns the password.

        Raises:
            IamError: ``NotManaged``; IAM refused (``NoSuchEntity`` when the user has no login
                profile).
        """
        self.gateway.require_managed(user_name, "UpdateLoginProfile")
        password = generate_password(policy or self.gateway.password_policy())
        try:
            self.iam.update_login_profile(UserName=user_name, Password=password, PasswordResetRequired=True)
        except ClientError as error:
            raise as_iam_error(error) from None
        return password

    def deactivate_access_key(self, user_name: str, access_key_id: str) -> bool:
        """``UpdateAccessKey Status=Inactive``; False when the key (or user) no longer exists.

        Raises:
            IamError: ``NotManaged``; IAM refused for another reason.
        """
        self.gateway.require_managed(user_name, "UpdateAccessKey")
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
            IamError: ``NotManaged``; IAM refused for another reason.
        """
        try:
            self.reset_login_password(user_name)
        except IamError as error:
            if error.code == "NoSuchEntity":
                return False
            raise
        return True

    def list_keys(self, user_name: str, *, last_used: bool = False) -> list[KeyInfo]:
        """The user's access keys, oldest first (``ListAccessKeys``: active and inactive alike); with
        ``last_used``, each key's last use too (``GetAccessKeyLastUsed``, one call a key). Empty
        when the user does not exist.

        Raises:
            IamError: IAM refused a read.
        """
        try:
            listed = self.gateway.list("list_access_keys", "AccessKeyMetadata", UserName=user_name)
            keys = []
            for item in listed:
                used = None
                if last_used:
                    answer = self.iam.get_access_key_last_used(AccessKeyId=item["AccessKeyId"])
                    used = (answer.get("AccessKeyLastUsed") or {}).get("LastUsedDate")
                keys.append(KeyInfo(str(item["AccessKeyId"]), str(item["Status"]), item["CreateDate"], used))
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return []
            raise as_iam_error(error) from None
        return sorted(keys, key=lambda key: key.created)

    def create_access_key(self, user_name: str) -> tuple[str, str]:
        """A new access key next to the user's others (``CreateAccessKey``); returns ``(access key
        id, secret access key)``, the secret to go straight into a sealed link. IAM allows two keys
        a user, inactive ones included: the caller makes room first.

        Raises:
            IamError: ``NotManaged``; IAM refused (``LimitExceeded`` with two keys already…).
        """
        self.gateway.require_managed(user_name, "CreateAccessKey")
        try:
            key = self.gateway.retry(lambda: self.iam.create_access_key(UserName=user_name))["AccessKey"]
        except ClientError as error:
            raise as_iam_error(error) from None
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def delete_access_key(self, user_name: str, access_key_id: str) -> bool:
        """``DeleteAccessKey``; False when the key (or user) was already gone.

        Raises:
            IamError: ``NotManaged``; IAM refused for another reason.
        """
        self.gateway.require_managed(user_name, "DeleteAccessKey")
        try:
            self.iam.delete_access_key(UserName=user_name, AccessKeyId=access_key_id)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise as_iam_error(error) from None
        return True

    def disable_user(self, user_name: str) -> Disabled:
        """Every credential of the user off, the user kept: each active access key
        ``UpdateAccessKey Status=Inactive``, then ``DeleteLoginProfile`` (a console password cannot
        be switched off; deleting the profile ends console access, and a new one restores it).

        Idempotent: what is off already is left alone, and a user that does not exist gives an
        empty :class:`Disabled`.

        Raises:
            IamError: ``NotManaged`` before any write; IAM refused a call.
        """
        self.gateway.require_managed(user_name, "UpdateAccessKey")
        deactivated = []
        try:
            for key in self.list_keys(user_name):
                if key.active:
                    gone(
                        lambda k=key: self.iam.update_access_key(
                            UserName=user_name, AccessKeyId=k.key_id, Status="Inactive"
                        )
                    )
                    deactivated.append(key.key_id)
            try:
                self.iam.delete_login_profile(UserName=user_name)
                profile = True
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise
                profile = False
        except ClientError as error:
            raise as_iam_error(error) from None
        return Disabled(tuple(deactivated), profile)
