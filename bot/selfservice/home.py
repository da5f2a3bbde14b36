"""The App Home tab: published when a person opens it, and again whenever a request of theirs changes.

Who sees what (the same rules as :mod:`bot.selfservice.desk`): everyone sees their own requests, the IAM
users others requested for them (their own user only) and their unopened one-time links with
**Send a new link**; approvers also see the pending queue with Approve/Deny. The buttons carry
the channel message's action_ids and values, so a click from the Home goes through exactly the
same checks in :mod:`handlers.actions` as a click in the approvers' channel.

Refreshes run on one background thread (``views.publish`` must not slow the state change that
caused it) and are coalesced per person: a burst of changes publishes each Home once more.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_sdk.models.views import View

from bot.domain.models import OnboardingRequest
from bot.domain.states import RequestStatus
from bot.lifecycle.keysdesk import KeyDesk
from bot.selfservice import messages as status_blocks
from bot.selfservice.desk import StatusDesk
from bot.selfservice.messages import HOME_OWN_MAX, HOME_QUEUE_MAX, HOME_RECEIVED_MAX, HOME_SECRETS_MAX, HomeContent
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.storage.base import Store

log = logging.getLogger(__name__)

HOME_LIFECYCLE_MAX = 20  # blocks of the viewer's keys (and, for approvers, keys due and owners gone)

# States a request can reach only from pending (or pending itself): entering one of them
# changes the approvers' queue. approved → provisioning → provisioned/failed does not.
QUEUE_STATES = frozenset(
    {
        RequestStatus.PENDING,
        RequestStatus.APPROVED,
        RequestStatus.DENIED,
        RequestStatus.CANCELLED,
        RequestStatus.EXPIRED,
    }
)


class HomeTab:
    """Builds and publishes each person's App Home.

    Args:
        desk: the status rules (queue, permalinks) shared with DM answers.
        keys: the viewer's users and keys read from IAM (and the approvers' lifecycle findings).
        people: the approvers (whose Homes show the queue).
        executor: where refreshes run (default: one background thread).
    """

    def __init__(
        self,
        store: Store,
        desk: StatusDesk,
        keys: KeyDesk,
        people: People,
        messenger: Messenger,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.desk = desk
        self.keys = keys
        self.people = people
        self.messenger = messenger
        # One thread, so refreshes of one Home publish in order (inline on AWS Lambda).
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="home")
        self._queued: set[str] = set()
        self._lock = threading.Lock()

    def content(self, user_id: str) -> HomeContent:
        """What ``user_id`` may see, read now (approvers resolved now, permalinks cached)."""
        own = self.store.requests_where(requester=user_id, limit=HOME_OWN_MAX + 1)
        received = [
            r for r in self.store.requests_for_recipient(user_id, limit=HOME_RECEIVED_MAX + 1) if r.requester != user_id
        ]
        queue, queue_more = self.desk.queue(user_id, HOME_QUEUE_MAX)
        return HomeContent(
            viewer=user_id,
            own=own[:HOME_OWN_MAX],
            own_more=max(0, len(own) - HOME_OWN_MAX),
            received=received[:HOME_RECEIVED_MAX],
            received_more=max(0, len(received) - HOME_RECEIVED_MAX),
            secrets=self.store.sealed_secrets_for_recipient(user_id, limit=5 * HOME_SECRETS_MAX),
            queue=queue,
            queue_more=queue_more,
            now=self.store.clock(),
            lifecycle=self.keys.home_blocks(user_id, approver=queue is not None, limit=HOME_LIFECYCLE_MAX),
        )

    def view(self, user_id: str) -> View:
        """The Home view for ``user_id``."""
        return status_blocks.home_view(self.content(user_id))

    def publish(self, user_id: str) -> bool:
        """Build and publish ``user_id``'s Home now (in the caller's thread); False if Slack refused."""
        return self.messenger.publish_home(user_id, self.view(user_id))

    def concerned(self, request: OnboardingRequest) -> set[str]:
        """Whose Home shows ``request`` now: requester, recipients, and approvers if the queue changed."""
        people = {request.requester, *request.form.recipients}
        if request.status in QUEUE_STATES:
            people |= self.people.approvers()
        return people

    def refresh_for(self, request: OnboardingRequest) -> None:
        """Queue a Home refresh for everyone ``request`` concerns.

        Returns at once: even resolving the approvers (a user group lookup) happens on the
        background thread, never in the thread that moved the request.
        """
        self._executor.submit(self._refresh_concerned, request)

    def refresh_for_id(self, request_id: str) -> None:
        """:meth:`refresh_for` the request with this id (read on the background thread)."""
        self._executor.submit(self._refresh_concerned, request_id)

    def _refresh_concerned(self, request: OnboardingRequest | str) -> None:
        try:
            if isinstance(request, str):
                found = self.store.get_request(request)
                if found is None:
                    return
                request = found
            people = sorted(self.concerned(request))
        except Exception:
            log.exception("App Home refresh: could not tell whose Home shows the request")
            return
        for user_id in people:
            self.refresh(user_id)

    def refresh(self, user_id: str) -> None:
        """Publish ``user_id``'s Home soon, on the background thread; no-op if already queued."""
        with self._lock:
            if user_id in self._queued:
                return
            self._queued.add(user_id)
        self._executor.submit(self._publish_queued, user_id)

    def _publish_queued(self, user_id: str) -> None:
        with self._lock:
            # Taken off the queue before reading, so a change during the publish queues another.
            self._queued.discard(user_id)
        try:
            self.publish(user_id)
        except Exception:
            log.exception("App Home refresh failed", extra={"slack_user": user_id})

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking refreshes; queued ones are dropped."""
        self._executor.shutdown(wait=wait, cancel_futures=True)
