"""The sweeper that expires unopened one-time links, in a daemon thread of the serving process.

Every ``interval_seconds`` it calls :meth:`bot.credentials.links.Links.expire_due`. Each link's expiry is
a compare-and-set on the secret's state, so several gunicorn workers (each with a sweeper)
never expire one link twice; a worker that dies mid-way is replaced after the lease. Time
comes from the store's clock, so tests drive it with a controllable clock and
:meth:`LinkExpirySweeper.run_once` instead of waiting.
"""

from __future__ import annotations

import logging
import threading

from bot.credentials.links import EXPIRY_LEASE_SECONDS, Links

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 30.0


class LinkExpirySweeper:
    """Runs :meth:`Links.expire_due` now and then.

    Args:
        links: the link service.
        interval_seconds: pause between sweeps; a link expires at most this late (seconds).
        lease_seconds: after this long, unfinished expiry work of a dead worker is retaken.
    """

    def __init__(
        self,
        links: Links,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        lease_seconds: float = EXPIRY_LEASE_SECONDS,
    ) -> None:
        self.links = links
        self.interval_seconds = interval_seconds
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        """One sweep; returns the ids of the links expired by this call. Never raises."""
        try:
            return self.links.expire_due(self.lease_seconds)
        except Exception:
            log.exception("link expiry sweep failed; the next sweep retries")
            return []

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.run_once()

    def start(self) -> LinkExpirySweeper:
        """Start the daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="link-expiry", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
