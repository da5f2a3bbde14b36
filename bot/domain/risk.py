"""Risk flags and the approved-plan fingerprint: pure functions, tested without Slack or AWS.

A request is judged on its :class:`~bot.domain.models.PermissionExpansion` (groups with their policies,
"copy from user" replaced by what the source holds), read from IAM once after filing. Flags
marked ``sensitive`` raise the number of distinct approvers to ``SENSITIVE_APPROVALS_REQUIRED``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator

from bot.domain.models import PermissionExpansion, RequestForm, RiskFlag

# Policies (names or ARNs) and groups whose grant needs more than one approver by default:
# full admin, the power to grant oneself anything (IAM, Organizations), or to blind the audit trail.
DEFAULT_SENSITIVE_PERMISSIONS: tuple[str, ...] = (
    "AdministratorAccess",
    "PowerUserAccess",
    "IAMFullAccess",
    "AWSOrganizationsFullAccess",
    "AWSCloudTrail_FullAccess",
    "AWSKeyManagementServicePowerUser",
    "Administrators",
    "Admins",
)


SECRET_FORM_FIELDS = {"custom_password", "custom_password_sealed", "password"}


def _is_sensitive(name: str, arn: str | None, sensitive: Iterable[str]) -> bool:
    """True if ``name`` (policy or group name) or ``arn`` is on the list, ignoring case.

    Entries starting with ``arn:`` match ARNs only; other entries match names (IAM treats
    policy and group names as unique regardless of case).
    """
    for entry in sensitive:
        wanted = entry.strip().lower()
        if wanted.startswith("arn:"):
            if arn is not None and arn.lower() == wanted:
                return True
        elif name.lower() == wanted:
            return True
    return False


def _sensitive_hits(expansion: PermissionExpansion, sensitive: tuple[str, ...]) -> Iterator[str]:
    source = expansion.copy_source.user_name if expansion.copy_source else None
    via_copy = f" (copied from user `{source}`)" if source else ""
    for group in expansion.groups:
        if _is_sensitive(group.name, None, sensitive):
            yield f"group `{group.name}`{via_copy}"
        for policy in group.managed_policies:
            if _is_sensitive(policy.name, policy.arn, sensitive):
                yield f"policy `{policy.name}` through group `{group.name}`{via_copy}"
    for policy in expansion.managed_policies:
        if _is_sensitive(policy.name, policy.arn, sensitive):
            yield f"policy `{policy.name}`{via_copy}"
    for inline in expansion.inline_policies:
        if inline.broad:
            yield f"inline policy `{inline.name}` allows every action (`*` or `iam:*`){via_copy}"


def assess(form: RequestForm, expansion: PermissionExpansion, sensitive: tuple[str, ...]) -> tuple[RiskFlag, ...]:
    """The flags approvers see above a request, most serious first.

    Args:
        sensitive: ``SENSITIVE_PERMISSIONS``: policy names, policy ARNs and group names.

    Flags: ``unreadable`` (IAM could not be read: nobody can see what would be granted, so the
    request cannot be approved), ``sensitive`` (one per sensitive grant, directly, through a
    group or through "copy from user"), ``no_boundary`` (no permissions boundary caps the users),
    ``console_without_mfa`` (console access without the MFA-enforcing policy). A removal request
    is judged on what its users hold: removing a user who holds a sensitive permission is
    sensitive too, and ``irreversible`` marks a ``delete``.
    """
    flags: list[RiskFlag] = []
    if expansion.error:
        flags.append(
            RiskFlag(
                code="unreadable",
                text=f"Could not read what this grants from IAM ({expansion.error}); it cannot be approved.",
                sensitive=True,
            )
        )
    held = "Sensitive: removes users holding " if form.is_removal else "Sensitive: "
    flags.extend(
        RiskFlag(code="sensitive", text=f"{held}{hit}", sensitive=True)
        for hit in dict.fromkeys(_sensitive_hits(expansion, sensitive))
    )
    if form.is_removal:
        # Taking access away needs no boundary or MFA; deleting cannot be undone.
        if form.remove_mode == "delete":
            flags.append(
                RiskFlag(code="irreversible", text="Deletes the users and their credentials: this cannot be undone.")
            )
        return tuple(flags)
    if not expansion.permissions_boundary_arn:
        flags.append(RiskFlag(code="no_boundary", text="No permissions boundary caps what these users can do."))
    if form.console and not form.mfa_required:
        flags.append(
            RiskFlag(code="console_without_mfa", text="Console access without MFA enforcement (MFA not required).")
        )
    return tuple(flags)


def approvals_required(flags: Iterable[RiskFlag], sensitive_approvals: int) -> int:
    """Distinct approvers needed: ``sensitive_approvals`` if any flag is sensitive, else 1."""
    return max(1, sensitive_approvals) if any(flag.sensitive for flag in flags) else 1


def fingerprint(form: RequestForm, expansion: PermissionExpansion) -> str:
    """sha256 (hex) of the canonical JSON of what the approver saw: the form and its expansion.

    Canonical: keys sorted, no whitespace, sets as sorted lists (pydantic's JSON mode), so the
    same request always gives the same digest in any process.
    """
    # Fields a form or an expansion gained later are left out at their defaults, so a request
    # approved before an upgrade keeps the fingerprint it was approved with.
    form_left_out = SECRET_FORM_FIELDS | ({"remove_mode"} if form.remove_mode is None else set())
    expansion_left_out = {"error"} | ({"holdings"} if not expansion.holdings else set())
    document = {
        # A custom password (if a form ever holds one) is no part of the plan and must not be
        # hashed into a stored value: an unsalted sha256 of a short secret can be guessed.
        "form": form.model_dump(mode="json", exclude=form_left_out),
        "expansion": expansion.model_dump(mode="json", exclude=expansion_left_out),
        "expansion_failed": expansion.error is not None,
    }
    document["form"]["access_types"] = sorted(document["form"]["access_types"])
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_change(approved: PermissionExpansion, now: PermissionExpansion) -> str:
    """A sentence naming what differs between the approved expansion and a fresh read."""
    changes: list[str] = []
    if now.error and not approved.error:
        # A failed read holds nothing to compare: naming "changes" against its empty fields
        # would tell the requester things nobody knows.
        return f"IAM could not be read ({now.error})"
    if approved.copy_source != now.copy_source:
        source = (approved.copy_source or now.copy_source).user_name  # type: ignore[union-attr]
        changes.append(f"user `{source}` (copied from) now holds different permissions")
    if approved.groups != now.groups:
        changed = sorted({g.name for g in approved.groups} ^ {g.name for g in now.groups}) or sorted(
            a.name for a, b in zip(approved.groups, now.groups, strict=False) if a != b
        )
        changes.append("group policies changed: " + ", ".join(f"`{n}`" for n in changed))
    if approved.managed_policies != now.managed_policies:
        changes.append("managed policies changed")
    if approved.inline_policies != now.inline_policies:
        changes.append("inline policies changed")
    if approved.permissions_boundary_arn != now.permissions_boundary_arn:
        changes.append("permissions boundary changed")
    if (approved.account_id, approved.users_may_change_password) != (now.account_id, now.users_may_change_password):
        changes.append("account or password policy changed")
    return "; ".join(dict.fromkeys(changes)) or "the plan changed"


BROAD_ACTIONS = frozenset({"*", "*:*", "iam:*"})


def allows_everything(document: dict[str, object]) -> bool:
    """True if an IAM policy document has an Allow statement with ``Action`` ``*``, ``*:*`` or
    ``iam:*`` (on any resource), or an Allow with ``NotAction`` (everything but a few)."""
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            return True
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(isinstance(a, str) and a.lower() in BROAD_ACTIONS for a in actions or []):
            return True
    return False


def too_few_approvers(eligible: int, required: int) -> RiskFlag | None:
    """A flag when fewer people may approve than the request needs (it would only expire).

    ``eligible``: approvers who are neither the requester nor a recipient (they may not decide).
    """
    if eligible >= required:
        return None
    return RiskFlag(
        code="too_few_approvers",
        text=f"Needs {required} distinct approvers, but only {eligible} approver(s) may decide on it "
        "(the requester and recipients may not); add approvers or it will expire.",
    )
