"""Quota re-check before execution: pure, from a plan and an account summary."""

from __future__ import annotations

from bot.domain.models import Tag
from bot.domain.plan import Step, StepKind
from bot.domain.quotas import quota_problems

SUMMARY = {
    "Users": 10,
    "UsersQuota": 5000,
    "AttachedPoliciesPerUserQuota": 10,
    "GroupsPerUserQuota": 10,
    "AccessKeysPerUserQuota": 2,
    "Policies": 3,
    "PoliciesQuota": 1500,
    "UserPolicySizeQuota": 2048,
}


def user_plan(name: str, policies: int = 0, groups: int = 0, tags: int = 3) -> list[Step]:
    steps = [Step(kind=StepKind.CREATE_USER, user_name=name, tags=tuple(Tag(key=f"k{i}") for i in range(tags)))]
    steps.append(Step(kind=StepKind.CREATE_ACCESS_KEY, user_name=name))
    steps += [Step(kind=StepKind.ATTACH_USER_POLICY, user_name=name, target=f"arn:p{i}") for i in range(policies)]
    steps += [Step(kind=StepKind.ADD_USER_TO_GROUP, user_name=name, target=f"g{i}") for i in range(groups)]
    return steps


def test_a_plan_within_every_quota_passes() -> None:
    plan = user_plan("a", policies=10, groups=10, tags=50) + user_plan("b", policies=10, groups=10)
    assert quota_problems(plan, SUMMARY, new_bot_policies=2, inline_policy_chars=2048) == []


def test_each_quota_is_named_with_its_numbers() -> None:
    assert quota_problems(user_plan("a", policies=11), SUMMARY) == [
        "a would get 11 managed policies, but IAM allows 10 per user"
    ]
    assert quota_problems(user_plan("a", groups=11), SUMMARY) == ["a would get 11 groups, but IAM allows 10 per user"]
    assert quota_problems(user_plan("a", tags=51), SUMMARY) == ["a would get 51 tags, but IAM allows 50"]
    full = {**SUMMARY, "Users": 4999}
    (users,) = quota_problems(user_plan("a") + user_plan("b"), full)
    assert "4999 IAM users" in users and "quota is 5000" in users and "2 more" in users
    (policies,) = quota_problems(user_plan("a"), {**SUMMARY, "Policies": 1499}, new_bot_policies=2)
    assert "1499 customer managed policies" in policies
    (inline,) = quota_problems(user_plan("a"), SUMMARY, inline_policy_chars=2049)
    assert "2049 characters" in inline and "2048 per user" in inline


def test_a_raised_quota_in_the_summary_is_honoured() -> None:
    assert quota_problems(user_plan("a", policies=15), {**SUMMARY, "AttachedPoliciesPerUserQuota": 20}) == []
    # An access keys quota of 0 (never in practice) shows keys are counted per user too.
    assert quota_problems(user_plan("a"), {**SUMMARY, "AccessKeysPerUserQuota": 0}) == [
        "a would get 1 access keys, but IAM allows 0 per user"
    ]
