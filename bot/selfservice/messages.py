"""What a person sees about requests: ``status`` / ``pending`` replies and the App Home tab.

Pure functions from models to mrkdwn text and Block Kit views; no I/O (the caller looks up
permalinks, approvers and the clock). Who may see what is decided by the caller and encoded in
which builder it calls: a requester gets :func:`request_detail` of their own requests, a
recipient gets :func:`recipient_detail` (their own IAM user, not the justification, the other
users or the permissions), an approver gets the queue.

Slack limits honoured: section text ≤ 3,000 chars (:data:`bot.domain.limits.SECTION_TEXT_MAX`), ≤ 100
blocks in a Home view (:data:`HOME_BLOCKS_MAX`), button value ≤ 2,000 chars, unique
``block_id`` within a view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.limits import SECTION_TEXT_MAX, VIEW_BLOCKS_MAX
from bot.domain.models import OnboardingRequest
from bot.domain.records import SecretRow
from bot.domain.states import RequestStatus
from bot.slack.blocks import escape, mention, slack_date, truncate, user_names
from bot.slack.request_blocks import decision_buttons, request_summary
from bot.slack.wording import acted, status_words

HOME_BLOCKS_MAX = VIEW_BLOCKS_MAX  # Slack: a Home tab view holds at most 100 blocks
HOME_QUEUE_MAX = 15  # 3 blocks each
HOME_OWN_MAX = 10
HOME_RECEIVED_MAX = 10
HOME_SECRETS_MAX = 10
LIST_MAX = 20  # lines in a DM reply

HELP_TEXT = (
    "*iam-user-bot* creates AWS IAM users after an approver says yes.\n"
    "• `/iam-user new` opens the request form.\n"
    "• `status` (DM me, or `/iam-user status`): your requests and the IAM users made for you.\n"
    "• `status R-XXXXXXXX`: one request in full.\n"
    "• `pending` (approvers): the requests waiting for a decision.\n"
    "• `cancel R-XXXXXXXX`: withdraw your request while it waits for approval.\n"
    "• `keys` (DM me, or `/iam-user keys`): your IAM users and their access keys, with their age.\n"
    "• `/iam-user remove`: ask to disable or delete IAM users I made (approved like a new user).\n"
    "• `help`: this message.\n"
    "New users get their credentials through a one-time link in a private message from me; "
    "my App Home tab lists links you have not opened yet."
)
HINT = (
    "I answer `status`, `status <request id>`, `pending`, `cancel <request id>`, `keys` and `help`. "
    "`/iam-user new` files a request, `/iam-user remove` a removal."
)
NO_SUCH_REQUEST = "I know of no request `{request_id}` of yours. `status` lists the ones I can show you."
NOT_AN_APPROVER = "Only approvers have a queue of pending requests. `status` shows your own."


def request_line(request: OnboardingRequest) -> str:
    """One of the asker's own requests on one line: id, users, state in words, times."""
    return (
        f"• `{request.id}` {user_names(request)}: *{status_words(request)}*. "
        f"Filed {slack_date(request.created_at)}; {acted(request)}."
    )


def own_user_names(request: OnboardingRequest, recipient: str) -> list[str]:
    """The IAM user names in ``request`` that go to ``recipient`` (and no one else's)."""
    pairs = zip(request.form.user_names, request.form.recipients, strict=True)
    return [name for name, who in pairs if who == recipient]


def recipient_line(request: OnboardingRequest, recipient: str) -> str:
    """A request seen by one of its recipients: only their own IAM user(s), the state, who acted."""
    names = ", ".join(f"`{name}`" for name in own_user_names(request, recipient))
    return (
        f"• {names} (request `{request.id}` from {mention(request.requester)}): *{status_words(request)}*; "
        f"{acted(request)}."
    )


def status_reply(own: Sequence[OnboardingRequest], received: Sequence[OnboardingRequest], recipient: str) -> str:
    """The answer to ``status``: the asker's requests, then IAM users others requested for them."""
    if not own and not received:
        return "You have no IAM user requests, and none names you as a recipient. `/iam-user new` files one."
    parts = []
    if own:
        parts.append("*Your IAM user requests*, newest first:\n" + "\n".join(request_line(r) for r in own[:LIST_MAX]))
    if received:
        lines = "\n".join(recipient_line(r, recipient) for r in received[:LIST_MAX])
        parts.append("*IAM users requested for you:*\n" + lines)
    parts.append("`status <request id>` shows one request in full.")
    return truncate("\n\n".join(parts), SECTION_TEXT_MAX)


def link_states(secrets: Sequence[SecretRow], now: datetime) -> str | None:
    """Whether each one-time link was opened, as lines; None when no link was issued."""
    if not secrets:
        return None
    lines = []
    for secret in secrets:
        if secret.state == "revealed" and secret.revealed_at:
            state = f"opened {slack_date(secret.revealed_at)}"
        elif secret.state == "sealed" and secret.expires_at > now:
            state = f"not opened yet; expires {slack_date(secret.expires_at)}"
        elif secret.state == "sealed":
            state = f"expired unopened {slack_date(secret.expires_at)}"
        else:
            state = escape(secret.state)
        lines.append(f"• `{secret.user_name}` for {mention(secret.recipient)}: link {state}")
    return "*One-time links*\n" + "\n".join(lines)


def request_detail(
    request: OnboardingRequest,
    *,
    permalink: str | None,
    secrets: Sequence[SecretRow] = (),
    now: datetime,
) -> str:
    """One request in full, for its requester or an approver: summary, state, who acted, links."""
    parts = [request_summary(request), f"*State* {status_words(request)}: {acted(request)}."]
    if request.status is RequestStatus.DENIED and request.reason:
        parts.append(f"*Reason* {escape(request.reason)}")
    if request.status is RequestStatus.FAILED and request.error:
        parts.append(f"*IAM said* {escape(request.error)}")
    if request.status is RequestStatus.PENDING and not request.approval_ts:
        parts.append(":warning: The approvers' channel has not received it yet; tell the platform team.")
    if links := link_states(secrets, now):
        parts.append(links)
    if permalink:
        parts.append(f"<{permalink}|Open the approval message>")
    return truncate("\n".join(parts), SECTION_TEXT_MAX)


def recipient_detail(request: OnboardingRequest, recipient: str) -> str:
    """One request for a recipient who did not file it: their IAM user(s) and the state only."""
    names = ", ".join(f"`{name}`" for name in own_user_names(request, recipient))
    does = f"would {request.form.remove_mode} your IAM user {names}" if request.form.is_removal else ""
    return (
        f"Request `{request.id}` from {mention(request.requester)} {does or f'creates IAM user {names} for you'}.\n"
        f"*State* {status_words(request)}: {acted(request)}."
    )


@dataclass(frozen=True)
class QueueItem:
    """A pending request as one approver sees it.

    ``refusal`` is why this approver may not decide it (they filed it, or receive from it), or
    None; buttons are shown only when None, and the click is checked again anyway.
    """

    request: OnboardingRequest
    permalink: str | None
    refusal: str | None = None


def queue_line(item: QueueItem) -> str:
    """A pending request in one line, for the ``pending`` reply."""
    request = item.request
    link = f" <{item.permalink}|Open>" if item.permalink else " (not posted to the approvers' channel)"
    note = " _You cannot decide this one._" if item.refusal else ""
    return (
        f"• `{request.id}` from {mention(request.requester)}: {user_names(request)}, "
        f"filed {slack_date(request.created_at)}.{link}{note}"
    )


def pending_reply(queue: Sequence[QueueItem], more: int = 0) -> str:
    """The answer to ``pending`` for an approver: what waits for a decision, oldest first."""
    if not queue:
        return "No request is waiting for a decision."
    lines = "\n".join(queue_line(item) for item in queue)
    tail = f"\n…and {more} more." if more else ""
    return truncate(f"*{len(queue) + more} request(s) waiting for a decision:*\n{lines}{tail}", SECTION_TEXT_MAX)


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=truncate(text, SECTION_TEXT_MAX)))


def _more(count: int, hint: str) -> list[Block]:
    return [ContextBlock(elements=[MarkdownTextObject(text=f"…and {count} more. {hint}")])] if count > 0 else []


@dataclass(frozen=True)
class HomeContent:
    """Everything one viewer's Home shows, already filtered to what they may see.

    ``queue`` is None for a viewer who is not an approver (no queue section at all); the
    ``*_more`` counts say how many items did not fit.
    """

    viewer: str
    own: Sequence[OnboardingRequest]
    received: Sequence[OnboardingRequest]
    secrets: Sequence[SecretRow]
    queue: Sequence[QueueItem] | None
    now: datetime
    lifecycle: Sequence[Block] = ()  # the viewer's keys with Rotate; for approvers keys due, owners gone
    own_more: int = 0
    received_more: int = 0
    queue_more: int = 0


def home_view(content: HomeContent) -> View:
    """The App Home tab (``views.publish``) for one viewer.

    Sections, each only when it has something: the approver's queue with Approve/Deny
    (``approve_request`` / ``deny_request``, value = request id, block ``queue_<id>``); the
    viewer's unopened one-time links with **Send a new link** (``resend_credential_link``,
    value = secret id); the viewer's users and access keys with **Rotate** (``rotate_access_key``)
    and, for approvers, keys due for rotation and owners who left; the viewer's own requests; IAM
    users others requested for them.
    At most :data:`HOME_BLOCKS_MAX` blocks whatever the counts.
    """
    blocks: list[Block] = [HeaderBlock(block_id="home_header", text="IAM user requests")]
    if content.queue is not None:
        blocks.append(_section(f"*Waiting for a decision* ({len(content.queue) + content.queue_more})", "queue"))
        if not content.queue:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Nothing waits for a decision.")]))
        for item in content.queue[:HOME_QUEUE_MAX]:
            request = item.request
            blocks.append(_section(request_summary(request), f"queue_summary_{request.id}"))
            when = [f"Filed {slack_date(request.created_at)}"]
            if item.permalink:
                when.append(f"<{item.permalink}|Open the approval message>")
            if item.refusal:
                when.append(escape(item.refusal))
            context = MarkdownTextObject(text=" · ".join(when))
            blocks.append(ContextBlock(block_id=f"queue_context_{request.id}", elements=[context]))
            if item.refusal is None:
                blocks.append(decision_buttons(request, None, f"queue_{request.id}"))
        blocks += _more(content.queue_more + max(0, len(content.queue) - HOME_QUEUE_MAX), "DM me `pending`.")
        blocks.append(DividerBlock())
    if content.secrets:
        blocks.append(_section("*Credentials waiting for you*: open the link I sent you by DM.", "secrets"))
        for secret in content.secrets[:HOME_SECRETS_MAX]:
            expiry = (
                f"link expires {slack_date(secret.expires_at)}"
                if secret.expires_at > content.now
                else f"link expired {slack_date(secret.expires_at)}"
            )
            blocks.append(
                SectionBlock(
                    block_id=f"secret_{secret.id[:32]}",
                    text=MarkdownTextObject(
                        text=f"IAM user `{secret.user_name}` (request `{secret.request_id}`): {expiry}."
                    ),
                    accessory=ButtonElement(
                        action_id="resend_credential_link", text="Send a new link", value=secret.id
                    ),
                )
            )
        blocks += _more(len(content.secrets) - HOME_SECRETS_MAX, "Open the links you have first.")
        blocks.append(DividerBlock())
    if content.lifecycle:
        blocks += [*content.lifecycle, DividerBlock()]
    blocks.append(_section("*Your requests*", "own"))
    if content.own:
        for request in content.own[:HOME_OWN_MAX]:
            blocks.append(_section(request_line(request), f"own_{request.id}"))
        blocks += _more(content.own_more + max(0, len(content.own) - HOME_OWN_MAX), "DM me `status`.")
    else:
        blocks.append(_section("You have no IAM user requests. `/iam-user new` files one.", "own_none"))
    if content.received:
        blocks.append(DividerBlock())
        blocks.append(_section("*IAM users requested for you*", "received"))
        for request in content.received[:HOME_RECEIVED_MAX]:
            blocks.append(_section(recipient_line(request, content.viewer), f"received_{request.id}"))
        blocks += _more(content.received_more + max(0, len(content.received) - HOME_RECEIVED_MAX), "DM me `status`.")
    blocks.append(
        ContextBlock(
            block_id="home_footer",
            elements=[MarkdownTextObject(text="`/iam-user new` files a request. DM me `help` for everything else.")],
        )
    )
    return View(type="home", blocks=blocks[:HOME_BLOCKS_MAX])
