"""The owner tag on users made before it existed: a one-time, idempotent, audited back-fill run when
the bot starts (a job with ``at_start``).

Every provisioned onboarding request in the store names each user's recipient; a user that still
exists, carries ``iam-user-bot:managed=true`` and this request's id tag, but no
``iam-user-bot:owner``, gets ``owner=<recipient>`` (``TagUser``; audited ``owner_tag_backfilled``).
Users outside ``/iam-user-bot/`` cannot be tagged by the bot's own policy: IAM's refusal is audited
(``owner_tag_backfill_refused``) with the command an administrator runs instead. When a pass ends
without a refusal or error, a finding records it, and later starts do nothing (a store with no
provisioned request yet records nothing: every user it will hold gets the tag when made).
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.inventory import Inventory
from bot.domain.lifecycle import OWNER_BACKFILL
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG
from bot.domain.states import RequestStatus
from bot.storage.base import Store

log = logging.getLogger(__name__)

BACKFILL_VERSION = "v1"
REQUESTS_MAX = 100_000  # provisioned requests read by the one pass: every one a workspace ever filed


@dataclass
class OwnerBackfill:
    """Writes the missing owner tags once (:meth:`run`)."""

    store: Store
    iam: IamGateway
    inventory: Inventory

    def run(self) -> int | None:
        """Tag every bot-made user that lacks its owner; how many were tagged, or None when an
        earlier pass finished already. Safe in several processes at once (tagging twice writes the
        same value; the finding is opened once)."""
        if self.store.get_finding(OWNER_BACKFILL, BACKFILL_VERSION) is not None:
            return None
        tagged, problems = 0, 0
        made = [
            request
            for request in self.store.requests_where(statuses=[RequestStatus.PROVISIONED], limit=REQUESTS_MAX)
            if not request.form.is_removal
        ]
        if not made:
            return 0  # a new install: nothing to tag, and nothing recorded until there is
        for request in made:
            for name, owner in zip(request.form.user_names, request.form.recipients, strict=True):
                try:
                    tags = self.iam.tags_of(name)
                    if tags is None or tags.get(OWNER_TAG) or tags.get(MANAGED_TAG) != "true":
                        continue  # gone, tagged already, or not the bot's to touch
                    if tags.get(REQUEST_ID_TAG) != request.id:
                        continue  # a user of that name this request did not make
                    self.inventory.tag_owner(name, owner)
                except IamError as error:
                    problems += 1
                    command = shlex.join(
                        ["aws", "iam", "tag-user", "--user-name", name, "--tags", f"Key={OWNER_TAG},Value={owner}"]
                    )
                    detail = {"user_name": name, "owner": owner, "error": error.code, "run_instead": command}
                    self.store.audit("owner_tag_backfill_refused", request_id=request.id, detail=detail)
                    continue
                tagged += 1
                detail = {"user_name": name, "owner": owner}
                self.store.audit("owner_tag_backfilled", request_id=request.id, detail=detail)
        if problems:
            log.warning("owner tag back-fill: %d user(s) could not be tagged; see the audit log", problems)
            return tagged
        self.store.open_finding(OWNER_BACKFILL, BACKFILL_VERSION, detail={"tagged": tagged})
        return tagged
