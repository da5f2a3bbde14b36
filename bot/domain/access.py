"""Who may do what: pure decisions, tested without Slack or AWS."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.domain.models import OnboardingRequest


@dataclass(frozen=True)
class Decision:
    """``allowed`` plus, when refused, a sentence for the person refused."""

    allowed: bool
    reason: str = ""


ALLOW = Decision(True)


def may_request(user_id: str, requesters: Collection[str] | None) -> Decision:
    """Anyone may file when ``requesters`` is None (``REQUESTER_*`` unset); else members only."""
    if requesters is None or user_id in requesters:
        return ALLOW
    return Decision(False, "You are not on the list of people who may request IAM users. Ask the platform team.")


def may_decide(user_id: str, request: OnboardingRequest, approvers: Collection[str]) -> Decision:
    """May ``user_id`` approve or deny ``request``?

    Rules: only approvers (``APPROVER_USER_IDS`` ∪ members of ``APPROVER_USERGROUP_ID``,
    resolved by the caller at click time); never the requester; never someone who would receive
    credentials from this request, even an approver (four eyes).
    """
    if user_id not in approvers:
        return Decision(False, "Only approvers can approve or deny IAM user requests. Nothing was changed.")
    if user_id == request.requester:
        return Decision(False, "You filed this request, so someone else must decide on it. Nothing was changed.")
    if user_id in request.form.recipients:
        return Decision(
            False,
            "You would receive credentials from this request, so someone else must decide on it. Nothing was changed.",
        )
    return ALLOW
