"""The life of a one-time credential link: issue, deliver, reveal, alert, re-issue, expire.

Threat model, in short: a stolen database, a log line, a Slack message or a link preview must
not leak a credential. So the server keeps only AES-256-GCM ciphertext (:mod:`bot.credentials.vault`); the
key travels only in the link's fragment, inside the recipient's ephemeral message; a GET shows
a static page; only a deliberate POST hands the ciphertext out, once, deleting it in the same
transaction (:meth:`bot.storage.sqlite_secrets.SecretStore.claim_secret`).

**Why "Send a new link" mints new credentials.** The server never holds a plaintext secret
or a link key, so it cannot re-seal the old password and secret access key into a new link;
nobody can. A new link therefore needs new credentials: the old access key is deleted and a
new one created, and the console password is replaced by a new generated one that must be
changed at first sign-in (``UpdateLoginProfile``, ``PasswordResetRequired=True``). The old
link is invalidated in the same compare-and-set that grants the re-issue, so at most one of
two racing clicks does it. The same path serves the approvers' **Rotate credentials** (after a
second reveal attempt: possible interception) and **Re-issue credentials** (after expiry).

Slack and IAM work triggered by a reveal attempt runs on the background executor, after the
HTTP answer, so a 410 stays fast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.aws.iam import IamError, IamGateway
from bot.config import Settings
from bot.credentials import messages as link_blocks
from bot.credentials.vault import credentials_plaintext, seal
from bot.domain.models import CreatedCredentials
from bot.slack.blocks import mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.storage.sqlite import Store
from bot.storage.sqlite_secrets import EXPIRED, REVEALED, SEALED, SUPERSEDED, SealedSecretRow

log = logging.getLogger(__name__)

# A worker that claimed expiry work and died is replaced after this many seconds.
EXPIRY_LEASE_SECONDS = 300.0
APPROVER_REISSUE_STATES = (SEALED, REVEALED, EXPIRED, SUPERSEDED)


@dataclass(frozen=True)
class IssuedLink:
    """A sealed secret's link (``PUBLIC_BASE_URL/credentials/<id>#<key>``: never log it)."""

    secret_id: str
    expires_at: datetime
    link: str = field(repr=False)


@dataclass(frozen=True)
class LinkOutcome:
    """What a click on a link button led to: ``ok`` and a sentence for the clicker."""

    ok: bool
    message: str


class Links:
    """Issues, delivers, hands out, re-issues and expires one-time credential links.

    Args:
        settings: ``PUBLIC_BASE_URL``, ``CREDENTIAL_LINK_TTL_SECONDS``, ``APPROVAL_CHANNEL_ID``.
        store: the database; its ``clock`` is "now" for expiry (tests pass a controllable one).
        iam: the IAM gateway (new access keys, password resets, deactivation).
        messenger: Slack posting.
        approvers: returns who may rotate or re-issue, resolved at click time.
        executor: runs the Slack/IAM work that follows a reveal attempt.
        on_change: called with a request id after one of its links was revealed, replaced or
            expired (the App Home refreshes on it); must be quick.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        iam: IamGateway,
        messenger: Messenger,
        approvers: Callable[[], frozenset[str]],
        executor: Executor,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.on_change = on_change or (lambda _request_id: None)
        self.settings = settings
        self.store = store
        self.iam = iam
        self.messenger = messenger
        self.approvers = approvers
        self.executor = executor

    # -- issue and deliver ----------------------------------------------------------------------

    def issue(
        self, request_id: str, recipient: str, credentials: CreatedCredentials, replaces: str | None = None
    ) -> IssuedLink:
        """Seal ``credentials`` under a fresh key and store the ciphertext; returns the link.

        The link lives ``CREDENTIAL_LINK_TTL_SECONDS`` from now.
        """
        sealed = seal(credentials_plaintext(credentials))
        expires_at = self.store.clock() + timedelta(seconds=self.settings.credential_link_ttl_seconds)
        self.store.put_secret(
            sealed.secret_id,
            request_id=request_id,
            recipient=recipient,
            user_name=credentials.user_name,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            expires_at=expires_at,
            access_key_id=credentials.access_key_id,
            console=credentials.password is not None,
            replaces=replaces,
        )
        return IssuedLink(sealed.secret_id, expires_at, self.settings.credential_link(sealed.secret_id, sealed.key))

    def deliver(
        self, request_id: str, recipient: str, user_name: str, console_url: str | None, issued: IssuedLink
    ) -> bool:
        """Tell the recipient in the bot's DM: a persistent notice (no link) with **Send a new
        link**, then the ephemeral message holding the link. Returns whether the link arrived.

        Ephemeral messages vanish when Slack reloads, which is why the notice exists.
        """
        text, notice_blocks = link_blocks.ready_notice(user_name, request_id, issued.secret_id, issued.expires_at)
        channel = self.messenger.dm_channel(recipient)
        if channel is not None:
            ts = self.messenger.post(channel, text, notice_blocks)
            if ts is not None:
                self.store.set_secret_notice(issued.secret_id, channel, ts)
        text, message_blocks = link_blocks.link_message(user_name, issued.link, console_url, issued.expires_at)
        sent = self.messenger.ephemeral_dm(recipient, text, message_blocks)
        self.store.audit(
            "link_delivered" if sent else "link_delivery_failed",
            request_id=request_id,
            detail={"secret_id": issued.secret_id, "user_name": user_name, "recipient": recipient},
        )
        return sent

    def _update_notice(self, row: SealedSecretRow, what: str) -> None:
        if row.notice_channel and row.notice_ts:
            text, notice_blocks = link_blocks.notice_after(row.user_name, row.request_id, what)
            self.messenger.update(row.notice_channel, row.notice_ts, text, notice_blocks)

    # -- reveal -----------------------------------------------------------------------------------

    def reveal(self, secret_id: str) -> tuple[bytes, bytes] | None:
        """Hand out ``(nonce, ciphertext)`` once, or None (the caller answers 410).

        Fast: the database step only. Afterwards, on :attr:`executor`: a successful reveal
        updates the recipient's notice; a refused attempt on an already revealed secret raises
        the interception alert (once per secret).
        """
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
            self._update_notice(row, link_blocks.revealed_words(row.revealed_at))
            self.on_change(row.request_id)

    def _after_refused(self, secret_id: str) -> None:
        row = self.store.secret_row(secret_id)
        if row is None or row.state != REVEALED:
            return  # unknown, expired or replaced: a stale link, not a sign of interception
        won = self.store.mark_reuse(secret_id)
        if won is not None:
            self.alert_reuse(won)

    def alert_reuse(self, row: SealedSecretRow) -> None:
        """Tell the recipient (DM) and the approvers' channel (with **Rotate credentials**)."""
        log.warning("second reveal attempt on a revealed link", extra={"request_id": row.request_id})
        self.messenger.dm(row.recipient, link_blocks.reuse_alert_for_recipient(row.user_name, row.request_id))
        text, alert_blocks = link_blocks.reuse_alert_for_approvers(
            row.id, row.user_name, row.recipient, row.request_id, row.revealed_at
        )
        posted = self.messenger.post(self.settings.approval_channel_id, text, alert_blocks)
        self.store.audit(
            "link_reuse_alerted" if posted else "link_reuse_alert_failed",
            request_id=row.request_id,
            detail={"secret_id": row.id, "user_name": row.user_name},
        )

    # -- re-issue ---------------------------------------------------------------------------------

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
        if row.state == REVEALED:
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "already revealed",
                f"The credentials of `{row.user_name}` were already revealed, so I can't send a new link. "
                "If you did not reveal them, tell the approvers at once.",
            )
        if row.state == SUPERSEDED or row.reissued_at is not None:
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "already replaced",
                f"This link of `{row.user_name}` was already replaced; use the newest message from me.",
            )
        if row.state == EXPIRED or row.expires_at <= self.store.clock():
            return self._refuse(
                "resend",
                secret_id,
                row,
                actor,
                "expired",
                f"The link of `{row.user_name}` has expired; ask an approver to re-issue the credentials.",
            )
        return self._reissue(row, actor, [SEALED], by_recipient=True)

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
        if actor not in self.approvers():
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
            text, done_blocks = link_blocks.reissued_by(row.user_name, actor, row.request_id)
            self.messenger.update(message[0], message[1], text, done_blocks)
        return outcome

    def _refuse(
        self, action: str, secret_id: str, row: SealedSecretRow | None, actor: str, reason: str, message: str
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
        self, row: SealedSecretRow, actor: str, states: tuple[str, ...] | list[str], *, by_recipient: bool
    ) -> LinkOutcome:
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
        if by_recipient:
            self._update_notice(claimed, link_blocks.superseded_words())
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
        issued = self.issue(row.request_id, row.recipient, credentials, replaces=row.id)
        self.deliver(row.request_id, row.recipient, row.user_name, credentials.console_url, issued)
        self.on_change(row.request_id)
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

    def _new_credentials(self, row: SealedSecretRow) -> CreatedCredentials:
        # Password first: if the access key step then fails, the new password is known to
        # nobody (harmless) and a retry simply sets another one.
        password = self.iam.reset_login_password(row.user_name) if row.console else None
        key_id, secret_key = (None, None)
        if row.access_key_id:
            key_id, secret_key = self.iam.replace_access_key(row.user_name, row.access_key_id)
        return CreatedCredentials(
            user_name=row.user_name,
            console_url=self.iam.console_url() if row.console else None,
            password=password,
            access_key_id=key_id,
            secret_access_key=secret_key,
        )

    # -- expiry -----------------------------------------------------------------------------------

    def expire_due(self, lease_seconds: float = EXPIRY_LEASE_SECONDS) -> list[str]:
        """Expire every unopened link past its expiry; returns the ids this call handled.

        Per link: state sealed → expired (ciphertext deleted, compare-and-set: one worker wins),
        then the access key is deactivated (``UpdateAccessKey Status=Inactive``), the console
        password replaced by one nobody knows with ``PasswordResetRequired=True``, and the
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

    def _expire(self, row: SealedSecretRow) -> bool:
        deactivated = self.iam.deactivate_access_key(row.user_name, row.access_key_id) if row.access_key_id else None
        locked = self.iam.lock_login_profile(row.user_name) if row.console else None
        if not self.store.finish_expiry(
            row.id, {"user_name": row.user_name, "access_key_deactivated": deactivated, "login_profile_locked": locked}
        ):
            return False
        what = {"access_key": row.access_key_id is not None, "console": row.console}
        self._update_notice(row, link_blocks.expired_words(**what))
        self.on_change(row.request_id)
        self.messenger.dm(
            row.recipient,
            link_blocks.expiry_notice(row.user_name, row.recipient, row.request_id, for_requester=False, **what),
        )
        request = self.store.get_request(row.request_id)
        if request is not None and request.requester != row.recipient:
            self.messenger.dm(
                request.requester,
                link_blocks.expiry_notice(row.user_name, row.recipient, row.request_id, for_requester=True, **what),
            )
        text, note_blocks = link_blocks.expiry_for_approvers(
            row.id, row.user_name, row.recipient, row.request_id, **what
        )
        self.messenger.post(self.settings.approval_channel_id, text, note_blocks)
        return True
