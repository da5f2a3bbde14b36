"""Who hears that a request changed: the views that show it (the approvers' message, the App Home),
and the lifecycle stage when a rotated key's link is revealed.

Stages report changes through this protocol, and the composition root (:mod:`bot.app`) decides
who listens, so a stage lower in the flow (provisioning, credentials) never imports the one that
renders the approvers' message. ``request_moved`` updates the approvers' message in the caller's
thread (one ``chat.update``, so the message is current when the action that moved the request
answers); everything else is handed to the listeners' own threads and returns at once.
"""

from __future__ import annotations

from typing import Protocol

from bot.domain.models import OnboardingRequest
from bot.domain.records import SecretRow


class Changes(Protocol):
    """What the stages tell the views."""

    def request_moved(self, request: OnboardingRequest) -> None:
        """A request changed state (or was announced): its approval message and Homes refresh."""
        ...

    def step_done(self, request_id: str) -> None:
        """A provisioning step finished: the approval message may show progress (throttled)."""
        ...

    def request_updated(self, request_id: str) -> None:
        """Something people see of the request changed without a move (it was announced, one of
        its one-time links was revealed, replaced or expired): Homes refresh."""
        ...

    def link_revealed(self, row: SecretRow) -> None:
        """A one-time link was revealed: the Homes of its request refresh, and a key rotation
        waiting for this link switches the old key off."""
        ...
