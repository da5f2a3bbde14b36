"""Revealing a one-time link: the ciphertext handed out once, and a second attempt raised as an
alert (possible interception) to the recipient and the approvers.

Slack and IAM work triggered by a reveal attempt runs on the background executor, after the HTTP
answer, so a 410 stays fast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from bot.credentials import messages
from bot.credentials.links import Links
from bot.domain.changes import Changes
from bot.domain.ids import link_digest
from bot.domain.records import SecretRow
from bot.domain.states import SecretState
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class Reveals:
    """Hands out sealed secrets once and watches for a second attempt.

    Args:
        approval_channel: where the interception alert goes (``APPROVAL_CHANNEL_ID``).
        executor: runs the Slack work that follows a reveal attempt.
    """

    store: Store
    links: Links
    messenger: Messenger
    changes: Changes
    approval_channel: str
    executor: Executor

    def reveal(self, link_id: str) -> tuple[bytes, bytes] | None:
        """Hand out ``(nonce, ciphertext)`` once, or None (the caller answers 410).

        ``link_id`` is the ``<id>`` of ``/credentials/<id>``; the store knows the secret only by
        its digest (:func:`bot.domain.ids.link_digest`). Fast: the database step only.
        Afterwards, on :attr:`executor`: a successful reveal
        updates the recipient's notice and tells :attr:`changes` (a key rotation waiting for this
        link finishes there); a refused attempt on an already revealed secret raises
        the interception alert (once per secret).
        """
        secret_id = link_digest(link_id)
        claimed = self.store.claim_secret(secret_id)
        self.executor.submit(self._logged, self._after_reveal if claimed else self._after_refused, secret_id)
        return claimed

    @staticmethod
    def _logged(work: Callable[[str], None], secret_id: str) -> None:
        try:
            work(secret_id)
        except Exception:
            log.exception("work after a reveal attempt failed")

    def _after_reveal(self, secret_id: str) -> None:
        row = self.store.secret_row(secret_id)
        if row is not None and row.revealed_at is not None:
            self.links.update_notice(row, messages.revealed_words(row.revealed_at))
            self.changes.link_revealed(row)

    def _after_refused(self, secret_id: str) -> None:
        row = self.store.secret_row(secret_id)
        if row is None or row.state is not SecretState.REVEALED:
            return  # unknown, expired or replaced: a stale link, not a sign of interception
        won = self.store.mark_reuse(secret_id)
        if won is not None:
            self.alert_reuse(won)

    def alert_reuse(self, row: SecretRow) -> None:
        """Tell the recipient (DM) and the approvers' channel (with **Rotate credentials**)."""
        log.warning("second reveal attempt on a revealed link", extra={"request_id": row.request_id})
        self.messenger.dm(row.recipient, messages.reuse_alert_for_recipient(row.user_name, row.request_id))
        text, alert_blocks = messages.reuse_alert_for_approvers(
            row.id, row.user_name, row.recipient, row.request_id, row.revealed_at
        )
        posted = self.messenger.post(self.approval_channel, text, alert_blocks)
        self.store.audit(
            "link_reuse_alerted" if posted else "link_reuse_alert_failed",
            request_id=row.request_id,
            detail={"secret_id": row.id, "user_name": row.user_name},
        )
