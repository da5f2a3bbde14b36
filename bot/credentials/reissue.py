"""Re-issuing one-time credentials: **Send a new link** (the recipient), **Rotate** and **Re-issue
credentials** (approvers, never the recipient).

**Why a new link mints new credentials.** The server never holds a plaintext secret or a link
key, so it cannot re-seal the old password and secret access key into a new link; nobody can. A
new link therefore needs new credentials: the old access key is deleted and a new one created,
and the console password is replaced by a new generated one that must be changed at first
sign-in (``UpdateLoginProfile``, ``PasswordResetRequired=True``). The old link is invalidated in
the same compare-and-set that grants the re-issue, so at most one of two racing clicks does it.
The same path serves the approvers' **Rotate credentials** (after a second reveal attempt:
possible interception) and **Re-issue credentials** (after expiry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.keys import KeyKeeper
from bot.credentials import messages
from bot.credentials.links import LinkOutcome, Links
from bot.credentials.ownership import LinkRecords
from bot.domain.changes import Changes
from bot.domain.models import CreatedCredentials
from bot.domain.records import SecretRow
from bot.domain.states import SecretState
from bot.slack.blocks import mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.storage.base import Store

log = logging.getLogger(__name__)

APPROVER_REISSUE_STATES = tuple(SecretState)


@dataclass
class Reissues:
    """New credentials in a new link, for the recipient or on an approver's click.

    Args:
        people: who may rotate or re-issue (approvers, resolved at click time).
        iam: the console sign-in URL; keys: replaces keys and resets passwords;
        records: checks a link's record against its user's tags in IAM before any write
        (:mod:`bot.credentials.ownership`).
    """

    store: Store
    links: Links
    iam: IamGateway
    keys: KeyKeeper
    messenger: Messenger
    people: People
    changes: Changes
    records: LinkRecords

    def resend(self, secret_id: str, actor: str) -> LinkOutcome:
        """**Send a new link** (recipient only, while the link is unrevealed and unexpired):
        new credentials, new link, old link and old credentials dead. See the module docstring
        for why the credentials must be new."""
        row = self.store.secret_row(secret_id)
        if row is None:
            return self._refuse("resend", secret_id, None, actor, "unknown link", "I know of no such credential link.")
        if actor != row.recipient:
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "not the recipient",
                f"Only {mention(row.recipient)} can ask for a new link for IAM user `{row.user_name}`.",
            )
        if row.state is SecretState.REVEALED:
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "already revealed",
                f"The credentials of `{row.user_name}` were already revealed, so I can't send a new link. "
                "If you did not reveal them, tell the approvers at once.",
            )
        if row.state is SecretState.SUPERSEDED or row.reissued_at is not None:
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "already replaced",
                f"This link of `{row.user_name}` was already replaced; use the newest message from me.",
            )
        if row.state is SecretState.EXPIRED or row.expires_at <= self.store.clock():
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "expired",
                f"The link of `{row.user_name}` has expired; ask an approver to re-issue the credentials.",
            )
        return self._reissue(row, actor, [SecretState.SEALED], by_recipient=True)

    def rotate(self, secret_id: str, actor: str, message: tuple[str, str] | None = None) -> LinkOutcome:
        """**Rotate** / **Re-issue credentials** (approvers only, never the recipient): new
        access key (old one deleted), new console password with reset required, new link.

        Args:
            message: ``(channel, ts)`` of the alert or expiry note clicked, updated on success.
        """
        row = self.store.secret_row(secret_id)
        if row is None:
            return self._refuse("rotate", secret_id, None, actor, "unknown link", "I know of no such credential link.")
        if actor == row.recipient:
            return self._refuse(
                "rotate",
                secret_id,
                row,
                actor,
                "recipient may not rotate",
                "The recipient of the credentials cannot rotate them; another approver must.",
            )
        if actor not in self.people.approvers():
            return self._refuse(
                "rotate", secret_id, row, actor, "not an approver", "Only approvers can rotate or re-issue credentials."
            )
        if row.reissued_at is not None:
            return self._refuse(
                "rotate",
                secret_id,
                row,
                actor,
                "already re-issued",
                f"The credentials of `{row.user_name}` were already re-issued by {mention(row.reissued_by)}.",
            )
        outcome = self._reissue(row, actor, APPROVER_REISSUE_STATES, by_recipient=False)
        if outcome.ok and message is not None:
            text, done_blocks = messages.reissued_by(row.user_name, actor, row.request_id)
            self.messenger.update(message[0], message[1], text, done_blocks)
        return outcome

    def _refuse(
        self, action: str, secret_id: str, row: SecretRow | None, actor: str, reason: str, message: str
    ) -> LinkOutcome:
        # The id came in a button value, which the clicker can forge: audit a short, escaped cut.
        self.store.audit(
            f"refused_{action}",
            request_id=row.request_id if row else None,
            actor=actor,
            detail={"secret_id": untrusted_id(secret_id), "reason": reason},
        )
        return LinkOutcome(False, message)

    def _reissue(
        self, row: SecretRow, actor: str, states: tuple[str, ...] | list[str], *, by_recipient: bool
    ) -> LinkOutcome:
        action = "resend" if by_recipient else "rotate"
        words = "send a new link" if by_recipient else "rotate"
        try:  # the record's seal and IAM's tags, before anything is claimed or written
            mismatch = self.records.refusal(row, words, actor)
        except IamError as error:
            return LinkOutcome(False, f"IAM could not be read for `{row.user_name}` ({error.code}); try again.")
        if mismatch is not None:
            return self._refuse(
                action,
                row.id,
                row,
                actor,
                "record does not match IAM",
                f"I can't make new credentials from this link: {mismatch}. Nothing was changed, and the "
                "approvers have been told.",
            )
        claimed = self.store.claim_reissue(row.id, actor, states)
        if claimed is None:
            current = self.store.secret_row(row.id) or row
            if current.reissued_at is not None:
                return self._refuse(
                    "reissue",
                    row.id,
                    row,
                    actor,
                    "already re-issued",
                    f"The link of `{row.user_name}` was already replaced.",
                )
            return self._refuse(
                "reissue",
                row.id,
                row,
                actor,
                "state changed",
                f"The link of `{row.user_name}` was just used or expired.",
            )
        if self.records.refusal(claimed, words, actor, tags=False) is not None:
            # The record as claimed (read again) is not the one checked: a store write in between.
            # Its seal covers what the claim acts on (no AWS call); audited and alerted.
            self.store.release_reissue(row.id, actor, "record changed after the check")
            return self._refuse(
                action,
                row.id,
                row,
                actor,
                "record changed after the check",
                "I can't make new credentials from this link: its record changed while I checked it. Nothing "
                "was changed in IAM.",
            )
        if by_recipient:
            self.links.update_notice(claimed, messages.superseded_words())
        try:
            credentials = self._new_credentials(claimed)
        except IamError as error:
            self.store.release_reissue(row.id, actor, str(error))
            log.warning("re-issue failed: %s", error.code, extra={"request_id": row.request_id})
            return LinkOutcome(
                False,
                f"IAM refused to make new credentials for `{row.user_name}`: {error}. Nothing new was sent"
                + ("; ask an approver to re-issue them." if by_recipient else "; you can try again."),
            )
        self.store.audit(
            "credentials_rotated",
            request_id=row.request_id,
            actor=actor,
            detail={
                "secret_id": row.id,
                "user_name": row.user_name,
                "by": "recipient" if by_recipient else "approver",
                "old_access_key_id": row.access_key_id,
                "new_access_key_id": credentials.access_key_id,
                "password_reset": credentials.password is not None,
            },
        )
        issued = self.links.issue(row.request_id, row.recipient, credentials, replaces=row.id)
        self.links.deliver(row.request_id, row.recipient, row.user_name, credentials.console_url, issued)
        self.changes.request_updated(row.request_id)
        if by_recipient:
            return LinkOutcome(
                True,
                f"New credentials for `{row.user_name}` are in a new one-time link just below. "
                "The old link and the old credentials no longer work.",
            )
        request = self.store.get_request(row.request_id)
        if request is not None:
            self.messenger.dm(
                request.requester,
                f"{mention(actor)} re-issued the credentials of IAM user `{row.user_name}` "
                f"(request `{row.request_id}`); {mention(row.recipient)} got a new one-time link.",
            )
        return LinkOutcome(
            True,
            f"Re-issued `{row.user_name}`: new access key, new password, new link sent to {mention(row.recipient)}.",
        )

    def _new_credentials(self, row: SecretRow) -> CreatedCredentials:
        # Password first: if the access key step then fails, the new password is known to
        # nobody (harmless) and a retry simply sets another one.
        password = self.keys.reset_login_password(row.user_name) if row.console else None
        key_id, secret_key = (None, None)
        if row.access_key_id:
            key_id, secret_key = self.keys.replace_access_key(row.user_name, row.access_key_id)
        return CreatedCredentials(
            user_name=row.user_name,
            console_url=self.iam.console_url() if row.console else None,
            password=password,
            access_key_id=key_id,
            secret_access_key=secret_key,
        )
