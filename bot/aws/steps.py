"""Running one plan step against IAM: the provisioning and removal writes, one runner per step kind.

Every step on an existing user first confirms it carries ``iam-user-bot:managed=true``
(:meth:`~bot.aws.iam.IamGateway.require_managed`), as the bot's IAM policy requires.

Every step is idempotent, so a step the journal shows as started (the process died during the
call) can simply run again: a user that exists with this request's provenance tag is this
request's user; group membership and policy attachment are checked before adding; a login
profile that exists gets a new password; access keys of an interrupted step are deleted and one
new key made (the secret of a key made before a crash is lost for good); a removal step whose
target is gone already (``NoSuchEntity``) is done.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from bot.aws.clients import CONSISTENCY_DELAYS, IamError, as_iam_error, error_code, gone
from bot.aws.iam import IamGateway
from bot.aws.removal import Remover
from bot.domain.plan import (
    BOT_POLICY_DESCRIPTIONS,
    BOT_POLICY_SHORT_NAMES,
    MANAGED_TAG,
    REQUEST_ID_TAG,
    STEP_KINDS,
    USER_PATH,
    Step,
    StepKind,
    bot_policy_arn,
    policy_document_sha256,
)
from bot.domain.rules import PasswordPolicy, generate_password

BOT_POLICY_FILES = {name: f"policies/{short}.json" for name, short in BOT_POLICY_SHORT_NAMES.items()}
# ``iam-user-bot policy NAME`` prints these documents, by the file's short name.
POLICY_DOCUMENT_NAMES = {Path(file).stem: name for name, file in BOT_POLICY_FILES.items()}


def bot_policy_document(name: str) -> str:
    """The JSON document of a bot-managed policy, from the package's ``bot/policies/``."""
    return resources.files("bot").joinpath(BOT_POLICY_FILES[name]).read_text(encoding="utf-8")


def bot_policy_name_of(arn: str, account_id: str) -> str | None:
    """The bot-managed policy name ``arn`` is, in ``account_id``, or None for any other policy."""
    name = arn.rsplit("/", 1)[-1]
    return name if name in BOT_POLICY_FILES and arn == bot_policy_arn(account_id, name) else None


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


Runner = Callable[["StepRunner", Step, RunContext, bool], StepResult]


class StepRunner:
    """Runs plan steps through the IAM client of ``gateway`` (:data:`RUNNERS`, one per kind).

    Args:
        gateway: the :class:`~bot.aws.iam.IamGateway` whose client, retries and reads are used.
    """

    def __init__(self, gateway: IamGateway) -> None:
        self.gateway = gateway
        self.iam = gateway.iam

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
            IamError: ``NotManaged`` before any write when a step would touch an existing user
                without ``iam-user-bot:managed=true``; IAM refused the call for good (after
                bounded ``NoSuchEntity`` retries).
        """
        try:
            if step.user_name and step.kind is not StepKind.CREATE_USER:
                operation = "".join(word.capitalize() for word in step.kind.value.split("_"))
                # A user being taken apart exists for good; one just created may not be visible yet.
                delays = () if STEP_KINDS[step.kind].removes else CONSISTENCY_DELAYS
                self.gateway.require_managed(step.user_name, operation, delays=delays)
            return RUNNERS[step.kind](self, step, context, rerun)
        except ClientError as error:
            raise as_iam_error(error) from None
        except WaiterError:
            raise IamError("NoSuchEntity", f"user {step.user_name} did not become visible in IAM", "GetUser") from None

    def _names(self, operation: str, key: str, field: str, user_name: str) -> list[str]:
        items = self.gateway.retry(lambda: self.gateway.list(operation, key, UserName=user_name))
        return [item[field] for item in items]

    def require_shipped_document(self, name: str, arn: str, operation: str) -> None:
        """Refuse a bot-managed policy whose default version is not the document this bot ships.

        ``CreatePolicy`` and ``DeletePolicy`` on the policy's name are allowed to the bot's
        credentials with any document (IAM has no condition key on a policy's content), so a
        holder of them can replace it; nothing may be attached until the document is compared.

        Raises:
            IamError: ``PolicyDocumentChanged`` when the documents differ (compared as JSON values,
                whitespace and key order aside); ``NoSuchEntity`` when the policy is gone.
        """
        document = self.gateway.policy_document(arn, delays=CONSISTENCY_DELAYS)
        short = Path(BOT_POLICY_FILES[name]).stem
        if document is None:
            raise IamError("NoSuchEntity", f"the bot-managed policy {name} does not exist", operation)
        if document != json.loads(bot_policy_document(name)):
            raise IamError(
                "PolicyDocumentChanged",
                f"the policy {name} in IAM does not hold the document this bot ships (`iam-user-bot policy "
                f"{short}`): someone changed or replaced it, so the bot attached nothing. Find out who "
                "(CloudTrail), then restore it (aws iam create-policy-version --set-as-default with that "
                "document) or delete it, and file the request again",
                operation,
            )

    def ensure_bot_policy(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``CreatePolicy`` of a bot-managed policy unless it exists; an existing one must carry the
        bot's tag and hold the shipped document (:meth:`require_shipped_document`)."""
        name = str(step.target)
        arn = bot_policy_arn(context.account_id, name)
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
            self.require_shipped_document(name, arn, "CreatePolicy")
            return StepResult(record={"policy_arn": arn, "created": False})
        try:
            self.iam.create_policy(
                PolicyName=name,
                Path="/",
                PolicyDocument=bot_policy_document(name),
                Description=BOT_POLICY_DESCRIPTIONS[name],
                # The request id tag lets a rollback delete the policy only if this request made it.
                Tags=[{"Key": MANAGED_TAG, "Value": "true"}, {"Key": REQUEST_ID_TAG, "Value": context.request_id}],
            )
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":  # another request made it a moment ago
                raise
            self.require_shipped_document(name, arn, "CreatePolicy")
            return StepResult(record={"policy_arn": arn, "created": False})
        return StepResult(record={"policy_arn": arn, "created": True})

    def create_user(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``CreateUser`` under :data:`USER_PATH` with tags and boundary; an existing user is this
        run's only if it carries this request's id tag (an interrupted attempt), else the step fails."""
        name = step.user_name
        tags = [{"Key": t.key, "Value": t.value} for t in step.tags]
        params: dict[str, Any] = {"UserName": name, "Path": USER_PATH, "Tags": tags}
        if step.permissions_boundary_arn:
            params["PermissionsBoundary"] = step.permissions_boundary_arn
        try:
            self.iam.create_user(**params)
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            if (self.gateway.tags_of(name) or {}).get(REQUEST_ID_TAG) != context.request_id:
                raise IamError(
                    "EntityAlreadyExists",
                    f"an IAM user named {name} already exists and was not created by this request",
                    "CreateUser",
                ) from None
        self.iam.get_waiter("user_exists").wait(UserName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        return StepResult(record={"user_name": name})

    def create_login_profile(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``CreateLoginProfile`` with the custom or a generated password; an existing profile (an
        interrupted attempt whose password died with it) gets a new one."""
        password = context.custom_password or generate_password(context.password_policy)
        params = {
            "UserName": step.user_name,
            "Password": password,
            "PasswordResetRequired": step.password_reset_required,
        }
        try:
            self.gateway.retry(lambda: self.iam.create_login_profile(**params))
        except ClientError as error:
            if error_code(error) != "EntityAlreadyExists":
                raise
            self.gateway.retry(lambda: self.iam.update_login_profile(**params))
        return StepResult(
            secrets={"password": password}, record={"password_reset_required": step.password_reset_required}
        )

    def create_access_key(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``CreateAccessKey``; on a re-run first delete every key on the user (this request's
        user: its create_user step checked the provenance tag), whose secrets are lost.
        ListAccessKeys returns active and inactive keys alike; both count against the quota."""
        name = step.user_name
        deleted: list[str] = []
        if rerun:
            for key in self.gateway.retry(
                lambda: self.gateway.list("list_access_keys", "AccessKeyMetadata", UserName=name)
            ):
                gone(lambda k=key: self.iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"]))
                deleted.append(key["AccessKeyId"])
        key = self.gateway.retry(lambda: self.iam.create_access_key(UserName=name))["AccessKey"]
        return StepResult(
            secrets={"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]},
            record={"access_key_id": key["AccessKeyId"], "replaced": deleted},
        )

    def add_user_to_group(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``AddUserToGroup``, unless a re-run finds the user in the group already."""
        name = step.user_name
        if rerun and step.target in self._names("list_groups_for_user", "Groups", "GroupName", name):
            return StepResult()
        self.gateway.retry(lambda: self.iam.add_user_to_group(UserName=name, GroupName=step.target))
        return StepResult()

    def attach_user_policy(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``AttachUserPolicy``, unless a re-run finds it attached already; a bot-managed policy only
        while it holds the shipped document (checked again here, just before the attachment)."""
        name = step.user_name
        if rerun and step.target in self._names("list_attached_user_policies", "AttachedPolicies", "PolicyArn", name):
            return StepResult()
        if own := bot_policy_name_of(str(step.target), context.account_id):
            self.require_shipped_document(own, str(step.target), "AttachUserPolicy")
        self.gateway.retry(lambda: self.iam.attach_user_policy(UserName=name, PolicyArn=step.target))
        return StepResult()

    def put_user_policy(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """Copy an inline policy of the source user (``PutUserPolicy`` overwrites one of the same
        name, so a re-run is harmless). A document edited since the approval is not copied."""
        document = self.gateway.user_policy_document(str(step.source_user), str(step.target))
        if step.document_sha256 and policy_document_sha256(document) != step.document_sha256:
            raise IamError(
                "PlanChanged",
                f"inline policy {step.target} of {step.source_user} changed after approval; file the request again",
                "PutUserPolicy",
            )
        text = json.dumps(document)
        self.gateway.retry(
            lambda: self.iam.put_user_policy(UserName=step.user_name, PolicyName=step.target, PolicyDocument=text)
        )
        return StepResult()

    def remove(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """One removal call (:data:`REMOVAL_CALLS`) on the step's user; ``NoSuchEntity`` (taken
        away already, by an earlier attempt or by hand) counts as done."""
        method, target, extra = REMOVAL_CALLS[step.kind]
        params: dict[str, Any] = {"UserName": step.user_name, **extra}
        if target:
            params[target] = step.target
        gone(lambda: getattr(self.iam, method)(**params))
        return StepResult(record={"removed": step.target or step.kind.value})

    def delete_virtual_mfa_device(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``DeleteVirtualMFADevice`` of a device the previous step deactivated."""
        gone(lambda: self.iam.delete_virtual_mfa_device(SerialNumber=step.target))
        return StepResult(record={"removed": step.target})

    def delete_user(self, step: Step, context: RunContext, rerun: bool) -> StepResult:
        """``DeleteUser``, after sweeping up anything that appeared since the plan was made, in
        IAM's order (:meth:`~bot.aws.removal.Remover.delete_user_completely`)."""
        Remover(self.gateway).delete_user_completely(step.user_name)
        return StepResult(record={"deleted": step.user_name})


# The IAM call of each single-call removal step kind: (client method, the parameter that takes the
# step's target or None, fixed parameters). IAM API reference of each action.
REMOVAL_CALLS: Mapping[StepKind, tuple[str, str | None, dict[str, str]]] = {
    StepKind.DEACTIVATE_ACCESS_KEY: ("update_access_key", "AccessKeyId", {"Status": "Inactive"}),
    StepKind.DELETE_LOGIN_PROFILE: ("delete_login_profile", None, {}),
    StepKind.DELETE_ACCESS_KEY: ("delete_access_key", "AccessKeyId", {}),
    StepKind.DELETE_SIGNING_CERTIFICATE: ("delete_signing_certificate", "CertificateId", {}),
    StepKind.DELETE_SSH_PUBLIC_KEY: ("delete_ssh_public_key", "SSHPublicKeyId", {}),
    StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL: (
        "delete_service_specific_credential",
        "ServiceSpecificCredentialId",
        {},
    ),
    StepKind.DEACTIVATE_MFA_DEVICE: ("deactivate_mfa_device", "SerialNumber", {}),
    StepKind.DELETE_USER_POLICY: ("delete_user_policy", "PolicyName", {}),
    StepKind.DETACH_USER_POLICY: ("detach_user_policy", "PolicyArn", {}),
    StepKind.REMOVE_USER_FROM_GROUP: ("remove_user_from_group", "GroupName", {}),
}

# The runner's table: the IAM work of each step kind (a test checks none is missing).
RUNNERS: Mapping[StepKind, Runner] = {
    StepKind.ENSURE_BOT_POLICY: StepRunner.ensure_bot_policy,
    StepKind.CREATE_USER: StepRunner.create_user,
    StepKind.CREATE_LOGIN_PROFILE: StepRunner.create_login_profile,
    StepKind.CREATE_ACCESS_KEY: StepRunner.create_access_key,
    StepKind.ADD_USER_TO_GROUP: StepRunner.add_user_to_group,
    StepKind.ATTACH_USER_POLICY: StepRunner.attach_user_policy,
    StepKind.PUT_USER_POLICY: StepRunner.put_user_policy,
    **{kind: StepRunner.remove for kind in REMOVAL_CALLS},
    StepKind.DELETE_VIRTUAL_MFA_DEVICE: StepRunner.delete_virtual_mfa_device,
    StepKind.DELETE_USER: StepRunner.delete_user,
}
