"""Self-service by text: ``status``, ``status <id>``, ``pending``, ``cancel <id>``, ``help``.

The same words work in a direct message to the bot and after ``/iam-user``. Parsing is pure
(:func:`parse_command`); :class:`StatusDesk` looks things up and decides who may see what:

- a requester sees their own requests in full;
- a recipient sees only the IAM user(s) made for them, the state and who acted;
- an approver sees every request in full and the queue of pending ones;
- anyone else learns nothing, not even whether a request id exists.

State changes (``cancel``) go through :meth:`bot.approval.workflow.Workflow.cancel`; this module never
moves a request.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from bot.approval.workflow import Outcome, Workflow
from bot.domain.access import may_decide
from bot.domain.models import OnboardingRequest, RequestStatus
from bot.selfservice import messages as status_blocks
from bot.selfservice.messages import QueueItem
from bot.slack.blocks import escape
from bot.storage.sqlite import REQUEST_ID_ALPHABET

log = logging.getLogger(__name__)

VERBS = frozenset({"new", "status", "pending", "cancel", "help"})
REQUEST_ID_PATTERN = re.compile(rf"R-[{REQUEST_ID_ALPHABET}]{{8}}")
# Characters people wrap an id in when they paste it: code spans, bold, quotes, punctuation.
ID_WRAPPING = "`*_~'\"<>()[]{}.,;:!?"
EVENT_MEMORY = timedelta(days=1)  # Slack retries an event at most 3 times, within about an hour
STATUS_LIMIT = 20
QUEUE_LIMIT = 20


@dataclass(frozen=True)
class Command:
    """A parsed message: ``verb`` is one of :data:`VERBS`, ``""`` for an empty message, or
    ``"unknown"``; ``argument`` is the first word after the verb as typed (or None);
    ``request_id`` is that word as a well-formed request id, or None when it is not one."""

    verb: str
    argument: str | None = None
    request_id: str | None = None


def normalize_request_id(word: str) -> str | None:
    """``word`` as a request id (``R-`` + 8 of :data:`~bot.storage.sqlite.REQUEST_ID_ALPHABET`), or None.

    Case, surrounding punctuation or code marks, and a missing ``R-`` are tolerated:
    `` `r-7kq2m9xd`. `` and ``7KQ2M9XD`` both give ``R-7KQ2M9XD``.
    """
    candidate = word.strip(ID_WRAPPING).upper()
    if not candidate.startswith("R-"):
        candidate = "R-" + candidate
    return candidate if REQUEST_ID_PATTERN.fullmatch(candidate) else None


def parse_command(text: str) -> Command:
    """Split a message into verb and argument; case and any whitespace are tolerated.

    Slack sends a DM's text with mrkdwn marks and may use non-breaking spaces; a leading
    mention of the bot (``<@U…>``) is skipped so "@iam-user-bot status" works too.
    """
    words = text.split()  # str.split() without arguments splits on every Unicode space
    while words and words[0].startswith("<@") and words[0].endswith(">"):
        words = words[1:]
    if not words:
        return Command("")
    verb = words[0].strip(ID_WRAPPING).lower()
    if verb not in VERBS:
        return Command("unknown", words[0])
    argument = words[1] if len(words) > 1 else None
    return Command(verb, argument, normalize_request_id(argument) if argument else None)


class StatusDesk:
    """Answers the self-service words for one asker. Reads only; ``cancel`` asks the workflow.

    Args:
        workflow: gives the store, the approvers (resolved at question time), the messenger
            (``chat.getPermalink``, cached) and ``cancel``.
    """

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.store = workflow.store

    # -- Events API retries -------------------------------------------------------------------

    def first_delivery(self, event_id: str | None, retry_num: int | None = None) -> bool:
        """True the first time an Events API ``event_id`` is seen; False for a repeat.

        Slack repeats an event it thinks we missed (``X-Slack-Retry-Num`` 1 to 3, within about
        an hour) with the same ``event_id``. The id is recorded before the answer is sent, so a
        retry that races the first delivery is dropped too: a reply is sent at most once. An
        event without an id cannot be matched and is answered. Ids older than a day are pruned.
        """
        if not event_id:
            return True
        first = self.store.remember_event(event_id)
        if retry_num:
            outcome = "answering" if first else "already answered"
            log.info("Slack retry %d of event %s: %s", retry_num, event_id, outcome)
        if first:
            self.store.forget_events_before(self.store.clock() - EVENT_MEMORY)
        return first

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
        if command.verb == "new":
            return "`/iam-user new` opens the request form (a form cannot be opened from a message)."
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
        if user_id == request.requester or user_id in self.workflow.approvers():
            return status_blocks.request_detail(
                request,
                permalink=self.permalink(request),
                secrets=self.store.secrets_for_request(request.id),
                now=self.store.clock(),
            )
        if user_id in request.form.recipients:
            return status_blocks.recipient_detail(request, user_id)
        return status_blocks.NO_SUCH_REQUEST.format(request_id=request_id)

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
        approvers = self.workflow.approvers()
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
        """``cancel <id>``: the workflow checks and moves; this only forwards."""
        return self.workflow.cancel(request_id, user_id)

    def permalink(self, request: OnboardingRequest) -> str | None:
        """The approval message's permalink (``chat.getPermalink``), or None when not posted."""
        if not (request.approval_channel and request.approval_ts):
            return None
        return self.workflow.messenger.permalink(request.approval_channel, request.approval_ts)

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
