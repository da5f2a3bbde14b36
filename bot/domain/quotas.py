"""IAM quotas: per view of the wizard, and against a whole plan just before it runs. Pure: the
caller reads IAM.

The numbers come from ``get_account_summary()["SummaryMap"]`` (live quotas, so a raised quota
is honoured) and the plan. Checking first turns a ``LimitExceeded`` halfway through a request
(and the rollback it forces) into a clear refusal before anything is created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from bot.domain.plan import STEP_KINDS, Step, StepKind
from bot.domain.tags import TAGS_PER_USER_MAX

# IAM defaults, used when the account summary leaves a quota out.
DEFAULT_QUOTAS = {
    "UsersQuota": 5000,
    "AttachedPoliciesPerUserQuota": 10,
    "GroupsPerUserQuota": 10,
    "AccessKeysPerUserQuota": 2,
    "PoliciesQuota": 1500,
    "UserPolicySizeQuota": 2048,
}


def quota_problems(
    plan: Sequence[Step],
    summary: Mapping[str, int],
    *,
    new_bot_policies: int = 0,
    inline_policy_chars: int = 0,
) -> list[str]:
    """Every quota the plan would break, as sentences; empty when it fits.

    Args:
        plan: the steps about to run (:func:`bot.domain.plan.build_plan`).
        summary: ``SummaryMap`` of ``get_account_summary`` (``Users``, ``UsersQuota``,
            ``AttachedPoliciesPerUserQuota``, ``GroupsPerUserQuota``, ``AccessKeysPerUserQuota``,
            ``Policies``, ``PoliciesQuota``, ``UserPolicySizeQuota``).
        new_bot_policies: bot-managed customer managed policies the plan will create (absent now).
        inline_policy_chars: non-whitespace characters of the inline policies copied to each
            user (IAM counts all inline policies of a user together, 2,048 by default).

    Checks: users in the account; managed policies, groups, access keys (every status counts;
    a new user starts with none) and tags per user; customer managed policies in the account;
    inline policy size per user.
    """

    def quota(key: str) -> int:
        return int(summary.get(key, DEFAULT_QUOTAS[key]))

    problems: list[str] = []
    new_users = [s.user_name for s in plan if s.kind is StepKind.CREATE_USER]
    users, users_quota = int(summary.get("Users", 0)), quota("UsersQuota")
    if users + len(new_users) > users_quota:
        problems.append(
            f"the account has {users} IAM users and its quota is {users_quota}; "
            f"{len(new_users)} more do not fit (ask AWS for a higher IAM users quota)"
        )
    per_user = {kind: rules.quota for kind, rules in STEP_KINDS.items() if rules.quota is not None}
    for kind, (key, words) in per_user.items():
        counts = Counter(s.user_name for s in plan if s.kind is kind)
        limit = quota(key)
        for user_name, count in counts.items():
            if count > limit:
                problems.append(f"{user_name} would get {count} {words}, but IAM allows {limit} per user")
                break  # every user of a request gets the same, so one sentence is enough
    for step in plan:
        if step.kind is StepKind.CREATE_USER and len(step.tags) > TAGS_PER_USER_MAX:
            problems.append(f"{step.user_name} would get {len(step.tags)} tags, but IAM allows {TAGS_PER_USER_MAX}")
            break
    policies, policies_quota = int(summary.get("Policies", 0)), quota("PoliciesQuota")
    if new_bot_policies and policies + new_bot_policies > policies_quota:
        problems.append(
            f"the account has {policies} customer managed policies (quota {policies_quota}); "
            f"the bot's {new_bot_policies} policies do not fit"
        )
    size_quota = quota("UserPolicySizeQuota")
    if inline_policy_chars > size_quota:
        problems.append(
            f"the inline policies to copy hold {inline_policy_chars} characters, "
            f"but IAM allows {size_quota} per user (whitespace not counted)"
        )
    return problems


class AccountQuotas(BaseModel):
    """The per-user quotas of ``get_account_summary()["SummaryMap"]`` that a request can hit.

    Defaults are IAM's default quotas (:data:`DEFAULT_QUOTAS`; IAM user guide, "IAM and AWS STS
    quotas"): 10 managed policies attached per user (raisable to 20), 10 groups per user.
    """

    model_config = ConfigDict(frozen=True)

    attached_policies_per_user: int = DEFAULT_QUOTAS["AttachedPoliciesPerUserQuota"]
    groups_per_user: int = DEFAULT_QUOTAS["GroupsPerUserQuota"]

    @classmethod
    def from_summary(cls, summary: Mapping[str, int]) -> AccountQuotas:
        """Build from ``get_account_summary()["SummaryMap"]``; missing keys keep the defaults."""
        return cls(
            attached_policies_per_user=int(
                summary.get("AttachedPoliciesPerUserQuota", DEFAULT_QUOTAS["AttachedPoliciesPerUserQuota"])
            ),
            groups_per_user=int(summary.get("GroupsPerUserQuota", DEFAULT_QUOTAS["GroupsPerUserQuota"])),
        )


def groups_quota_error(count: int, quotas: AccountQuotas) -> str | None:
    """IAM ``GroupsPerUserQuota``: a user is in at most that many groups (10 by default)."""
    if count > quotas.groups_per_user:
        return (
            f"That puts each user in {count} groups; this account allows {quotas.groups_per_user} per user "
            f"(GroupsPerUserQuota). Remove {count - quotas.groups_per_user}."
        )
    return None


def policies_quota_error(chosen: int, added_by_bot: int, quotas: AccountQuotas) -> str | None:
    """IAM ``AttachedPoliciesPerUserQuota``: managed policies attached to one user (10 by default).

    Args:
        chosen: the managed policies the request attaches (chosen, or copied from a user).
        added_by_bot: the policies the bot attaches itself (MFA, self-manage, IAMUserChangePassword).
    """
    total = chosen + added_by_bot
    if total > quotas.attached_policies_per_user:
        extra = f" ({chosen} chosen + {added_by_bot} the bot attaches for the options ticked)" if added_by_bot else ""
        return (
            f"That attaches {total} managed policies to each user{extra}; this account allows "
            f"{quotas.attached_policies_per_user} per user (AttachedPoliciesPerUserQuota). "
            f"Remove {total - quotas.attached_policies_per_user}, or use a group."
        )
    return None
