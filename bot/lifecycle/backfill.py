"""The owner tag on users made before it existed: a one-time, idempotent, audited back-fill run when
the bot starts (a job with ``at_start``).

Every provisioned onboarding request in the store names each user's recipient; a user that still
exists, carries ``iam-user-bot:managed=true`` and this request's id tag, but no
``iam-user-bot:owner``, gets ``owner=<recipient>`` (``TagUser``; audited ``owner_tag_backfilled``).
Users outside ``/iam-user-bot/`` cannot be tagged by the bot's own policy: IAM's refusal is audited
(``owner_tag_backfill_refused``) with the command an administrator runs instead. When a pass ends
without a refusal or error, a finding records it, and later starts do nothing (a store with no
provisioned request yet records nothing: every user it will hold gets the tag when made).

The owner written comes from the store, which others may be able to write, and the owner tag is
what lets a Slack user click **Rotate** and receive a key. So a request is used only when its
stored approval seal verifies (:meth:`bot.provisioning.guard.ApprovalGuard.approval`: the
recipients are the ones approvers approved). A request that fails the check tags nobody: it is
audited ``approval_seal_invalid`` and the approvers are told once (a finding
``owner_backfill_unsealed`` per request), with the command to tag each user by hand once they
know its owner; the pass still ends (it does not retry such a request at every start).
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.inventory import Inventory
from bot.domain.lifecycle import OWNER_BACKFILL, OWNER_BACKFILL_UNSEALED
from bot.domain.models import OnboardingRequest
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG
from bot.domain.seal import SealProblem
from bot.domain.states import RequestStatus
from bot.provisioning.guard import AUDIT_EVENT as SEAL_INVALID
from bot.provisioning.guard import ApprovalGuard
from bot.slack.blocks import escape
from bot.storage.base import Store

log = logging.getLogger(__name__)

BACKFILL_VERSION = "v1"
REQUESTS_MAX = 100_000  # provisioned requests read by the one pass: every one a workspace ever filed


@dataclass
class OwnerBackfill:
    """Writes the missing owner tags once (:meth:`run`), from requests whose approval seal
    verifies (``guard``; it also holds the approvers' channel)."""

    store: Store
    iam: IamGateway
    inventory: Inventory
    guard: ApprovalGuard

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
            verified: bool | None = None  # the seal is checked once, when a user needs the tag
            for name, owner in zip(request.form.user_names, request.form.recipients, strict=True):
                try:
                    tags = self.iam.tags_of(name)
                    if tags is None or tags.get(OWNER_TAG) or tags.get(MANAGED_TAG) != "true":
                        continue  # gone, tagged already, or not the bot's to touch
                    if tags.get(REQUEST_ID_TAG) != request.id:
                        continue  # a user of that name this request did not make
                    if verified is None:
                        verified = self._verified(request)
                    if not verified:
                        continue
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

    def _verified(self, request: OnboardingRequest) -> bool:
        """Whether ``request``'s stored approval seals its stored form (its recipients); if not,
        audit ``approval_seal_invalid`` and tell the approvers, once per request."""
        problem = self.guard.approval(request)
        if not isinstance(problem, SealProblem):
            return True
        users = list(request.form.user_names)
        detail = {"reason": problem.what, "cause": str(problem.cause), "use": "owner tag back-fill", "users": users}
        if not self.store.open_finding(OWNER_BACKFILL_UNSEALED, request.id, detail=detail):
            return False
        self.store.audit(SEAL_INVALID, request_id=request.id, detail=detail)
        log.error("owner tag back-fill: request's stored records are not the approved ones: %s", problem.what)
        named = ", ".join(f"`{escape(name)}`" for name in users)
        fix = f"aws iam tag-user --user-name <user> --tags Key={OWNER_TAG},Value=<owner's Slack user id>"
        alarm = ":warning:" if problem.reapprove else ":rotating_light:"
        self.guard.messenger.post(
            self.guard.channel,
            f"{alarm} I did not back-fill the owner tag of {named} from request `{request.id}`: "
            f"{escape(problem.what)}, so its stored recipients may not be the approved ones. Nothing was tagged. "
            f"Once you know each user's owner, tag it by hand: `{fix}`. If nobody changed that request, the "
            "bot's store (database or DynamoDB table) may have been tampered with: check who can write to it.",
        )
        return False
