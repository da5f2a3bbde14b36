"""Taking IAM users apart: everything IAM requires gone first, in its order, then the user; and
the bot-managed policies a failed request made. The writes of rollback and of offboarding's last
step (which sweeps up whatever appeared after its plan was made).

IAM's order (user guide, "Deleting an IAM user"): login profile, access keys, signing
certificates, SSH public keys, service-specific credentials, MFA devices (deactivated, then a
virtual one deleted), inline policies, managed policies, group memberships, then the user.
Anything left makes ``DeleteUser`` fail with ``DeleteConflict``; a permissions boundary
does not (it goes with the user), so the bot never removes one and its policy denies it.
``NoSuchEntity`` at any point counts as done. Only users tagged ``iam-user-bot:managed=true``
are touched (:meth:`~bot.aws.iam.IamGateway.require_managed`), as the bot's policy allows.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from bot.aws.clients import CONSISTENCY_DELAYS, as_iam_error, error_code, gone, retry_on
from bot.aws.iam import IamGateway
from bot.domain.plan import MANAGED_TAG, REQUEST_ID_TAG
from bot.domain.removal import is_virtual_mfa

DELETE_CONFLICT_DELAYS = (0.5, 1, 2, 4, 8)


class Remover:
    """Deletes users and bot-managed policies through the IAM client of ``gateway``."""

    def __init__(self, gateway: IamGateway) -> None:
        self.gateway = gateway
        self.iam = gateway.iam

    def rollback_user(self, user_name: str, request_id: str, *, expect_exists: bool) -> bool:
        """Delete ``user_name`` and everything on it, but only if this request created it.

        Ownership is the ``iam-user-bot:request-id`` tag, so a same-named user of someone else
        is never touched. ``expect_exists``: the journal says the user was created, so a
        ``NoSuchEntity`` is retried for a while (IAM is eventually consistent).

        Returns:
            True when a user was deleted, False when there was none of this request.

        Raises:
            IamError: a delete was refused for good.
        """
        tags = self.gateway.tags_of(user_name, delays=CONSISTENCY_DELAYS if expect_exists else (0.5, 1))
        if tags is None or tags.get(REQUEST_ID_TAG) != request_id or tags.get(MANAGED_TAG) != "true":
            return False
        self.delete_user_completely(user_name)
        return True

    def delete_user_completely(self, user_name: str) -> None:
        """Remove a user and everything attached to it, in the order IAM requires.

        Order: login profile, access keys (every status), signing certificates, SSH public keys,
        service-specific credentials, MFA devices, inline policies, managed policies, groups,
        user (its boundary goes with it). ``NoSuchEntity`` counts as
        done. ``DeleteConflict`` on the user (something appeared that a list did not show yet:
        eventual consistency) repeats the whole pass with backoff.

        Raises:
            IamError: ``NotManaged`` before any write when the user lacks the managed tag; IAM
                refused a delete for good.
        """
        self.gateway.require_managed(user_name, "DeleteUser")

        def one_pass() -> None:
            if self._strip_user(user_name):
                gone(lambda: self.iam.delete_user(UserName=user_name))

        try:
            retry_on("DeleteConflict", one_pass, self.gateway.sleep, DELETE_CONFLICT_DELAYS)
        except ClientError as error:
            raise as_iam_error(error) from None

    def _strip_user(self, user_name: str) -> bool:
        """Remove what hangs off a user; False when the user is gone."""
        iam = self.iam
        try:
            iam.get_user(UserName=user_name)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise
        gone(lambda: iam.delete_login_profile(UserName=user_name))
        for key in self.gateway.list("list_access_keys", "AccessKeyMetadata", UserName=user_name):
            gone(lambda k=key: iam.delete_access_key(UserName=user_name, AccessKeyId=k["AccessKeyId"]))
        for cert in self.gateway.list("list_signing_certificates", "Certificates", UserName=user_name):
            gone(lambda c=cert: iam.delete_signing_certificate(UserName=user_name, CertificateId=c["CertificateId"]))
        for ssh in self.gateway.list("list_ssh_public_keys", "SSHPublicKeys", UserName=user_name):
            gone(lambda k=ssh: iam.delete_ssh_public_key(UserName=user_name, SSHPublicKeyId=k["SSHPublicKeyId"]))
        # Not paginated: IAM allows two service-specific credentials per service and user.
        for credential in iam.list_service_specific_credentials(UserName=user_name)["ServiceSpecificCredentials"]:
            credential_id = credential["ServiceSpecificCredentialId"]
            gone(
                lambda c=credential_id: iam.delete_service_specific_credential(
                    UserName=user_name, ServiceSpecificCredentialId=c
                )
            )
        for device in self.gateway.list("list_mfa_devices", "MFADevices", UserName=user_name):
            serial = device["SerialNumber"]
            gone(lambda s=serial: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=s))
            if is_virtual_mfa(serial):  # a hardware device is only deactivated: it is no IAM resource
                gone(lambda s=serial: iam.delete_virtual_mfa_device(SerialNumber=s))
        for policy_name in self.gateway.list("list_user_policies", "PolicyNames", UserName=user_name):
            gone(lambda p=policy_name: iam.delete_user_policy(UserName=user_name, PolicyName=p))
        for policy in self.gateway.list("list_attached_user_policies", "AttachedPolicies", UserName=user_name):
            gone(lambda p=policy: iam.detach_user_policy(UserName=user_name, PolicyArn=p["PolicyArn"]))
        for group in self.gateway.list("list_groups_for_user", "Groups", UserName=user_name):
            gone(lambda g=group: iam.remove_user_from_group(UserName=user_name, GroupName=g["GroupName"]))
        return True

    def delete_bot_policy_if_unused(self, arn: str, request_id: str) -> bool:
        """Delete a bot-managed policy if ``request_id`` created it (its tag) and nothing uses it.

        Returns True when it was deleted. Another request may have attached it meanwhile, so an
        attachment count above zero (or a ``DeleteConflict``) keeps it.

        Raises:
            IamError: a read or delete was refused.
        """
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
            if policy.get("AttachmentCount", 0) or policy.get("PermissionsBoundaryUsageCount", 0):
                return False
            tags = {t["Key"]: t["Value"] for t in policy.get("Tags", [])}
            if tags.get(MANAGED_TAG) != "true" or tags.get(REQUEST_ID_TAG) != request_id:
                return False
            self.iam.delete_policy(PolicyArn=arn)
        except ClientError as error:
            if error_code(error) in ("NoSuchEntity", "DeleteConflict"):
                return error_code(error) == "NoSuchEntity"
            raise as_iam_error(error) from None
        return True
