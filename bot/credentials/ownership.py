"""Whether a one-time link's record is about the user it names: IAM's tags decide, not the store.

A link's record (:class:`~bot.domain.records.SecretRow`: request, recipient, IAM user, access key
id) lives in the store, which others may be able to write. Acting on it (new credentials for
**Send a new link**, **Rotate** or **Re-issue**; switching credentials off at expiry) would let a
record written into the store aim those IAM writes at any user the bot manages, and send new
credentials to whoever the record names. So before any such write the user's tags are read from
IAM, which the store's writers cannot change, and must agree with the record:

- ``iam-user-bot:request-id`` is the record's request. Provisioning tags each user with the request
  that made it, and every later link of that user keeps that request: a re-issue copies the
  record it replaces, a key rotation's link is filed under the request the tag names
  (:mod:`bot.lifecycle.rotation`).
- ``iam-user-bot:owner`` is the record's recipient. Provisioning tags the recipient as owner (the
  start-up back-fill tags older users from the same request), and a rotation's link goes to the
  owner, the only one who may click **Rotate**. The bot never changes an owner tag: a user whose
  tag an administrator changed by hand gets no new credentials from its old recipient's link
  (its new owner rotates its key), and neither does a user without the tag (the back-fill's
  ``aws iam tag-user`` command gives it one).

A key rotation's record (:class:`~bot.domain.records.RotationRow`) is checked the same way
(:meth:`LinkRecords.rotation_refusal`: its request and owner) before its completion switches the old
key off or its recovery deletes a key, and the revealed link must be the one it delivered.

A record written by someone who can read the store can copy both values (they are in the
request), so the tags alone do not tell a forged record of a user from a real one: they ensure
that new credentials only ever go to the user's owner, under the request that made the user.
What tells them apart is the link record's seal (:class:`bot.domain.seal.RecordSeal`: an HMAC of
its id, request, recipient, user, key id, console flag and the link it replaces, under a key the
store never holds), checked first: a record copied whole under a new id, or with one field
edited, is refused the same way, with no AWS call. Links written before records were sealed are
sealed once, by the start-up after the upgrade (:func:`seal_older_links`); after that an unsealed
record is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.aws.iam import IamGateway
from bot.domain.plan import OWNER_TAG, REQUEST_ID_TAG
from bot.domain.records import RotationRow, SecretRow
from bot.domain.seal import RecordSeal
from bot.slack.blocks import escape, mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)

AUDIT_EVENT = "link_record_mismatch"
CHAIN_MAX = 20  # re-issues followed back from a revealed link to the rotation's own
ROTATION_MISMATCH = "rotation_record_mismatch"  # a finding: subject "<user>@<rotation started at>"
SEAL_UPGRADE = "seal_link_records"  # the one-time upgrade that seals links written before seals


def seal_older_links(store: Store, seal: RecordSeal) -> int:
    """Once, at the first start-up after the store's upgrade asked for it (``seal_link_records``):
    seal every link and key rotation record written before records were sealed, with this bot's key; then mark the
    upgrade done, so no later unsealed record is ever sealed. How many were sealed (0 when no
    upgrade is pending: one store read)."""
    if not store.upgrade_pending(SEAL_UPGRADE):
        return 0
    sealed = 0
    while rows := store.unsealed_secrets():
        done = sum(store.seal_secret(row.id, seal.link(row)) for row in rows)
        sealed += done
        if not done:
            break
    while rotations := store.unsealed_rotations():
        done = sum(store.seal_rotation(row.user_name, seal.rotation(row)) for row in rotations)
        sealed += done
        if not done:
            break
    store.finish_upgrade(SEAL_UPGRADE)
    log.info("sealed %d link and key rotation records written before records were sealed", sealed)
    return sealed


def shown(user_name: str) -> str:
    """An IAM user name from the store as words may show it (escaped, no backtick)."""
    return escape(user_name.replace("`", "'"))


def tags_mismatch(
    tags: dict[str, str] | None, user_name: str, request_id: str, owner: str, record: str = "the link's record"
) -> str | None:
    """Why ``tags`` (a user's, from IAM) say a store record naming ``user_name``, ``request_id``
    and ``owner`` is not about that user, or None. None too when IAM has no such user (``tags``
    None): whatever the record asks then fails with ``NoSuchEntity`` and changes nothing. The
    words (``record`` names the kind of record) name tags, never a secret."""
    if tags is None:
        return None
    wrong = [
        f"{tag} is not set" if tag not in tags else f"{tag} differs"
        for tag, expected in ((REQUEST_ID_TAG, request_id), (OWNER_TAG, owner))
        if tags.get(tag) != expected
    ]
    if not wrong:
        return None
    return f"{record} does not match IAM user `{shown(user_name)}` ({', '.join(wrong)})"


def record_mismatch(tags: dict[str, str] | None, row: SecretRow) -> str | None:
    """:func:`tags_mismatch` of a one-time link's record (its request and recipient)."""
    return tags_mismatch(tags, row.user_name, row.request_id, row.recipient)


def rotation_mismatch(tags: dict[str, str] | None, rotation: RotationRow) -> str | None:
    """:func:`tags_mismatch` of a key rotation's record (the request that made the user, and the
    owner who clicked **Rotate**: :mod:`bot.lifecycle.rotation` starts one only for the owner tag)."""
    return tags_mismatch(tags, rotation.user_name, rotation.request_id, rotation.owner, "the key rotation's record")


@dataclass
class LinkRecords:
    """Checks a link's record against its user's tags before an IAM write it asks for; on a
    mismatch audits it, logs it and alerts the approvers' channel.

    Args:
        iam: reads the tags (``ListUserTags``); approval_channel: where the alert goes.
    """

    store: Store
    iam: IamGateway
    messenger: Messenger
    approval_channel: str
    seal: RecordSeal

    def refusal(self, row: SecretRow, action: str, actor: str | None = None, *, tags: bool = True) -> str | None:
        """None when IAM's tags agree with ``row`` (or the user is gone); else, what does not
        match, after auditing ``link_record_mismatch`` (with ``action`` and ``actor``), logging
        it and posting one alert to the approvers. Nothing in IAM is written either way.

        The record's seal is checked first (no AWS call; a missing, edited or copied record is
        refused the same way); then one IAM call (``ListUserTags``), however many users, links or
        keys there are.

        Args:
            action: what the record asked for, in words ("send a new link", "rotate", "expire").
            actor: who clicked (None for the expiry sweep).
            tags: False checks the seal alone. For switching an expired link's credentials off:
                the bot wrote that record, and an owner tag changed by hand since (or never set)
                must not leave the credentials it sealed working; new credentials (True) go
                only where IAM's tags say.

        Raises:
            IamError: IAM refused the read (nothing was written or told).
        """
        problem = self.seal.problem(self.seal.link(row), row.seal, "the link's record")
        if problem is not None:
            mismatch: str | None = f"{problem.what}; it names IAM user `{shown(row.user_name)}`"
        elif tags:
            mismatch = record_mismatch(self.iam.tags_of(row.user_name), row)
        else:
            mismatch = None
        if mismatch is None:
            return None
        detail = {"secret_id": untrusted_id(row.id), "user_name": untrusted_id(row.user_name, 64)}
        self.report(mismatch, row.request_id, detail, action, actor, "a one-time link's record")
        return mismatch

    def rotation_refusal(self, rotation: RotationRow, action: str, link: SecretRow | None = None) -> str | None:
        """None when IAM's tags agree with a key rotation's record (request and owner), or the user
        is gone, and ``link`` (a revealed link said to hold the rotation's new key) is the link the
        rotation delivered (``rotation.secret_id``) or one re-issued from it (its ``replaces``
        chain, at most :data:`CHAIN_MAX` links, leads there) and carries its own seal (the bot
        wrote it); the rotation's own seal is checked first (no AWS call); else what does not match, reported
        once per rotation (a finding ``rotation_record_mismatch``: the periodic check meets the same
        record again). At most one ``ListUserTags``; nothing in IAM is written either way.

        Raises:
            IamError: IAM refused the read.
        """
        mismatch = None
        if problem := self.seal.problem(self.seal.rotation(rotation), rotation.seal, "the key rotation's record"):
            mismatch = f"{problem.what}; it names IAM user `{shown(rotation.user_name)}`"
        if mismatch is None and link is not None and not self._delivered_by(link, rotation):
            mismatch = f"the revealed link is not the one the key rotation of `{shown(rotation.user_name)}` delivered"
        mismatch = mismatch or rotation_mismatch(self.iam.tags_of(rotation.user_name), rotation)
        if mismatch is None and link is not None:  # a copied or edited link row does not complete it
            problem = self.seal.problem(self.seal.link(link), link.seal, "the revealed link's record")
            mismatch = f"{problem.what}; it names IAM user `{shown(rotation.user_name)}`" if problem else None
        if mismatch is None:
            return None
        user = untrusted_id(rotation.user_name, 64)
        detail = {"user_name": user, "old_key_id": untrusted_id(rotation.old_key_id, 32)}
        subject = f"{user}@{rotation.started_at.isoformat()}"
        if self.store.open_finding(ROTATION_MISMATCH, subject, detail={**detail, "why": mismatch}):
            self.report(mismatch, rotation.request_id, detail, action, None, "a key rotation's record")
        return mismatch

    def _delivered_by(self, link: SecretRow, rotation: RotationRow) -> bool:
        """Whether ``link`` is ``rotation.secret_id`` or was re-issued (**Send a new link**,
        **Re-issue**) from it, following ``replaces`` through the store."""
        row: SecretRow | None = link
        for _ in range(CHAIN_MAX):
            if row is None or rotation.secret_id is None:
                return False
            if row.id == rotation.secret_id:
                return row.user_name == rotation.user_name
            row = self.store.secret_row(row.replaces) if row.replaces else None
        return False

    def report(
        self, mismatch: str, request_id: str, detail: dict[str, str], action: str, actor: str | None, record: str
    ) -> None:
        """Audit ``link_record_mismatch`` (with ``action`` and ``actor``), log it and post one alert
        to the approvers; ``record`` names the record in the alert."""
        self.store.audit(
            AUDIT_EVENT, request_id=request_id, actor=actor, detail={**detail, "action": action, "why": mismatch}
        )
        log.error("refused to %s from %s: %s", action, record, mismatch, extra={"request_id": request_id})
        by = f" ({mention(actor)} clicked it)" if actor else ""
        self.messenger.post(
            self.approval_channel,
            f":rotating_light: I refused to {action} from {record}{by}: {mismatch}. Nothing "
            "was changed in IAM and nothing was sent. Unless someone changed that user's tags in IAM, the bot's "
            "store (database or DynamoDB table) may have been tampered with: check who can write to it, and "
            "compare its audit log with the copy in the bot's logs.",
        )
