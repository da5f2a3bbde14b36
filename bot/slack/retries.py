"""Events API retries: Slack repeats an event it believes was missed (``X-Slack-Retry-Num`` 1 to 3,
within about an hour) with the same ``event_id``; each is answered once."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.storage.base import Store

log = logging.getLogger(__name__)

EVENT_MEMORY = timedelta(days=1)  # Slack retries an event at most 3 times, within about an hour


class EventLedger:
    """Remembers Events API ``event_id`` values in the store (shared by every process)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def first_delivery(self, event_id: str | None, retry_num: int | None = None) -> bool:
        """True the first time an Events API ``event_id`` is seen; False for a repeat.

        The id is recorded before the answer is sent, so a retry that races the first delivery is
        dropped too: a reply is sent at most once. An event without an id cannot be matched and
        is answered. Ids older than a day are pruned.
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
