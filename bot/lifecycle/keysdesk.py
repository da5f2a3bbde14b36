"""Where people look: ``keys`` (DM or ``/iam-user keys``) lists the asker's bot-made users with each
access key's id, status and age in days; the App Home shows the same with **Rotate**, and approvers
also see the keys due for rotation and the owners who left (open findings)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.models.blocks import Block

from bot.aws.clients import IamError
from bot.aws.keys import KeyKeeper
from bot.domain.lifecycle import OWNER_LEFT, ROTATION_DUE, LifecyclePolicy, OwnedKeys
from bot.lifecycle import messages
from bot.lifecycle.owned import OwnedUsers
from bot.storage.base import Store

log = logging.getLogger(__name__)

HOME_FINDINGS_MAX = 10  # keys due and owners gone listed in an approver's Home, each


@dataclass
class KeyDesk:
    """Reads a person's users and keys from IAM (a few calls a user) and words them."""

    store: Store
    owned: OwnedUsers
    keys: KeyKeeper
    policy: LifecyclePolicy

    def owned_keys(self, owner: str) -> list[OwnedKeys]:
        """``owner``'s bot-made users and their keys, read from IAM now.

        Raises:
            IamError: IAM refused a read.
        """
        return [OwnedKeys(name, tuple(self.keys.list_keys(name))) for name in self.owned.names(owner)]

    def reply(self, owner: str) -> str:
        """The answer to ``keys`` for ``owner``."""
        try:
            owned = self.owned_keys(owner)
        except IamError as error:
            log.warning("keys: IAM refused a read (%s)", error.code)
            return f"I could not read your keys from IAM ({error.code}); try again in a minute."
        return messages.keys_reply(owned, self.store.clock(), self.policy.max_age_days)

    def home_blocks(self, viewer: str, *, approver: bool, limit: int) -> list[Block]:
        """The App Home's lifecycle blocks for ``viewer``: their keys with **Rotate**, and for an
        approver the keys due for rotation and the owners who left; at most ``limit`` blocks."""
        try:
            owned = self.owned_keys(viewer)
        except IamError as error:
            log.warning("App Home: IAM refused a key read (%s)", error.code)
            owned = []
        blocks: list[Block] = []
        if approver:
            due = self.store.open_findings(ROTATION_DUE, limit=HOME_FINDINGS_MAX)
            left = self.store.open_findings(OWNER_LEFT, limit=HOME_FINDINGS_MAX)
            blocks += messages.home_findings_blocks(due, left, limit)
        room = limit - len(blocks)
        return blocks + messages.home_key_blocks(owned, self.store.clock(), self.policy.max_age_days, room)
