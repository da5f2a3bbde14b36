"""The periodic jobs of one serving process, in one scheduler (APScheduler's background scheduler).

Each job runs alone (a run that overlaps the previous one is skipped, missed runs coalesce into
one) and its exceptions are logged, never raised: the next run tries again. Every job is safe to
run in several processes at once, because each effect is a compare-and-set in the store. Where
there is no long-lived process (AWS Lambda) the same jobs run from a scheduled event through
:meth:`PeriodicJobs.run_all`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """``work`` every ``interval_seconds``; ``at_start``: also once as soon as the scheduler starts."""

    name: str
    interval_seconds: float
    work: Callable[[], object]
    at_start: bool = False


class PeriodicJobs:
    """The jobs of this process; nothing runs until :meth:`start`."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._scheduler: BackgroundScheduler | None = None

    def run(self, job: Job) -> None:
        """Run one job now, in the caller's thread; an exception is logged, not raised."""
        try:
            job.work()
        except Exception:
            log.exception("periodic job %s failed; its next run tries again", job.name)

    def run_all(self) -> None:
        """Run every job once now, in order (a scheduled event's invocation)."""
        for job in self.jobs:
            self.run(job)

    def start(self) -> None:
        """Start the scheduler thread (idempotent)."""
        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(daemon=True, timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        for job in self.jobs:
            # Left out, next_run_time is one interval from now; None would add the job paused.
            first = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
            scheduler.add_job(
                self.run, "interval", args=[job], id=job.name, name=job.name, seconds=job.interval_seconds, **first
            )
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        """Stop the scheduler without waiting for running jobs."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
