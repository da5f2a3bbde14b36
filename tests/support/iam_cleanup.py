"""Taking IAM users apart in the order IAM needs, for tests that clean up after themselves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any


def delete_users(iam: Any, user_names: Iterable[str]) -> None:
    """Delete each user with what IAM's DeleteUser refuses past (login profile, access keys, signing
    certificates, SSH keys, service-specific credentials, MFA devices, groups, policies)."""
    for name in user_names:
        with contextlib.suppress(iam.exceptions.NoSuchEntityException):
            iam.delete_login_profile(UserName=name)
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for cert in iam.list_signing_certificates(UserName=name)["Certificates"]:
            iam.delete_signing_certificate(UserName=name, CertificateId=cert["CertificateId"])
        for ssh in iam.list_ssh_public_keys(UserName=name)["SSHPublicKeys"]:
            iam.delete_ssh_public_key(UserName=name, SSHPublicKeyId=ssh["SSHPublicKeyId"])
        for credential in iam.list_service_specific_credentials(UserName=name)["ServiceSpecificCredentials"]:
            credential_id = credential["ServiceSpecificCredentialId"]
            iam.delete_service_specific_credential(UserName=name, ServiceSpecificCredentialId=credential_id)
        for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
            iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
            with contextlib.suppress(iam.exceptions.NoSuchEntityException):
                iam.delete_virtual_mfa_device(SerialNumber=device["SerialNumber"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            iam.remove_user_from_group(UserName=name, GroupName=group["GroupName"])
        for policy in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
            iam.delete_user_policy(UserName=name, PolicyName=policy_name)
        iam.delete_user(UserName=name)
