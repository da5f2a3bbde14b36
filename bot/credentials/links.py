"""Issuing and delivering one-time credential links.

Threat model, in short: a stolen database, a log line, a Slack message or a link preview must not
leak a credential. So the server keeps only AES-256-GCM ciphertext (:mod:`bot.credentials.vault`);
the key travels only in the link's fragment, inside the recipient's ephemeral message; a GET
shows a static page; only a deliberate POST hands the ciphertext out, once, deleting it in the
same transaction (:mod:`bot.credentials.reveal`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import Settings
from bot.credentials import messages
from bot.credentials.vault import credentials_plaintext, seal
from bot.domain.ids import link_digest
from bot.domain.models import CreatedCredentials
from bot.domain.records import NewSecret, SecretRow
from bot.domain.seal import RecordSeal
from bot.slack.messenger import Messenger
from bot.storage.base import Store


@dataclass(frozen=True)
class IssuedLink:
    """A sealed secret's link (``PUBLIC_BASE_URL/credentials/<id>#<key>``: never log it) and the
    ``secret_id`` the store, the audit log and Slack's buttons know it by: the digest of the link
    id (:func:`bot.domain.ids.link_digest`), which cannot reveal or burn it."""

    secret_id: str
    expires_at: datetime
    link: str = field(repr=False)


@dataclass(frozen=True)
class LinkOutcome:
    """What a click on a link button led to: ``ok`` and a sentence for the clicker."""

    ok: bool
    message: str


@dataclass
class Links:
    """Seals credentials into one-time links and delivers them to their recipients.

    Args:
        settings: ``PUBLIC_BASE_URL`` and ``CREDENTIAL_LINK_TTL_SECONDS``.
        store: keeps the ciphertext and the link's metadata; its ``clock`` is "now".
        messenger: the recipient's DM (persistent notice, then the ephemeral link).
    """

    settings: Settings
    store: Store
    messenger: Messenger
    seal: RecordSeal  # seals each link's record (bot.credentials.ownership checks it)

    def issue(
        self, request_id: str, recipient: str, credentials: CreatedCredentials, replaces: str | None = None
    ) -> IssuedLink:
        """Seal ``credentials`` under a fresh key and store the ciphertext; returns the link.

        The link lives ``CREDENTIAL_LINK_TTL_SECONDS`` from now. ``replaces``: the secret this one
        re-issues (audited ``link_reissued`` instead of ``link_issued``).
        """
        sealed = seal(credentials_plaintext(credentials))
        expires_at = self.store.clock() + timedelta(seconds=self.settings.credential_link_ttl_seconds)
        secret_id = link_digest(sealed.secret_id)
        secret = NewSecret(
            secret_id=secret_id,
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
        self.store.put_secret(dataclasses.replace(secret, seal=self.seal.link(secret)))
        return IssuedLink(secret_id, expires_at, self.settings.credential_link(sealed.secret_id, sealed.key))

    def deliver(
        self, request_id: str, recipient: str, user_name: str, console_url: str | None, issued: IssuedLink
    ) -> bool:
        """Tell the recipient in the bot's DM: a persistent notice (no link) with **Send a new
        link**, then the ephemeral message holding the link. Returns whether the link arrived.

        Ephemeral messages vanish when Slack reloads, which is why the notice exists.
        """
        text, notice_blocks = messages.ready_notice(user_name, request_id, issued.secret_id, issued.expires_at)
        channel = self.messenger.dm_channel(recipient)
        if channel is not None:
            ts = self.messenger.post(channel, text, notice_blocks)
            if ts is not None:
                self.store.set_secret_notice(issued.secret_id, channel, ts)
        text, message_blocks = messages.link_message(user_name, issued.link, console_url, issued.expires_at)
        sent = self.messenger.ephemeral_dm(recipient, text, message_blocks)
        self.store.audit(
            "link_delivered" if sent else "link_delivery_failed",
            request_id=request_id,
            detail={"secret_id": issued.secret_id, "user_name": user_name, "recipient": recipient},
        )
        return sent

    def update_notice(self, row: SecretRow, what: str) -> None:
        """Rewrite the recipient's persistent notice of ``row`` to say ``what`` happened."""
        if row.notice_channel and row.notice_ts:
            text, notice_blocks = messages.notice_after(row.user_name, row.request_id, what)
            self.messenger.update(row.notice_channel, row.notice_ts, text, notice_blocks)
