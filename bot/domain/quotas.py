"""IAM quotas, checked against a plan just before it runs. Pure: the caller reads IAM.

The numbers come from ``get_account_summary()["SummaryMap"]`` (live quotas, so a raised quota
is honoured) and the plan. Checking first turns a ``LimitExceeded`` halfway through a request
(and the rollback it forces) into a clear refusal before anything is created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from bot.domain.plan import Step, StepKind

# IAM defaults, used when the account summary leaves a quota out.
DEFAULT_QUOTAS = {
    "UsersQuota": 5000,
    "AttachedPoliciesPerUserQuota": 10,
    "GroupsPerUserQuota": 10,
    "AccessKeysPerUserQuota": 2,
    "PoliciesQuota": 1500,
    "UserPolicySizeQuota": 2048,
}
MAX_TAGS_PER_USER = 50  # IAM: 50 tags per user, a hard limit


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
    per_user = {
        StepKind.ATTACH_USER_POLICY: ("AttachedPoliciesPerUserQuota", "managed policies"),
        StepKind.ADD_USER_TO_GROUP: ("GroupsPerUserQuota", "groups"),
        StepKind.CREATE_ACCESS_KEY: ("AccessKeysPerUserQuota", "access keys"),
    }
    for kind, (key, words) in per_user.items():
        counts = Counter(s.user_name for s in plan if s.kind is kind)
        limit = quota(key)
        for user_name, count in counts.items():
            if count > limit:
                problems.append(f"{user_name} would get {count} {words}, but IAM allows {limit} per user")
                break  # every user of a request gets the same, so one sentence is enough
    for step in plan:
        if step.kind is StepKind.CREATE_USER and len(step.tags) > MAX_TAGS_PER_USER:
            problems.append(f"{step.user_name} would get {len(step.tags)} tags, but IAM allows {MAX_TAGS_PER_USER}")
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
