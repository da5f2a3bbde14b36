"""Expiring unopened one-time links: past ``CREDENTIAL_LINK_TTL_SECONDS`` the ciphertext goes, the
access key is switched off and the console password replaced by one nobody knows, and the
recipient, the requester and the approvers (with **Re-issue credentials**) are told.

Run as a periodic job in every serving process (:mod:`bot.ops.jobs`). Each link's expiry is a
compare-and-set on the secret's state, so several workers never expire one link twice; a worker
that dies mid-way is replaced after the lease. Time comes from the store's clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.aws.keys import KeyKeeper
from bot.credentials import messages
from bot.credentials.links import Links
from bot.credentials.ownership import LinkRecords
from bot.domain.changes import Changes
from bot.domain.records import SecretRow
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)

# A worker that claimed expiry work and died is replaced after this many seconds.
EXPIRY_LEASE_SECONDS = 300.0


@dataclass
class LinkExpiry:
    """Expires due links (:meth:`expire_due`).

    Args:
        approval_channel: where the approvers' note with **Re-issue credentials** goes;
        records: checks each link's record carries the bot's seal first.
    """

    store: Store
    links: Links
    keys: KeyKeeper
    messenger: Messenger
    changes: Changes
    approval_channel: str
    records: LinkRecords

    def expire_due(self, lease_seconds: float = EXPIRY_LEASE_SECONDS) -> list[str]:
        """Expire every unopened link past its expiry; returns the ids this call handled.

        Per link: state sealed → expired (ciphertext deleted, compare-and-set: one worker wins),
        then, if the link's record carries the bot's seal
        (:meth:`bot.credentials.ownership.LinkRecords.refusal` without the tags: switching off is
        the safe direction, even for a user whose owner tag changed by hand; else the approvers are
        alerted and nothing is switched off), the access key is deactivated (``UpdateAccessKey Status=Inactive``), the
        console password replaced by one nobody knows with ``PasswordResetRequired=True``, and the
        recipient, the requester and the approvers (with **Re-issue credentials**) are told.
        If IAM fails, the work is retried by a later sweep after ``lease_seconds``.
        """
        done = []
        for secret_id in self.store.due_expiries(lease_seconds):
            row = self.store.claim_expiry(secret_id, lease_seconds)
            if row is None:
                continue
            try:
                if self._expire(row):
                    done.append(secret_id)
            except Exception:
                log.exception("expiring a one-time link failed; a later sweep retries")
        return done

    def _expire(self, row: SecretRow) -> bool:
        action = "switch off the credentials of an expired link"
        if (mismatch := self.records.refusal(row, action, tags=False)) is not None:
            # A record the bot did not seal: nothing on the user it names is switched off.
            self.store.finish_expiry(row.id, {"user_name": row.user_name, "refused": mismatch})
            return False
        deactivated = self.keys.deactivate_access_key(row.user_name, row.access_key_id) if row.access_key_id else None
        locked = self.keys.lock_login_profile(row.user_name) if row.console else None
        if not self.store.finish_expiry(
            row.id, {"user_name": row.user_name, "access_key_deactivated": deactivated, "login_profile_locked": locked}
        ):
            return False
        what = {"access_key": row.access_key_id is not None, "console": row.console}
        self.links.update_notice(row, messages.expired_words(**what))
        self.changes.request_updated(row.request_id)
        self.messenger.dm(
            row.recipient,
            messages.expiry_notice(row.user_name, row.recipient, row.request_id, for_requester=False, **what),
        )
        request = self.store.get_request(row.request_id)
        if request is not None and request.requester != row.recipient:
            self.messenger.dm(
                request.requester,
                messages.expiry_notice(row.user_name, row.recipient, row.request_id, for_requester=True, **what),
            )
        text, note_blocks = messages.expiry_for_approvers(row.id, row.user_name, row.recipient, row.request_id, **what)
        self.messenger.post(self.approval_channel, text, note_blocks)
        return True
