"""Owners who leave: when a person's Slack account is deactivated, every bot-made IAM user they own
is disabled at once (access keys ``Inactive``, login profile deleted, the user kept), the approvers
are told, and each user's disabling is audited.

Two ways in: Slack's ``user_change`` event with ``deleted: true`` (handlers/events.py), and the
periodic check asking ``users.info`` about every owner (:mod:`bot.lifecycle.check`), for the event
that never came. Both are safe to repeat and to run in several processes: disabling is idempotent,
and the approvers' message goes out once per departure (a finding opened once) and again only when
a later pass switched something off that was back on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.keys import KeyKeeper
from bot.domain.changes import Changes
from bot.domain.lifecycle import OWNER_LEFT, Disabled
from bot.lifecycle import messages
from bot.lifecycle.owned import OwnedUsers
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class Owners:
    """Disables a departed owner's users.

    Args:
        owned: finds a person's bot-made users; keys: disables them (managed users only);
        approval_channel: where the approvers are told.
    """

    store: Store
    owned: OwnedUsers
    keys: KeyKeeper
    messenger: Messenger
    changes: Changes
    approval_channel: str

    def departed(self, owner: str, *, source: str, users: Sequence[str] | None = None) -> dict[str, Disabled | str]:
        """Disable every bot-made user of ``owner`` (``users`` when the caller knows them from
        IAM's tags, else found through the store and confirmed by the tag), audit each
        (``owner_left_user_disabled``), and tell the approvers.

        Args:
            source: ``event`` (``user_change``) or ``check`` (``users.info``), for the record.

        Returns:
            Per user name, what was switched off, or the IAM error in words.
        """
        names = list(users) if users is not None else self.owned.names(owner)
        if not names:
            return {}
        results: dict[str, Disabled | str] = {}
        for name in names:
            try:
                result = self.keys.disable_user(name)
            except IamError as error:
                results[name] = str(error)
                detail = {"user_name": name, "owner": owner, "source": source, "error": str(error)}
                self.store.audit("owner_left_disable_failed", actor=None, detail=detail)
                continue
            results[name] = result
            detail = {
                "user_name": name,
                "owner": owner,
                "source": source,
                "keys_deactivated": list(result.keys),
                "login_profile_deleted": result.login_profile,
            }
            self.store.audit("owner_left_user_disabled", actor=None, detail=detail)
        first = self.store.open_finding(OWNER_LEFT, owner, detail={"user_names": names, "source": source})
        changed = any(isinstance(r, str) or r.changed for r in results.values())
        if first or changed:
            text, blocks = messages.owner_left(owner, results, source)
            if self.messenger.post(self.approval_channel, text, blocks) is None:
                self.store.audit("owner_left_post_failed", detail={"owner": owner})
            log.info("owner left: %d IAM user(s) disabled", len(names), extra={"slack_user": owner})
        return results
