"""The approvers' channel message of each request, kept in step with the store.

Rendered from what the store holds now (the request, its review, the journal's progress), never
from a caller's snapshot: with several workers another move may have landed since, and the newest
state is the one to show. Reading and updating happen under one lock per request, so an older
rendering (a progress line) cannot land after a newer one (the outcome).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor
from datetime import datetime, timedelta

from cachetools import LRUCache
from slack_sdk.models.blocks import Block

from bot import logs
from bot.approval import message
from bot.domain.models import OnboardingRequest, PermissionExpansion, Review
from bot.domain.plan_text import Script
from bot.domain.states import RequestStatus, StepState
from bot.slack.messenger import Messenger
from bot.storage.base import Store

# Slack allows about one chat.update a second per channel; progress lines need no more.
PROGRESS_EVERY_SECONDS = 1.0
CACHED_REQUESTS = 1000
LOCK_STRIPES = 64  # refreshes of one request share a lock; of different ones rarely wait on each other


class ApprovalBoard:
    """Posts and updates approval messages.

    Args:
        channel: ``APPROVAL_CHANNEL_ID``.
        pending_ttl_seconds: ``PENDING_REQUEST_TTL_SECONDS``, for the "expires" line.
        executor: where progress updates run (default: their own thread; inline on AWS Lambda).
    """

    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        channel: str,
        pending_ttl_seconds: int,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.channel = channel
        self.pending_ttl_seconds = pending_ttl_seconds
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._shown: LRUCache[str, float] = LRUCache(CACHED_REQUESTS)
        # The CLI lines of a request depend only on its stored review and its approver: build the
        # plan once, not on every progress line.
        self._cli: LRUCache[tuple[str, str | None], Script] = LRUCache(CACHED_REQUESTS)
        self._guard = threading.Lock()
        # Progress updates go through their own thread: a slow or rate-limited chat.update must
        # never hold up the IAM steps (or the lease they renew).
        self._progress_pool = executor or logs.ContextExecutor(max_workers=1, thread_name_prefix="progress")

    def expires_at(self, request: OnboardingRequest) -> datetime:
        """When a pending request expires: ``PENDING_REQUEST_TTL_SECONDS`` after filing."""
        return request.created_at + timedelta(seconds=self.pending_ttl_seconds)

    def render(self, request: OnboardingRequest, review: Review | None = None) -> tuple[str, list[Block]]:
        """``(text, blocks)`` of the approval message of ``request`` as the store holds it."""
        review = review or self.store.get_review(request.id)
        if review is None:  # not read yet (or lost): shown as unreadable, so it cannot be approved
            review = Review(expansion=PermissionExpansion(error="not read from IAM yet"))
        key = (request.id, request.decided_by)
        with self._guard:
            script = self._cli.get(key)
        if script is None:
            script = message.cli_script_for(request, review.expansion)
            if not review.expansion.error:
                with self._guard:
                    self._cli[key] = script
        progress = self._progress(request.id) if request.status is RequestStatus.PROVISIONING else None
        return message.approval_message(request, review, script, self.expires_at(request), progress)

    def _progress(self, request_id: str) -> tuple[int, int] | None:
        """``(steps done, steps in the plan)``, or None before a plan is stored."""
        saved = self.store.get_plan(request_id)
        if saved is None:
            return None
        done = sum(1 for e in self.store.journal(request_id).values() if e.state is StepState.DONE)
        return done, len(saved[0])

    def post(self, request: OnboardingRequest, review: Review) -> str | None:
        """Post the approval message of a newly filed request; its ts, or None when Slack refused.

        A click or a cancel that landed while it was being posted could not update a message
        whose ts it did not know yet; if what was posted is out of date by then, it is updated.
        """
        text, posted_blocks = self.render(request, review)
        ts = self.messenger.post(self.channel, text, posted_blocks)
        if ts is None:
            return None
        self.store.set_approval_message(request.id, self.channel, ts)
        current = self.store.get_request(request.id) or request
        now_text, now_blocks = self.render(current)
        if [b.to_dict() for b in now_blocks] != [b.to_dict() for b in posted_blocks]:
            self.messenger.update(self.channel, ts, now_text, now_blocks)
        return ts

    def refresh(self, request_id: str) -> None:
        """Re-render the approval message from the store and update it (in the caller's thread)."""
        with self._lock(request_id):
            request = self.store.get_request(request_id)
            if request is not None and request.approval_channel and request.approval_ts:
                text, blocks = self.render(request)
                self.messenger.update(request.approval_channel, request.approval_ts, text, blocks)

    def progressed(self, request_id: str) -> None:
        """A provisioning step finished: refresh the message at most once every
        :data:`PROGRESS_EVERY_SECONDS` per request, on the progress thread."""
        now = time.monotonic()
        with self._guard:
            if now - self._shown.get(request_id, 0.0) < PROGRESS_EVERY_SECONDS:
                return
            self._shown[request_id] = now
        self._progress_pool.submit(self._show_progress, request_id)

    def _show_progress(self, request_id: str) -> None:
        request = self.store.get_request(request_id)
        if request is not None and request.status is RequestStatus.PROVISIONING:
            self.refresh(request_id)

    def shutdown(self) -> None:
        """Stop the progress thread; progress lines not shown yet are dropped."""
        self._progress_pool.shutdown(wait=False, cancel_futures=True)

    def _lock(self, request_id: str) -> threading.Lock:
        """The lock of ``request_id``'s stripe: never evicted, always the same for one request."""
        return self._locks[hash(request_id) % LOCK_STRIPES]
