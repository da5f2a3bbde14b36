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

A record written by someone who can read the store can copy both values (they are in the
request), so this does not tell a forged record of a user from a real one: what it ensures is
that new credentials only ever go to the user's owner, under the request that made the user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.aws.iam import IamGateway
from bot.domain.plan import OWNER_TAG, REQUEST_ID_TAG
from bot.domain.records import SecretRow
from bot.slack.blocks import escape, mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)

AUDIT_EVENT = "link_record_mismatch"


def record_mismatch(tags: dict[str, str] | None, row: SecretRow) -> str | None:
    """Why ``tags`` (a user's, from IAM) say ``row`` is not a record of a link for that user, or
    None. None too when IAM has no such user (``tags`` None): whatever the record asks then
    fails with ``NoSuchEntity`` and changes nothing. The words name tags, never a secret."""
    if tags is None:
        return None
    wrong = [
        f"{tag} is not set" if tag not in tags else f"{tag} differs"
        for tag, expected in ((REQUEST_ID_TAG, row.request_id), (OWNER_TAG, row.recipient))
        if tags.get(tag) != expected
    ]
    if not wrong:
        return None
    shown = escape(row.user_name.replace("`", "'"))
    return f"the link's record does not match IAM user `{shown}` ({', '.join(wrong)})"


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

    def refusal(self, row: SecretRow, action: str, actor: str | None = None) -> str | None:
        """None when IAM's tags agree with ``row`` (or the user is gone); else, what does not
        match, after auditing ``link_record_mismatch`` (with ``action`` and ``actor``), logging
        it and posting one alert to the approvers. Nothing in IAM is written either way.

        One IAM call (``ListUserTags``), however many users, links or keys there are.

        Args:
            action: what the record asked for, in words ("send a new link", "rotate", "expire").
            actor: who clicked (None for the expiry sweep).

        Raises:
            IamError: IAM refused the read (nothing was written or told).
        """
        mismatch = record_mismatch(self.iam.tags_of(row.user_name), row)
        if mismatch is None:
            return None
        detail = {"secret_id": untrusted_id(row.id), "user_name": untrusted_id(row.user_name, 64)}
        self.store.audit(
            AUDIT_EVENT, request_id=row.request_id, actor=actor, detail={**detail, "action": action, "why": mismatch}
        )
        log.error("refused to %s from a link's record: %s", action, mismatch, extra={"request_id": row.request_id})
        by = f" ({mention(actor)} clicked it)" if actor else ""
        self.messenger.post(
            self.approval_channel,
            f":rotating_light: I refused to {action} from a one-time link's record{by}: {mismatch}. Nothing "
            "was changed in IAM and nothing was sent. Unless someone changed that user's tags in IAM, the bot's "
            "store (database or DynamoDB table) may have been tampered with: check who can write to it, and "
            "compare its audit log with the copy in the bot's logs.",
        )
        return mismatch
