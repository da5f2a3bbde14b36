"""Plan execution and rollback: the IAM writes of provisioning.

:class:`StepRunner` runs one plan step (:class:`~bot.domain.plan.Step`) at a time against IAM and
removes what a failed request created. Reads live in :mod:`bot.aws.iam`; together they are the only
code that calls IAM.

Every step is idempotent, so a step the journal shows as started (the process died during the
call) can simply run again: a user that exists with this request's provenance tag is this
request's user; group membership and policy attachment are checked before adding; a login
profile that exists gets a new password; access keys of an interrupted step are deleted and one
new key made (the secret of a key made before a crash is lost for good).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from botocore.exceptions import ClientError, WaiterError

from bot.aws.iam import (
    CONSISTENCY_DELAYS,
    REQUEST_ID_TAG,
    IamError,
    IamGateway,
    as_iam_error,
    error_code,
    retry_no_such_entity,
)
from bot.domain.plan import (
    MFA_POLICY_NAME,
    SELF_MANAGE_POLICY_NAME,
    Step,
    StepKind,
    bot_policy_arn,
    policy_document_sha256,
)
from bot.domain.rules import PasswordPolicy, generate_password

T = TypeVar("T")

DELETE_CONFLICT_DELAYS = (0.5, 1, 2, 4, 8)
# Tag on the bot-managed customer managed policies: only a policy carrying it is reused or deleted.
MANAGED_TAG = "iam-user-bot:managed"

BOT_POLICY_FILES = {
    MFA_POLICY_NAME: "policies/require-mfa.json",
    SELF_MANAGE_POLICY_NAME: "policies/self-manage-credentials.json",
}
BOT_POLICY_DESCRIPTIONS = {
    MFA_POLICY_NAME: "iam-user-bot: deny everything but first sign-in and MFA set-up until the user signs in with MFA",
    SELF_MANAGE_POLICY_NAME: "iam-user-bot: let users manage their own password, access keys and MFA device",
}


def bot_policy_document(name: str) -> str:
    """The JSON document of a bot-managed policy, from the package's ``bot/policies/``."""
    return resources.files("bot").joinpath(BOT_POLICY_FILES[name]).read_text(encoding="utf-8")


@dataclass(frozen=True)
class RunContext:
    """What every step of one provisioning run needs: whose request, which account, which
    password policy, and the requester's custom password if they chose one (opened from its
    seal just before the run; hidden from ``repr``; None generates a password)."""

    request_id: str
    account_id: str
    password_policy: PasswordPolicy
    custom_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StepResult:
    """What a step made: ``secrets`` (password, access key; held in memory only, hidden from
    ``repr``) and ``record``, non-secret facts for the journal (access key id, policy ARN)."""

    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    record: dict[str, object] = field(default_factory=dict)


class StepRunner:
    """Runs plan steps and rollbacks through the IAM client of ``gateway``.

    Args:
        gateway: the :class:`~bot.aws.iam.IamGateway` whose client, retry sleep and reads are used.
    """

    def __init__(self, gateway: IamGateway) -> None:
        self.gateway = gateway
        self.iam = gateway.iam
        self.sleep = gateway.sleep

    def _paginate(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.iam.get_paginator(operation).paginate(**kwargs):
            items.extend(page[key])
        return items

    def _retry_consistency(self, call: Callable[[], T], delays: tuple[float, ...] = CONSISTENCY_DELAYS) -> T:
        return retry_no_such_entity(call, self.sleep, delays)

    def run_step(self, step: Step, context: RunContext, *, rerun: bool = False) -> StepResult:
        """Execute one plan step, idempotently.

        Args:
            context: request id, account id and password policy of this run.
            rerun: the journal shows an earlier attempt of this step (a crash interrupted it,
                or it finished but its secrets died with the process).

        Returns:
            The secrets the step made (password, access key) and a non-secret record for the
            journal.

        Raises:
            IamError: IAM refused the call for good (after bounded ``NoSuchEntity`` retries).
        """
        try:
            return self._run_step(step, context, rerun)
        except ClientError as error:
            raise as_iam_error(error) from None
        except WaiterError:
            raise IamError("NoSuchEntity", f"user {step.user_name} did not become visible in IAM", "GetUser") from None

    def _run_step(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        name = step.user_name
        kind = step.kind
        if kind is StepKind.ENSURE_BOT_POLICY:
            return self._ensure_bot_policy(str(step.target), context.account_id, context.request_id)
        if kind is StepKind.CREATE_USER:
            return self._create_user(step, context.request_id)
        if kind is StepKind.CREATE_LOGIN_PROFILE:
            return self._create_login_profile(step, context.password_policy, context.custom_password)
        if kind is StepKind.CREATE_ACCESS_KEY:
            return self._create_access_key(name, rerun)
        if kind is StepKind.ADD_USER_TO_GROUP:
            if rerun and step.target in self._names("list_groups_for_user", "Groups", "GroupName", name):
                return StepResult()
            self._retry_consistency(lambda: self.iam.add_user_to_group(UserName=name, GroupName=step.target))
            return StepResult()
        if kind is StepKind.ATTACH_USER_POLICY:
            attached = "list_attached_user_policies", "AttachedPolicies", "PolicyArn"
            if rerun and step.target in self._names(*attached, name):
                return StepResult()
            self._retry_consistency(lambda: self.iam.attach_user_policy(UserName=name, PolicyArn=step.target))
            return StepResult()
        if kind is StepKind.PUT_USER_POLICY:
            # PutUserPolicy overwrites a policy of the same name, so a re-run is harmless.
            document = self.iam.get_user_policy(UserName=step.source_user, PolicyName=step.target)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            # What was approved is what runs: a document edited since the approval is not copied.
            if step.document_sha256 and policy_document_sha256(document) != step.document_sha256:
                raise IamError(
                    "PlanChanged",
                    f"inline policy {step.target} of {step.source_user} changed after approval; file the request again",
                    "PutUserPolicy",
                )
            document = json.dumps(document)
            self._retry_consistency(
                lambda: self.iam.put_user_policy(UserName=name, PolicyName=step.target, PolicyDocument=document)
            )
            return StepResult()
        raise ValueError(f"step kind {step.kind} is not supported by this version")

    def _names(self, operation: str, key: str, field: str, user_name: str) -> list[str]:
        items = self._retry_consistency(lambda: self._paginate(operation, key, UserName=user_name))
        return [item[field] for item in items]

    def _ensure_bot_policy(self, name: str, account_id: str, request_id: str) -> StepResult:
        arn = bot_policy_arn(account_id, name)
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
        else:
            tags = {t["Key"]: t["Value"] for t in policy.get("Tags", [])}
            if tags.get(MANAGED_TAG) != "true":
                raise IamError(
                    "EntityAlreadyExists",
                    f"a policy named {name} exists but the bot did not create it; delete or rename it, "
                    f"or tag it {MANAGED_TAG}=true if its document is the one in docs/bot-managed-policies.md",
                    "CreatePolicy",
                )
            return StepResult(record={"policy_arn": arn, "created": False})
        try:
            self.iam.create_policy(
                PolicyName=name,
                Path="/",
                PolicyDocument=bot_policy_document(name),
                Description=BOT_POLICY_DESCRIPTIONS[name],
                # The request id tag lets a rollback delete the policy only if this request made it.
                Tags=[{"Key": MANAGED_TAG, "Value": "true"}, {"Key": REQUEST_ID_TAG, "Value": request_id}],
            )
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":  # another request made it a moment ago
                raise
            return StepResult(record={"policy_arn": arn, "created": False})
        return StepResult(record={"policy_arn": arn, "created": True})

    def _create_user(self, step: Step, request_id: str) -> StepResult:
        name = step.user_name
        params: dict[str, Any] = {"UserName": name, "Tags": [{"Key": t.key, "Value": t.value} for t in step.tags]}
        if step.permissions_boundary_arn:
            params["PermissionsBoundary"] = step.permissions_boundary_arn
        try:
            self.iam.create_user(**params)
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            # Ours from an interrupted attempt (provenance tag), or somebody else's user.
            if (self.gateway.tags_of(name) or {}).get(REQUEST_ID_TAG) != request_id:
                raise IamError(
                    "EntityAlreadyExists",
                    f"an IAM user named {name} already exists and was not created by this request",
                    "CreateUser",
                ) from None
        self.iam.get_waiter("user_exists").wait(UserName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        return StepResult(record={"user_name": name})

    def _create_login_profile(self, step: Step, policy: PasswordPolicy, custom: str | None) -> StepResult:
        name = step.user_name
        password = custom or generate_password(policy)
        params = {"UserName": name, "Password": password, "PasswordResetRequired": step.password_reset_required}
        try:
            self._retry_consistency(lambda: self.iam.create_login_profile(**params))
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            # Made by an interrupted attempt whose password died with it: set a new one.
            self._retry_consistency(lambda: self.iam.update_login_profile(**params))
        return StepResult(
            secrets={"password": password}, record={"password_reset_required": step.password_reset_required}
        )

    def _create_access_key(self, name: str, rerun: bool) -> StepResult:
        deleted: list[str] = []
        if rerun:
            # The user is this request's (its create_user step checked the provenance tag), so
            # every key on it was made by an earlier attempt whose secret is lost: replace them.
            # ListAccessKeys returns active and inactive keys alike; both count against the quota.
            for key in self._retry_consistency(
                lambda: self._paginate("list_access_keys", "AccessKeyMetadata", UserName=name)
            ):
                self._gone(lambda k=key: self.iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"]))
                deleted.append(key["AccessKeyId"])
        key = self._retry_consistency(lambda: self.iam.create_access_key(UserName=name))["AccessKey"]
        return StepResult(
            secrets={"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]},
            record={"access_key_id": key["AccessKeyId"], "replaced": deleted},
        )

    @staticmethod
    def _gone(call: Callable[[], object]) -> None:
        """Run a delete; ``NoSuchEntity`` means it is already gone, which is what we want."""
        try:
            call()
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise

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
        if tags is None or tags.get(REQUEST_ID_TAG) != request_id:
            return False
        self.delete_user_completely(user_name)
        return True

    def delete_user_completely(self, user_name: str) -> None:
        """Remove a user and everything attached to it, in the order IAM requires.

        Order: login profile, access keys (every status), MFA devices, inline policies,
        managed policies, groups, permissions boundary, user. ``NoSuchEntity`` counts as
        done. ``DeleteConflict`` on the user (something appeared that a list did not show yet:
        eventual consistency) repeats the whole pass with backoff.

        Raises:
            IamError: IAM refused a delete for good.
        """
        try:
            for delay in (*DELETE_CONFLICT_DELAYS, None):
                if not self._strip_user(user_name):
                    return
                try:
                    self.iam.delete_user(UserName=user_name)
                    return
                except ClientError as error:
                    code = error_code(error)
                    if code == "NoSuchEntity":
                        return
                    if code != "DeleteConflict" or delay is None:
                        raise
                    self.sleep(delay)
        except ClientError as error:
            raise as_iam_error(error) from None

    def _strip_user(self, user_name: str) -> bool:
        """Remove what hangs off a user; False when the user is gone."""
        iam, gone = self.iam, self._gone
        try:
            user = iam.get_user(UserName=user_name)["User"]
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise
        gone(lambda: iam.delete_login_profile(UserName=user_name))
        for key in self._paginate("list_access_keys", "AccessKeyMetadata", UserName=user_name):
            gone(lambda k=key: iam.delete_access_key(UserName=user_name, AccessKeyId=k["AccessKeyId"]))
        for device in self._paginate("list_mfa_devices", "MFADevices", UserName=user_name):
            serial = device["SerialNumber"]
            gone(lambda s=serial: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=s))
            gone(lambda s=serial: iam.delete_virtual_mfa_device(SerialNumber=s))
        for policy_name in self._paginate("list_user_policies", "PolicyNames", UserName=user_name):
            gone(lambda p=policy_name: iam.delete_user_policy(UserName=user_name, PolicyName=p))
        for policy in self._paginate("list_attached_user_policies", "AttachedPolicies", UserName=user_name):
            gone(lambda p=policy: iam.detach_user_policy(UserName=user_name, PolicyArn=p["PolicyArn"]))
        for group in self._paginate("list_groups_for_user", "Groups", UserName=user_name):
            gone(lambda g=group: iam.remove_user_from_group(UserName=user_name, GroupName=g["GroupName"]))
        if user.get("PermissionsBoundary"):
            try:
                gone(lambda: iam.delete_user_permissions_boundary(UserName=user_name))
            except ClientError as error:
                # A bot policy may forbid removing boundaries (docs/bot-iam-policy.json); deleting
                # the user removes the boundary with it, so carry on.
                if error_code(error) != "AccessDenied":
                    raise
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
