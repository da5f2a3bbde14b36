"""Block Kit builders: pure functions from models to views and messages. No I/O.

Limits honoured here (Slack Block Kit reference): modal title ≤ 24 chars, ≤ 100 blocks a view,
≤ 50 blocks a message, section text ≤ 3,000 chars, option text ≤ 75 and value ≤ 150 chars,
checkboxes ≤ 10 options. slack_sdk's models check most of them when ``to_dict`` runs.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.domain.models import FINAL_STATUSES, OnboardingRequest, RequestStatus

MODAL_CALLBACK_ID = "onboarding"
DENY_CALLBACK_ID = "deny_reason"
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTIONS_MAX = 100
SECTION_TEXT_MAX = 3000
MESSAGE_BLOCKS_MAX = 50


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (Slack rejects longer fields)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "someone"


def untrusted_id(value: str, limit: int = 24) -> str:
    """An id taken from a button value or a typed command, safe to show and to audit: cut to
    ``limit`` characters and escaped, since anyone who can click can put anything there."""
    return escape(truncate(value, limit).replace("`", "'"))


def user_names(request: OnboardingRequest) -> str:
    """The request's IAM user names as inline code, comma-separated."""
    return ", ".join(f"`{name}`" for name in request.form.user_names)


def slack_date(when: datetime) -> str:
    """A Slack date token: each reader sees it in their own time zone."""
    stamp = int(when.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when.strftime('%Y-%m-%d %H:%M UTC')}>"


def escape(text: str) -> str:
    """Escape ``& < >`` so user text cannot become a mention, a link or ``<!channel>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def deny_reason_modal(request_id: str, channel: str | None) -> View:
    """The modal asking an approver why they deny (block ``reason``, contract "Approval")."""
    return View(
        type="modal",
        callback_id=DENY_CALLBACK_ID,
        private_metadata=f"{request_id}|{channel or ''}",
        title=PlainTextObject(text="Deny request"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Back"),
        blocks=[
            InputBlock(
                block_id="reason",
                label=f"Why deny {request_id}?",
                hint="The requester sees this.",
                element=PlainTextInputElement(action_id="reason", multiline=True, max_length=1000),
            )
        ],
    )


def parse_deny_metadata(metadata: str) -> tuple[str, str | None]:
    """Inverse of the ``private_metadata`` :func:`deny_reason_modal` sets: ``(request id, channel)``."""
    request_id, _, channel = metadata.partition("|")
    return request_id, channel or None


def onboarding_modal() -> dict[str, Any]:
    """The first view of the request wizard, as the dict ``views.open`` sends (contract, "The
    onboarding modal"; the wizard's builders live in :mod:`bot.wizard.views`).

    The empty first view is the same for everyone, so it is built and validated once per
    process: building it with slack_sdk's models on every ``/iam-user new`` cost more CPU than
    the rest of the command's path (see BENCHMARKS.md).
    """
    return json.loads(_onboarding_modal_json())


@functools.cache
def _onboarding_modal_json() -> str:
    from bot.wizard.views import details_view

    return json.dumps(details_view().to_dict())


def requester_notice(request: OnboardingRequest) -> str:
    """The DM the requester gets on each state change."""
    names = user_names(request)
    status = request.status
    if status is RequestStatus.PENDING:
        return f"Your request `{request.id}` for {names} is waiting for approval in <#{request.approval_channel}>."
    if status is RequestStatus.DENIED:
        reason = f" Reason: {escape(request.reason)}" if request.reason else ""
        return f"Your request `{request.id}` for {names} was denied by {mention(request.decided_by)}.{reason}"
    if status is RequestStatus.PROVISIONED:
        return f"Your request `{request.id}` is done: {names} created; each recipient got a one-time link."
    if status is RequestStatus.FAILED:
        return f"Your request `{request.id}` failed ({request.failure_outcome}): {request.error}"
    if status in FINAL_STATUSES:
        return f"Your request `{request.id}` for {names} is {status.words}."
    approver = mention(request.decided_by)
    return f"Your request `{request.id}` for {names} was approved by {approver}; creating the users now."
