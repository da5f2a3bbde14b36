"""Self-service answers: ``status``, ``status <id>``, ``pending``, ``cancel <id>``, ``keys``, ``help``.

The words are parsed by :mod:`bot.selfservice.commands`; :class:`StatusDesk` looks things up and
decides who may see what:

- a requester sees their own requests in full;
- a recipient sees only the IAM user(s) made for them, the state and who acted;
- an approver sees every request in full and the queue of pending ones;
- anyone else learns nothing, not even whether a request id exists.

State changes (``cancel``) go through :meth:`bot.approval.service.Approvals.cancel`; this module
never moves a request. ``keys`` (the asker's bot-made users and their access keys) is read from IAM
by :class:`bot.lifecycle.keysdesk.KeyDesk`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.approval.message import cli_script_for
from bot.approval.service import Approvals, Outcome
from bot.domain.access import may_decide
from bot.domain.models import OnboardingRequest
from bot.domain.states import RequestStatus
from bot.lifecycle.keysdesk import KeyDesk
from bot.selfservice import messages as status_blocks
from bot.selfservice.commands import parse_command
from bot.selfservice.messages import QueueItem
from bot.slack.blocks import escape
from bot.slack.code_blocks import script_messages
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.storage.base import Store

log = logging.getLogger(__name__)

STATUS_LIMIT = 20
SCRIPT_FOLLOWS = "The whole equivalent AWS CLI script follows in our DM."
QUEUE_LIMIT = 20


@dataclass
class StatusDesk:
    """Answers the self-service words for one asker. Reads only; ``cancel`` asks the approval stage.

    Args:
        people: the approvers, resolved at question time.
        messenger: ``chat.getPermalink`` of approval messages (cached).
        approvals: ``cancel``; keys: ``keys``.
    """

    store: Store
    people: People
    messenger: Messenger
    approvals: Approvals
    keys: KeyDesk

    # -- answers ------------------------------------------------------------------------------

    def reply(self, user_id: str, text: str, *, links: bool = True) -> str:
        """The answer to a direct message (or ``/iam-user`` text) from ``user_id``.

        Args:
            links: look up approval-message permalinks for lists (``pending``); a slash command
                passes False to stay well inside its 3 s ack (one request's link is still shown).
        """
        command = parse_command(text)
        if command.verb == "help":
            return status_blocks.HELP_TEXT
        if command.verb == "status":
            if command.argument is None:
                return self.status(user_id)
            if command.request_id is None:
                return self._bad_id(command.argument)
            return self.status(user_id, command.request_id)
        if command.verb == "pending":
            return self.pending(user_id, links=links)
        if command.verb == "cancel":
            if command.argument is None:
                return self._which_to_cancel(user_id)
            if command.request_id is None:
                return self._bad_id(command.argument)
            return self.cancel(user_id, command.request_id).message
        if command.verb == "keys":
            return self.keys.reply(user_id)
        if command.verb in ("new", "remove"):
            form = "request" if command.verb == "new" else "removal"
            return f"`/iam-user {command.verb}` opens the {form} form (a form cannot be opened from a message)."
        return status_blocks.HINT

    def status(self, user_id: str, request_id: str | None = None) -> str:
        """``status``: the asker's requests and IAM users made for them; or one request.

        One request is shown in full to its requester and to approvers, in part (their own
        user only) to a recipient, and to anyone else as unknown.
        """
        if request_id is None:
            own = self.store.requests_where(requester=user_id, limit=STATUS_LIMIT)
            received = [
                r for r in self.store.requests_for_recipient(user_id, limit=STATUS_LIMIT) if r.requester != user_id
            ]
            return status_blocks.status_reply(own, received, user_id)
        request = self.store.get_request(request_id)
        if request is None:
            return status_blocks.NO_SUCH_REQUEST.format(request_id=request_id)
        if user_id == request.requester or user_id in self.people.approvers():
            detail = status_blocks.request_detail(
                request,
                permalink=self.permalink(request),
                secrets=self.store.secrets_for_request(request.id),
                now=self.store.clock(),
            )
            return f"{detail}\n{SCRIPT_FOLLOWS}" if self.store.get_review(request.id) is not None else detail
        if user_id in request.form.recipients:
            return status_blocks.recipient_detail(request, user_id)
        return status_blocks.NO_SUCH_REQUEST.format(request_id=request_id)

    def followups(self, user_id: str, text: str) -> list[str]:
        """Messages that follow the answer to ``text``: for ``status <id>`` asked by the request's
        requester or an approver, the whole equivalent AWS CLI script
        (:func:`bot.slack.code_blocks.script_messages`, plain text in one or more parts), which
        the approval message and the review may only show in part. Empty otherwise."""
        command = parse_command(text)
        if command.verb != "status" or command.request_id is None:
            return []
        request = self.store.get_request(command.request_id)
        if request is None or (user_id != request.requester and user_id not in self.people.approvers()):
            return []
        review = self.store.get_review(request.id)
        script = cli_script_for(request, review.expansion) if review is not None else None
        if script is None or not script.lines:
            return []
        title = f"*Equivalent AWS CLI of `{request.id}`*, the whole script ({len(script.lines)} commands)."
        return script_messages(title, script.notes, script.lines)

    def pending(self, user_id: str, *, links: bool = True) -> str:
        """``pending``: the approver's queue, oldest first; a short refusal for anyone else."""
        queue, more = self.queue(user_id, QUEUE_LIMIT, links=links)
        if queue is None:
            return status_blocks.NOT_AN_APPROVER
        return status_blocks.pending_reply(queue, more)

    def queue(self, user_id: str, limit: int, *, links: bool = True) -> tuple[list[QueueItem] | None, int]:
        """Pending requests as ``user_id`` sees them and how many more did not fit; None if not an approver.

        Oldest first, since those have waited longest.
        """
        approvers = self.people.approvers()
        if user_id not in approvers:
            return None, 0
        pending = self.store.requests_where(statuses=[RequestStatus.PENDING], limit=1000)
        pending.reverse()
        items = [
            QueueItem(
                request=request,
                permalink=self.permalink(request) if links else None,
                refusal=None if (d := may_decide(user_id, request, approvers)).allowed else d.reason,
            )
            for request in pending[:limit]
        ]
        return items, max(0, len(pending) - limit)

    def cancel(self, user_id: str, request_id: str) -> Outcome:
        """``cancel <id>``: the approval stage checks and moves; this only forwards."""
        return self.approvals.cancel(request_id, user_id)

    def permalink(self, request: OnboardingRequest) -> str | None:
        """The approval message's permalink (``chat.getPermalink``), or None when not posted."""
        if not (request.approval_channel and request.approval_ts):
            return None
        return self.messenger.permalink(request.approval_channel, request.approval_ts)

    # -- helpers ------------------------------------------------------------------------------

    def _which_to_cancel(self, user_id: str) -> str:
        waiting = self.store.requests_where(requester=user_id, statuses=[RequestStatus.PENDING], limit=10)
        if not waiting:
            return "You have no request waiting for approval, so there is nothing to cancel."
        ids = ", ".join(f"`{r.id}`" for r in waiting)
        return f"Which one? Say `cancel <request id>`. Waiting for approval: {ids}."

    @staticmethod
    def _bad_id(word: str) -> str:
        shown = escape(word[:40].replace("`", ""))
        return f"`{shown}` is not a request id; they look like `R-7KQ2M9XD`. `status` lists yours."
