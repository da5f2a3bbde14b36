"""Pending requests expire: one reminder to the approvers at half-life, expiry at the TTL; and a
request filed but never announced (its approval message was never posted) is announced again.

Run as a periodic job in every serving process (:mod:`bot.ops.jobs`). Several workers each run it;
that is safe because every effect is a compare-and-set in the store: the reminder marker
(:meth:`bot.storage.base.Store.mark_reminded`) and pending → expired succeed for exactly one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.approval.board import ApprovalBoard
from bot.domain.changes import Changes
from bot.domain.models import OnboardingRequest
from bot.domain.states import RequestEvent, RequestStatus
from bot.slack.blocks import mention, slack_date, user_names
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.storage.base import Store

log = logging.getLogger(__name__)

SWEEP_BATCH = 10_000  # pending requests looked at per sweep; far above any real backlog
# A pending request with no approval message this long after filing lost its announcement (the
# process or, on Lambda, the asynchronous invocation that posts it died): announce it again, once.
ANNOUNCE_RETRY_SECONDS = 120


def duration(seconds: int) -> str:
    """``72 h`` or ``5 min``: how people say a TTL."""
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{max(1, seconds // 60)} min"


@dataclass
class SweepReport:
    """Request ids this sweep reminded the approvers of, expired, and announced again."""

    reminded: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)


@dataclass
class PendingExpiry:
    """Reminds and expires pending requests by age (``PENDING_REQUEST_TTL_SECONDS``).

    Args:
        ttl_seconds: age at which a pending request expires; the reminder goes at half of it.
        announce: posts a request to the approvers (:meth:`bot.approval.service.Approvals.announce`),
            for one whose announcement was lost.
    """

    store: Store
    board: ApprovalBoard
    messenger: Messenger
    people: People
    changes: Changes
    ttl_seconds: int
    announce: Callable[[OnboardingRequest], None] | None = None

    def sweep(self) -> SweepReport:
        """One pass over the pending requests: expire those at or past the TTL, remind (once)
        those at or past half of it. Safe to run concurrently in several processes."""
        report = SweepReport()
        now = self.store.clock()
        for request in self.store.requests_where(statuses=[RequestStatus.PENDING], limit=SWEEP_BATCH):
            age = (now - request.created_at).total_seconds()
            if age >= self.ttl_seconds:
                if self.expire(request.id) is not None:
                    report.expired.append(request.id)
                continue
            if age >= self.ttl_seconds / 2:
                review = self.store.get_review(request.id)
                if (review is None or review.reminded_at is None) and self.remind(request):
                    report.reminded.append(request.id)
            if request.approval_ts is None and age >= ANNOUNCE_RETRY_SECONDS and self.announce_again(request):
                report.announced.append(request.id)
        if report.reminded or report.expired or report.announced:
            log.info(
                "expiry sweep: %d reminded, %d expired, %d announced again",
                len(report.reminded),
                len(report.expired),
                len(report.announced),
            )
        return report

    def announce_again(self, request: OnboardingRequest) -> bool:
        """Post a request whose announcement was lost; True for the one process that does (the
        store's event ledger makes it once, in any number of processes)."""
        if self.announce is None or not self.store.remember_event(f"announce-again:{request.id}"):
            return False
        self.store.audit("announced_again", request_id=request.id)
        self.announce(request)
        return True

    def expire(self, request_id: str) -> OnboardingRequest | None:
        """pending → expired (one worker wins); the approval message loses its buttons and the
        requester is told. None when it was no longer pending."""
        moved = self.store.move_request(
            request_id, RequestEvent.EXPIRED, actor=None, detail={"ttl_seconds": self.ttl_seconds}
        )
        if moved is None:
            return None
        self.changes.request_moved(moved)
        self.messenger.dm(
            moved.requester,
            f":hourglass: Your request `{moved.id}` for {user_names(moved)} expired: nobody decided on it "
            f"within {duration(self.ttl_seconds)}. Nothing was {'removed' if moved.form.is_removal else 'created'}; "
            f"`/iam-user {'remove' if moved.form.is_removal else 'new'}` files it again.",
        )
        return moved

    def remind(self, request: OnboardingRequest) -> bool:
        """Remind the approvers of a pending request once (the marker is a compare-and-set, so with
        several workers exactly one sends it). Returns True if this call sent it."""
        if not self.store.mark_reminded(request.id):
            return False
        text = (
            f":alarm_clock: {' '.join(self.people.approver_mentions())} request `{request.id}` from "
            f"{mention(request.requester)} for {user_names(request)} is still waiting for a decision; it expires "
            f"{slack_date(self.board.expires_at(request))}."
        )
        if self.messenger.post(self.board.channel, text) is None:
            self.store.audit("reminder_post_failed", request_id=request.id)
        return True
