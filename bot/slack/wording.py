"""How a request's state reads in Slack, worded once: the decision verb of each status, who acted,
and the requester's DM on each change. Pure: no I/O.

Status words themselves (``waiting for approval``…) are :data:`bot.domain.states.STATUS_WORDS`.
"""

from __future__ import annotations

from bot.domain.models import OnboardingRequest
from bot.domain.states import RequestStatus
from bot.slack.blocks import escape, mention, slack_date, user_names

# What deciding on a request made of it, by the status it is in now (pending: nothing yet).
DECISION_VERBS = {
    RequestStatus.APPROVED: "approved",
    RequestStatus.PROVISIONING: "approved",
    RequestStatus.PROVISIONED: "approved",
    RequestStatus.FAILED: "approved",
    RequestStatus.DENIED: "denied",
    RequestStatus.CANCELLED: "cancelled",
    RequestStatus.EXPIRED: "expired",
}
# What became of an approved request, after the approval.
OUTCOME_WORDS = {RequestStatus.PROVISIONED: "users created", RequestStatus.FAILED: "failed"}
# A removal request (/iam-user remove) reads differently where it creates nothing.
REMOVAL_STATUS_WORDS = {
    RequestStatus.APPROVED: "approved, the removal is about to start",
    RequestStatus.PROVISIONING: "approved, removing the IAM users",
    RequestStatus.PROVISIONED: "done: IAM users {done}",
}


def removal_verb(request: OnboardingRequest) -> str:
    """``deleted`` or ``disabled``: what a removal request does to its users."""
    return "deleted" if request.form.remove_mode == "delete" else "disabled"


def status_words(request: OnboardingRequest) -> str:
    """The request's state as a person would say it (:attr:`RequestStatus.words`, or the removal's)."""
    if request.form.is_removal and request.status in REMOVAL_STATUS_WORDS:
        return REMOVAL_STATUS_WORDS[request.status].format(done=removal_verb(request))
    return request.status.words


def decision_verb(status: RequestStatus) -> str | None:
    """``approved``, ``denied``, ``cancelled`` or ``expired``; None while pending."""
    return DECISION_VERBS.get(status)


def acted(request: OnboardingRequest) -> str:
    """Who acted on the request and when, in words ("approved by @a <date>; users created <date>")."""
    verb = decision_verb(request.status)
    if verb is None:
        return "no decision yet"
    updated = slack_date(request.updated_at)
    if request.status is RequestStatus.EXPIRED:
        return f"expired {updated}"
    when = slack_date(request.decided_at) if request.decided_at else ""
    words = f"{verb} by {mention(request.decided_by)} {when}".strip()
    if outcome := OUTCOME_WORDS.get(request.status):
        if request.form.is_removal and request.status is RequestStatus.PROVISIONED:
            outcome = f"users {removal_verb(request)}"
        words += f"; {outcome} {updated}"
    return words


def requester_notice(request: OnboardingRequest) -> str:
    """The DM the requester gets on each state change."""
    names = user_names(request)
    status = request.status
    if request.form.is_removal:
        return _removal_notice(request, names)
    if status is RequestStatus.PENDING:
        return f"Your request `{request.id}` for {names} is waiting for approval in <#{request.approval_channel}>."
    if status is RequestStatus.DENIED:
        reason = f" Reason: {escape(request.reason)}" if request.reason else ""
        return f"Your request `{request.id}` for {names} was denied by {mention(request.decided_by)}.{reason}"
    if status is RequestStatus.PROVISIONED:
        return f"Your request `{request.id}` is done: {names} created; each recipient got a one-time link."
    if status is RequestStatus.FAILED:
        return f"Your request `{request.id}` failed ({request.failure_outcome}): {request.error}"
    if status in (RequestStatus.CANCELLED, RequestStatus.EXPIRED):
        return f"Your request `{request.id}` for {names} is {status_words(request)}."
    return (
        f"Your request `{request.id}` for {names} was approved by {mention(request.decided_by)}; "
        "creating the users now."
    )


def _removal_notice(request: OnboardingRequest, names: str) -> str:
    """The requester's DM on each state change of a removal request."""
    status, verb = request.status, request.form.remove_mode
    what = f"Your removal request `{request.id}` ({verb} {names})"
    if status is RequestStatus.PENDING:
        return f"{what} is waiting for approval in <#{request.approval_channel}>."
    if status is RequestStatus.DENIED:
        reason = f" Reason: {escape(request.reason)}" if request.reason else ""
        return f"{what} was denied by {mention(request.decided_by)}.{reason}"
    if status is RequestStatus.PROVISIONED:
        return f"{what} is done: the users are {removal_verb(request)}."
    if status is RequestStatus.FAILED:
        return f"{what} failed: {escape(request.error or 'unknown error')}"
    if status in (RequestStatus.CANCELLED, RequestStatus.EXPIRED):
        return f"{what} is {status.words}."
    return f"{what} was approved by {mention(request.decided_by)}; removing them now."
