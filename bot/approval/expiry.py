"""Pending requests expire: one reminder to the approvers at half-life, expiry at the TTL.

Runs inside every serving process as a daemon thread (no cron). Several gunicorn workers each
run one; that is safe because every effect is a compare-and-set in the store: the reminder
marker (:meth:`bot.storage.sqlite.Store.mark_reminded`) and pending → expired
(:meth:`bot.approval.workflow.Workflow.expire`) succeed for exactly one worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.approval.workflow import Workflow
from bot.domain.models import RequestStatus

log = logging.getLogger(__name__)

SWEEP_BATCH = 10_000  # pending requests looked at per sweep; far above any real backlog


@dataclass
class SweepReport:
    """Request ids this sweep reminded the approvers of, and expired."""

    reminded: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


class ExpirySweeper:
    """Reminds and expires pending requests by age (``PENDING_REQUEST_TTL_SECONDS``).

    Args:
        workflow: moves requests (``expire``) and sends reminders (``remind``).
        ttl_seconds: age at which a pending request expires; the reminder goes at half of it.
        interval_seconds: pause between sweeps of the background thread.
        clock: "now" (aware UTC); defaults to the store's clock, tests pass a controllable one.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        ttl_seconds: float,
        interval_seconds: float = 60.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.workflow = workflow
        self.ttl_seconds = ttl_seconds
        self.interval_seconds = interval_seconds
        self.clock = clock or workflow.store.clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> SweepReport:
        """One pass over the pending requests: expire those at or past the TTL, remind (once)
        those at or past half of it. Safe to run concurrently in several processes."""
        report = SweepReport()
        now = self.clock()
        store = self.workflow.store
        for request in store.requests_where(statuses=[RequestStatus.PENDING], limit=SWEEP_BATCH):
            age = (now - request.created_at).total_seconds()
            if age >= self.ttl_seconds:
                if self.workflow.expire(request.id) is not None:
                    report.expired.append(request.id)
            elif age >= self.ttl_seconds / 2:
                review = store.get_review(request.id)
                if (review is None or review.reminded_at is None) and self.workflow.remind(request):
                    report.reminded.append(request.id)
        return report

    def start(self) -> None:
        """Sweep now and then every ``interval_seconds`` in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="expiry-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.sweep()
                if report.reminded or report.expired:
                    log.info("expiry sweep: %d reminded, %d expired", len(report.reminded), len(report.expired))
            except Exception:
                log.exception("expiry sweep failed; trying again next interval")
            self._stop.wait(self.interval_seconds)
